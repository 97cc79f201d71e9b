"""A small NSQ V2 client for tests: real sockets or memory streams, one frame at a time.

It speaks through pnsq.wire (the encoders and ``FrameReader``), so what a test asserts is what
went over the wire. Every read waits under a deadline (``timeout``, in the clock of the running
trio loop: real seconds on sockets, virtual seconds under ``MockClock``), so a missing frame fails
the test instead of hanging it. Heartbeats are answered with NOP, as real clients do, and are
skipped by the readers unless asked for.

``sync()`` is the barrier tests use instead of sleeping: nsqd answers commands in order and
queues a message for a consumer in the same step as the command that freed room or brought it,
so once the answers to two PUBs sent one after the other have come back, every frame caused by
the commands before them has arrived.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self

import trio
import trio.testing

from pnsq.nsqd.nsqd import NSQD
from pnsq.wire import (
    FRAME_TYPE_ERROR,
    FRAME_TYPE_MESSAGE,
    FRAME_TYPE_RESPONSE,
    HEARTBEAT,
    MAGIC_V2,
    FrameReader,
    decode_message,
    encode_cls,
    encode_dpub,
    encode_fin,
    encode_identify,
    encode_mpub,
    encode_nop,
    encode_pub,
    encode_rdy,
    encode_req,
    encode_sub,
    encode_touch,
)

DEFAULT_TIMEOUT = 5.0
StartNSQD = Callable[..., Awaitable[NSQD]]  # the start_nsqd fixture: Options overrides
SYNC_TOPIC = "sync#ephemeral"  # ephemeral: never fills up, never refuses a PUB


@dataclass(frozen=True)
class Message:
    timestamp: int
    attempts: int
    id: bytes
    body: bytes
    received_at: float  # trio.current_time() when it was read


class ConnectionClosedError(Exception):
    """The server closed the connection while a frame was expected."""


class UnexpectedFrameError(AssertionError):
    def __init__(self, expected: str, frame_type: int, data: bytes) -> None:
        super().__init__(f"expected {expected}, got frame type {frame_type}: {data[:200]!r}")
        self.frame_type = frame_type
        self.data = data


class V2Client:
    def __init__(self, stream: trio.abc.Stream, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.stream = stream
        self.timeout = timeout
        self.heartbeats = 0
        self.reply_to_heartbeats = True
        self.closed = False
        self._frames = FrameReader()
        self._pending: list[Message] = []  # messages read while waiting for something else

    @classmethod
    async def connect(
        cls, address: tuple[str, int], *, magic: bool = True, read_timeout: float = DEFAULT_TIMEOUT
    ) -> V2Client:
        stream = await trio.open_tcp_stream(*address)
        client = cls(stream, timeout=read_timeout)
        if magic:
            await client.send(MAGIC_V2)
        return client

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.stream.aclose()

    # -- sending --------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def identify(self, **fields: Any) -> bytes:
        """IDENTIFY and return the response: b"OK" or the negotiated JSON."""
        await self.send(encode_identify(fields))
        return await self.read_response()

    async def identify_json(self, **fields: Any) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(await self.identify(feature_negotiation=True, **fields))
        return data

    async def sub(self, topic: str, channel: str) -> None:
        await self.send(encode_sub(topic, channel))
        await self.expect_response(b"OK")

    async def subscribe(self, topic: str, channel: str, rdy: int = 1) -> None:
        await self.sub(topic, channel)
        if rdy:
            await self.rdy(rdy)

    async def pub(self, topic: str, body: bytes) -> None:
        await self.send(encode_pub(topic, body))
        await self.expect_response(b"OK")

    async def mpub(self, topic: str, bodies: list[bytes]) -> None:
        await self.send(encode_mpub(topic, bodies))
        await self.expect_response(b"OK")

    async def dpub(self, topic: str, delay_ms: int, body: bytes) -> None:
        await self.send(encode_dpub(topic, delay_ms, body))
        await self.expect_response(b"OK")

    async def rdy(self, count: int) -> None:
        await self.send(encode_rdy(count))

    async def fin(self, msg_id: bytes) -> None:
        await self.send(encode_fin(msg_id))

    async def req(self, msg_id: bytes, timeout_ms: int = 0) -> None:
        await self.send(encode_req(msg_id, timeout_ms))

    async def touch(self, msg_id: bytes) -> None:
        await self.send(encode_touch(msg_id))

    async def cls(self) -> None:
        await self.send(encode_cls())
        await self.expect_response(b"CLOSE_WAIT")

    async def nop(self) -> None:
        await self.send(encode_nop())

    # -- reading --------------------------------------------------------------------------

    async def read_frame(self, *, skip_heartbeats: bool = True) -> tuple[int, bytes]:
        """The next frame, waiting at most ``timeout``; ConnectionClosedError at end of stream."""
        with trio.fail_after(self.timeout):
            while True:
                frame = self._frames.next_frame()
                if frame is None:
                    await self._receive()
                    continue
                if frame == (FRAME_TYPE_RESPONSE, HEARTBEAT):
                    self.heartbeats += 1
                    if self.reply_to_heartbeats:
                        await self.send(encode_nop())
                    if skip_heartbeats:
                        continue
                return frame

    async def _receive(self) -> None:
        if self.closed:
            raise ConnectionClosedError("connection closed")
        try:
            data = await self.stream.receive_some(64 * 1024)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.closed = True
            raise ConnectionClosedError("connection closed")
        self._frames.receive_data(bytes(data))

    async def read_response(self) -> bytes:
        """The next response frame; messages that arrive first are kept for read_message."""
        while True:
            frame_type, data = await self.read_frame()
            if frame_type == FRAME_TYPE_MESSAGE:
                self._pending.append(self._message(data))
            elif frame_type == FRAME_TYPE_RESPONSE:
                return data
            else:
                raise UnexpectedFrameError("a response", frame_type, data)

    async def expect_response(self, expected: bytes) -> None:
        data = await self.read_response()
        assert data == expected, f"expected response {expected!r}, got {data!r}"

    async def read_error(self) -> bytes:
        """The next frame, which must be an error: its payload, e.g. b"E_INVALID ..."."""
        frame_type, data = await self.read_frame()
        if frame_type != FRAME_TYPE_ERROR:
            raise UnexpectedFrameError("an error", frame_type, data)
        return data

    async def read_message(self) -> Message:
        if self._pending:
            return self._pending.pop(0)
        frame_type, data = await self.read_frame()
        if frame_type != FRAME_TYPE_MESSAGE:
            raise UnexpectedFrameError("a message", frame_type, data)
        return self._message(data)

    async def read_messages(self, n: int) -> list[Message]:
        return [await self.read_message() for _ in range(n)]

    @staticmethod
    def _message(data: bytes) -> Message:
        timestamp, attempts, msg_id, body = decode_message(data)
        return Message(timestamp, attempts, msg_id, body, trio.current_time())

    async def sync(self) -> list[Message]:
        """Every message the server has queued for us so far (see the module docstring)."""
        for _ in range(2):
            await self.pub(SYNC_TOPIC, b"sync")
        messages, self._pending = self._pending, []
        return messages

    async def expect_closed(self) -> None:
        """The server closes the connection (heartbeats aside, nothing more may arrive)."""
        try:
            frame_type, data = await self.read_frame()
        except ConnectionClosedError:
            return
        raise UnexpectedFrameError("the connection to close", frame_type, data)


async def open_consumer(
    address: tuple[str, int], topic: str, channel: str, rdy: int = 1, **identify: Any
) -> V2Client:
    client = await V2Client.connect(address)
    if identify:
        await client.identify(**identify)
    await client.subscribe(topic, channel, rdy)
    return client


async def wait_until(predicate: Callable[[], object], deadline: float = DEFAULT_TIMEOUT) -> None:
    """Wait, at most ``deadline`` seconds, until ``predicate()`` holds (server-side state).

    It looks again each time every task has gone idle, i.e. once the server has acted on
    whatever the kernel handed it.
    """
    with trio.fail_after(deadline):
        while not predicate():
            await trio.testing.wait_all_tasks_blocked(cushion=0.005)


def size_prefix(n: int) -> bytes:
    return struct.pack(">i", n)
