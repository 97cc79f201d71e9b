"""The admin's settings: nsqadmin's option names where they exist (reference §6.4).

Durations are float seconds. ``--http-client-request-timeout`` defaults to 2 s (nsqadmin: 5 s):
each page waits on every node in parallel, so this bounds how long a node that does not answer
can hold a page up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdminOptions:
    http_address: str = "0.0.0.0:4171"
    lookupd_http_addresses: tuple[str, ...] = ()
    nsqd_http_addresses: tuple[str, ...] = ()
    http_client_connect_timeout: float = 2.0
    http_client_request_timeout: float = 2.0
    sample_interval: float = 2.0  # how often every node's /stats is sampled for the charts
    history_size: int = 450  # points kept per series: 15 minutes at 2 s
    log_level: str = "info"
    log_prefix: str = "[nsqadmin] "
