"""A channel: one copy of a topic's stream, shared out among its consumers.

Delivery is synchronous: ``dispatch(now)`` hands queued messages to clients that have room
under their RDY, each its fair share of the queue in one batch (round robin between batches),
by appending message frames to each client's output buffer, which goes out in one write. It
runs whenever something may have freed room or brought messages: a publish, FIN/REQ/RDY (once
per socket read, not per command), a timer. No task, Event or channel is created per message.
The queue holds a publish's messages as the records the topic shares among its channels; a
message becomes this channel's ``Message`` when it is first delivered (``message.py``).

A channel knows the broker around it only as ``ChannelHost`` (the clock, its backend, its
timer, the metadata file), and its topic only as the callable that deletes it.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ..wire.errors import FinFailedError, ReqFailedError, SubFailedError, TouchFailedError
from ..wire.names import is_ephemeral
from .backend import READ_AHEAD, BackendQueue, NoBackend, OnRead
from .in_flight import DeferredQueue, InFlightQueue
from .message import Item, Message, Queued
from .quantile import Quantile

if TYPE_CHECKING:
    from .client_v2 import ClientV2
    from .options import Options


class ChannelHost(Protocol):
    """What a channel (and a topic) needs from the broker it lives in (``Broker``)."""

    @property
    def options(self) -> Options: ...

    def now(self) -> float:
        """The clock every timer uses."""
        ...

    def open_backend(
        self, name: str, on_read: OnRead, wants_read: Callable[[], bool]
    ) -> BackendQueue:
        """The durable queue ``name`` (see ``backend.BackendQueue``)."""
        ...

    def schedule(self, channel: Channel, when: float) -> None:
        """Call ``channel.process_timers`` at ``when`` or soon after."""
        ...

    def persist_metadata(self) -> None:
        """The durable topics and channels, or what is paused, changed."""
        ...


class Channel:
    def __init__(
        self, topic_name: str, name: str, host: ChannelHost, delete: Callable[[str], None]
    ) -> None:
        """``delete(name)`` is how the topic drops an ephemeral channel nobody consumes."""
        self.topic_name = topic_name
        self.name = name
        self.ephemeral = is_ephemeral(name)
        self._host = host
        self._delete = delete
        self._mem_size = host.options.mem_queue_size
        self.memory: deque[Item] = deque()
        self.backend: BackendQueue = (
            NoBackend()
            if self.ephemeral
            else host.open_backend(f"{topic_name}:{name}", self._disk_read, self._wants_disk)
        )
        self._durable = self.backend.durable  # every message via disk
        self.in_flight = InFlightQueue()
        self.deferred = DeferredQueue()
        self.clients: dict[int, ClientV2] = {}
        self.paused = False
        self.exiting = False
        self.message_count = 0
        self.requeue_count = 0
        self.timeout_count = 0
        self.wake_at = math.inf  # the earliest timer asked of nsqd and not yet fired
        options = host.options
        self.e2e: Quantile | None = None
        if options.e2e_processing_latency_percentiles:
            self.e2e = Quantile(
                options.e2e_processing_latency_window_time,
                options.e2e_processing_latency_percentiles,
                host.now(),
            )

    # -- depth --------------------------------------------------------------------------

    def depth(self) -> int:
        return len(self.memory) + self.backend.depth()

    def has_room(self, n: int) -> bool:
        """Whether ``n`` more messages can be queued without refusing any."""
        return (
            self.ephemeral
            or self.backend.writable()
            or (not self._durable and len(self.memory) + n <= self._mem_size)
        )

    # -- putting messages in ----------------------------------------------------------------

    def put_queued(self, queued: list[Queued], now: float) -> None:
        """Queue a publish's messages (the topic checked ``has_room`` first): the hot path.

        One ``extend`` when the whole batch fits in memory and nothing waits on disk; the
        records are shared with the topic's other channels, which is safe as they are immutable.
        """
        memory = self.memory
        if self.ephemeral or (
            not self._durable
            and len(memory) + len(queued) <= self._mem_size
            and not self.backend.depth()
        ):
            self.message_count += len(queued)
            memory.extend(queued)
            self.dispatch(now)
            if self.ephemeral and len(memory) > self._mem_size:
                self._drop_overflow()
        else:
            self.put(queued, now)

    def put(self, items: Sequence[Item], now: float) -> None:
        """Queue messages, one by one (the topic checked ``has_room`` first).

        Memory while it has room and nothing waits on disk (so the disk backlog drains in
        order); otherwise disk. Durable mode (``--sync-every=1``) puts everything on disk,
        deferred messages too, with their time.
        """
        self.message_count += len(items)
        memory, mem_size, backend = self.memory, self._mem_size, self.backend
        durable, ephemeral = self._durable, self.ephemeral
        for item in items:
            if isinstance(item, Message) and item.deliver_at > now and not durable:
                self._defer(item, item.deliver_at)
            elif ephemeral or (not durable and len(memory) < mem_size and not backend.depth()):
                memory.append(item)
            elif not backend.put(Message.of(item), now):
                memory.append(item)  # has_room() said yes; never lose an accepted message
        self.dispatch(now)
        if ephemeral and len(memory) > mem_size:
            self._drop_overflow()

    def _drop_overflow(self) -> None:
        """NSQ's ephemeral channels drop what does not fit in memory (the newest)."""
        memory = self.memory
        for _ in range(len(memory) - self._mem_size):
            memory.pop()

    def _disk_read(self, messages: list[Message]) -> None:
        """Messages read back from the disk queue."""
        now = self._host.now()
        ready = self.backend.ready
        for msg in messages:
            if msg.deliver_at > now:
                self._defer(msg, msg.deliver_at)
            else:
                ready.append(msg)
        self.dispatch(now)

    def _wants_disk(self) -> bool:
        return (
            not self.paused
            and not self.exiting
            and bool(self.clients)
            and len(self.backend.ready) < READ_AHEAD
        )

    def _requeue(self, msg: Message) -> None:
        # Already accepted: it goes back whatever the memory limit says.
        msg.client = None
        self.memory.append(msg)

    def _defer(self, msg: Message, deliver_at: float) -> None:
        msg.client = None
        self.deferred.add(msg, deliver_at)
        if deliver_at < self.wake_at:
            self._host.schedule(self, deliver_at)

    # -- delivery -----------------------------------------------------------------------

    def dispatch(self, now: float) -> None:
        """Hand queued messages (memory first, then read back from disk) to ready clients."""
        if self.paused or not self.clients:
            return
        memory, from_disk = self.memory, self.backend.ready
        if memory or from_disk:
            self._deliver(now, memory, from_disk)
        if len(from_disk) < READ_AHEAD // 2:
            self.backend.request_read()

    def _deliver(self, now: float, memory: deque[Item], from_disk: deque[Message]) -> None:
        """Share the queue out among the ready clients, each share in one batch.

        Each client takes at most its fair share of what is queued (so a small backlog is
        split evenly) and the client served last goes to the back of the order, so the round
        robin carries over to the next dispatch, even for one message at a time.
        """
        ready = [c for c in self.clients.values() if c.in_flight_count < c.ready_count]
        if not ready:
            return
        shortest = math.inf
        while ready and (memory or from_disk):
            source: deque[Item] = memory or from_disk  # type: ignore[assignment]
            share = -(-len(source) // len(ready))
            for client in ready:
                room = min(client.ready_count - client.in_flight_count, share, len(source))
                if len(ready) > 1:
                    self.clients[client.id] = self.clients.pop(client.id)
                shortest = min(shortest, client.msg_timeout)
                self._hand_out(client, source, room, now)
                if not source:
                    break
            ready = [c for c in ready if c.in_flight_count < c.ready_count]
        if now + shortest < self.wake_at:
            self._host.schedule(self, now + shortest)

    def _hand_out(self, client: ClientV2, source: deque[Item], n: int, now: float) -> None:
        """The next ``n`` queued messages to ``client``: in flight, then in its output."""
        sample_rate, of = client.sample_rate, Message.of
        batch: list[Message] = []
        for _ in range(n):
            item = source.popleft()
            msg = item if isinstance(item, Message) else of(item)
            if sample_rate and random.randint(0, 99) > sample_rate:
                msg.done()
                continue  # NSQ's sampling: this channel loses the message
            msg.attempts = (msg.attempts + 1) & 0xFFFF
            msg.client = client
            msg.delivered_at = now
            batch.append(msg)
        if batch:
            self.in_flight.add_many(batch, client.msg_timeout, now)
            client.send_messages(batch)

    def process_timers(self, now: float) -> None:
        """Requeue what timed out in flight, release what is no longer deferred, dispatch."""
        for msg in self.in_flight.pop_expired(now):
            self.timeout_count += 1
            if msg.client is not None:
                msg.client.in_flight_count -= 1
            self._requeue(msg)
        for msg in self.deferred.pop_due(now):
            self._requeue(msg)
        self.dispatch(now)
        deadlines = [
            d
            for d in (self.in_flight.next_deadline(), self.deferred.next_deadline())
            if d is not None
        ]
        if deadlines and min(deadlines) < self.wake_at:
            self._host.schedule(self, min(deadlines))

    # -- what consumers do with messages ------------------------------------------------------

    def _owned(self, client: ClientV2, msg_id: bytes) -> Message | str:
        """The message ``client`` holds in flight, or NSQ's reason why it cannot act on it."""
        msg = self.in_flight.messages.get(msg_id)
        if msg is None:
            return "ID not in flight"
        if msg.client is not client:
            return "client does not own message"
        return msg

    def _pop_owned(self, client: ClientV2, msg_id: bytes) -> Message | str:
        msg = self._owned(client, msg_id)
        if not isinstance(msg, str):
            self.in_flight.remove(msg)
            client.in_flight_count -= 1
        return msg

    def finish(self, client: ClientV2, msg_id: bytes, now: float) -> None:
        msg = self._pop_owned(client, msg_id)
        if isinstance(msg, str):
            raise FinFailedError(f"FIN {msg_id.decode('latin-1')} failed {msg}")
        msg.client = None
        msg.done()
        client.finish_count += 1
        if self.e2e is not None:
            self.e2e.insert(time.time_ns() - msg.timestamp, now)

    def finish_many(self, client: ClientV2, ids: list[bytes], now: float) -> list[FinFailedError]:
        """FIN each of ``ids`` (a consumer's run of FINs); the failures, in order."""
        taken, refused = self.in_flight.take(ids, client)
        e2e = self.e2e
        for msg in taken:
            msg.client = None
            if msg.origin is not None:
                msg.done()
            if e2e is not None:
                e2e.insert(time.time_ns() - msg.timestamp, now)
        client.in_flight_count -= len(taken)
        client.finish_count += len(taken)
        return [self._fin_failed(client, msg_id) for msg_id in refused]

    def _fin_failed(self, client: ClientV2, msg_id: bytes) -> FinFailedError:
        reason = self._owned(client, msg_id)
        assert isinstance(reason, str)
        return FinFailedError(f"FIN {msg_id.decode('latin-1')} failed {reason}")

    def requeue(self, client: ClientV2, msg_id: bytes, delay: float, now: float) -> None:
        msg = self._pop_owned(client, msg_id)
        if isinstance(msg, str):
            raise ReqFailedError(f"REQ {msg_id.decode('latin-1')} failed {msg}")
        client.requeue_count += 1
        self.requeue_count += 1
        if delay > 0:
            self._defer(msg, now + delay)
        else:
            self._requeue(msg)

    def touch(self, client: ClientV2, msg_id: bytes, now: float) -> None:
        msg = self._owned(client, msg_id)
        if isinstance(msg, str):
            raise TouchFailedError(f"TOUCH {msg_id.decode('latin-1')} failed {msg}")
        max_deadline = msg.delivered_at + self._host.options.max_msg_timeout
        self.in_flight.touch(msg, client.msg_timeout, now, max_deadline)

    # -- consumers ----------------------------------------------------------------------

    def add_client(self, client: ClientV2) -> None:
        limit = self._host.options.max_channel_consumers
        if limit and client.id not in self.clients and len(self.clients) >= limit:
            raise SubFailedError(
                f"SUB failed consumers for {self.topic_name}:{self.name} exceeds limit of {limit}"
            )
        self.clients[client.id] = client

    def remove_client(self, client: ClientV2) -> None:
        if self.clients.pop(client.id, None) is None:
            return
        if self.ephemeral and not self.clients and not self.exiting:
            self._delete(self.name)

    # -- administration ---------------------------------------------------------------------

    def pause(self) -> None:
        self.paused = True
        self._host.persist_metadata()

    def unpause(self, now: float) -> None:
        self.paused = False
        self._host.persist_metadata()
        self.dispatch(now)

    def empty(self) -> None:
        """Drop every message: queued, in flight and deferred (later FINs fail)."""
        self.memory.clear()
        self.in_flight.clear()
        self.deferred.clear()
        for client in self.clients.values():
            client.in_flight_count = 0
        self.backend.empty()

    def delete(self) -> None:
        """Close the channel's consumers and drop its messages."""
        self.exiting = True
        for client in list(self.clients.values()):
            client.kick()
        self.clients.clear()
        self.empty()
        self.backend.delete()

    def close(self, now: float) -> None:
        """Shutdown: everything held in memory, in flight or deferred goes to disk.

        Each is written again with its attempts and deferral, and its old record (if it was
        read back from disk) acknowledged, so a restart delivers it exactly once more.
        """
        self.exiting = True
        backend = self.backend
        held = [
            *map(Message.of, self.memory),
            *self.in_flight.messages.values(),
            *self.deferred.messages.values(),
        ]
        for msg in held:
            if backend.put(msg, now):
                msg.done()
        self.memory.clear()
        self.in_flight.clear()
        self.deferred.clear()

    def peek(self, n: int) -> list[Message]:
        """The next ``n`` messages waiting for delivery, left where they are."""
        waiting = list(
            map(Message.of, itertools.islice(itertools.chain(self.memory, self.backend.ready), n))
        )
        return waiting + self.backend.peek(n - len(waiting)) if len(waiting) < n else waiting
