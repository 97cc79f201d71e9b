"""The RDY planner without sockets: sharing max_in_flight, the server cap, rotation, backoff."""

from __future__ import annotations

import random

from pnsq.client import ReadyPlanner


def planner(max_in_flight: int, **kw: float) -> ReadyPlanner[str]:
    return ReadyPlanner(max_in_flight, rng=random.Random(1), **kw)


def test_max_in_flight_is_shared_and_rebalanced_as_connections_come_and_go() -> None:
    p = planner(10)
    assert p.add("a", 2500, 0) == {"a": 10}
    assert p.add("b", 2500, 0) == {"a": 5, "b": 5}
    assert p.add("c", 2500, 0) == {"a": 4, "b": 3, "c": 3}
    assert p.remove("a", 0) == {"b": 5, "c": 5}
    assert p.set_max_in_flight(0, 0) == {"b": 0, "c": 0}  # paused


def test_rdy_never_exceeds_the_server_s_max_rdy_count() -> None:
    p = planner(5000)
    assert p.add("a", 2500, 0) == {"a": 2500}


def test_more_connections_than_max_in_flight_rotate_rdy_so_none_starves() -> None:
    p = planner(2, low_rdy_idle_timeout=1.0, low_rdy_timeout=30.0)
    for key in "abcde":
        p.add(key, 2500, 0)
    assert p.total_rdy() == 2
    served: set[str] = set()
    for t in range(1, 20):
        p.tick(float(t))
        assert p.total_rdy() == 2
        served |= {k for k in "abcde" if p.rdy(k)}
    assert served == set("abcde")


def test_busy_holders_keep_rdy_until_they_hold_it_too_long() -> None:
    p = planner(1, low_rdy_idle_timeout=1.0, low_rdy_timeout=5.0)
    p.add("a", 2500, 0)
    p.add("b", 2500, 0)
    holder = "a" if p.rdy("a") else "b"
    p.on_messages(holder, 1, 0.5)
    assert p.tick(1.2) == {}  # in flight: keeps it
    p.on_done(holder)
    p.on_messages(holder, 1, 1.5)
    p.on_done(holder)
    assert p.tick(2.0) == {}  # active recently
    assert sum(p.tick(5.5).values()) == 1  # held 5 s: moves on
    assert p.rdy(holder) == 0


def test_backoff_sets_rdy_0_then_probes_with_rdy_1_and_recovers_with_successes() -> None:
    p = planner(10, backoff_multiplier=1.0)
    p.add("a", 2500, 0)
    p.add("b", 2500, 0)
    assert p.on_failure(0) == {"a": 0, "b": 0}
    assert p.backoff_level == 1
    assert p.on_failure(0.1) == {}  # inside the window: not counted
    assert 0.5 <= p.backoff_until <= 1.0  # type: ignore[operator]
    assert p.tick(0.2) == {}
    probe = p.tick(1.0)
    assert sorted(probe.values()) == [1]
    assert p.total_rdy() == 1
    assert p.on_failure(1.1) == dict.fromkeys(probe, 0)
    assert p.backoff_level == 2
    p.tick(3.0)
    assert p.total_rdy() == 1
    assert p.on_success(3.1) == {k: 0 for k in "ab" if p.rdy(k)} or p.total_rdy() == 0
    assert p.backoff_level == 1
    p.tick(10.0)
    assert p.on_success(10.1) != {}
    assert p.backoff_level == 0
    assert (p.rdy("a"), p.rdy("b")) == (5, 5)


def test_backoff_duration_doubles_and_is_capped() -> None:
    p = planner(1, backoff_multiplier=1.0, max_backoff_duration=8.0)
    assert [p.backoff_duration(n, jitter=False) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    for _ in range(10):
        p.on_failure(1000.0 * _)
        p.tick(1000.0 * _ + 999)
    assert p.backoff_level == 4  # 2**4 would exceed the cap: the level stops rising
