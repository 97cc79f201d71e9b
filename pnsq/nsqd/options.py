"""nsqd's settings: NSQ's option names (as config-file keys), defaults and flags.

Durations are float seconds here; the CLI and the TOML file take Go duration strings
(``60s``, ``250ms``) and /config/:opt reports them as Go does. ``Options`` is frozen: the daemon
reads it everywhere without locks, and the few options NSQ lets you change at run time
(nsqlookupd_tcp_addresses, log_level) are replaced with ``dataclasses.replace``. ``FLAGS`` declares every command-line flag beside the field it
sets; ``pnsq.cli`` builds ``pnsq nsqd``'s options and config-file keys from it.
"""

from __future__ import annotations

import dataclasses
import socket
import zlib
from dataclasses import dataclass, field
from hashlib import md5

from .._internal import flags
from .._internal.flags import Flag, flag
from .._internal.netaddr import default_broadcast_address, split_host_port
from .tls import server_context


def default_node_id() -> int:
    """NSQ's default: crc32(md5(hostname)) % 1024."""
    return zlib.crc32(md5(socket.gethostname().encode()).digest()) % 1024


@dataclass(frozen=True)
class Options:
    # basic
    node_id: int = field(default_factory=default_node_id)
    log_level: str = "info"
    log_prefix: str = "[nsqd] "
    log_format: str = "text"  # or "json": one object per line
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
    sigterm_mode: str = "shutdown"  # or "drain" (NSQ PR #1305)
    # Long enough for a message in flight when the drain starts to time out (the default
    # --msg-timeout, 60 s) and be delivered once more; 0 waits for as long as it takes.
    drain_timeout: float = 120.0

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

    # Prometheus (pnsq's): GET /metrics adds series per client connection (high-cardinality)
    metrics_per_client: bool = False

    @property
    def max_req_timeout_ms(self) -> int:
        return int(self.max_req_timeout * 1000)


def _tls_required(value: object) -> str:
    if isinstance(value, str) and value.lower() == "tcp-https":
        return "tcp-https"
    try:
        return "true" if flags.boolean(value) else "false"
    except ValueError:
        raise ValueError(f"expected true, false or tcp-https, got {value!r}") from None


def _experiments(value: object) -> tuple[str, ...]:
    convert = flags.choice("topology-aware-consumption")
    return tuple(convert(item) for item in flags.string_list(value))


def _percentile(value: object) -> float:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if 0 < number <= 1:
                return number
    raise ValueError(f"invalid E2E processing latency percentile: {value!r}, want (0, 1.0]")


def _percentiles(value: object) -> tuple[float, ...]:
    """Floats in (0, 1]; each flag value may itself be a comma list ("1.0,0.99,0.95")."""
    items = (
        p
        for item in flags.items(value)
        for p in (flags.items(item) if isinstance(item, str) else [item])
    )
    return tuple(_percentile(item) for item in items)


