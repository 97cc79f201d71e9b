"""The ``pnsq`` command: NSQ's daemons behind one entry point (``pnsq nsqd ...``).

nsqd's flags are declared once, in the ``NSQD_FLAGS`` table, with NSQ's names, config-file keys
and help; the click options, the TOML reader and the help defaults are all generated from it, so
a flag cannot exist in one place and be missing in another. Every value, from the command line
or the config file, goes through the same converter, so both give the same error for the same
mistake. Precedence is NSQ's: an explicit flag beats the config file, which beats the default in
``pnsq.nsqd.options.Options``. This module only parses: the daemon is
``pnsq.nsqd.daemon.run(options)``, looked up when the command runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import click
from click.core import ParameterSource

from pnsq import NSQ_VERSION, __version__
from pnsq._internal.duration import format_duration, parse_duration
from pnsq._internal.logging import parse_log_level, setup_logging
from pnsq._internal.netaddr import default_broadcast_address
from pnsq.lookupd.options import LookupdOptions
from pnsq.nsqd.options import Options

__all__ = [
    "LOOKUPD_FLAGS",
    "NSQD_FLAGS",
    "Flag",
    "build_lookupd_options",
    "build_options",
    "load_config",
    "main",
]

Convert = Callable[[object], Any]
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


# -- converters: flag strings and TOML values -> Options values; ValueError on bad input --------


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            pass
    raise ValueError(f"expected an integer, got {value!r}")


def _natural(value: object) -> int:
    number = _integer(value)
    if number < 0:
        raise ValueError(f"must not be negative, got {number}")
    return number


def _port(value: object) -> int:
    number = _integer(value)
    if not 0 <= number <= 65535:
        raise ValueError(f"must be a port in [0,65535], got {number}")
    return number


def _boolean(value: object) -> bool:
    """Go's strconv.ParseBool spellings, or a TOML boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _GO_TRUE | _GO_FALSE:
        return value in _GO_TRUE
    raise ValueError(f"expected true or false, got {value!r}")


def _duration(value: object) -> float:
    """A Go duration string; NSQ (since 1.1) takes no bare numbers for durations."""
    if not isinstance(value, str):
        raise ValueError(f'durations must be strings such as "60s" or "250ms", got {value!r}')
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return seconds


def _choice(*choices: str) -> Convert:
    def convert(value: object) -> str:
        text = _string(value).lower()
        if text not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return text

    return convert


def _log_level(value: object) -> str:
    return parse_log_level(_string(value))


def _tls_required(value: object) -> str:
    if isinstance(value, str) and value.lower() == "tcp-https":
        return "tcp-https"
    try:
        return "true" if _boolean(value) else "false"
    except ValueError:
        raise ValueError(f"expected true, false or tcp-https, got {value!r}") from None


