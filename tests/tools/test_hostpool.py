"""``--mode`` for the relays: which endpoint goes first, and how failures move traffic away
(pure: time is an argument); and the ``--status-every`` lines scripts grep for."""

from __future__ import annotations

import logging
import random

import pytest

from pnsq.tools.hostpool import MAX_RETRY_DELAY, RETRY_DELAY, HostPool
from pnsq.tools.timer_metrics import TimerMetrics


def firsts(pool: HostPool, now: float, count: int) -> list[int]:
    return [pool.order(now)[0] for _ in range(count)]


def test_round_robin_takes_turns_and_ignores_failures() -> None:
    pool = HostPool(3, "round-robin")
    pool.mark(0, False, 0.0)
    assert firsts(pool, 0.0, 6) == [0, 1, 2, 0, 1, 2]
    assert pool.order(0.0) == [0, 1, 2]  # the rest of the order is the failover order


def test_hostpool_skips_a_failed_host_until_its_retry_time() -> None:
    pool = HostPool(3)
    pool.mark(1, False, now=0.0)
    assert firsts(pool, 1.0, 4) == [0, 2, 2, 0]
    assert pool.order(1.0)[-1] == 1  # still there as the last resort
    assert 1 in firsts(pool, RETRY_DELAY + 0.1, 3)  # one retry after 30 s


def test_hostpool_doubles_the_wait_for_a_host_that_keeps_failing() -> None:
    pool = HostPool(2)
    pool.mark(0, False, now=0.0)
    now = RETRY_DELAY
    delays = []
    for _ in range(8):
        while pool.order(now)[0] != 0:  # wait for host 0's retry
            now += 1.0
        delays.append(pool.hosts[0].retry_delay)
        pool.mark(0, False, now)
    assert delays[:3] == [2 * RETRY_DELAY, 4 * RETRY_DELAY, 8 * RETRY_DELAY]
    assert delays[-1] == MAX_RETRY_DELAY
    pool.mark(0, True, now)  # one success and it is back in turn
    assert sorted(firsts(pool, now, 2)) == [0, 1]


def test_hostpool_tries_everything_when_every_host_is_down() -> None:
    pool = HostPool(2)
    pool.mark(0, False, 0.0)
    pool.mark(1, False, 0.0)
    assert sorted(pool.order(1.0)) == [0, 1]
    assert not pool.is_dead(1)


def test_epsilon_greedy_prefers_the_fastest_live_host() -> None:
    pool = HostPool(3, "epsilon-greedy", rng=random.Random(7))
    for index, seconds in enumerate([0.3, 0.01, 0.2]):
        pool.mark(index, True, 0.0, seconds)
    picks = firsts(pool, 0.0, 200)
    assert picks.count(1) > 150  # mostly the fastest
    assert {0, 2} <= set(picks)  # sometimes the others, to notice a recovery
    pool.mark(1, False, 0.0)
    assert 1 not in firsts(pool, 1.0, 50)


def test_bad_pools_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        HostPool(0)
    with pytest.raises(ValueError, match="unknown mode"):
        HostPool(2, "multicast")


def test_status_every_logs_nsqs_line_after_every_n_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = TimerMetrics(4, "[aggregate]:")
    with caplog.at_level(logging.INFO, logger="pnsq.tools"):
        metrics.record(0.001, count=3)
        assert caplog.messages == []
        metrics.record(0.005, count=5)  # 8 requests: two windows of 4
    assert caplog.messages == [
        "[aggregate]: finished 4 requests - 99th: 5.00ms - 95th: 5.00ms - avg: 2.00ms",
        "[aggregate]: finished 4 requests - 99th: 5.00ms - 95th: 5.00ms - avg: 5.00ms",
    ]
    off = TimerMetrics(0)
    off.record(1.0, count=100)
    assert caplog.messages[2:] == []
