"""One TCP connection to an nsqd: the wire core's ``ClientConnection`` driven by anyio.

The state machine owns the protocol (negotiation, frames to events, heartbeat answers, the bytes
of every command); this module owns the I/O. The reader takes whatever the socket has (up to
256 KiB), takes every event of it in one call, hands all messages of the read to the delegate in
one call, and resolves request waiters in order (nsqd answers commands in order). Commands (FIN,
REQ, RDY, NOP, PUB ...) accumulate in the state machine's outgoing buffer; a single writer task
sends everything buffered in one ``send`` whenever it wakes, so a read's worth of FINs leaves in
one syscall.

A server silent for two heartbeat intervals is dead: the read times out and the connection
closes, as go-nsq does.

The upgrades NSQ negotiates in IDENTIFY cost this module one thing: when the state machine says
``UpgradeTLS``, the TCP stream is wrapped in anyio's TLS stream (no close_notify expected, as Go
does not send one) and everything after goes through it. Compression happens inside the state
machine, so the loops below are the same with or without it.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from pnsq import wire

from .codecs import RAW, Codec
from .config import ConnectionConfig as ConnectionConfig  # its old home; importers still use it
from .errors import NSQConnectionError, NSQProtocolError, PublishError, ServerError, server_error
from .message import FINISHED, Message

log = logging.getLogger("pnsq.client")

_READ_SIZE = 256 * 1024
_PUBLISH_CODES = ("E_PUB_FAILED", "E_MPUB_FAILED", "E_DPUB_FAILED", "E_BAD_TOPIC", "E_BAD_MESSAGE")


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
        stream: anyio.abc.ByteStream,
        address: tuple[str, int],
        config: ConnectionConfig,
        proto: wire.ClientConnection[Message],
    ) -> None:
        self.stream = stream
        self.address = address
        self.address_text = f"{address[0]}:{address[1]}"
        self.config = config
        self.settings = proto.settings
        self.max_rdy_count = int(self.settings.get("max_rdy_count", 2500))
        self.msg_timeout: float = self.settings.get("msg_timeout", 60000) / 1000
        self.loop_thread = threading.get_ident()
        self.delegate: Delegate | None = None
        self.codec: Codec = RAW
        self.default_requeue_delay: Callable[[int], float] = lambda attempts: 0.0
        self.in_flight = 0
        self.rdy = 0
        self.closed = False
        self.failed = False
        self._proto = proto
        self._waiters: deque[_Waiter] = deque()
        self._wake = anyio.Event()
        self._woken = False  # _wake is set and the writer has not yet taken the bytes
        self._sending = False
        self._flushed: anyio.Event | None = None
        self._scope: anyio.CancelScope | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.address_text}>"

    @classmethod
    async def open(cls, address: tuple[str, int], config: ConnectionConfig) -> Connection:
        """Connect, send the magic and IDENTIFY, do the upgrades nsqd grants (TLS, snappy or
        deflate), and AUTH when nsqd asks for it."""
        text = f"{address[0]}:{address[1]}"
        try:
            with anyio.fail_after(config.connect_timeout):
                tcp = await anyio.connect_tcp(*address)
        except (OSError, TimeoutError) as exc:
            raise NSQConnectionError(f"cannot connect to {text}: {exc}") from exc
        proto = wire.ClientConnection(
            config.identify(), auth_secret=config.auth_secret, message_type=Message
        )
        try:
            with anyio.fail_after(max(config.connect_timeout, 5.0)):
                stream = await _negotiate(tcp, proto, config, address[0])
        except (TimeoutError, OSError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            reason = f": {exc}" if isinstance(exc, ssl.SSLError) else ""
            raise NSQConnectionError(f"{text}: negotiation failed{reason}") from exc
        except wire.ProtocolError as exc:  # nsqd wants AUTH and we have no secret
            raise server_error(exc.code, exc.description) from exc
        except ValueError as exc:
            raise NSQProtocolError(f"{text}: bad negotiation: {exc}") from exc
        return cls(stream, address, config, proto)

    async def subscribe(self, topic: str, channel: str) -> None:
        """SUB, before ``run``: no message can arrive until RDY is raised."""
        self._proto.sub(topic, channel)
        try:
            with anyio.fail_after(max(self.config.connect_timeout, 5.0)):
                await _next_reply(self.stream, self._proto)
        except (OSError, TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            await self._shutdown()
            raise NSQConnectionError(f"{self.address_text}: SUB failed") from exc
        except (ServerError, ValueError) as exc:
            await self._shutdown()
            if isinstance(exc, ValueError):
                raise NSQProtocolError(f"{self.address_text}: {exc}") from exc
            raise

    # -- commands (queued; the writer task sends them) -------------------------------------

    async def publish(self, topic: str, body: bytes) -> bytes:
        """PUB; returns nsqd's answer (OK)."""
        waiter = self._expect_reply()
        self._proto.pub(topic, body)
        return await self._reply(waiter)

    async def multi_publish(self, topic: str, bodies: list[bytes]) -> bytes:
        waiter = self._expect_reply()
        self._proto.mpub(topic, bodies)
        return await self._reply(waiter)

    async def deferred_publish(self, topic: str, delay_ms: int, body: bytes) -> bytes:
        waiter = self._expect_reply()
        self._proto.dpub(topic, delay_ms, body)
        return await self._reply(waiter)

    async def close_wait(self) -> None:
        """CLS: nsqd stops sending messages; returns on its CLOSE_WAIT, which comes after the
        last message it sent on this connection."""
        waiter = self._expect_reply()
        self._proto.cls()
        await self._reply(waiter)

    def set_rdy(self, count: int) -> None:
        count = min(count, self.max_rdy_count)
        if count != self.rdy and not self.closed:
            self.rdy = count
            self._proto.rdy(count)
            self._wake_writer()

    def touch(self, msg_id: bytes) -> None:
        self._proto.touch(msg_id)
        self._wake_writer()

    def message_done(self, message: Message, outcome: int, delay_ms: int) -> None:
        if outcome == FINISHED:
            self._proto.fin(message.id)
        else:
            self._proto.req(message.id, delay_ms)
        if not self._woken:
            self._wake_writer()
        self.in_flight -= 1
        if self.delegate is not None:
            self.delegate.on_message_done(self, message, outcome)

    def _expect_reply(self) -> _Waiter:
        if self.closed or self.failed:
            raise NSQConnectionError(f"connection to {self.address_text} is closed")
        waiter = _Waiter()
        self._waiters.append(waiter)
        return waiter

    async def _reply(self, waiter: _Waiter) -> bytes:
        self._wake_writer()
        await waiter.event.wait()
        if isinstance(waiter.result, BaseException):
            raise waiter.result
        return waiter.result

    def _wake_writer(self) -> None:
        if not self._woken and not self.closed:
            self._woken = True
            self._wake.set()

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
        proto, stream = self._proto, self.stream
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            self._woken = False
            data = proto.data_to_send()
            if data:
                self._sending = True
                await stream.send(data)
                self._sending = False
            if self._flushed is not None and not proto.pending_output:
                self._flushed.set()

    async def wait_flushed(self) -> None:
        """Until everything written so far has been handed to the socket."""
        while (self._proto.pending_output or self._sending) and not self.closed:
            self._flushed = anyio.Event()
            await self._flushed.wait()

    async def _read_loop(self) -> None:
        timeout = 2 * self.config.heartbeat_interval + 1.0
        proto, stream = self._proto, self.stream
        self._handle_events()  # whatever arrived with the SUB's answer
        while True:
            with anyio.move_on_after(timeout) as scope:
                data = await stream.receive(_READ_SIZE)
            if scope.cancelled_caught:
                log.warning("%s: no heartbeat for two intervals; closing", self.address_text)
                return
            proto.receive_data(data)
            self._handle_events()

    def _handle_events(self) -> None:
        try:
            while events := self._proto.next_events():
                self._dispatch(events)
        except ValueError as exc:
            raise NSQProtocolError(f"{self.address_text}: {exc}") from exc
        if self._proto.pending_output:  # NOPs answering heartbeats
            self._wake_writer()

    def _dispatch(self, events: list[wire.Event[Message]]) -> None:
        codec, mixed = self.codec, False
        for event in events:
            if isinstance(event, Message):
                event._conn = self
                event.codec = codec
            elif isinstance(event, wire.Response):
                mixed = True
                self._on_response(event.data)
            else:
                mixed = True
                if isinstance(event, wire.ErrorFrame):
                    self._on_error(event.error)
        # A read of nothing but messages (the common case) is handed over as it is.
        messages = [e for e in events if isinstance(e, Message)] if mixed else events
        if messages:
            self.in_flight += len(messages)
            if self.delegate is not None:
                self.delegate.on_messages(self, cast("list[Message]", messages))

    def _on_response(self, data: bytes) -> None:
        if self._waiters:
            waiter = self._waiters.popleft()
            waiter.result = data
            waiter.event.set()

    def _on_error(self, error: wire.ProtocolError) -> None:
        if not error.fatal:
            log.warning("%s: %s %s", self.address_text, error.code, error.description)
            return
        self.failed = True  # nsqd closes the connection after a fatal error
        if self._waiters:
            waiter = self._waiters.popleft()
            waiter.result = (
                PublishError(error.code, error.description)
                if error.code in _PUBLISH_CODES
                else server_error(error.code, error.description)
            )
            waiter.event.set()
        else:
            log.error("%s: %s %s", self.address_text, error.code, error.description)


