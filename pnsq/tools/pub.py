"""``pnsq pub``: publish the lines of a file or stdin to a topic, like NSQ's to_nsq.

to_nsq reads a line and PUBs it, one round trip per line. Here the input is read in 1 MiB
chunks and split with ``bytes.split`` (empty lines skipped, as to_nsq skips them); each chunk's
lines go out as MPUB batches, bounded by count and by bytes (well under nsqd's 5 MiB
``--max-body-size``), through a ``ProducerPool`` over the ``--nsqd-tcp-address`` list
(round-robin, failing over to the next nsqd when one does not acknowledge). Several batches are
in flight at once to hide the round trip; batches are started in input order, so order is kept
within a connection. Whatever a read returns is published at once: lines typed slowly into stdin
go out as they come, not when a batch fills.

to_nsq sends every line to *every* nsqd given; pnsq spreads the lines over them instead.

Exit codes: 0 when every line was acknowledged; 1 with ``N of M lines were not acknowledged``
when a batch failed on every nsqd (reading stops there); 1 when Ctrl-C stopped the input early
(batches in flight are waited for, and the summary says how many lines were sent).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc

from .. import wire
from .._internal import flags
from .._internal.flags import Flag, flag
from ..client import NSQError, ProducerPool
from . import client_setup
from .runner import EXIT_FAILED, EXIT_OK, run_tool
from .status import Rate, StatusLine

READ_SIZE = 1 << 20
BATCH_MESSAGES = 5000
BATCH_BYTES = 4 << 20  # nsqd's --max-body-size is 5 MiB by default
IN_FLIGHT_PER_NSQD = 4  # MPUB batches awaiting their OK, per nsqd
STDIN = 0
_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r": "\r", "\\0": "\0"}


def delimiter(value: object) -> str:
    """One character (one byte in UTF-8), as to_nsq takes it; ``\\t``-style escapes too."""
    text = flags.string(value)
    text = _ESCAPES.get(text, text)
    if len(text.encode()) != 1:
        raise ValueError(f"must be a single byte, got {value!r}")
    return text


@dataclass(frozen=True)
class PubOptions:
    topic: str = ""
    delimiter: str = "\n"
    nsqd_tcp_addresses: tuple[str, ...] = ()
    producer_opts: tuple[str, ...] = ()
    rate: int = 0
    input: str = ""


# fmt: off
FLAGS: tuple[Flag, ...] = (
    flag("topic", flags.string, "NSQ topic to publish to"),
    flag("delimiter", delimiter, "character to split input on", default_text="\\n"),
    client_setup.NSQD_TCP_ADDRESSES,
    client_setup.PRODUCER_OPT,
    flag("rate", flags.natural, "throttle messages to n/second, 0 to disable"),
    flag("input", flags.string, "file to read lines from (pnsq only)", default_text="stdin"),
)
# fmt: on


class Splitter:
    """Input chunks -> non-empty lines, the unfinished last line kept for the next chunk."""

    def __init__(self, delimiter: bytes) -> None:
        self.delimiter = delimiter
        self.rest = b""

    def feed(self, data: bytes) -> list[bytes]:
        parts = (self.rest + data if self.rest else data).split(self.delimiter)
        self.rest = parts.pop()
        return list(filter(None, parts))

    def end(self) -> list[bytes]:
        """The last line when the input does not end with the delimiter."""
        rest, self.rest = self.rest, b""
        return [rest] if rest else []


def batches(lines: list[bytes], count: int, size: int, max_bytes: int) -> Iterator[list[bytes]]:
    """``lines`` cut into MPUB batches of at most ``count`` lines and ``max_bytes`` encoded.

    ``size`` bounds the lines' total length (the chunk they came from): when even that fits,
    only the count matters and no line is measured."""
    if size + 4 * len(lines) <= max_bytes:
        for start in range(0, len(lines), count):
            yield lines[start : start + count]
        return
    batch: list[bytes] = []
    used = 0
    for line in lines:
        if batch and (len(batch) == count or used + 4 + len(line) > max_bytes):
            yield batch
            batch, used = [], 0
        batch.append(line)
        used += 4 + len(line)
    if batch:
        yield batch


class Throttle:
    """At most ``rate`` lines per second (0: unlimited): each batch waits for its turn."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._next: float | None = None

    async def wait(self, count: int) -> None:
        if not self.rate:
            return
        now = anyio.current_time()
        start = now if self._next is None else max(self._next, now)
        self._next = start + count / self.rate
        if start > now:
            await anyio.sleep(start - now)


