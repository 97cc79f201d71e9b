"""``pnsq stat``: one topic/channel's figures summed over its nsqds, a line per interval.

NSQ's nsq_stat, column for column, so scripts that read its output keep working: every
``--interval`` it asks each node's ``/stats`` (JSON; the same shape from pnsq nsqd and Go nsqd)
for the channel, sums the nodes and prints ingress/egress rates (per-second deltas since the
previous poll) beside the current totals. The pure half -- documents to a summed row, a row to
text -- is ``channel_totals`` / ``format_row``; the polling half is ``stat_loop``.

Unlike nsq_stat, a node that does not answer is reported on stderr and left out of that line
instead of ending the program, rates divide by the measured time between polls, and polls keep
a fixed period. A poll with no figures at all (no node answered, or none has the channel) is
reported on stderr and makes the exit code 1; otherwise ``--count`` lines end with exit code 0.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import anyio

from .._internal import flags
from .._internal.flags import Flag, flag
from .client_setup import CHANNEL, LOOKUPD_HTTP_ADDRESSES, TOPIC
from .runner import EXIT_FAILED, EXIT_OK, run_tool

HEADER_EVERY = 25  # nsq_stat repeats its two header lines every 25 polls


@dataclass(frozen=True)
class StatOptions:
    topic: str = ""
    channel: str = ""
    interval: float = 2.0
    http_client_connect_timeout: float = 2.0
    http_client_request_timeout: float = 5.0
    count: int = 0  # 0: until interrupted
    nsqd_http_addresses: tuple[str, ...] = ()
    lookupd_http_addresses: tuple[str, ...] = ()


# fmt: off
FLAGS: tuple[Flag, ...] = (
    TOPIC,
    CHANNEL,
    flag("interval", flags.positive_duration, "duration of time between polling/printing output"),
    flag("http-client-connect-timeout", flags.positive_duration, "timeout for HTTP connect"),
    flag("http-client-request-timeout", flags.positive_duration, "timeout for HTTP request"),
    flag("count", flags.at_least(1), "number of reports", default_text="until interrupted"),
    flag("nsqd-http-address", flags.address_list,
         "nsqd HTTP address (may be given multiple times)",
         field="nsqd_http_addresses", repeatable=True),
    LOOKUPD_HTTP_ADDRESSES,
)
# fmt: on


def check(options: StatOptions) -> StatOptions:
    """NSQ's cross-flag rules, as ValueError (one line, exit code 1)."""
    if not options.topic or not options.channel:
        raise ValueError("--topic and --channel are required")
    if not options.nsqd_http_addresses and not options.lookupd_http_addresses:
        raise ValueError("--nsqd-http-address or --lookupd-http-address required")
    if options.nsqd_http_addresses and options.lookupd_http_addresses:
        raise ValueError("use --nsqd-http-address or --lookupd-http-address not both")
    return options


# -- the pure half: /stats documents -> one summed row -> text ---------------------------------


@dataclass(frozen=True)
class ChannelTotals:
    """One channel's figures summed over nodes (nsq_stat's columns after the rates)."""

    depth: int = 0
    memory_depth: int = 0
    backend_depth: int = 0
    in_flight: int = 0
    deferred: int = 0
    requeued: int = 0
    timed_out: int = 0
    messages: int = 0
    clients: int = 0

    def __add__(self, other: ChannelTotals) -> ChannelTotals:
        return ChannelTotals(
            *(
                a + b
                for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
            )
        )


def channel_in(document: Mapping[str, Any], topic: str, channel: str) -> ChannelTotals | None:
    """The channel's figures in one node's /stats document, None if the node lacks it.

    Reads NSQ's shape (pre-1.0 nsqds wrap it as ``{"status_code": 200, "data": {...}}``);
    a document of another shape raises ValueError.
    """
    try:
        if "topics" not in document and isinstance(document.get("data"), dict):
            document = document["data"]
        for t in document["topics"] or ():
            if t["topic_name"] != topic:
                continue
            for c in t["channels"] or ():
                if c["channel_name"] == channel:
                    return _totals(c)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an nsqd /stats document ({exc!r})") from None
    return None


