"""The admin's settings and flags: nsqadmin's option names where they exist (reference §6.4).

Durations are float seconds. ``--http-client-request-timeout`` defaults to 2 s (nsqadmin: 5 s):
each page waits on every node in parallel, so this bounds how long a node that does not answer
can hold a page up. ``FLAGS`` is read by ``pnsq.cli`` to build ``pnsq admin``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._internal import flags
from .._internal.flags import Flag, flag


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


# fmt: off
FLAGS: tuple[Flag, ...] = (
    flag("http-address", flags.address, "<addr>:<port> to listen on for HTTP clients"),
    flag("lookupd-http-address", flags.address_list,
         "lookupd HTTP address (may be given multiple times)",
         field="lookupd_http_addresses", repeatable=True),
    flag("nsqd-http-address", flags.address_list,
         "nsqd HTTP address (may be given multiple times)",
         field="nsqd_http_addresses", repeatable=True),
    flag("http-client-connect-timeout", flags.positive_duration,
         "timeout for connecting to a node"),
    flag("http-client-request-timeout", flags.positive_duration,
         "timeout for one request to a node (bounds how long a dead node holds a page)"),
    flag("sample-interval", flags.positive_duration,
         "how often every node's /stats is sampled for the charts"),
    flag("history-size", flags.at_least(2), "samples kept per chart series"),
    flag("log-level", flags.log_level, "log level: debug, info, warn, error, or fatal"),
    flag("log-prefix", flags.string, "log message prefix"),
)
# fmt: on


def finish(options: AdminOptions) -> AdminOptions:
    """nsqadmin's rule: nodes come from lookupds or from a list of nsqds, exactly one of them."""
    if bool(options.lookupd_http_addresses) == bool(options.nsqd_http_addresses):
        raise ValueError("use --lookupd-http-address or --nsqd-http-address, not both")
    return options