def _items(value: object) -> list[object]:
    """A repeated flag (tuple), a TOML array, or one comma-separated string."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, tuple | list):
        return list(value)
    return [value]


def _string_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(_string(item) for item in _items(value))


def _experiments(value: object) -> tuple[str, ...]:
    return tuple(_choice("topology-aware-consumption")(item) for item in _string_list(value))


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
        p for item in _items(value) for p in (_items(item) if isinstance(item, str) else [item])
    )
    return tuple(_percentile(item) for item in items)


# -- the flag table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """One nsqd flag: its NSQ name (no dashes), Options field, converter and one-line help."""

    name: str
    field: str
    convert: Convert
    help: str
    cfg: str = ""  # config-file key when it is not the field name
    repeatable: bool = False
    bare: bool = False  # may be given without a value, like Go's bool flags (``--snappy``)
    default_text: str | None = None  # for --help, when Options' default does not say it

    @property
    def config_key(self) -> str:
        return self.cfg or self.field


def _f(name: str, convert: Convert, text: str, **extra: Any) -> Flag:
    return Flag(name, extra.pop("field", name.replace("-", "_")), convert, text, **extra)


# One row per flag, in NSQ's order; help texts are NSQ's own where NSQ has the flag.
# fmt: off
NSQD_FLAGS: tuple[Flag, ...] = (
    # basic
    _f("log-level", _log_level, "set log verbosity: debug, info, warn, error, or fatal"),
    _f("log-prefix", _string, "log message prefix"),
    _f("node-id", _integer, "unique part for message IDs, (int) in range [0,1024)",
       cfg="id", default_text="hash of hostname"),
    _f("tcp-address", _string, "<addr>:<port> (or unix socket path) to listen on for TCP clients"),
    _f("http-address", _string, "<addr>:<port> to listen on for HTTP clients (empty disables)"),
    _f("https-address", _string, "<addr>:<port> to listen on for HTTPS clients"),
    _f("broadcast-address", _string, "address that will be registered with lookupd",
       default_text="this host's IP: the hostname's address if not loopback, "
       "else the primary outbound address, else 127.0.0.1"),
    _f("broadcast-tcp-port", _port, "TCP port that will be registered with lookupd",
       default_text="the TCP listening port"),
    _f("broadcast-http-port", _port, "HTTP port that will be registered with lookupd",
       default_text="the HTTP listening port"),
    _f("lookupd-tcp-address", _string_list, "lookupd TCP address (may be given multiple times)",
       field="nsqlookupd_tcp_addresses", repeatable=True),
    _f("auth-http-address", _string_list,
       "<addr>:<port> or URL to query auth server (may be given multiple times)",
       field="auth_http_addresses", repeatable=True),
    _f("auth-http-request-method", _choice("get", "post"),
       "HTTP method used to query the auth server: get or post"),
    _f("http-client-connect-timeout", _duration, "timeout for HTTP connect"),
    _f("http-client-request-timeout", _duration, "timeout for HTTP request"),
    _f("topology-region", _string, "region of this nsqd, for topology-aware consumption"),
    _f("topology-zone", _string, "availability zone of this nsqd, for topology-aware consumption"),
    _f("enable-experiment", _experiments,
       "enable an experimental feature: topology-aware-consumption (may be given multiple times)",
       repeatable=True),
    # diskqueue
    _f("data-path", _string, "path to store disk-backed messages",
       default_text="the current directory"),
    _f("mem-queue-size", _natural, "number of messages to keep in memory (per topic/channel)"),
    _f("max-bytes-per-file", _natural, "number of bytes per diskqueue file before rolling"),
    _f("sync-every", _natural, "number of messages per diskqueue fsync"),
    _f("sync-timeout", _duration, "duration of time per diskqueue fsync"),
    _f("queue-scan-worker-pool-max", _natural,
       "max concurrency for checking in-flight and deferred message timeouts"),
    _f("queue-scan-selection-count", _natural,
       "number of channels to check per cycle (every 100ms) for in-flight and deferred timeouts"),
    # messages and commands
    _f("msg-timeout", _duration, "default duration to wait before auto-requeueing a message"),
    _f("max-msg-timeout", _duration, "maximum duration before a message will timeout"),
    _f("max-msg-size", _natural, "maximum size of a single message in bytes"),
    _f("max-body-size", _natural, "maximum size of a single command body"),
    _f("max-req-timeout", _duration, "maximum requeuing timeout for a message"),
    # client-overridable
    _f("max-heartbeat-interval", _duration,
       "maximum client configurable duration of time between client heartbeats"),
    _f("max-rdy-count", _natural, "maximum RDY count for a client"),
    _f("max-output-buffer-size", _natural,
       "maximum client configurable size (in bytes) for a client output buffer"),
    _f("max-output-buffer-timeout", _duration,
       "maximum client configurable duration of time between flushing to a client"),
    _f("min-output-buffer-timeout", _duration,
       "minimum client configurable duration of time between flushing to a client"),
    _f("output-buffer-timeout", _duration,
       "default duration of time between flushing data to clients"),
    _f("max-channel-consumers", _natural,
       "maximum channel consumer connection count per nsqd instance (0 = unlimited)"),
    # statsd
    _f("statsd-address", _string, "UDP <addr>:<port> of a statsd daemon for pushing stats"),
    _f("statsd-interval", _duration, "duration between pushing to statsd"),
    _f("statsd-mem-stats", _boolean, "toggle sending memory and GC stats to statsd", bare=True),
    _f("statsd-prefix", _string, "prefix used for keys sent to statsd (%s for host replacement)"),
    _f("statsd-udp-packet-size", _natural, "the size in bytes of statsd UDP packets"),
    _f("statsd-exclude-ephemeral", _boolean,
       "skip ephemeral topics and channels when sending stats to statsd", bare=True),
    # end-to-end latency
    _f("e2e-processing-latency-percentile", _percentiles,
       "message processing time percentile (float in (0, 1.0]) to track; repeatable or "
       "comma separated '1.0,0.99,0.95'",
       field="e2e_processing_latency_percentiles", repeatable=True, default_text="none"),
    _f("e2e-processing-latency-window-time", _duration,
       "calculate end to end latency quantiles over this duration of time"),
    # TLS
    _f("tls-cert", _string, "path to certificate file (TLS is not supported by pnsq yet)"),
    _f("tls-key", _string, "path to key file (TLS is not supported by pnsq yet)"),
    _f("tls-client-auth-policy", _choice("", "require", "require-verify"),
       "client certificate auth policy ('require' or 'require-verify')"),
    _f("tls-root-ca-file", _string, "path to certificate authority file"),
    _f("tls-required", _tls_required,
       "require TLS for client connections (true, false, tcp-https)", bare=True),
    _f("tls-min-version", _choice("tls1.0", "tls1.1", "tls1.2", "tls1.3"),
       "minimum TLS version acceptable ('tls1.0', 'tls1.1', 'tls1.2' or 'tls1.3')"),
    # compression
    _f("deflate", _boolean, "enable deflate feature negotiation (client compression)", bare=True),
    _f("max-deflate-level", _integer,
       "max deflate compression level a client can negotiate (> values == > nsqd CPU usage)"),
    _f("snappy", _boolean, "enable snappy feature negotiation (client compression)", bare=True),
)
# fmt: on
_DEPRECATED = {
    "verbose": "[deprecated] has no effect, use --log-level",
    "worker-id": "[deprecated] use --node-id",
}
# Keys NSQ's config files may hold that mean nothing to pnsq but are not mistakes.
_IGNORED_CONFIG_KEYS = frozenset({"verbose"})
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Options)}

# nsqlookupd's flags (reference §5.4), the same machinery as nsqd's.
# fmt: off
LOOKUPD_FLAGS: tuple[Flag, ...] = (
    _f("log-level", _log_level, "set log verbosity: debug, info, warn, error, or fatal"),
    _f("log-prefix", _string, "log message prefix"),
    _f("tcp-address", _string, "<addr>:<port> to listen on for TCP clients"),
    _f("http-address", _string, "<addr>:<port> to listen on for HTTP clients"),
    _f("broadcast-address", _string,
       "address of this lookupd node, returned to nsqd in IDENTIFY",
       default_text="this host's IP, as nsqd's --broadcast-address"),
    _f("inactive-producer-timeout", _duration,
       "duration of time a producer will remain in the active list since its last ping"),
    _f("tombstone-lifetime", _duration,
       "duration of time a producer will remain tombstoned if registration remains"),
)
# fmt: on
_LOOKUPD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(LookupdOptions)}
_LOOKUPD_DEPRECATED = {"verbose": "[deprecated] has no effect, use --log-level"}


def _default_help(flag: Flag, defaults: Mapping[str, object] = _DEFAULTS) -> str:
    if flag.default_text is not None:
        return flag.default_text
    value = defaults[flag.field]
    if flag.convert is _duration and isinstance(value, float):
        return format_duration(value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value in ("", ()) else str(value)


# -- config file and resolution -------------------------------------------------------------------


def load_config(
    path: str,
    warn: Callable[[str], None],
    table: tuple[Flag, ...] = NSQD_FLAGS,
    program: str = "nsqd",
) -> dict[str, object]:
    """Read a daemon's TOML config file; unknown keys are reported through ``warn`` and dropped."""
    try:
        with open(path, "rb") as file:
            raw = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.ClickException(f"failed to load config file {path} - {exc}") from None
    known = {flag.config_key for flag in table}
    for key in sorted(set(raw) - known - _IGNORED_CONFIG_KEYS):
        warn(f"pnsq {program}: ignoring unknown key {key!r} in config file {path}")
    return {key: value for key, value in raw.items() if key in known}


