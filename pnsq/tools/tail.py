"""``pnsq tail``: print the messages of one or more topics as they arrive, like NSQ's nsq_tail.

One ``pnsq.client.Consumer`` per ``--topic`` (as nsq_tail makes one go-nsq consumer per topic),
all on the same channel -- by default an ephemeral ``tail<random>#ephemeral`` that nsqd forgets
when tail leaves. The handler only queues the message: a printer task writes everything queued
since its last write to stdout in one ``write`` and only then FINs those messages, so a body is
acknowledged once it is out of the process (never before) and a busy topic costs one write per
socket read, not one per message.

``-n N`` stops after N messages in total (across topics; nsq_tail counts per topic); messages
that arrive after the N-th are requeued at once, not dropped. Ctrl-C or SIGTERM: CLS to every
nsqd, print and FIN what is in flight, close, exit 0. When stdout goes away (``| head``), what
was not written is requeued and tail closes, quietly.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread

from .. import wire
from .._internal import flags
from .._internal.flags import Flag, flag
from ..client import Consumer, Message
from . import client_setup
from .runner import EXIT_FAILED, EXIT_OK, run_tool


@dataclass(frozen=True)
class TailOptions:
    topics: tuple[str, ...] = ()
    channel: str = ""
    nsqd_tcp_addresses: tuple[str, ...] = ()
    lookupd_http_addresses: tuple[str, ...] = ()
    max_in_flight: int = 200
    n: int = 0
    print_topic: bool = False
    consumer_opts: tuple[str, ...] = ()


# fmt: off
FLAGS: tuple[Flag, ...] = (
    client_setup.TOPICS,
    flag("channel", flags.string, "NSQ channel", default_text="tail<random>#ephemeral"),
    client_setup.NSQD_TCP_ADDRESSES,
    client_setup.LOOKUPD_HTTP_ADDRESSES,
    client_setup.MAX_IN_FLIGHT,
    flag("n", flags.natural, "total messages to show (will wait if starved)", short="n"),
    flag("print-topic", flags.boolean, "print topic name where message was received", bare=True),
    client_setup.CONSUMER_OPT,
)
# fmt: on

STDOUT = 1
Handler = Callable[[Message], Awaitable[None]]


def random_channel() -> str:
    return f"tail{random.randrange(999_999):06d}#ephemeral"


class Printer:
    """Queues messages from the consumers' handlers; ``run`` writes them out and FINs them."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd, self.limit = fd, limit
        self.shown = 0
        self.done = anyio.Event()  # -n reached, or stdout failed
        self.error: OSError | None = None
        self._lines: list[bytes] = []
        self._messages: list[Message] = []
        self._wake = anyio.Event()
        self._writing = anyio.Lock()

    def handler(self, topic: str, print_topic: bool) -> Handler:
        prefix = f"{topic} | ".encode() if print_topic else b""

        async def handle(message: Message) -> None:
            if self.done.is_set():
                message.requeue(0, backoff=False)  # beyond -n, or stdout is gone: not ours
                return
            message.disable_auto_response()
            self._lines.append(prefix + message.body + b"\n")
            self._messages.append(message)
            self.shown += 1
            if self.shown == self.limit:
                self.done.set()
            self._wake.set()

        return handle

    async def run(self) -> None:
        """Write what is queued whenever something is; until cancelled."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self.flush()

    async def flush(self) -> None:
        """Write what is queued (in a thread: a stalled terminal or pipe must not stop the
        connections' heartbeats), then FIN it; one writer at a time keeps the order."""
        async with self._writing:
            if not self._messages:
                return
            data, messages = b"".join(self._lines), self._messages
            self._lines, self._messages = [], []
            await self._write(data, messages)

    async def _write(self, data: bytes, messages: list[Message]) -> None:
        try:
            await anyio.to_thread.run_sync(_write_all, self.fd, data)
        except OSError as exc:
            self.error = exc
            self.done.set()
            for message in messages:
                message.requeue(0, backoff=False)
            return
        for message in messages:
            message.finish()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def settings(options: TailOptions) -> tuple[str, dict[str, Any]]:
    """The channel and the Consumer arguments; ValueError for missing or conflicting flags."""
    if not options.topics:
        raise ValueError("--topic required")
    channel = options.channel or random_channel()
    for topic in options.topics:
        if not wire.is_valid_topic_name(topic):
            raise ValueError(f"invalid topic name {topic!r}")
    if not wire.is_valid_channel_name(channel):
        raise ValueError(f"invalid channel name {channel!r}")
    max_in_flight = options.max_in_flight
    if 0 < options.n < max_in_flight:
        max_in_flight = options.n  # don't ask for more messages than we want
    arguments = client_setup.consumer_arguments("tail", options, max_in_flight=max_in_flight)
    return channel, arguments


async def tail(
    options: TailOptions, channel: str, arguments: dict[str, Any], stop: anyio.Event
) -> int:
    printer = Printer(STDOUT, options.n)
    readers = [
        Consumer(topic, channel, printer.handler(topic, options.print_topic), **arguments)
        for topic in options.topics
    ]
    async with anyio.create_task_group() as tg:
        tg.start_soon(printer.run)
        for consumer in readers:
            tg.start_soon(consumer.run)
        async with anyio.create_task_group() as until:

            async def finish_when(event: anyio.Event) -> None:
                await event.wait()
                until.cancel_scope.cancel()

            until.start_soon(finish_when, stop)
            until.start_soon(finish_when, printer.done)
        async with anyio.create_task_group() as closing:
            for consumer in readers:
                closing.start_soon(consumer.close)
        await printer.flush()
        tg.cancel_scope.cancel()
    if isinstance(printer.error, BrokenPipeError):
        return EXIT_OK  # the reader went away (``pnsq tail ... | head``): nothing to report
    if printer.error is not None:
        print(f"pnsq tail: writing to stdout: {printer.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def run(options: TailOptions) -> int:
    try:
        channel, arguments = settings(options)  # flag mistakes: one line before anything starts
    except ValueError as exc:
        print(f"pnsq tail: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return run_tool("tail", lambda stop: tail(options, channel, arguments, stop))
