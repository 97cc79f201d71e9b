"""In-flight and deferred queues: what expires when (time is an argument; no clock)."""

from __future__ import annotations

from pnsq.nsqd.in_flight import DeferredQueue, InFlightQueue
from pnsq.nsqd.message import Message


def _msg(n: int) -> Message:
    return Message(b"%016x" % n, b"body", 0)


def test_messages_expire_in_deadline_order_across_timeout_values() -> None:
    queue = InFlightQueue()
    a, b, c = _msg(1), _msg(2), _msg(3)
    queue.add(a, 60.0, now=0.0)  # due 60
    queue.add(b, 10.0, now=1.0)  # due 11
    queue.add(c, 60.0, now=2.0)  # due 62
    assert queue.next_deadline() == 11.0
    assert queue.pop_expired(10.9) == []
    assert queue.pop_expired(11.0) == [b]
    assert queue.next_deadline() == 60.0
    assert queue.pop_expired(100.0) == [a, c]
    assert len(queue) == 0
    assert queue.next_deadline() is None


def test_finished_message_never_expires() -> None:
    queue = InFlightQueue()
    a, b = _msg(1), _msg(2)
    queue.add(a, 5.0, now=0.0)
    queue.add(b, 5.0, now=1.0)
    queue.remove(a)
    assert queue.next_deadline() == 6.0
    assert queue.pop_expired(10.0) == [b]


def test_a_run_of_fins_takes_only_what_its_client_holds_and_the_rest_still_expires() -> None:
    queue = InFlightQueue()
    mine, other = object(), object()
    a, b, c, d = _msg(1), _msg(2), _msg(3), _msg(4)
    for msg, owner in ((a, mine), (b, other), (c, mine), (d, mine)):
        msg.client = owner  # type: ignore[assignment]
    queue.add_many([a, b, c], 5.0, now=0.0)
    queue.add(d, 5.0, now=1.0)
    queue.touch(d, 50.0, now=2.0, max_deadline=3.0)  # d's deadline lives in the heap now
    taken, refused = queue.take([a.id, b.id, b"ffffffffffffffff", c.id, d.id], mine)
    assert (taken, refused) == ([a, c, d], [b.id, b"ffffffffffffffff"])
    assert len(queue) == 1
    assert queue.pop_expired(10.0) == [b]  # d, taken, does not expire from the heap
    assert len(queue) == 0


def test_touch_moves_the_deadline_and_keeps_order() -> None:
    queue = InFlightQueue()
    a, b = _msg(1), _msg(2)
    queue.add(a, 5.0, now=0.0)
    queue.add(b, 5.0, now=1.0)
    queue.touch(a, 5.0, now=3.0, max_deadline=1000.0)  # a now due 8, after b (6)
    assert queue.pop_expired(6.0) == [b]
    assert queue.pop_expired(7.9) == []
    assert queue.pop_expired(8.0) == [a]


def test_touch_is_capped_at_the_max_deadline_even_out_of_order() -> None:
    queue = InFlightQueue()
    a, b = _msg(1), _msg(2)
    queue.add(a, 60.0, now=0.0)
    queue.add(b, 60.0, now=10.0)  # due 70
    queue.touch(a, 60.0, now=30.0, max_deadline=40.0)  # would be 90; capped to 40
    assert a.deadline == 40.0
    assert queue.next_deadline() == 40.0
    assert queue.pop_expired(40.0) == [a]
    assert queue.pop_expired(69.0) == []
    assert queue.pop_expired(70.0) == [b]


def test_a_capped_message_finished_before_its_deadline_does_not_expire() -> None:
    queue = InFlightQueue()
    a = _msg(1)
    queue.add(a, 60.0, now=0.0)
    queue.touch(a, 60.0, now=30.0, max_deadline=40.0)
    queue.remove(a)
    assert queue.pop_expired(100.0) == []


def test_deferred_messages_come_due_in_time_order() -> None:
    queue = DeferredQueue()
    a, b, c = _msg(1), _msg(2), _msg(3)
    queue.add(a, 30.0)
    queue.add(b, 10.0)
    queue.add(c, 20.0)
    assert len(queue) == 3
    assert queue.next_deadline() == 10.0
    assert queue.pop_due(9.9) == []
    assert queue.pop_due(20.0) == [b, c]
    assert queue.clear() == [a]
    assert queue.pop_due(100.0) == []