def build_options(
    flags: Mapping[str, object], config: Mapping[str, object], config_path: str = "config file"
) -> Options:
    """Options from explicit flag values (by field) over config values (by key) over defaults.

    Raises click.ClickException naming the flag or key on an invalid value.
    """
    options = Options(**_values(NSQD_FLAGS, flags, config, config_path))
    _check(options)
    if not options.broadcast_address:
        options = dataclasses.replace(options, broadcast_address=default_broadcast_address())
    return options


def build_lookupd_options(
    flags: Mapping[str, object], config: Mapping[str, object], config_path: str = "config file"
) -> LookupdOptions:
    """nsqlookupd's options, resolved as ``build_options`` resolves nsqd's."""
    options = LookupdOptions(**_values(LOOKUPD_FLAGS, flags, config, config_path))
    if not options.broadcast_address:
        options = dataclasses.replace(options, broadcast_address=default_broadcast_address())
    return options


def _values(
    table: tuple[Flag, ...],
    flags: Mapping[str, object],
    config: Mapping[str, object],
    config_path: str,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for flag in table:
        if flag.field in flags:
            raw, where = flags[flag.field], f"--{flag.name}"
        elif flag.config_key in config:
            raw, where = config[flag.config_key], f"{flag.config_key!r} in {config_path}"
        else:
            continue
        try:
            values[flag.field] = flag.convert(raw)
        except ValueError as exc:
            raise click.ClickException(f"invalid value for {where}: {exc}") from None
    return values


def _check(options: Options) -> None:
    """Rules NSQ enforces across options at startup, with NSQ's wording where it has one."""
    problem = ""
    if not 0 <= options.node_id < 1024:
        problem = "--node-id must be [0,1024)"
    elif not 1 <= options.max_deflate_level <= 9:
        problem = "--max-deflate-level must be [1,9]"
    elif options.tls_cert or options.tls_key:
        problem = "TLS is not supported by pnsq yet: remove --tls-cert and --tls-key"
    elif options.tls_required != "false" or options.tls_client_auth_policy:
        problem = "cannot require TLS client connections without TLS key and cert"
    if problem:
        raise click.ClickException(problem)


# -- click wiring ---------------------------------------------------------------------------------


class GoFlagCommand(click.Command):
    """Accepts Go's single-dash long flags (``-tcp-address=...``) and exits 1 on any bad input.

    NSQ deployments (systemd units, compose files) often use single dashes; rewriting known
    flags keeps those command lines working unchanged. Errors are one line, as NSQ prints them.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names = {opt for param in self.params for opt in getattr(param, "opts", ())}
        rewritten: list[str] = []
        for index, arg in enumerate(args):
            if arg == "--":
                rewritten.extend(args[index:])
                break
            single = "-" + arg.split("=", 1)[0]
            rewritten.append("-" + arg if arg[:2] != "--" and single in names else arg)
        try:
            return super().parse_args(ctx, rewritten)
        except click.UsageError as exc:
            raise click.ClickException(exc.format_message()) from None


def _version_callback(program: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value and not ctx.resilient_parsing:
            click.echo(f"{program} v{NSQ_VERSION} (pnsq)")
            ctx.exit()

    return show_version


def _flag_option(flag: Flag, defaults: Mapping[str, object] = _DEFAULTS) -> click.Option:
    default = _default_help(flag, defaults)
    bare: dict[str, Any] = {"is_flag": False, "flag_value": "true"} if flag.bare else {}
    return click.Option(
        [f"--{flag.name}", flag.field],
        multiple=flag.repeatable,
        metavar="BOOL" if flag.bare else ("DURATION" if flag.convert is _duration else "VALUE"),
        help=f"{flag.help} [default: {default}]" if default else flag.help,
        **bare,
    )


def _daemon_params(
    program: str,
    table: tuple[Flag, ...],
    defaults: Mapping[str, object],
    deprecated: Mapping[str, str],
) -> list[click.Parameter]:
    params: list[click.Parameter] = [
        click.Option(["--config"], metavar="FILE", help="path to config file (TOML)"),
        click.Option(
            ["--version"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_version_callback(program),
            help="print version string",
        ),
    ]
    params += [_flag_option(flag, defaults) for flag in table]
    params += [
        click.Option([f"--{name}"], is_flag=False, flag_value="true", metavar="BOOL", help=text)
        for name, text in deprecated.items()
    ]
    return params


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, prog_name="pnsq", message=f"%(prog)s %(version)s (NSQ {NSQ_VERSION})"
)
def main() -> None:
    """pnsq: NSQ, the realtime distributed message platform, in Python."""


def _warn(message: str) -> None:
    click.echo(message, err=True)


@click.pass_context
def _nsqd(ctx: click.Context, /, config: str | None, **params: object) -> None:
    """Run nsqd, the daemon that receives, queues and delivers messages to clients."""
    for name in _DEPRECATED:
        if ctx.get_parameter_source(name.replace("-", "_")) is ParameterSource.COMMANDLINE:
            _warn(f"pnsq nsqd: --{name} {_DEPRECATED[name]}")
    given = {
        flag.field: params[flag.field]
        for flag in NSQD_FLAGS
        if ctx.get_parameter_source(flag.field) is ParameterSource.COMMANDLINE
    }
    file_values = load_config(config, _warn) if config else {}
    options = build_options(given, file_values, config or "config file")
    setup_logging(options.log_level, options.log_prefix)
    daemon: Any = importlib.import_module("pnsq.nsqd.daemon")
    daemon.run(options)


main.add_command(
    GoFlagCommand(
        "nsqd",
        callback=_nsqd,
        params=_daemon_params("nsqd", NSQD_FLAGS, _DEFAULTS, _DEPRECATED),
        help=_nsqd.__doc__,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    )
)


@click.pass_context
def _lookupd(ctx: click.Context, /, config: str | None, **params: object) -> None:
    """Run nsqlookupd, the directory that tells consumers which nsqd has which topic."""
    for name in _LOOKUPD_DEPRECATED:
        if ctx.get_parameter_source(name.replace("-", "_")) is ParameterSource.COMMANDLINE:
            _warn(f"pnsq lookupd: --{name} {_LOOKUPD_DEPRECATED[name]}")
    given = {
        flag.field: params[flag.field]
        for flag in LOOKUPD_FLAGS
        if ctx.get_parameter_source(flag.field) is ParameterSource.COMMANDLINE
    }
    file_values = load_config(config, _warn, LOOKUPD_FLAGS, "lookupd") if config else {}
    options = build_lookupd_options(given, file_values, config or "config file")
    setup_logging(options.log_level, options.log_prefix)
    daemon: Any = importlib.import_module("pnsq.lookupd.daemon")
    daemon.run(options)


main.add_command(
    GoFlagCommand(
        "lookupd",
        callback=_lookupd,
        params=_daemon_params("nsqlookupd", LOOKUPD_FLAGS, _LOOKUPD_DEFAULTS, _LOOKUPD_DEPRECATED),
        help=_lookupd.__doc__,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    )
)


@main.command("dev")
@click.option(
    "--data-path", default="./data", show_default=True, help="where the daemons keep their data"
)
@click.option("--lookupd-tcp-address", default="127.0.0.1:4160", show_default=True)
@click.option("--lookupd-http-address", default="127.0.0.1:4161", show_default=True)
@click.option("--nsqd-tcp-address", default="127.0.0.1:4150", show_default=True)
@click.option("--nsqd-http-address", default="127.0.0.1:4151", show_default=True)
@click.option("--admin-http-address", default="127.0.0.1:4171", show_default=True)
def _dev(
    data_path: str,
    lookupd_tcp_address: str,
    lookupd_http_address: str,
    nsqd_tcp_address: str,
    nsqd_http_address: str,
    admin_http_address: str,
) -> None:
    """Run a local cluster: nsqlookupd, nsqd (registered with it) and the admin (using it).

    Each daemon starts once the one before listens; port 0 in an address picks a free port.
    Logs are prefixed with each daemon's name; Ctrl-C or SIGTERM stops them all.
    """
    from .tools.dev import Addresses, run

    addresses = Addresses(
        lookupd_tcp=lookupd_tcp_address,
        lookupd_http=lookupd_http_address,
        nsqd_tcp=nsqd_tcp_address,
        nsqd_http=nsqd_http_address,
        admin_http=admin_http_address,
    )
    for address in vars(addresses).values():
        _address(address)
    sys.exit(run(data_path, addresses))


@main.command("tail")
@click.option("--topic", required=True, help="NSQ topic to print")
@click.option("--channel", default=None, help="NSQ channel [default: tail<random>#ephemeral]")
@click.option(
    "--nsqd-tcp-address", default="127.0.0.1:4150", show_default=True, help="nsqd TCP address"
)
@click.option("--max-in-flight", default=200, show_default=True, help="max messages in flight")
@click.option("-n", "count", default=0, help="total messages to show (0: until stopped)")
@click.option("--print-topic", is_flag=True, help="prefix each message with its topic")
def _tail(
    topic: str,
    channel: str | None,
    nsqd_tcp_address: str,
    max_in_flight: int,
    count: int,
    print_topic: bool,
) -> None:
    """Print a topic's messages to stdout (like nsq_tail)."""
    from .tools.tail import tail
    from .wire import ProtocolError

    try:
        tail(
            topic,
            nsqd_tcp_address,
            sys.stdout.buffer,
            channel=channel,
            max_in_flight=max_in_flight,
            count=count,
            print_topic=print_topic,
        )
    except KeyboardInterrupt:
        pass
    except (OSError, ProtocolError, ValueError) as err:
        raise click.ClickException(str(err)) from None


class _GoDuration(click.ParamType):  # type: ignore[type-arg]
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            seconds = _duration(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)
        if seconds <= 0:
            self.fail(f"must be positive, got {value!r}", param, ctx)
        return seconds


def _address(value: str) -> str:
    from pnsq._internal.netaddr import split_host_port

    try:
        split_host_port(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    return value


@main.command("admin", context_settings={"max_content_width": 120})
@click.option(
    "--http-address",
    default="0.0.0.0:4171",
    show_default=True,
    help="<addr>:<port> to listen on for HTTP clients",
)
@click.option(
    "--lookupd-http-address",
    "lookupd",
    multiple=True,
    help="lookupd HTTP address (may be given multiple times)",
)
@click.option(
    "--nsqd-http-address",
    "nsqd",
    multiple=True,
    help="nsqd HTTP address (may be given multiple times)",
)
@click.option(
    "--http-client-connect-timeout",
    type=_GoDuration(),
    default="2s",
    show_default=True,
    help="timeout for connecting to a node",
)
@click.option(
    "--http-client-request-timeout",
    type=_GoDuration(),
    default="2s",
    show_default=True,
    help="timeout for one request to a node (bounds how long a dead node holds a page)",
)
@click.option(
    "--sample-interval",
    type=_GoDuration(),
    default="2s",
    show_default=True,
    help="how often every node's /stats is sampled for the charts",
)
@click.option(
    "--history-size",
    type=click.IntRange(min=2),
    default=450,
    show_default=True,
    help="samples kept per chart series",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    help="log level: debug, info, warn, error, or fatal",
)
@click.option("--log-prefix", default="[nsqadmin] ", show_default=True, help="log message prefix")
def _admin(
    http_address: str,
    lookupd: tuple[str, ...],
    nsqd: tuple[str, ...],
    http_client_connect_timeout: float,
    http_client_request_timeout: float,
    sample_interval: float,
    history_size: int,
    log_level: str,
    log_prefix: str,
) -> None:
    """Run the admin web view (like nsqadmin, with live charts and queue peeking)."""
    from pnsq.admin.options import AdminOptions
    from pnsq.admin.server import run

    if bool(lookupd) == bool(nsqd):
        raise click.UsageError("use --lookupd-http-address or --nsqd-http-address, not both")
    for address in (http_address, *lookupd, *nsqd):
        _address(address)
    try:
        level = parse_log_level(log_level)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--log-level") from None
    options = AdminOptions(
        http_address=http_address,
        lookupd_http_addresses=lookupd,
        nsqd_http_addresses=nsqd,
        http_client_connect_timeout=http_client_connect_timeout,
        http_client_request_timeout=http_client_request_timeout,
        sample_interval=sample_interval,
        history_size=history_size,
        log_level=level,
        log_prefix=log_prefix,
    )
    setup_logging(options.log_level, options.log_prefix)
    run(options)
