"""Where a topic or channel puts messages its memory queue has no room for.

NSQ calls it the backend queue: a diskqueue for durable topics and channels, a no-op for
ephemeral ones. Until the disk queue exists every queue uses ``NoBackend``, which takes nothing:
a full memory queue then refuses a publish (ephemeral ones drop the message, as NSQ's do).
"""

from __future__ import annotations

from typing import Protocol

from .message import Message


class BackendQueue(Protocol):
    def put(self, message: Message) -> bool:
        """Store the message; False when it cannot (the caller refuses or drops it)."""
        ...

    def get(self) -> Message | None:
        """The oldest stored message, removed; None when empty."""
        ...

    def depth(self) -> int: ...

    def empty(self) -> None: ...

    def close(self) -> None: ...

    def delete(self) -> None: ...


class NoBackend:
    def put(self, message: Message) -> bool:
        return False

    def get(self) -> Message | None:
        return None

    def depth(self) -> int:
        return 0

    def empty(self) -> None:
        pass

    def close(self) -> None:
        pass

    def delete(self) -> None:
        pass
