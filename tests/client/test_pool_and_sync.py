"""SyncProducer and ProducerPool against real nsqds; the pool strategies as pure objects."""

from __future__ import annotations

import collections

import pytest
import trio
from client_helpers import MakeNSQD, tcp

from pnsq.client import NSQConnectionError, ProducerPool, PublishError, SyncProducer
from pnsq.client.pool import ConsistentHashStrategy, RoundRobinStrategy, WeightedStrategy
from pnsq.nsqd.nsqd import NSQD


def count(nsqd: NSQD, topic: str = "t") -> int:
    return nsqd.topics[topic].message_count if topic in nsqd.topics else 0


@pytest.mark.parametrize("scheme", ["tcp", "http"])
async def test_sync_producer_publishes_and_reports_refusals(
    make_nsqd: MakeNSQD, scheme: str
) -> None:
    nsqd = await make_nsqd(max_msg_size=100)
    assert nsqd.http_address is not None
    address = tcp(nsqd) if scheme == "tcp" else "http://{}:{}".format(*nsqd.http_address)

    def work() -> str:
        with SyncProducer(address) as p:
            p.publish("t", b"one")
            p.multi_publish("t", [b"a", b"b"])
            p.deferred_publish("t", b"later", delay=5.0)
            with pytest.raises(PublishError) as info:
                p.publish("t", b"x" * 200)
            p.publish("t", b"after the refusal")
            return info.value.code

    with trio.fail_after(10):
        code = await trio.to_thread.run_sync(work)
    assert code == ("E_BAD_MESSAGE" if scheme == "tcp" else "MSG_TOO_BIG")
    assert count(nsqd) == 5


def test_sync_producer_to_nothing_raises_a_connection_error() -> None:
    with SyncProducer("127.0.0.1:1") as p, pytest.raises(NSQConnectionError):
        p.publish("t", b"x")


def test_smooth_weighted_round_robin_interleaves_and_matches_weights() -> None:
    strategy = WeightedStrategy([5, 1, 1])
    picks = [strategy.order(None)[0] for _ in range(7)]
    assert picks == [0, 0, 1, 0, 2, 0, 0]  # nginx's sequence for 5,1,1
    picks = [strategy.order(None)[0] for _ in range(7000)]
    assert collections.Counter(picks) == {0: 5000, 1: 1000, 2: 1000}


def test_round_robin_fails_over_in_ring_order() -> None:
    strategy = RoundRobinStrategy(3)
    assert [strategy.order(None) for _ in range(3)] == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]


def test_consistent_hash_moves_only_the_leaving_node_s_keys() -> None:
    nodes = ["a:4150", "b:4150", "c:4150", "d:4150"]
    before = ConsistentHashStrategy(nodes)
    after = ConsistentHashStrategy([n for n in nodes if n != "c:4150"])
    keys = [b"user-%d" % i for i in range(4000)]
    placed = {k: nodes[before.order(k)[0]] for k in keys}
    moved = {k for k in keys if placed[k] != [n for n in nodes if n != "c:4150"][after.order(k)[0]]}
    assert moved == {k for k in keys if placed[k] == "c:4150"}
    share = collections.Counter(placed.values())
    assert all(700 < share[n] < 1300 for n in nodes)  # roughly even
    assert before.order(b"user-1") == before.order(b"user-1")  # stable
    # the failover order is the ring without the first node: where the key goes if it leaves
    for k in keys[:200]:
        if placed[k] == "c:4150":
            survivors = [n for n in nodes if n != "c:4150"]
            assert nodes[before.order(k)[1]] == survivors[after.order(k)[0]]


async def test_pool_weighted_distribution_over_real_nsqds(make_nsqd: MakeNSQD) -> None:
    nsqds = [await make_nsqd() for _ in range(3)]
    with trio.fail_after(20):
        async with ProducerPool(
            [tcp(n) for n in nsqds], strategy="weighted", weights=[6, 3, 1]
        ) as pool:
            for i in range(1000):
                await pool.publish("t", b"%d" % i)
    shares = [count(n) / 1000 for n in nsqds]
    assert shares == pytest.approx([0.6, 0.3, 0.1], abs=0.02)


async def test_pool_consistent_hash_sends_a_key_to_one_nsqd(make_nsqd: MakeNSQD) -> None:
    nsqds = [await make_nsqd() for _ in range(3)]
    with trio.fail_after(20):
        async with ProducerPool([tcp(n) for n in nsqds], strategy="consistent_hash") as pool:
            targets = {await pool.publish("t", b"x", key="customer-42") for _ in range(20)}
            await pool.multi_publish("t", [b"y"] * 5, key="customer-42")
    assert len(targets) == 1
    assert sorted(count(n) for n in nsqds) == [0, 0, 25]


@pytest.mark.parametrize("strategy", ["random", "round_robin"])
async def test_pool_fails_over_without_losing_or_duplicating(
    make_nsqd: MakeNSQD, strategy: str
) -> None:
    alive = [await make_nsqd() for _ in range(2)]
    with trio.fail_after(20):
        async with ProducerPool(
            [tcp(alive[0]), "127.0.0.1:1", tcp(alive[1])], strategy=strategy
        ) as pool:
            for i in range(300):
                await pool.publish("t", b"%d" % i)
            alive[0].stop()
            for i in range(300, 400):
                await pool.publish("t", b"%d" % i)
    assert count(alive[0]) + count(alive[1]) == 400  # every publish acknowledged exactly once
    assert count(alive[1]) >= 100
