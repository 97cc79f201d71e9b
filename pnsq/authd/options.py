"""``pnsq authd``'s settings and flags (``FLAGS``, read by ``pnsq.cli`` to build the command).

``--config`` names the secrets file (TOML, see ``secrets.py``), not a file of these options:
an auth server has few flags and its one real input is that table.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._internal import flags
from .._internal.flags import Flag, flag


@dataclass(frozen=True)
class AuthdOptions:
    log_level: str = "info"
    log_prefix: str = "[authd] "
    log_format: str = "text"  # or "json": one object per line
    http_address: str = "0.0.0.0:4181"
    secrets_file: str = ""


# fmt: off
FLAGS: tuple[Flag, ...] = (
    flag("log-level", flags.log_level, "set log verbosity: debug, info, warn, error, or fatal"),
    flag("log-prefix", flags.string, "log message prefix"),
    flag("log-format", flags.log_format, "log format: text (NSQ's lines) or json (one object per line)"),
    flag("http-address", flags.address, "<addr>:<port> to listen on for nsqd's auth requests"),
    flag("config", flags.string,
         "TOML file of secrets and their permissions (reloaded on SIGHUP)",
         field="secrets_file"),
)
# fmt: on
