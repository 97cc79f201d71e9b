"""nsqlookupd's settings (reference §5.4): NSQ's option names (config-file keys) and defaults.

Durations are float seconds here; the CLI and the TOML file take Go duration strings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LookupdOptions:
    log_level: str = "info"
    log_prefix: str = "[nsqlookupd] "
    tcp_address: str = "0.0.0.0:4160"
    http_address: str = "0.0.0.0:4161"
    broadcast_address: str = ""  # "" = resolved at start, like nsqd's
    inactive_producer_timeout: float = 300.0
    tombstone_lifetime: float = 45.0
