"""What every tool shares about reaching nsqd: the common flags and go-nsq's option names.

NSQ's tools take ``--consumer-opt`` / ``--producer-opt`` as go-nsq ``Config`` settings
(``--consumer-opt=max_attempts,10``: go-nsq's ``key,value``; ``key=value`` works too, and a bare
``key`` means true). Scripts written for nsq_tail or nsq_to_file keep working: each go-nsq name
maps onto the matching ``pnsq.client.Consumer`` argument or ``ConnectionConfig`` field, durations
in Go's spelling. A name pnsq's client does not implement (yet) is an error that says so, not a
silently ignored setting. go-nsq's TLS settings (``tls_root_ca_file``, ``tls_cert``/``tls_key``,
``tls_insecure_skip_verify``) build one ``ssl.SSLContext``, used when ``tls_v1`` is true, as in
go-nsq.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from .. import __version__
from .._internal import flags
from .._internal.flags import Flag, flag
from ..client import ConnectionConfig

# The flags the consuming and publishing tools share (each tool's table picks what it needs).
# fmt: off
TOPICS = flag("topic", flags.string_list, "NSQ topic (may be given multiple times)",
              field="topics", repeatable=True)
TOPIC = flag("topic", flags.string, "NSQ topic")
CHANNEL = flag("channel", flags.string, "NSQ channel")
NSQD_TCP_ADDRESSES = flag("nsqd-tcp-address", flags.address_list,
                          "nsqd TCP address (may be given multiple times)",
                          field="nsqd_tcp_addresses", repeatable=True)
LOOKUPD_HTTP_ADDRESSES = flag("lookupd-http-address", flags.address_list,
                              "lookupd HTTP address (may be given multiple times)",
                              field="lookupd_http_addresses", repeatable=True)
MAX_IN_FLIGHT = flag("max-in-flight", flags.natural, "max number of messages to allow in flight")
CONSUMER_OPT = flag("consumer-opt", flags.string_list,
                    "go-nsq option for the consumer, name,value (may be given multiple times)",
                    field="consumer_opts", repeatable=True)
PRODUCER_OPT = flag("producer-opt", flags.string_list,
                    "go-nsq option for the producer, name,value (may be given multiple times)",
                    field="producer_opts", repeatable=True)
# fmt: on


def _whole(value: object) -> int:
    return flags.natural(value)


# go-nsq name -> (where it goes, pnsq's name, converter)
_CONSUMER = "consumer"
_CONNECTION = "connection"
_OPTIONS: dict[str, tuple[str, str, Callable[[object], Any]]] = {
    "max_in_flight": (_CONSUMER, "max_in_flight", _whole),
    "max_attempts": (_CONSUMER, "max_attempts", _whole),
    "lookupd_poll_interval": (_CONSUMER, "lookupd_poll_interval", flags.positive_duration),
    "lookupd_poll_jitter": (_CONSUMER, "lookupd_poll_jitter", flags.real),
    "default_requeue_delay": (_CONSUMER, "requeue_delay", flags.duration),
    "max_requeue_delay": (_CONSUMER, "max_requeue_delay", flags.duration),
    "backoff_multiplier": (_CONSUMER, "backoff_multiplier", flags.duration),
    "max_backoff_duration": (_CONSUMER, "max_backoff_duration", flags.duration),
    "low_rdy_idle_timeout": (_CONSUMER, "low_rdy_idle_timeout", flags.positive_duration),
    "low_rdy_timeout": (_CONSUMER, "low_rdy_timeout", flags.positive_duration),
    "rdy_redistribute_interval": (_CONSUMER, "rdy_redistribute_interval", flags.positive_duration),
    "client_id": (_CONNECTION, "client_id", flags.string),
    "hostname": (_CONNECTION, "hostname", flags.string),
    "user_agent": (_CONNECTION, "user_agent", flags.string),
    "heartbeat_interval": (_CONNECTION, "heartbeat_interval", flags.positive_duration),
    "output_buffer_size": (_CONNECTION, "output_buffer_size", _whole),
    "output_buffer_timeout": (_CONNECTION, "output_buffer_timeout", flags.duration),
    "msg_timeout": (_CONNECTION, "msg_timeout", flags.duration),
    "sample_rate": (_CONNECTION, "sample_rate", _whole),
    "auth_secret": (_CONNECTION, "auth_secret", lambda v: flags.string(v).encode()),
    "dial_timeout": (_CONNECTION, "connect_timeout", flags.positive_duration),
    "tls_v1": (_CONNECTION, "tls", flags.boolean),
    "snappy": (_CONNECTION, "snappy", flags.boolean),
    "deflate": (_CONNECTION, "deflate", flags.boolean),
    "deflate_level": (_CONNECTION, "deflate_level", flags.at_least(1)),
}
_TLS = frozenset({"tls_root_ca_file", "tls_cert", "tls_key", "tls_insecure_skip_verify"})
_NOT_YET = frozenset({"tls_config", "local_addr", "backoff_strategy"})
# go-nsq settings whose job pnsq's client does differently; accepted so NSQ scripts still run.
_ACCEPTED = frozenset({"read_timeout", "write_timeout"})


def parse_go_nsq_options(
    values: Iterable[str], *, consumer: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(Consumer kwargs, ConnectionConfig fields)`` from ``name,value`` settings.

    Raises ValueError naming the setting for an unknown name, a bad value, or (for a producer)
    a consumer-only setting.
    """
    consumer_kwargs: dict[str, Any] = {}
    connection: dict[str, Any] = {}
    tls: dict[str, str] = {}
    for text in values:
        name, value = _split(text)
        if name in _ACCEPTED:
            continue
        if name in _TLS:
            tls[name] = value
            continue
        if name in _NOT_YET:
            raise ValueError(f"go-nsq option {name!r} is not supported by pnsq's client yet")
        if name not in _OPTIONS:
            known = ", ".join(sorted(_OPTIONS))
            raise ValueError(f"unknown go-nsq option {name!r} (known: {known})")
        where, field, convert = _OPTIONS[name]
        if where == _CONSUMER and not consumer:
            raise ValueError(f"go-nsq option {name!r} is for consumers, not producers")
        try:
            converted = convert(value)
        except ValueError as exc:
            raise ValueError(f"go-nsq option {name}: {exc}") from None
        (consumer_kwargs if where == _CONSUMER else connection)[field] = converted
    if connection.get("tls") and tls:
        connection["tls"] = _tls_context(tls)
    return consumer_kwargs, connection