def _totals(c: Mapping[str, Any]) -> ChannelTotals:
    depth, backend = int(c["depth"]), int(c["backend_depth"])
    clients = c.get("client_count")
    return ChannelTotals(
        depth=depth,
        memory_depth=depth - backend,
        backend_depth=backend,
        in_flight=int(c["in_flight_count"]),
        deferred=int(c["deferred_count"]),
        requeued=int(c["requeue_count"]),
        timed_out=int(c["timeout_count"]),
        messages=int(c["message_count"]),
        clients=int(clients) if clients is not None else len(c.get("clients") or ()),
    )


def channel_totals(
    documents: Iterable[Mapping[str, Any]], topic: str, channel: str
) -> ChannelTotals | None:
    """The channel summed over every node's document; None if no node has it."""
    found = [t for d in documents if (t := channel_in(d, topic, channel)) is not None]
    return sum(found[1:], found[0]) if found else None


def format_header() -> str:
    return (
        "------rate------+----------------depth----------------+"
        "--------------metadata---------------\n"
        f"{'ingress':>7} {'egress':>7} | {'total':>7} {'mem':>7} {'disk':>7} {'inflt':>5} "
        f"{'def':>5} | {'req':>7} {'t-o':>7} {'msgs':>12} {'clients':>7}\n"
    )


def format_row(previous: ChannelTotals, current: ChannelTotals, seconds: float) -> str:
    """nsq_stat's line: rates over ``seconds`` since ``previous``, then ``current``'s totals."""
    seconds = seconds if seconds > 0 else math.inf
    published = current.messages - previous.messages
    ingress = math.trunc(published / seconds)
    egress = math.trunc((published - (current.depth - previous.depth)) / seconds)
    c = current
    return (
        f"{ingress:7d} {egress:7d} | {c.depth:7d} {c.memory_depth:7d} {c.backend_depth:7d} "
        f"{c.in_flight:5d} {c.deferred:5d} | {c.requeued:7d} {c.timed_out:7d} "
        f"{c.messages:12d} {c.clients:7d}\n"
    )


def http_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def lookup_nodes(document: Mapping[str, Any]) -> list[str]:
    """The nsqd HTTP addresses in a lookupd /lookup answer (ValueError if it is not one)."""
    try:
        if "producers" not in document and isinstance(document.get("data"), dict):
            document = document["data"]
        return [
            http_address(str(p["broadcast_address"]), int(p["http_port"]))
            for p in document["producers"] or ()
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a lookupd /lookup answer ({exc!r})") from None


# -- the polling half ----------------------------------------------------------------------------

Poll = Callable[[], Awaitable[ChannelTotals | None]]


async def stat_loop(
    poll: Poll,
    options: StatOptions,
    out: TextIO,
    stop: anyio.Event | None = None,
) -> int:
    """Poll and print until ``options.count`` rows (or ``stop``); the exit code.

    ``poll`` returns the summed figures, or None after saying on stderr why there are none.
    """
    stop = anyio.Event() if stop is None else stop
    previous: tuple[float, ChannelTotals] | None = None
    failed = False
    due = anyio.current_time()
    for i in range(options.count + 1 if options.count else sys.maxsize):
        totals, now = await poll(), anyio.current_time()
        if i % HEADER_EVERY == 0:
            out.write(format_header())
        if i > 0:  # the first poll is the baseline of the first rates, as in nsq_stat
            if totals is not None and previous is not None:
                out.write(format_row(previous[1], totals, now - previous[0]))
            else:
                failed = True  # the poll said why on stderr
        previous = (now, totals) if totals is not None else None
        out.flush()
        if i == options.count and options.count:
            break
        # a fixed period; a poll that overran it (a slow node) is followed by a whole interval
        now = anyio.current_time()
        due = due + options.interval if due + options.interval > now else now + options.interval
        with anyio.move_on_after(due - now):
            await stop.wait()
        if stop.is_set():
            break
    return EXIT_FAILED if failed else EXIT_OK


def run(options: StatOptions) -> int:
    from .stats_client import StatsClient

    async def main(stop: anyio.Event) -> int:
        async with StatsClient(options, sys.stderr) as client:
            try:
                return await stat_loop(client.poll, options, sys.stdout, stop)
            except BrokenPipeError:  # the reader went away (``| head``): stop quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return EXIT_OK

    return run_tool("stat", main)
