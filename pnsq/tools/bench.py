"""``pnsq bench pub`` / ``pnsq bench sub``: NSQ's bench_writer and bench_reader on pnsq's client.

Same flags, same defaults, and the same result line on stderr, prefix and all::

    [bench_writer] 2026/12/06 05:00:10 duration: 10.00123s - 38.147mb/s - 200000.000ops/s - 5.000us/op

so one tool measures a pnsq nsqd and a Go nsqd alike, and NSQ's bench.py parses the output.
``pub`` runs ``--connections`` Producers, each looping MPUBs of ``--batch-size`` messages of
``--size`` bytes (one MPUB in flight per connection, as bench_writer). ``sub`` runs
``--connections`` Consumers, each with its own connection and RDY ``--rdy``, FINning every
message; they all connect first (RDY 0) and get their RDY when the clock starts. Go's tools
use GOMAXPROCS connections; ``--connections`` says how many here.

Where the Go tools count a message they read (its FIN may still sit unflushed when the
connection is cut), ``sub`` ends with a clean close (CLS, then the FINs of what arrived), so its
count is exactly the FINs nsqd saw; the duration covers that close. A first Ctrl-C ends the run
early and still prints the figures.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TextIO

import anyio

from .. import wire
from .._internal import flags
from .._internal.flags import Flag, flag
from ..client import Consumer, Message, NSQError, Producer
from .bench_result import BenchResult, deadline, log_line, result_text, wait_for_deadline
from .client_setup import connection_config
from .runner import EXIT_INTERRUPTED, EXIT_OK, run_tool
from .status import Rate, StatusLine

CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class BenchPubOptions:
    runfor: float = 10.0
    nsqd_tcp_address: str = "127.0.0.1:4150"
    topic: str = "sub_bench"
    size: int = 200
    batch_size: int = 200
    deadline: str = ""
    connections: int = 2


@dataclass(frozen=True)
class BenchSubOptions:
    runfor: float = 10.0
    nsqd_tcp_address: str = "127.0.0.1:4150"
    size: int = 200
    topic: str = "sub_bench"
    channel: str = "ch"
    deadline: str = ""
    rdy: int = 2500
    connections: int = 2


# fmt: off
_COMMON: tuple[Flag, ...] = (
    flag("runfor", flags.positive_duration, "duration of time to run"),
    flag("nsqd-tcp-address", flags.address, "<addr>:<port> to connect to nsqd"),
    flag("topic", flags.string, "topic to receive messages on"),
    flag("deadline", deadline, 'deadline to start the benchmark run ("YYYY-MM-DD HH:MM:SS", UTC)'),
    flag("connections", flags.at_least(1), "connections to nsqd (Go's tools: GOMAXPROCS)"),
)
PUB_FLAGS: tuple[Flag, ...] = (
    *_COMMON,
    flag("size", flags.at_least(1), "size of messages"),
    flag("batch-size", flags.at_least(1), "batch size of messages"),
)
SUB_FLAGS: tuple[Flag, ...] = (
    *_COMMON,
    flag("size", flags.natural, "size of messages (for the mb/s figure)"),
    flag("channel", flags.string, "channel to receive messages on"),
    flag("rdy", flags.at_least(1), "RDY count to use (per connection)"),
)
# fmt: on


def check_pub(options: BenchPubOptions) -> BenchPubOptions:
    if not wire.is_valid_topic_name(options.topic):
        raise ValueError(f"invalid topic name {options.topic!r}")
    return options


def check_sub(options: BenchSubOptions) -> BenchSubOptions:
    if not wire.is_valid_topic_name(options.topic):
        raise ValueError(f"invalid topic name {options.topic!r}")
    if not wire.is_valid_channel_name(options.channel):
        raise ValueError(f"invalid channel name {options.channel!r}")
    return options


# -- the runs ----------------------------------------------------------------------------------


Ready = Callable[[], Awaitable[bool]]  # waits for the --deadline; False: stopped meanwhile


async def bench_pub(
    options: BenchPubOptions, ready: Ready, stop: anyio.Event, err: TextIO
) -> BenchResult | None:
    """MPUB from ``--connections`` producers until ``--runfor`` has passed (or ``stop``).

    The producers connect on their first MPUB, inside the timed run (a millisecond or so).
    """
    batch = [bytes(options.size)] * options.batch_size
    config = connection_config("bench_pub", {})
    counts = [0] * options.connections
    async with AsyncExitStack() as stack:
        producers = [
            await stack.enter_async_context(Producer(options.nsqd_tcp_address, config=config))
            for _ in range(options.connections)
        ]
        if not await ready():
            return None
        start = time.perf_counter_ns()
        end = start + round(options.runfor * 1e9)

        async def publish(index: int) -> None:
            producer = producers[index]
            while True:
                await producer.multi_publish(options.topic, batch)
                counts[index] += len(batch)
                if time.perf_counter_ns() > end or stop.is_set():
                    return

        await _together(options.connections, publish, lambda: sum(counts), err)
        return BenchResult(sum(counts), time.perf_counter_ns() - start)


async def bench_sub(
    options: BenchSubOptions, ready: Ready, stop: anyio.Event, err: TextIO
) -> BenchResult | None:
    """Consume and FIN on ``--connections`` connections for ``--runfor`` (or until ``stop``);
    the connections are up (RDY 0) before the ``--deadline``, as bench_reader's."""
    config = connection_config("bench_sub", {})
    async with AsyncExitStack() as stack:
        consumers = [
            await stack.enter_async_context(
                Consumer(
                    options.topic,
                    options.channel,
                    _discard,
                    nsqd_tcp_addresses=[options.nsqd_tcp_address],
                    max_in_flight=0,  # until every connection is up
                    max_attempts=0,
                    concurrency=1,  # the handler never waits: one worker keeps up
                    config=config,
                )
            )
            for _ in range(options.connections)
        ]
        await _connected(consumers, options.nsqd_tcp_address)
        if not await ready():
            return None
        start = time.perf_counter_ns()
        for consumer in consumers:
            consumer.set_max_in_flight(options.rdy)

        def finished() -> int:
            return sum(consumer.stats().finished for consumer in consumers)

        async def consume(index: int) -> None:
            with anyio.move_on_after(options.runfor):
                await stop.wait()
            await consumers[index].close()

        await _together(options.connections, consume, finished, err)
        return BenchResult(finished(), time.perf_counter_ns() - start)


