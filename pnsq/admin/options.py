"""The admin's settings and flags: nsqadmin's option names where they exist (reference §6.4).

Durations are float seconds. ``--http-client-request-timeout`` defaults to 2 s (nsqadmin: 5 s):
each page waits on every node in parallel, so this bounds how long a node that does not answer
can hold a page up. ``FLAGS`` is read by ``pnsq.cli`` to build ``pnsq admin``.

A lookupd or nsqd address may be written ``https://host:port``: the admin then reaches it over
TLS with the ``--http-client-tls-*`` settings (NSQ writes ``http://`` into every URL; pnsq's
nsqd can serve its API over HTTPS, so the admin needs a way to say which nodes do).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

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
    log_format: str = "text"  # or "json": one object per line
    # access control (nsqadmin's): with admin users, only they may act
    admin_users: tuple[str, ...] = ()
    acl_http_header: str = "X-Forwarded-User"
    notification_http_endpoint: str = ""
    # outbound TLS, for nodes given as https://host:port
    http_client_tls_insecure_skip_verify: bool = False
    http_client_tls_root_ca_file: str = ""
    http_client_tls_cert: str = ""
    http_client_tls_key: str = ""
    # graphite (nsqadmin's; see graphite.py): statsd keys as nsqd and statsd write them
    graphite_url: str = ""
    proxy_graphite: bool = False
    statsd_prefix: str = "nsq.%s"
    statsd_counter_format: str = "stats.counters.%s.count"
    statsd_gauge_format: str = "stats.gauges.%s"
    statsd_interval: float = 60.0


def split_scheme(address: str) -> tuple[str, str]:
    """``https://host:port`` -> ``("https", "host:port")``; a bare ``host:port`` is http."""
    scheme, sep, rest = address.partition("://")
    return (scheme.lower(), rest) if sep else ("http", address)


def node_addresses(value: object) -> tuple[str, ...]:
    """``host:port`` or ``http(s)://host:port``, repeated."""
    result = []
    for item in flags.string_list(value):
        scheme, rest = split_scheme(item)
        if scheme not in ("http", "https"):
            raise ValueError(f"{item!r}: only http:// or https:// may come before host:port")
        flags.address(rest)
        result.append(item)
    return tuple(result)


def url(value: object) -> str:
    text = flags.string(value)
    if text and (urlsplit(text).scheme not in ("http", "https") or not urlsplit(text).netloc):
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    return text


# fmt: off
FLAGS: tuple[Flag, ...] = (
    flag("http-address", flags.address, "<addr>:<port> to listen on for HTTP clients"),
    flag("lookupd-http-address", node_addresses,
         "lookupd HTTP address (may be given multiple times)",
         field="lookupd_http_addresses", repeatable=True),
    flag("nsqd-http-address", node_addresses,
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
    flag("log-format", flags.log_format, "log format: text (NSQ's lines) or json (one object per line)"),
    flag("admin-user", flags.string_list,
         "admin user (may be given multiple times; if set, only these users may act)",
         field="admin_users", repeatable=True),
    flag("acl-http-header", flags.string, "HTTP header to check for the admin user's name"),
    flag("notification-http-endpoint", url,
         "HTTP endpoint (fully qualified) to which POST notifications of admin actions are sent"),
    flag("http-client-tls-insecure-skip-verify", flags.boolean,
         "configure the HTTP client to skip verification of TLS certificates", bare=True),
    flag("http-client-tls-root-ca-file", flags.string,
         "CA file used to verify the certificates of HTTPS nodes"),
    flag("http-client-tls-cert", flags.string, "client certificate for HTTPS nodes (PEM)"),
    flag("http-client-tls-key", flags.string, "client key for HTTPS nodes (PEM)"),
    flag("graphite-url", url, "graphite HTTP address"),
    flag("proxy-graphite", flags.boolean, "proxy HTTP requests to graphite", bare=True),
    flag("statsd-prefix", flags.string,
         "prefix used for keys sent to statsd (%s for host replacement, must match nsqd)"),
    flag("statsd-counter-format", flags.string,
         "the counter stats key formatting applied by the implementation of statsd "
         "(empty: no formatting)"),
    flag("statsd-gauge-format", flags.string,
         "the gauge stats key formatting applied by the implementation of statsd "
         "(empty: no formatting)"),
    flag("statsd-interval", flags.positive_duration,
         "time interval nsqd is configured to push to statsd (must match nsqd)"),
)
# fmt: on


def finish(options: AdminOptions) -> AdminOptions:
    """nsqadmin's rule: nodes come from lookupds or from a list of nsqds, exactly one of them."""
    if bool(options.lookupd_http_addresses) == bool(options.nsqd_http_addresses):
        raise ValueError("use --lookupd-http-address or --nsqd-http-address, not both")
    if options.http_client_tls_cert and not options.http_client_tls_key:
        raise ValueError("--http-client-tls-key must be specified with --http-client-tls-cert")
    if options.http_client_tls_key and not options.http_client_tls_cert:
        raise ValueError("--http-client-tls-cert must be specified with --http-client-tls-key")
    if options.proxy_graphite and not options.graphite_url:
        raise ValueError("--proxy-graphite needs --graphite-url")
    if options.admin_users and not options.acl_http_header:
        raise ValueError("--acl-http-header must name a header when --admin-user is given")
    return options