def _tls_context(settings: Mapping[str, str]) -> ssl.SSLContext:
    """go-nsq's tls_* settings as an SSLContext (ValueError naming the one that failed)."""
    try:
        context = ssl.create_default_context(cafile=settings.get("tls_root_ca_file"))
    except OSError as exc:
        raise ValueError(f"go-nsq option tls_root_ca_file: {exc}") from None
    if flags.boolean(settings.get("tls_insecure_skip_verify", "false")):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = settings.get("tls_cert"), settings.get("tls_key")
    if bool(cert) != bool(key):
        raise ValueError("go-nsq options tls_cert and tls_key go together")
    if cert:
        try:
            context.load_cert_chain(cert, key)
        except OSError as exc:
            raise ValueError(f"go-nsq option tls_cert/tls_key: {exc}") from None
    return context


def _split(text: str) -> tuple[str, str]:
    cut = min((i for i in (text.find(","), text.find("=")) if i >= 0), default=-1)
    if cut < 0:
        return text.strip(), "true"
    return text[:cut].strip(), text[cut + 1 :]


def connection_config(tool: str, settings: Mapping[str, Any]) -> ConnectionConfig:
    """The ConnectionConfig of a tool: its user agent (``pnsq_<tool>/<version>``) unless the
    settings name another."""
    fields = {"user_agent": f"pnsq_{tool}/{__version__}", **settings}
    return dataclasses.replace(ConnectionConfig(), **fields)


class ConsumerFlags(Protocol):
    """The shared consumer flags, as fields of a tool's options."""

    @property
    def nsqd_tcp_addresses(self) -> tuple[str, ...]: ...
    @property
    def lookupd_http_addresses(self) -> tuple[str, ...]: ...
    @property
    def max_in_flight(self) -> int: ...
    @property
    def consumer_opts(self) -> tuple[str, ...]: ...


def consumer_arguments(
    tool: str, options: ConsumerFlags, *, max_in_flight: int | None = None, relay: bool = False
) -> dict[str, Any]:
    """Keyword arguments for ``pnsq.client.Consumer`` from a tool's common flags.

    ``max_in_flight`` overrides the flag's value; ``relay`` (a tool that hands messages on: a
    file, an HTTP endpoint, other nsqds) defaults go-nsq's ``max_attempts`` to 0, never giving
    up on a message it could not hand on, where go-nsq's 5 would drop it unacknowledged;
    ``--consumer-opt=max_attempts,N`` still sets a limit. ValueError when neither kind of
    address is given, or both (NSQ's tools say the same).
    """
    nsqd, lookupd = list(options.nsqd_tcp_addresses), list(options.lookupd_http_addresses)
    if not nsqd and not lookupd:
        raise ValueError("--nsqd-tcp-address or --lookupd-http-address required")
    if nsqd and lookupd:
        raise ValueError("use --nsqd-tcp-address or --lookupd-http-address not both")
    kwargs, settings = parse_go_nsq_options(options.consumer_opts)
    if relay:
        kwargs.setdefault("max_attempts", 0)
    return {
        "nsqd_tcp_addresses": nsqd,
        "lookupd_http_addresses": lookupd,
        "max_in_flight": options.max_in_flight if max_in_flight is None else max_in_flight,
        **kwargs,
        "config": connection_config(tool, settings),
    }


__all__ = [
    "CHANNEL",
    "CONSUMER_OPT",
    "LOOKUPD_HTTP_ADDRESSES",
    "MAX_IN_FLIGHT",
    "NSQD_TCP_ADDRESSES",
    "PRODUCER_OPT",
    "TOPIC",
    "TOPICS",
    "ConsumerFlags",
    "Flag",
    "connection_config",
    "consumer_arguments",
    "parse_go_nsq_options",
]
