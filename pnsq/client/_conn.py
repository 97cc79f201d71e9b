"""One TCP connection to an nsqd: negotiation, a reader loop and a batched writer.

The reader takes whatever the socket has (up to 256 KiB), parses every complete frame with the
wire core's ``FrameReader``, answers heartbeats, hands all messages of the read to the delegate
in one call, and resolves request waiters in order (nsqd answers commands in order). Writes
(FIN, REQ, RDY, NOP, PUB ...) go into one buffer; a single writer task sends everything buffered
in one ``send`` whenever it wakes, so a read's worth of FINs leaves in one syscall.

A server silent for two heartbeat intervals is dead: the read times out and the connection
closes, as go-nsq does.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.abc

from pnsq import wire
from pnsq.wire import MSG_HEADER_LENGTH, encode_fin, encode_nop, encode_req

from .codecs import RAW, Codec
from .errors import NSQConnectionError, NSQProtocolError, PublishError, ServerError
from .message import FINISHED, Message

log = logging.getLogger("pnsq.client")

USER_AGENT = "pnsq-client/0.1"
_READ_SIZE = 256 * 1024
_TS_ATT = struct.Struct(">qH")
_PUBLISH_CODES = ("E_PUB_FAILED", "E_MPUB_FAILED", "E_DPUB_FAILED", "E_BAD_TOPIC", "E_BAD_MESSAGE")


@dataclass(frozen=True)
class ConnectionConfig:
    """What a connection sends in IDENTIFY, and its timeouts (seconds)."""

    client_id: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    hostname: str = field(default_factory=socket.gethostname)
    user_agent: str = USER_AGENT
    heartbeat_interval: float = 30.0
    output_buffer_size: int = 16384
    output_buffer_timeout: float = 0.25
    msg_timeout: float = 0.0  # 0: nsqd's default
    sample_rate: int = 0
    auth_secret: bytes | None = None
    connect_timeout: float = 1.0

    def identify(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "hostname": self.hostname,
            "user_agent": self.user_agent,
            "feature_negotiation": True,
            "heartbeat_interval": int(self.heartbeat_interval * 1000),
            "output_buffer_size": self.output_buffer_size,
            "output_buffer_timeout": int(self.output_buffer_timeout * 1000),
            "msg_timeout": int(self.msg_timeout * 1000),
            "sample_rate": self.sample_rate,
        }


class Delegate(Protocol):
    def on_messages(self, conn: Connection, messages: list[Message]) -> None: ...

    def on_message_done(self, conn: Connection, message: Message, outcome: int) -> None: ...


class _Waiter:
    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.result: bytes | BaseException = b""


class Connection:
    def __init__(
        self,
        stream: anyio.abc.SocketStream,
        address: tuple[str, int],
        config: ConnectionConfig,
        frames: wire.FrameReader,
        settings: dict[str, Any],
    ) -> None:
        self.stream = stream
        self.address = address
        self.address_text = f"{address[0]}:{address[1]}"
        self.config = config
        self.settings = settings
        self.max_rdy_count = int(settings.get("max_rdy_count", 2500))
        self.msg_timeout = settings.get("msg_timeout", 60000) / 1000
        self.loop_thread = threading.get_ident()
        self.delegate: Delegate | None = None
        self.codec: Codec = RAW
        self.default_requeue_delay: Callable[[int], float] = lambda attempts: 0.0
        self.in_flight = 0
        self.rdy = 0
        self.closed = False
        self.failed = False
        self._frames = frames
        self._waiters: deque[_Waiter] = deque()
        self._wbuf = bytearray()
        self._wake = anyio.Event()
        self._sending = False
        self._flushed: anyio.Event | None = None
        self._scope: anyio.CancelScope | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.address_text}>"

    @classmethod
    async def open(cls, address: tuple[str, int], config: ConnectionConfig) -> Connection:
        """Connect, send the magic and IDENTIFY (and AUTH when nsqd asks for it)."""
        frames = wire.FrameReader()
        try:
            with anyio.fail_after(config.connect_timeout):
                stream = await anyio.connect_tcp(*address)
        except (OSError, TimeoutError) as exc:
            raise NSQConnectionError(f"cannot connect to {address[0]}:{address[1]}: {exc}") from exc
        try:
            with anyio.fail_after(max(config.connect_timeout, 5.0)):
                await stream.send(wire.MAGIC_V2 + wire.encode_identify(config.identify()))
                data = await _read_response(stream, frames)
                settings: dict[str, Any] = {} if data == wire.OK else json.loads(data)
                if settings.get("auth_required"):
                    if config.auth_secret is None:
                        raise ServerError("E_AUTH_FIRST", "nsqd requires AUTH; set auth_secret")
                    await stream.send(wire.encode_auth(config.auth_secret))
                    await _read_response(stream, frames)
        except BaseException as exc:
            await stream.aclose()
            if isinstance(
                exc, TimeoutError | OSError | anyio.EndOfStream | anyio.BrokenResourceError
            ):
                raise NSQConnectionError(f"{address[0]}:{address[1]}: negotiation failed") from exc
            if isinstance(exc, ValueError):
                raise NSQProtocolError(f"{address[0]}:{address[1]}: bad IDENTIFY reply") from exc
            raise
        return cls(stream, address, config, frames, settings)

    async def subscribe(self, topic: str, channel: str) -> None:
        """SUB, before ``run``: no message can arrive until RDY is raised."""
        try:
            with anyio.fail_after(max(self.config.connect_timeout, 5.0)):
                await self.stream.send(wire.encode_sub(topic, channel))
                await _read_response(self.stream, self._frames)
        except (OSError, TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            await self._shutdown()
            raise NSQConnectionError(f"{self.address_text}: SUB failed") from exc
        except ServerError:
            await self._shutdown()
            raise

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes for the writer task (never blocks)."""
        if self.closed:
            return
        if not self._wbuf:
            self._wake.set()
        self._wbuf += data

    async def request(self, data: bytes) -> bytes:
        """Send a command that nsqd answers (SUB, PUB, MPUB, DPUB, CLS); return the answer."""
        if self.closed or self.failed:
            raise NSQConnectionError(f"connection to {self.address_text} is closed")
        waiter = _Waiter()
        self._waiters.append(waiter)
        self.write(data)
        await waiter.event.wait()
        if isinstance(waiter.result, BaseException):
            raise waiter.result
        return waiter.result

    def set_rdy(self, count: int) -> None:
        count = min(count, self.max_rdy_count)
        if count != self.rdy and not self.closed:
            self.rdy = count
            self.write(wire.encode_rdy(count))

    def message_done(self, message: Message, outcome: int, delay_ms: int) -> None:
        if outcome == FINISHED:
            self.write(encode_fin(message.id))
        else:
            self.write(encode_req(message.id, delay_ms))
        self.in_flight -= 1
        if self.delegate is not None:
            self.delegate.on_message_done(self, message, outcome)

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Read and write until the connection closes; then raise NSQConnectionError (or
        NSQProtocolError when nsqd sent garbage)."""
        try:
            async with anyio.create_task_group() as tg:
                self._scope = tg.cancel_scope
                tg.start_soon(self._guard, self._write_loop)
                await self._guard(self._read_loop)
        finally:
            await self._shutdown()
        if isinstance(self._error, NSQProtocolError):
            raise self._error
        raise NSQConnectionError(f"connection to {self.address_text} closed") from self._error

    async def _guard(self, loop: Callable[[], Awaitable[None]]) -> None:
        try:
            await loop()
        except (
            OSError,
            anyio.EndOfStream,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            NSQProtocolError,
        ) as exc:
            self._error = self._error or exc
        if self._scope is not None:
            self._scope.cancel()

    async def aclose(self) -> None:
        """Close now: pending requests fail with NSQConnectionError."""
        if self._scope is not None:
            self._scope.cancel()
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self.closed:
            return
        self.closed = True
        error = NSQConnectionError(f"connection to {self.address_text} closed")
        while self._waiters:
            waiter = self._waiters.popleft()
            waiter.result = error
            waiter.event.set()
        with anyio.CancelScope(shield=True):
            await self.stream.aclose()

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            data = bytes(self._wbuf)
            self._wbuf.clear()
            self._sending = True
            await self.stream.send(data)
            self._sending = False
            if self._flushed is not None and not self._wbuf:
                self._flushed.set()

    async def wait_flushed(self) -> None:
        """Until everything written so far has been handed to the socket."""
        while (self._wbuf or self._sending) and not self.closed:
            self._flushed = anyio.Event()
            await self._flushed.wait()

    async def _read_loop(self) -> None:
        timeout = 2 * self.config.heartbeat_interval + 1.0
        frames, stream = self._frames, self.stream
        if frames.trailing_data:
            self._handle_frames()
        while True:
            with anyio.move_on_after(timeout) as scope:
                data = await stream.receive(_READ_SIZE)
            if scope.cancelled_caught:
                log.warning("%s: no heartbeat for two intervals; closing", self.address_text)
                return
            frames.receive_data(data)
            self._handle_frames()

    def _handle_frames(self) -> None:
        frames = self._frames
        messages: list[Message] = []
        try:
            while (frame := frames.next_frame()) is not None:
                frame_type, data = frame
                if frame_type == wire.FRAME_TYPE_MESSAGE:
                    if len(data) < MSG_HEADER_LENGTH:
                        raise ValueError("short message frame")
                    ts, attempts = _TS_ATT.unpack_from(data)
                    messages.append(Message(self, ts, attempts, data[10:26], data[26:]))
                elif frame_type == wire.FRAME_TYPE_RESPONSE:
                    self._on_response(data)
                elif frame_type == wire.FRAME_TYPE_ERROR:
                    self._on_error(data)
                else:
                    raise ValueError(f"unknown frame type {frame_type}")
        except ValueError as exc:
            raise NSQProtocolError(f"{self.address_text}: {exc}") from exc
        finally:
            if messages:
                self.in_flight += len(messages)
                if self.delegate is not None:
                    self.delegate.on_messages(self, messages)

    def _on_response(self, data: bytes) -> None:
        if data == wire.HEARTBEAT:
            self.write(encode_nop())
        elif self._waiters:
            waiter = self._waiters.popleft()
            waiter.result = data
            waiter.event.set()

    def _on_error(self, data: bytes) -> None:
        error = wire.error_from_bytes(data)
        if not error.fatal:
            log.warning("%s: %s %s", self.address_text, error.code, error.description)
            return
        self.failed = True  # nsqd closes the connection after a fatal error
        cls = PublishError if error.code in _PUBLISH_CODES else ServerError
        if self._waiters:
            waiter = self._waiters.popleft()
            waiter.result = cls(error.code, error.description)
            waiter.event.set()
        else:
            log.error("%s: %s %s", self.address_text, error.code, error.description)


async def _read_response(stream: anyio.abc.SocketStream, frames: wire.FrameReader) -> bytes:
    """The next non-heartbeat response during negotiation; an error frame raises."""
    while True:
        frame = frames.next_frame()
        if frame is None:
            frames.receive_data(await stream.receive(_READ_SIZE))
            continue
        frame_type, data = frame
        if frame_type == wire.FRAME_TYPE_ERROR:
            error = wire.error_from_bytes(data)
            raise ServerError(error.code, error.description)
        if frame_type == wire.FRAME_TYPE_RESPONSE and data != wire.HEARTBEAT:
            return data
