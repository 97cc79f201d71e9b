"""nsqlookupd's settings (reference §5.4): NSQ's option names (config-file keys), defaults and
flags (``FLAGS``, read by ``pnsq.cli`` to build ``pnsq lookupd``).

Durations are float seconds here; the CLI and the TOML file take Go duration strings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .._internal import flags
from .._internal.flags import Flag, flag
from .._internal.netaddr import default_broadcast_address


@dataclass(frozen=True)
class LookupdOptions:
    log_level: str = "info"
    log_prefix: str = "[nsqlookupd] "
    log_format: str = "text"  # or "json": one object per line
    tcp_address: str = "0.0.0.0:4160"
    http_address: str = "0.0.0.0:4161"
    broadcast_address: str = ""  # "" = resolved at start, like nsqd's
    inactive_producer_timeout: float = 300.0
    tombstone_lifetime: float = 45.0


# fmt: off
FLAGS: tuple[Flag, ...] = (
    flag("log-level", flags.log_level, "set log verbosity: debug, info, warn, error, or fatal"),
    flag("log-prefix", flags.string, "log message prefix"),
    flag("log-format", flags.log_format, "log format: text (NSQ's lines) or json (one object per line)"),
    flag("tcp-address", flags.string, "<addr>:<port> to listen on for TCP clients"),
    flag("http-address", flags.string, "<addr>:<port> to listen on for HTTP clients"),
    flag("broadcast-address", flags.string,
         "address of this lookupd node, returned to nsqd in IDENTIFY",
         default_text="this host's IP, as nsqd's --broadcast-address"),
    flag("inactive-producer-timeout", flags.duration,
         "duration of time a producer will remain in the active list since its last ping"),
    flag("tombstone-lifetime", flags.duration,
         "duration of time a producer will remain tombstoned if registration remains"),
)
# fmt: on
DEPRECATED = {"verbose": "[deprecated] has no effect, use --log-level"}


def finish(options: LookupdOptions) -> LookupdOptions:
    """Fill in what is resolved at start: the broadcast address."""
    if not options.broadcast_address:
        options = dataclasses.replace(options, broadcast_address=default_broadcast_address())
    return options
