"""nsqd's settings: NSQ's option names (as config-file keys) and defaults.

Durations are float seconds here; the CLI and the TOML file take Go duration strings
(``60s``, ``250ms``) and /config/:opt reports them as Go does. ``Options`` is frozen: the daemon
reads it everywhere without locks, and the few options NSQ lets you change at run time
(nsqlookupd_tcp_addresses, log_level) are replaced with ``dataclasses.replace``.
"""

from __future__ import annotations

import socket
import zlib
from dataclasses import dataclass, field
from hashlib import md5


def default_node_id() -> int:
    """NSQ's default: crc32(md5(hostname)) % 1024."""
    return zlib.crc32(md5(socket.gethostname().encode()).digest()) % 1024


@dataclass(frozen=True)
class Options:
    # basic
    node_id: int = field(default_factory=default_node_id)
    log_level: str = "info"
    log_prefix: str = "[nsqd] "
    tcp_address: str = "0.0.0.0:4150"
    http_address: str = "0.0.0.0:4151"
    https_address: str = "0.0.0.0:4152"
    broadcast_address: str = ""  # "" = resolved at start (see cli.default_broadcast_address)
    broadcast_tcp_port: int = 0
    broadcast_http_port: int = 0
    nsqlookupd_tcp_addresses: tuple[str, ...] = ()
    auth_http_addresses: tuple[str, ...] = ()
    auth_http_request_method: str = "get"
    http_client_connect_timeout: float = 2.0
    http_client_request_timeout: float = 5.0
    topology_region: str = ""
    topology_zone: str = ""
    enable_experiment: tuple[str, ...] = ()

    # diskqueue
    data_path: str = ""
    mem_queue_size: int = 10000
    max_bytes_per_file: int = 100 * 1024 * 1024
    sync_every: int = 2500
    sync_timeout: float = 2.0

    queue_scan_interval: float = 0.1
    queue_scan_refresh_interval: float = 5.0
    queue_scan_selection_count: int = 20
    queue_scan_worker_pool_max: int = 4
    queue_scan_dirty_percent: float = 0.25

    # msg and command options
    msg_timeout: float = 60.0
    max_msg_timeout: float = 15 * 60.0
    max_msg_size: int = 1024 * 1024
    max_body_size: int = 5 * 1024 * 1024
    max_req_timeout: float = 3600.0
    client_timeout: float = 60.0

    # client overridable configuration options
    max_heartbeat_interval: float = 60.0
    max_rdy_count: int = 2500
    max_output_buffer_size: int = 64 * 1024
    max_output_buffer_timeout: float = 30.0
    min_output_buffer_timeout: float = 0.025
    output_buffer_timeout: float = 0.25
    max_channel_consumers: int = 0

    # statsd integration
    statsd_address: str = ""
    statsd_prefix: str = "nsq.%s"
    statsd_interval: float = 60.0
    statsd_mem_stats: bool = True
    statsd_udp_packet_size: int = 508
    statsd_exclude_ephemeral: bool = False

    # e2e message latency
    e2e_processing_latency_window_time: float = 600.0
    e2e_processing_latency_percentiles: tuple[float, ...] = ()

    # TLS config
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_auth_policy: str = ""
    tls_root_ca_file: str = ""
    tls_required: str = "false"
    tls_min_version: str = "tls1.0"

    # compression
    deflate: bool = True
    max_deflate_level: int = 6
    snappy: bool = True

    @property
    def max_req_timeout_ms(self) -> int:
        return int(self.max_req_timeout * 1000)