class Publisher:
    """Reads the input and keeps up to IN_FLIGHT_PER_NSQD MPUB batches per nsqd in flight."""

    def __init__(self, pool: ProducerPool, options: PubOptions) -> None:
        self.pool, self.topic = pool, options.topic
        self.throttle = Throttle(options.rate)
        # under a rate, batches of a tenth of a second's worth keep the flow even
        tenth = max(1, options.rate // 10)
        self.batch = min(BATCH_MESSAGES, tenth) if options.rate else BATCH_MESSAGES
        self.delimiter = options.delimiter.encode()
        self.slots = anyio.Semaphore(IN_FLIGHT_PER_NSQD * len(pool.producers))
        self.read = self.acked = 0
        self.finished_input = False
        self.error: NSQError | None = None
        self.read_error: OSError | None = None
        self.failure = anyio.Event()

    async def publish_input(self, fd: int, sending: anyio.abc.TaskGroup) -> None:
        """Until the end of the input or the first batch no nsqd acknowledged."""
        splitter = Splitter(self.delimiter)
        in_thread = not stat.S_ISREG(os.fstat(fd).st_mode)  # a pipe or terminal may block
        while not self.failure.is_set():
            try:
                data = await _read(fd, in_thread)
            except OSError as exc:
                self.read_error = exc
                return
            size = len(splitter.rest) + len(data)  # bounds the length of the lines it gives
            lines = splitter.feed(data) if data else splitter.end()
            self.read += len(lines)
            for batch in batches(lines, self.batch, size, BATCH_BYTES):
                await self.throttle.wait(len(batch))
                await self.slots.acquire()
                sending.start_soon(self._send, batch)
            if not data:
                self.finished_input = True
                return

    async def _send(self, batch: list[bytes]) -> None:
        try:
            await self.pool.multi_publish(self.topic, batch)
        except NSQError as exc:  # every nsqd refused it (or the refusal was final)
            self.error = self.error or exc
            self.failure.set()
        else:
            self.acked += len(batch)
        finally:
            self.slots.release()

    def summary(self, elapsed: float) -> tuple[int, str]:
        rate = self.acked / elapsed if elapsed > 0 else 0.0
        published = f"published {self.acked:,} lines to {self.topic!r} in {elapsed:.1f}s"
        figures = f"{published} ({rate:,.0f} msg/s)"
        if self.error is not None:
            lost = self.read - self.acked
            return EXIT_FAILED, (
                f"{lost:,} of {self.read:,} lines were not acknowledged ({self.error}); "
                f"stopped reading the input; {figures}"
            )
        if self.read_error is not None:
            return EXIT_FAILED, f"reading the input failed ({self.read_error}): {figures}"
        if not self.finished_input:
            return EXIT_FAILED, f"interrupted before the end of the input: {figures}"
        return EXIT_OK, figures


async def publish(options: PubOptions, settings: dict[str, Any], fd: int, stop: anyio.Event) -> int:
    config = client_setup.connection_config("pub", settings)
    async with ProducerPool(options.nsqd_tcp_addresses, config=config) as pool:
        return await _run(Publisher(pool, options), fd, stop)


async def _run(publisher: Publisher, fd: int, stop: anyio.Event) -> int:
    rate = Rate()

    def progress(elapsed: float) -> str:
        per_second = rate.update(publisher.acked)
        return f"{publisher.acked:,} lines published ({per_second:,.0f} msg/s)"

    line = StatusLine(progress)
    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        if line.tty:
            tg.start_soon(line.run)
        async with anyio.create_task_group() as sending:
            with anyio.CancelScope() as reading:
                tg.start_soon(_cancel_on, stop, reading)
                await publisher.publish_input(fd, sending)
        tg.cancel_scope.cancel()
    if line.tty:
        line.final()
    code, text = publisher.summary(anyio.current_time() - started)
    print(f"pnsq pub: {text}", file=sys.stderr)
    return code


async def _read(fd: int, in_thread: bool) -> bytes:
    if in_thread:
        return await anyio.to_thread.run_sync(os.read, fd, READ_SIZE, abandon_on_cancel=True)
    return os.read(fd, READ_SIZE)


async def _cancel_on(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def check(options: PubOptions) -> None:
    if not options.topic:
        raise ValueError("--topic required")
    if not wire.is_valid_topic_name(options.topic):
        raise ValueError(f"invalid topic name {options.topic!r}")
    if not options.nsqd_tcp_addresses:
        raise ValueError("--nsqd-tcp-address required")


def run(options: PubOptions) -> int:
    try:  # flag mistakes and a missing file: one line before anything starts
        check(options)
        _, settings = client_setup.parse_go_nsq_options(options.producer_opts, consumer=False)
        fd = os.open(options.input, os.O_RDONLY) if options.input not in ("", "-") else STDIN
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise ValueError(f"{options.input} is a directory")
    except (ValueError, OSError) as exc:
        print(f"pnsq pub: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return run_tool("pub", lambda stop: publish(options, settings, fd, stop))
    finally:
        if fd != STDIN:
            os.close(fd)