async def _negotiate(
    stream: anyio.abc.ByteStream,
    proto: wire.ClientConnection[Message],
    config: ConnectionConfig,
    host: str,
) -> anyio.abc.ByteStream:
    """The stream to use once negotiation is done (TLS-wrapped when nsqd agreed to TLS); closed
    when negotiation fails."""
    try:
        while not isinstance(event := await _next_reply(stream, proto), wire.Negotiated):
            if not isinstance(event, wire.UpgradeTLS):
                raise ValueError(f"unexpected reply {event!r} during negotiation")
            context = config.tls_context
            if context is None:  # the state machine only upgrades what IDENTIFY asked for
                raise ValueError("nsqd started TLS that was not asked for")
            stream = await TLSStream.wrap(
                stream,
                hostname=config.tls_server_hostname or host,
                ssl_context=context,
                standard_compatible=False,
            )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
        raise
    return stream


async def _next_reply(
    stream: anyio.abc.ByteStream, proto: wire.ClientConnection[Message]
) -> wire.Negotiated | wire.Response | wire.UpgradeTLS:
    """The next answer while no reader task runs (negotiation, SUB), sending what the state
    machine queued on the way (IDENTIFY, AUTH, NOPs); a fatal error frame raises ServerError."""
    while True:
        event = proto.next_event()
        if proto.pending_output:
            await stream.send(proto.data_to_send())
        if isinstance(event, wire.NeedData):
            proto.receive_data(await stream.receive(_READ_SIZE))
        elif isinstance(event, wire.Negotiated | wire.Response | wire.UpgradeTLS):
            return event
        elif isinstance(event, wire.ErrorFrame) and event.fatal:
            raise server_error(event.error.code, event.error.description)