# One row per flag, in NSQ's order; help texts are NSQ's own where NSQ has the flag.
# fmt: off
FLAGS: tuple[Flag, ...] = (
    # basic
    flag("log-level", flags.log_level, "set log verbosity: debug, info, warn, error, or fatal"),
    flag("log-prefix", flags.string, "log message prefix"),
    flag("log-format", flags.log_format, "log format: text (NSQ's lines) or json (one object per line)"),
    flag("node-id", flags.integer, "unique part for message IDs, (int) in range [0,1024)",
       cfg="id", default_text="hash of hostname"),
    flag("tcp-address", flags.string, "<addr>:<port> (or unix socket path) to listen on for TCP clients"),
    flag("http-address", flags.string, "<addr>:<port> to listen on for HTTP clients (empty disables)"),
    flag("https-address", flags.string, "<addr>:<port> to listen on for HTTPS clients"),
    flag("broadcast-address", flags.string, "address that will be registered with lookupd",
       default_text="this host's IP: the hostname's address if not loopback, "
       "else the primary outbound address, else 127.0.0.1"),
    flag("broadcast-tcp-port", flags.port, "TCP port that will be registered with lookupd",
       default_text="the TCP listening port"),
    flag("broadcast-http-port", flags.port, "HTTP port that will be registered with lookupd",
       default_text="the HTTP listening port"),
    flag("lookupd-tcp-address", flags.string_list, "lookupd TCP address (may be given multiple times)",
       field="nsqlookupd_tcp_addresses", repeatable=True),
    flag("auth-http-address", flags.string_list,
       "<addr>:<port> or URL to query auth server (may be given multiple times)",
       field="auth_http_addresses", repeatable=True),
    flag("auth-http-request-method", flags.choice("get", "post"),
       "HTTP method used to query the auth server: get or post"),
    flag("http-client-connect-timeout", flags.duration, "timeout for HTTP connect"),
    flag("http-client-request-timeout", flags.duration, "timeout for HTTP request"),
    flag("topology-region", flags.string, "region of this nsqd, for topology-aware consumption"),
    flag("topology-zone", flags.string, "availability zone of this nsqd, for topology-aware consumption"),
    flag("enable-experiment", _experiments,
       "enable an experimental feature: topology-aware-consumption (may be given multiple times)",
       repeatable=True),
    flag("sigterm-mode", flags.choice("shutdown", "drain"),
       "what SIGTERM does: 'shutdown' (messages to disk, exit) or 'drain' (refuse publishes, "
       "deliver what is queued, then shut down)"),
    flag("drain-timeout", flags.duration,
       "how long a drain may take before nsqd shuts down anyway, what is left kept on disk "
       "(0 = no limit)"),
    # diskqueue
    flag("data-path", flags.string, "path to store disk-backed messages",
       default_text="the current directory"),
    flag("mem-queue-size", flags.natural, "number of messages to keep in memory (per topic/channel)"),
    flag("max-bytes-per-file", flags.natural, "number of bytes per diskqueue file before rolling"),
    flag("sync-every", flags.natural, "number of messages per diskqueue fsync"),
    flag("sync-timeout", flags.duration, "duration of time per diskqueue fsync"),
    flag("queue-scan-worker-pool-max", flags.natural,
       "max concurrency for checking in-flight and deferred message timeouts"),
    flag("queue-scan-selection-count", flags.natural,
       "number of channels to check per cycle (every 100ms) for in-flight and deferred timeouts"),
    # messages and commands
    flag("msg-timeout", flags.duration, "default duration to wait before auto-requeueing a message"),
    flag("max-msg-timeout", flags.duration, "maximum duration before a message will timeout"),
    flag("max-msg-size", flags.natural, "maximum size of a single message in bytes"),
    flag("max-body-size", flags.natural, "maximum size of a single command body"),
    flag("max-req-timeout", flags.duration, "maximum requeuing timeout for a message"),
    # client-overridable
    flag("max-heartbeat-interval", flags.duration,
       "maximum client configurable duration of time between client heartbeats"),
    flag("max-rdy-count", flags.natural, "maximum RDY count for a client"),
    flag("max-output-buffer-size", flags.natural,
       "maximum client configurable size (in bytes) for a client output buffer"),
    flag("max-output-buffer-timeout", flags.duration,
       "maximum client configurable duration of time between flushing to a client"),
    flag("min-output-buffer-timeout", flags.duration,
       "minimum client configurable duration of time between flushing to a client"),
    flag("output-buffer-timeout", flags.duration,
       "default duration of time between flushing data to clients"),
    flag("max-channel-consumers", flags.natural,
       "maximum channel consumer connection count per nsqd instance (0 = unlimited)"),
    # statsd
    flag("statsd-address", flags.string, "UDP <addr>:<port> of a statsd daemon for pushing stats"),
    flag("statsd-interval", flags.positive_duration, "duration between pushing to statsd"),
    flag("statsd-mem-stats", flags.boolean, "toggle sending memory and GC stats to statsd", bare=True),
    flag("statsd-prefix", flags.string, "prefix used for keys sent to statsd (%s for host replacement)"),
    flag("statsd-udp-packet-size", flags.natural, "the size in bytes of statsd UDP packets"),
    flag("statsd-exclude-ephemeral", flags.boolean,
       "skip ephemeral topics and channels when sending stats to statsd", bare=True),
    # end-to-end latency
    flag("e2e-processing-latency-percentile", _percentiles,
       "message processing time percentile (float in (0, 1.0]) to track; repeatable or "
       "comma separated '1.0,0.99,0.95'",
       field="e2e_processing_latency_percentiles", repeatable=True, default_text="none"),
    flag("e2e-processing-latency-window-time", flags.duration,
       "calculate end to end latency quantiles over this duration of time"),
    # TLS
    flag("tls-cert", flags.string, "path to certificate file"),
    flag("tls-key", flags.string, "path to key file"),
    flag("tls-client-auth-policy", flags.choice("", "require", "require-verify"),
       "client certificate auth policy ('require' or 'require-verify')"),
    flag("tls-root-ca-file", flags.string, "path to certificate authority file"),
    flag("tls-required", _tls_required,
       "require TLS for client connections (true, false, tcp-https)", bare=True),
    flag("tls-min-version", flags.choice("tls1.0", "tls1.1", "tls1.2", "tls1.3"),
       "minimum TLS version acceptable ('tls1.0', 'tls1.1', 'tls1.2' or 'tls1.3')"),
    # compression
    flag("deflate", flags.boolean, "enable deflate feature negotiation (client compression)", bare=True),
    flag("max-deflate-level", flags.integer,
       "max deflate compression level a client can negotiate (> values == > nsqd CPU usage)"),
    flag("snappy", flags.boolean, "enable snappy feature negotiation (client compression)", bare=True),
    # Prometheus (pnsq's own)
    flag("metrics-per-client", flags.boolean,
       "GET /metrics also has series per client connection (ready, in-flight, finish, requeue, "
       "message counts): one set per consumer, so off by default", bare=True),
)
# fmt: on
DEPRECATED = {
    "verbose": "[deprecated] has no effect, use --log-level",
    "worker-id": "[deprecated] use --node-id",
}
# Keys NSQ's config files may hold that mean nothing to pnsq but are not mistakes.
IGNORED_CONFIG_KEYS = frozenset({"verbose"})


def finish(options: Options) -> Options:
    """Check the rules NSQ enforces across options at startup (its wording where it has one;
    ValueError) and fill in what is resolved at start (the broadcast address)."""
    problem = ""
    if not 0 <= options.node_id < 1024:
        problem = "--node-id must be [0,1024)"
    elif not 1 <= options.max_deflate_level <= 9:
        problem = "--max-deflate-level must be [1,9]"
    elif not (options.tls_cert or options.tls_key) and (
        options.tls_required != "false" or options.tls_client_auth_policy
    ):
        problem = "cannot require TLS client connections without TLS key and cert"
    elif options.statsd_address and not _is_host_port(options.statsd_address):
        problem = f"--statsd-address {options.statsd_address!r}: want <addr>:<port>"
    if problem:
        raise ValueError(problem)
    server_context(options)  # ValueError("failed to build TLS config - ...") at startup
    if not options.broadcast_address:
        options = dataclasses.replace(options, broadcast_address=default_broadcast_address())
    return options


def _is_host_port(address: str) -> bool:
    try:
        split_host_port(address)
    except ValueError:
        return False
    return True
