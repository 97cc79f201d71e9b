"""ProducerPool and a draining nsqd: publishes move on without an error, and the node is avoided."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
from client_helpers import MakeNSQD, tcp
from v2client import V2Client, open_consumer

from pnsq.client import ProducerPool, PublishError
from pnsq.nsqd.nsqd import NSQD


def count(nsqd: NSQD, topic: str = "t") -> int:
    return nsqd.topics[topic].message_count if topic in nsqd.topics else 0


def address(nsqd: NSQD, scheme: str) -> str:
    assert nsqd.http_address is not None
    return tcp(nsqd) if scheme == "tcp" else "http://{}:{}".format(*nsqd.http_address)


async def draining(make_nsqd: MakeNSQD) -> tuple[NSQD, list[int], V2Client]:
    """A draining nsqd kept running by its consumer (a message still to take), and a list that
    counts the publishes that reached its topic ``t``."""
    nsqd = await make_nsqd()
    assert nsqd.tcp_address is not None
    consumer = await open_consumer(nsqd.tcp_address, "t", "c", rdy=0)
    nsqd.topics["t"].put([b"pending"], trio.current_time(), 0)
    nsqd.drain.start()
    attempts: list[int] = []
    topic = nsqd.topics["t"]
    put: Callable[..., None] = topic.put

    def counting(*args: Any, **kwargs: Any) -> None:
        attempts.append(1)
        put(*args, **kwargs)

    topic.put = counting  # type: ignore[method-assign]
    return nsqd, attempts, consumer


@pytest.mark.parametrize("scheme", ["tcp", "http"])
async def test_pool_skips_a_draining_nsqd_without_an_error(
    make_nsqd: MakeNSQD, scheme: str
) -> None:
    leaving, attempts, consumer = await draining(make_nsqd)
    others = [await make_nsqd() for _ in range(2)]
    nodes = [leaving, *others]
    with trio.fail_after(20):
        async with ProducerPool([address(n, scheme) for n in nodes]) as pool:
            for i in range(30):
                assert await pool.publish("t", b"%d" % i) != address(leaving, scheme)
            await pool.multi_publish("t", [b"a", b"b"])
    assert count(others[0]) + count(others[1]) == 32  # every publish taken, once
    assert count(leaving) == 1  # only what it had before the drain
    assert len(attempts) == 1  # refused once, then avoided
    assert leaving.draining
    assert not leaving._stop.is_set()
    await consumer.aclose()


async def test_a_pool_of_draining_nsqds_raises_the_refusal(make_nsqd: MakeNSQD) -> None:
    leaving, attempts, consumer = await draining(make_nsqd)
    with trio.fail_after(20):
        async with ProducerPool([tcp(leaving)]) as pool:
            for _ in range(2):  # avoided, but still tried when nothing else is left
                with pytest.raises(PublishError) as info:
                    await pool.publish("t", b"x")
                assert info.value.code == "E_PUB_FAILED"
                assert info.value.description == "PUB failed nsqd draining"
    assert len(attempts) == 2
    await consumer.aclose()
