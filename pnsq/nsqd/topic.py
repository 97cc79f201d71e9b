"""A topic: takes published messages and copies each into every channel.

NSQ runs a pump goroutine per topic; here the fan-out is a plain call inside the publish, so a
publish costs no task switch. A topic with no channel (or paused) keeps its messages, and hands
them to the first channel that appears (or on unpause). A publish is all-or-nothing: room is
checked in every channel before any message is queued, so an MPUB is never half taken.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ..wire.names import is_ephemeral
from .backend import BackendQueue, NoBackend
from .channel import Channel
from .message import Message

if TYPE_CHECKING:
    from .nsqd import NSQD


class PutError(Exception):
    """A publish the topic cannot take; the text follows NSQ's ``PUB failed <reason>``."""


class Topic:
    def __init__(self, name: str, nsqd: NSQD) -> None:
        self.name = name
        self.ephemeral = is_ephemeral(name)
        self._nsqd = nsqd
        self._mem_size = nsqd.options.mem_queue_size
        self.channels: dict[str, Channel] = {}
        self.memory: deque[Message] = deque()
        self.backend: BackendQueue = NoBackend()
        self.paused = False
        self.awaiting_channels = False  # held like "no channel yet" until lookupd answers (#1508)
        self.exiting = False
        self.message_count = 0
        self.message_bytes = 0

    def depth(self) -> int:
        return len(self.memory) + self.backend.depth()

    # -- publishing ---------------------------------------------------------------------

    def put(self, bodies: list[bytes], now: float, timestamp: int, delay: float = 0.0) -> None:
        """Take every body or none (PutError). ``delay`` defers delivery by that many seconds."""
        if self.exiting or self._nsqd.exiting:
            raise PutError("exiting")
        n = len(bodies)
        deliver_at = now + delay if delay > 0 else 0.0
        channels = [] if self.awaiting_channels else list(self.channels.values())
        if channels and not self.paused:
            if not deliver_at:
                for channel in channels:
                    if not channel.has_room(n):
                        raise PutError(f"channel {channel.name} is full")
        elif not self.ephemeral and len(self.memory) + n > self._mem_size:
            raise PutError("topic queue is full")
        ids = self._nsqd.ids.take(n)
        messages = [Message(i, b, timestamp, deliver_at) for i, b in zip(ids, bodies, strict=True)]
        self.message_count += n
        self.message_bytes += sum(map(len, bodies))
        if channels and not self.paused:
            self._fan_out(messages, channels, now)
        else:
            room = max(self._mem_size - len(self.memory), 0) if self.ephemeral else n
            self.memory.extend(messages[:room])  # ephemeral topics drop the overflow

    def _fan_out(self, messages: list[Message], channels: list[Channel], now: float) -> None:
        channels[0].put(messages, now)
        for channel in channels[1:]:
            channel.put([m.copy() for m in messages], now)

    def _release(self, now: float) -> None:
        """Hand what the topic kept to its channels (first channel, unpause)."""
        if self.paused or self.awaiting_channels or not self.channels or not self.memory:
            return
        messages = list(self.memory)
        self.memory.clear()
        channels = list(self.channels.values())
        for channel in channels:
            channel.message_count += len(messages)
        copies = [messages] + [[m.copy() for m in messages] for _ in channels[1:]]
        for channel, batch in zip(channels, copies, strict=True):
            for msg in batch:
                if msg.deliver_at > now:
                    channel.deferred.add(msg, msg.deliver_at)
                    self._nsqd.schedule(channel, msg.deliver_at)
                else:
                    channel.memory.append(msg)
            channel.dispatch(now)

    def end_channel_wait(self, now: float) -> None:
        """The lookupds' channels exist now (or they did not answer): deliver (#1508)."""
        self.awaiting_channels = False
        self._release(now)

    # -- channels -----------------------------------------------------------------------

    def get_channel(self, name: str, now: float) -> Channel:
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(self.name, name, self._nsqd)
            self._nsqd.channel_created(self, channel)
            self._release(now)
        return channel

    def delete_channel(self, name: str) -> None:
        channel = self.channels.pop(name)
        channel.delete()
        self._nsqd.channel_deleted(self, channel)
        if self.ephemeral and not self.channels:
            self._nsqd.delete_topic(self.name)

    # -- administration ---------------------------------------------------------------------

    def pause(self) -> None:
        self.paused = True

    def unpause(self, now: float) -> None:
        self.paused = False
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
