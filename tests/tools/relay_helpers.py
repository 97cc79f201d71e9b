"""Helpers for the relay tool tests (to-http, to-nsq): nsqd addresses and state, publishing,
running a tool in-process until told to stop, waiting under a deadline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import anyio
import trio

from pnsq.client import Producer
from pnsq.nsqd.channel import Channel
from pnsq.nsqd.nsqd import NSQD

MakeNSQD = Callable[..., Awaitable[NSQD]]


def tcp(nsqd: NSQD) -> str:
    assert nsqd.tcp_address is not None
    return "{}:{}".format(*nsqd.tcp_address)


def channel(nsqd: NSQD, topic: str, name: str) -> Channel | None:
    found = nsqd.topics.get(topic)
    return None if found is None else found.channels.get(name)


def settled(nsqd: NSQD, topic: str, name: str, count: int) -> bool:
    """Every one of ``count`` published messages FINed: nothing queued, in flight or deferred."""
    ch = channel(nsqd, topic, name)
    return (
        ch is not None
        and ch.message_count >= count
        and ch.depth() == 0
        and len(ch.in_flight) == 0
        and len(ch.deferred) == 0
    )


async def publish(nsqd: NSQD, topic: str, bodies: Sequence[bytes]) -> None:
    async with Producer(tcp(nsqd)) as producer:
        await producer.multi_publish(topic, list(bodies))


async def wait_until(predicate: Callable[[], object], seconds: float = 20.0) -> None:
    with anyio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110 - polling daemon state, bounded by the deadline
            await anyio.sleep(0.01)


@asynccontextmanager
async def running(main: Callable[[anyio.Event], Awaitable[int]]) -> AsyncIterator[list[int]]:
    """Run a tool's ``main(stop)`` in the background; on exit stop it and get its exit code."""
    stop = anyio.Event()
    codes: list[int] = []

    async def go() -> None:
        codes.append(await main(stop))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(go)
            yield codes
            stop.set()
