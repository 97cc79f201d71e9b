"""Where a topic or channel puts messages its memory queue has no room for.

NSQ calls it the backend queue: a disk queue (``diskqueue.DiskQueue``) for durable topics and
channels, a no-op for ephemeral ones (``NoBackend``), which takes nothing: an ephemeral queue
drops what does not fit in memory, as NSQ's do.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from .message import Message

OnRead = Callable[[list[Message]], None]  # messages read back from the backend, to their owner
READ_AHEAD = 2000  # a consuming channel asks for more while fewer are read back and ready


class BackendQueue(Protocol):
    ready: deque[Message]
    """Messages read back from the backend, waiting for delivery (counted in ``depth``)."""

    corrupt_count: int

    durable: bool
    """Every message goes through it, acknowledged once fsynced (``--sync-every=1``)."""

    def put(self, msg: Message, now: float) -> bool:
        """Store the message; False when it cannot (the caller refuses or drops it)."""
        ...

    def writable(self) -> bool:
        """Whether ``put`` would take a message now."""
        ...

    def request_read(self) -> None:
        """The owner has room for more messages in ``ready``."""
        ...

    def peek(self, n: int) -> list[Message]:
        """Up to ``n`` stored messages not yet in ``ready``, left where they are."""
        ...

    def depth(self) -> int: ...

    def empty(self) -> None: ...

    def delete(self) -> None: ...


class NoBackend:
    corrupt_count = 0
    durable = False

    def __init__(self) -> None:
        self.ready: deque[Message] = deque()

    def put(self, msg: Message, now: float) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def request_read(self) -> None:
        pass

    def peek(self, n: int) -> list[Message]:
        return []

    def depth(self) -> int:
        return 0

    def empty(self) -> None:
        pass

    def delete(self) -> None:
        pass
