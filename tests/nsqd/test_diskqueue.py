"""A disk queue's bookkeeping, without files or clocks: rounds are planned, and their results
handed back, by hand.

What users rely on: records go out in order and in segments of bounded size; a failed write
is tried again, never dropped; the read position saved for a restart never passes a message
that is not finished (a crash replays, never loses); deferred messages keep their remaining
wait across the disk; ``empty`` also drops what a round in progress brings back.
"""

from __future__ import annotations

import errno

from pnsq.nsqd.disk_record import HEAD_SIZE, PAYLOAD_HEAD
from pnsq.nsqd.diskqueue import READ_CHUNK, DiskQueue, QueueStart, Work
from pnsq.nsqd.message import Message

BODY = b"0123456789"
RECORD = HEAD_SIZE + PAYLOAD_HEAD + len(BODY)
WALL = 1_700_000_000 * 10**9


class Host:
    """The disk task as a queue sees it; nothing runs, marks are recorded."""

    healthy = True
    durable = False
    max_payload = PAYLOAD_HEAD + 1024

    def __init__(self, max_bytes_per_file: int = 1 << 20) -> None:
        self.max_bytes_per_file = max_bytes_per_file
        self.marked: list[DiskQueue] = []

    def mark(self, queue: DiskQueue) -> None:
        self.marked.append(queue)

    def read_stored(self, queue: DiskQueue, file: int, pos: int, n: int) -> list[bytes]:
        return []

    def now(self) -> float:
        return 0.0

    def wall_ns(self) -> int:
        return WALL


class Queue:
    """A DiskQueue with a consumer that always wants more, and what it was handed."""

    def __init__(self, host: Host) -> None:
        self.received: list[Message] = []
        self.queue = DiskQueue(host, "t", self.received.extend, lambda: True, QueueStart())


def message(i: int, deliver_at: float = 0.0) -> Message:
    return Message(b"%016d" % i, BODY, 1000 + i, deliver_at)


def written(work: Work) -> bytes:
    """Carry out a plan's writes as the file layer would, all in one segment."""
    data = b"".join(bytes(chunk.data) for chunk in work.chunks)
    work.written, work.unsynced = (1, len(data)), True
    return data


def test_records_go_out_in_order_in_segments_of_bounded_size() -> None:
    host = Host(max_bytes_per_file=2 * RECORD + 10)
    queue = Queue(host).queue
    for i in range(5):
        assert queue.put(message(i), 0.0)
    assert host.marked
    assert queue.depth() == 5
    work = queue.plan(full_sync=False, durable=False)
    assert [(c.file, len(c.data)) for c in work.chunks] == [
        (1, 2 * RECORD),
        (2, 2 * RECORD),
        (3, RECORD),
    ]
    assert queue.pending == []


def test_a_failed_write_is_kept_for_the_next_round() -> None:
    queue = Queue(Host()).queue
    queue.put(message(0), 0.0)
    queue.put(message(1), 0.0)
    work = queue.plan(full_sync=False, durable=False)
    work.chunks[0].done = RECORD  # the first record went out, then the disk failed
    work.error = OSError(errno.ENOSPC, "No space left on device")
    assert queue.apply(work, 0.0, WALL) == 0
    retry = queue.plan(full_sync=False, durable=False)
    assert [(c.file, c.done, len(c.data)) for c in retry.chunks] == [(1, RECORD, 2 * RECORD)]
    assert queue.depth() == 2


def test_the_saved_read_position_waits_for_the_oldest_unfinished_message() -> None:
    consumer = Queue(Host())
    queue = consumer.queue
    for i in range(3):
        queue.put(message(i), 0.0)
    first = queue.plan(full_sync=False, durable=False)
    data = written(first)
    queue.apply(first, 0.0, WALL)
    read = queue.plan(full_sync=False, durable=False)
    assert read.read == (1, 0, READ_CHUNK, 1)
    read.read_data, read.written = data, first.written
    assert queue.apply(read, 0.0, WALL) == 3
    assert [m.id for m in consumer.received] == [message(i).id for i in range(3)]
    assert [m.body for m in consumer.received] == [BODY] * 3

    for msg in consumer.received[1:]:
        msg.done()  # finished out of order: the first still holds the position
    assert queue.acked == (1, 0)
    consumer.received[0].done()
    assert queue.acked == (1, 3 * RECORD)
    sync = queue.plan(full_sync=True, durable=False)
    assert sync.meta == b"0\n1,%d\n1,%d\n" % (3 * RECORD, 3 * RECORD)
    assert sync.delete_below == 1  # the segment is still the one being written


def test_a_deferred_message_keeps_its_remaining_wait_across_the_disk() -> None:
    consumer = Queue(Host())
    queue = consumer.queue
    queue.put(message(0, deliver_at=15.0), 10.0)  # 5 s to go
    work = queue.plan(full_sync=False, durable=False)
    data = written(work)
    queue.apply(work, 10.0, WALL)
    read = queue.plan(full_sync=False, durable=False)
    read.read_data, read.written = data, work.written
    queue.apply(read, 500.0, WALL + 10**9)  # read back 1 s later by the wall clock
    assert consumer.received[0].deliver_at == 504.0


def test_empty_drops_what_a_round_in_progress_brings_back() -> None:
    consumer = Queue(Host())
    queue = consumer.queue
    queue.put(message(0), 0.0)
    work = queue.plan(full_sync=False, durable=False)
    data = written(work)
    queue.apply(work, 0.0, WALL)
    read = queue.plan(full_sync=False, durable=False)
    queue.empty()
    read.read_data, read.written = data, work.written
    assert queue.apply(read, 0.0, WALL) == 0
    assert consumer.received == []
    assert queue.depth() == 0
    assert queue.plan(full_sync=True, durable=False).meta == b"0\n2,0\n2,0\n"