async def _discard(message: Message) -> None:
    """Return at once: the consumer FINs the message."""


async def _connected(consumers: list[Consumer], address: str) -> None:
    with anyio.move_on_after(CONNECT_TIMEOUT):
        while not all(consumer.connections for consumer in consumers):  # noqa: ASYNC110
            await anyio.sleep(0.01)  # the consumer announces no connection; bounded above
        return
    raise NSQError(f"could not subscribe at nsqd {address} within {CONNECT_TIMEOUT:g}s")


async def _together(
    workers: int, work: Callable[[int], Awaitable[None]], count: Callable[[], int], err: TextIO
) -> None:
    """Run ``work(i)`` for every worker; the first error stops all and is raised alone (not
    as a group of one error per connection: the runner prints it as one line). A terminal
    sees live figures meanwhile."""
    errors: list[BaseException] = []
    rate = Rate()
    status = StatusLine(lambda s: f"{count():,} msgs, {rate.update(count()):,.0f}/s", out=err)
    async with anyio.create_task_group() as tg:

        async def guarded(index: int) -> None:
            try:
                await work(index)
            except (NSQError, OSError) as exc:
                errors.append(exc)
                tg.cancel_scope.cancel()

        if status.tty:
            tg.start_soon(status.run)
        async with anyio.create_task_group() as inner:
            for index in range(workers):
                inner.start_soon(guarded, index)
        tg.cancel_scope.cancel()
    if status.tty:
        err.write("\r" + " " * 60 + "\r")
    if errors:
        raise errors[0]


# -- the commands ------------------------------------------------------------------------------

Bench = Callable[..., Awaitable[BenchResult | None]]


def _run(name: str, program: str, bench: Bench, options: BenchPubOptions | BenchSubOptions) -> int:
    err = sys.stderr

    async def main(stop: anyio.Event) -> int:
        async def ready() -> bool:
            return await wait_for_deadline(options.deadline, program, err, stop)

        result = await bench(options, ready, stop, err)
        if result is None:
            return EXIT_INTERRUPTED
        err.write(log_line(program, result_text(result, options.size)))
        err.flush()
        return EXIT_OK

    return run_tool(name, main)


def run_pub(options: BenchPubOptions) -> int:
    return _run("bench pub", "bench_writer", bench_pub, options)


def run_sub(options: BenchSubOptions) -> int:
    return _run("bench sub", "bench_reader", bench_sub, options)
