"""A topic: takes published messages and copies each into every channel.

NSQ runs a pump goroutine per topic; here the fan-out is a plain call inside the publish, so a
publish costs no task switch. A topic with no channel (or paused) keeps its messages, and hands
them to the first channel that appears (or on unpause). A publish is all-or-nothing: room is
checked in every channel before any message is queued, so an MPUB is never half taken.

A topic knows the broker around it only as ``TopicHost``: what a channel needs, plus the
message IDs, whether nsqd is exiting, and the hooks that tell of channels made and gone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol

from ..wire.names import is_ephemeral
from .backend import BackendQueue, NoBackend
from .channel import Channel, ChannelHost
from .message import IdFactory, Item, Message, queue_records


class PutError(Exception):
    """A publish the topic cannot take; the text follows NSQ's ``PUB failed <reason>``."""


class TopicHost(ChannelHost, Protocol):
    """What a topic needs from the broker it lives in (``Broker``)."""

    @property
    def ids(self) -> IdFactory: ...

    @property
    def exiting(self) -> bool:
        """nsqd is shutting down: publishes are refused."""
        ...

    @property
    def draining(self) -> bool:
        """nsqd drains: publishes are refused."""
        ...

    @property
    def health(self) -> str:
        """``OK``, or why the disk fails (told to refused publishers)."""
        ...

    def channel_created(self, topic: Topic, channel: Channel) -> None: ...

    def channel_deleted(self, topic: Topic, channel: Channel) -> None: ...

    def delete_topic(self, name: str) -> None:
        """Called when an ephemeral topic's last channel is gone."""
        ...


class Topic:
    def __init__(self, name: str, host: TopicHost) -> None:
        self.name = name
        self.ephemeral = is_ephemeral(name)
        self._host = host
        self._mem_size = host.options.mem_queue_size
        self.channels: dict[str, Channel] = {}
        self.memory: deque[Item] = deque()
        self.backend: BackendQueue = (
            NoBackend()
            if self.ephemeral
            else host.open_backend(name, self._disk_read, self._wants_disk)
        )
        self._durable = self.backend.durable
        self.paused = False
        self.awaiting_channels = False  # held like "no channel yet" until lookupd answers (#1508)
        self.exiting = False
        self.draining = False  # POST /topic/drain: publishes refused, deleted once empty
        self.message_count = 0
        self.message_bytes = 0

    def depth(self) -> int:
        return len(self.memory) + self.backend.depth()

    # -- publishing ---------------------------------------------------------------------

    def put(self, bodies: list[bytes], now: float, timestamp: int, delay: float = 0.0) -> None:
        """Take every body or none (PutError). ``delay`` defers delivery by that many seconds.

        A batch costs per message one ID and one record, shared by every channel; the
        counters and the queues' limits are bumped and checked once per batch.
        """
        if self.exiting or self._host.exiting:
            raise PutError("exiting")
        if self._host.draining or self.draining:
            raise PutError("nsqd draining" if self._host.draining else "topic draining")
        n = len(bodies)
        channels = [] if self.awaiting_channels or self.paused else list(self.channels.values())
        if channels:
            for channel in channels:
                if not channel.has_room(n):
                    raise PutError(f"channel {channel.name}: {self._host.health}")
        elif not self._has_room(n):
            raise PutError(f"topic {self.name}: {self._host.health}")
        ids = self._host.ids.take(n)
        self.message_count += n
        self.message_bytes += sum(map(len, bodies))
        if delay > 0:
            deliver_at = now + delay
            deferred: list[Item] = [
                Message(i, b, timestamp, deliver_at) for i, b in zip(ids, bodies, strict=True)
            ]
            if channels:
                self._fan_out(deferred, channels, now)
            else:
                self._keep(deferred, now)
            return
        queued = queue_records(ids, bodies, timestamp)
        if not channels:
            self._keep(queued, now)
        for channel in channels:
            channel.put_queued(queued, now)

    def _has_room(self, n: int) -> bool:
        return (
            self.ephemeral
            or self.backend.writable()
            or (not self._durable and len(self.memory) + n <= self._mem_size)
        )

    def _keep(self, items: Sequence[Item], now: float) -> None:
        """No channel to give them to (or paused): memory, then disk."""
        memory, backend = self.memory, self.backend
        if self.ephemeral:
            memory.extend(items[: max(self._mem_size - len(memory), 0)])  # drop the rest
            return
        if not self._durable and len(memory) + len(items) <= self._mem_size and not backend.depth():
            memory.extend(items)
            return
        for item in items:
            if not self._durable and len(memory) < self._mem_size and not backend.depth():
                memory.append(item)
            elif not backend.put(Message.of(item), now):
                memory.append(item)  # _has_room() said yes

    def _fan_out(self, items: list[Item], channels: list[Channel], now: float) -> None:
        """Each channel its own copy of a ``Message``; a queued record is shared by all."""
        channels[0].put(items, now)
        for channel in channels[1:]:
            channel.put([m.copy() if isinstance(m, Message) else m for m in items], now)

    def _release(self, now: float) -> None:
        """Hand what the topic kept to its channels (first channel, unpause)."""
        if self.paused or self.awaiting_channels or not self.channels:
            return
        if self.memory:
            items = list(self.memory)
            self.memory.clear()
            self._fan_out(items, list(self.channels.values()), now)
        self.backend.request_read()

    def _disk_read(self, messages: list[Message]) -> None:
        """Messages read back from the topic's disk queue: on to the channels."""
        now = self._host.now()
        items: list[Item] = list(messages)
        if self.paused or self.awaiting_channels or not self.channels:  # changed since asked
            self._keep(items, now)
        else:
            self._fan_out(items, list(self.channels.values()), now)
        for msg in messages:
            msg.done()

    def _wants_disk(self) -> bool:
        return (
            not self.paused
            and not self.awaiting_channels
            and not self.exiting
            and bool(self.channels)
        )

    def end_channel_wait(self, now: float) -> None:
        """The lookupds' channels exist now (or they did not answer): deliver (#1508)."""
        self.awaiting_channels = False
        self._release(now)

    # -- channels -----------------------------------------------------------------------

    def get_channel(self, name: str, now: float) -> Channel:
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(
                self.name, name, self._host, self.delete_channel
            )
            self._host.channel_created(self, channel)
            self._release(now)
        return channel

    def delete_channel(self, name: str) -> None:
        channel = self.channels.pop(name)
        channel.delete()
        self._host.channel_deleted(self, channel)
        if self.ephemeral and not self.channels:
            self._host.delete_topic(self.name)

    # -- administration ---------------------------------------------------------------------

    def pause(self) -> None:
        self.paused = True
        self._host.persist_metadata()

    def unpause(self, now: float) -> None:
        self.paused = False
        self._host.persist_metadata()
        self._release(now)

    def empty(self) -> None:
        self.memory.clear()
        self.backend.empty()

    def delete(self) -> None:
        self.exiting = True
        for name in list(self.channels):
            channel = self.channels.pop(name)
            channel.delete()
        self.empty()
        self.backend.delete()

    def close(self, now: float) -> None:
        """Shutdown: every channel's held messages, then the topic's memory, to disk."""
        self.exiting = True
        for channel in self.channels.values():
            channel.close(now)
        for item in self.memory:
            self.backend.put(Message.of(item), now)
        self.memory.clear()
