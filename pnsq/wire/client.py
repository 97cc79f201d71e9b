"""The client side of protocol V2 as a state machine: bytes in, events out, bytes to send.

``ClientConnection`` is what a client library drives, whatever its I/O (a blocking socket, anyio):
feed what the socket gave with ``receive_data``, take events with ``next_event`` (one, or
``NEED_DATA``) or ``next_events`` (every event of the buffered data, for a reader that handles a
whole socket read per pass), and send whatever ``data_to_send`` returns -- always before waiting
for more bytes, as an AUTH or a NOP may be queued. Commands (``sub``, ``pub``, ``fin`` ...) only
append their bytes to that outgoing buffer.

It owns the negotiation: the magic and IDENTIFY go out on construction; the reply is either a
plain ``OK`` or the JSON of feature negotiation. Then NSQ's upgrades, in its order: when the
reply grants ``tls_v1`` the machine reports ``UpgradeTLS`` (the I/O layer does the handshake,
the only step it must do itself) and reads nsqd's ``OK`` from inside TLS; when it grants snappy
or deflate, every byte from then on is compressed both ways (``compression.py``'s codecs, applied
in ``receive_data`` and ``data_to_send``, so the I/O layer never sees it) and a compressed ``OK``
follows. When the reply says ``auth_required`` the AUTH goes out by itself after the upgrades
(the secret travels encrypted), and ``Negotiated`` comes once all of it is done. Asking for TLS
and being refused it is an error, not a quiet fallback to plain text. A heartbeat is answered with NOP
in the outgoing bytes and reported as ``Heartbeat`` (and counted in ``heartbeats``).

Message frames become instances of ``message_type``, a ``MessageEvent`` subclass of the caller's
choosing: the client's ``Message`` is one, so a delivery costs one object, not an event and then
a message built from it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, Final, Generic, TypeVar, overload

from . import commands
from .compression import DeflateCodec, SnappyCodec
from .errors import AuthFirstError, error_from_bytes
from .events import (
    NEED_DATA,
    ErrorFrame,
    Event,
    Heartbeat,
    MessageEvent,
    NeedData,
    Negotiated,
    Response,
    UpgradeTLS,
)
from .frames import (
    FRAME_TYPE_ERROR,
    FRAME_TYPE_MESSAGE,
    FRAME_TYPE_RESPONSE,
    HEARTBEAT,
    MSG_HEADER_LENGTH,
    OK,
    FrameReader,
)

M = TypeVar("M", bound=MessageEvent)

_MESSAGE_HEADER = struct.Struct(">qH")
_HEARTBEAT_EVENT: Final = Heartbeat()
_NOP: Final = commands.encode_nop()
_UPGRADE_TLS_EVENT: Final = UpgradeTLS()


class Phase(Enum):
    """Where the connection is: negotiating, usable, or done for."""

    IDENTIFYING = "identifying"
    UPGRADING = "upgrading"  # TLS or compression started; nsqd's OK through it comes next
    AUTHENTICATING = "authenticating"
    READY = "ready"
    FAILED = "failed"  # a fatal error frame came, or the server's bytes were garbage


_NEGOTIATING: Final = frozenset({Phase.IDENTIFYING, Phase.UPGRADING, Phase.AUTHENTICATING})


class ClientConnection(Generic[M]):
    """One connection to nsqd, from the client's side (no socket, clock or event loop)."""

    @overload
    def __init__(
        self: ClientConnection[MessageEvent],
        identify: Mapping[str, Any],
        *,
        auth_secret: bytes | None = None,
        max_frame_size: int = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        identify: Mapping[str, Any],
        *,
        auth_secret: bytes | None = None,
        max_frame_size: int = ...,
        message_type: type[M],
    ) -> None: ...

    def __init__(
        self,
        identify: Mapping[str, Any],
        *,
        auth_secret: bytes | None = None,
        max_frame_size: int = 16 * 1024 * 1024,
        message_type: type[Any] = MessageEvent,
    ) -> None:
        self.phase = Phase.IDENTIFYING
        self.settings: dict[str, Any] = {}  # the IDENTIFY reply ({} for a plain OK)
        self.heartbeats = 0
        self._auth_secret = auth_secret
        self._message_type: type[M] = message_type
        self._frames = FrameReader(max_frame_size)
        self._out = bytearray(commands.MAGIC_V2 + commands.encode_identify(identify))
        self._broken: ValueError | None = None
        self._asked = identify
        self._upgrades: list[str] = []  # still to do after the IDENTIFY reply: "tls", "snappy"...
        self.compression: SnappyCodec | DeflateCodec | None = None
        self._codec_error: ValueError | None = None  # corrupt compressed input, raised in turn

    # -- bytes in, events out -------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self.compression is None:
            self._frames.receive_data(data)
        else:
            self._inflate(self.compression, data)

    def _inflate(self, codec: SnappyCodec | DeflateCodec, data: bytes) -> None:
        """Decompressed bytes to the frame reader; corrupt input is raised once the frames
        before it have been taken."""
        try:
            self._frames.receive_data(codec.decompress(data))
        except ValueError as exc:
            self._codec_error = self._codec_error or exc

    def _refill(self) -> bool:
        """Whether more decompressed bytes reached the frame reader (a codec holds back what
        would exceed its output bound)."""
        if self._codec_error is not None:
            raise self._codec_error
        if self.compression is None or not self.compression.pending:
            return False
        self._inflate(self.compression, b"")
        return True

    def next_event(self) -> Event[M] | NeedData:
        """The next event, or ``NEED_DATA``. Garbage from the server raises ValueError."""
        if self._broken is not None:
            raise self._broken
        try:
            while True:
                while (frame := self._frames.next_frame()) is not None:
                    event = self._event(*frame)
                    if event is not None:
                        return event
                if self.compression is None or not self._refill():
                    break
        except ValueError as exc:
            self._fail(exc)
            raise
        return NEED_DATA

    def next_events(self) -> list[Event[M]]:
        """Every event of the data received so far ([] when no frame is whole); with
        compression, of the data decompressed so far (call again until it returns []).

        Garbage after some good frames: those come first, the ValueError on the next call.
        """
        if self._broken is not None:
            raise self._broken
        events: list[Event[M]] = []
        next_frame, append, make = self._frames.next_frame, events.append, self._message_type
        unpack, message, header_length = (
            _MESSAGE_HEADER.unpack_from,
            FRAME_TYPE_MESSAGE,
            MSG_HEADER_LENGTH,
        )
        try:
            while True:
                while (frame := next_frame()) is not None:
                    frame_type, data = frame
                    if frame_type == message and len(data) >= header_length:
                        timestamp, attempts = unpack(data)
                        append(make(timestamp, attempts, data[10:26], data[26:]))
                    elif (event := self._event(frame_type, data)) is not None:
                        append(event)
                # One codec output's worth per call: a bomb of tiny messages stays bounded.
                if events or self.compression is None or not self._refill():
                    break
        except ValueError as exc:
            self._fail(exc)
            if not events:
                raise
        return events

    def _fail(self, exc: ValueError) -> None:
        """The stream is garbage from here on: every later call raises the same error."""
        self.phase = Phase.FAILED
        self._broken = exc

    def data_to_send(self) -> bytes:
        """Everything queued to go out since the last call (b"" if nothing)."""
        data = bytes(self._out)
        self._out.clear()
        if self.compression is not None and data:
            return self.compression.compress(data)
        return data

    @property
    def pending_output(self) -> int:
        """How many bytes ``data_to_send`` would return."""
        return len(self._out)

    @property
    def trailing_data(self) -> bytes:
        """Bytes received but not yet parsed into an event."""
        return self._frames.trailing_data

    # -- frames ---------------------------------------------------------------------------

    def _event(self, frame_type: int, data: bytes) -> Event[M] | None:
        if frame_type == FRAME_TYPE_RESPONSE:
            if data == HEARTBEAT:
                self._out += _NOP
                self.heartbeats += 1
                return _HEARTBEAT_EVENT
            if self.phase in _NEGOTIATING:
                return self._negotiation_reply(data)
            return Response(data)
        if frame_type == FRAME_TYPE_ERROR:
            error = error_from_bytes(data)
            if error.fatal:
                self.phase = Phase.FAILED  # nsqd closes the connection after it
            return ErrorFrame(error)
        if frame_type == FRAME_TYPE_MESSAGE:
            if len(data) < MSG_HEADER_LENGTH:
                raise ValueError(f"message too short: {len(data)} < {MSG_HEADER_LENGTH} bytes")
            timestamp, attempts = _MESSAGE_HEADER.unpack_from(data)
            return self._message_type(timestamp, attempts, data[10:26], data[26:])
        raise ValueError(f"unknown frame type {frame_type}")

    def _negotiation_reply(self, data: bytes) -> Negotiated | UpgradeTLS | None:
        """IDENTIFY's reply, the upgrades' OKs, then AUTH's; None while waiting for the next."""
        if self.phase is Phase.IDENTIFYING:
            self.settings = {} if data == OK else _json_object(data, "IDENTIFY")
            self._upgrades = self._granted_upgrades()
            return self._next_step()
        if self.phase is Phase.UPGRADING:
            if data != OK:
                raise ValueError(f"expected OK through the upgraded stream, got {data[:64]!r}")
            return self._next_step()
        return self._negotiated(_json_object(data, "AUTH"))

    def _granted_upgrades(self) -> list[str]:
        settings, asked = self.settings, self._asked
        if bool(settings.get("tls_v1")) != bool(asked.get("tls_v1")):
            if asked.get("tls_v1"):
                raise ValueError("nsqd refused TLS (tls_v1 false in its IDENTIFY reply)")
            raise ValueError("nsqd answered tls_v1 true to a client that did not ask for it")
        if settings.get("snappy") and settings.get("deflate"):
            raise ValueError("nsqd granted both snappy and deflate")
        steps = ["tls"] if settings.get("tls_v1") else []
        steps += [name for name in ("snappy", "deflate") if settings.get(name)]
        return steps

    def _next_step(self) -> Negotiated | UpgradeTLS | None:
        if self._upgrades:
            step = self._upgrades.pop(0)
            self.phase = Phase.UPGRADING
            if step == "tls":
                if self._frames.trailing_data:
                    raise ValueError("nsqd sent bytes before the TLS handshake")
                return _UPGRADE_TLS_EVENT
            self._start_compression(step)
            return None
        if not self.settings.get("auth_required"):
            return self._negotiated(None)
        if self._auth_secret is None:
            self.phase = Phase.FAILED
            raise AuthFirstError("nsqd requires AUTH; set auth_secret")
        self._out += commands.encode_auth(self._auth_secret)
        self.phase = Phase.AUTHENTICATING
        return None

    def _start_compression(self, name: str) -> None:
        """From here every byte both ways is compressed; what arrived after the last plain
        frame already is (nsqd's compressed OK may share a read with its IDENTIFY reply)."""
        if name == "snappy":
            self.compression = SnappyCodec()
        else:
            level = int(self._asked.get("deflate_level") or 6)
            self.compression = DeflateCodec(min(max(level, 1), 9))
        self._inflate(self.compression, self._frames.take_trailing_data())

    def _negotiated(self, auth: dict[str, Any] | None) -> Negotiated:
        self.phase = Phase.READY
        return Negotiated(self.settings, auth)

    # -- commands -------------------------------------------------------------------------

    def sub(self, topic: str, channel: str) -> None:
        self._out += commands.encode_sub(topic, channel)

    def rdy(self, count: int) -> None:
        self._out += b"RDY %d\n" % count

    def fin(self, msg_id: bytes) -> None:
        self._out += b"FIN " + msg_id + b"\n"

    def req(self, msg_id: bytes, timeout_ms: int) -> None:
        self._out += b"REQ " + msg_id + b" %d\n" % timeout_ms

    def touch(self, msg_id: bytes) -> None:
        self._out += commands.encode_touch(msg_id)

    def pub(self, topic: str, body: bytes) -> None:
        self._out += commands.encode_pub(topic, body)

    def mpub(self, topic: str, bodies: Iterable[bytes]) -> None:
        self._out += commands.encode_mpub(topic, bodies)

    def dpub(self, topic: str, delay_ms: int, body: bytes) -> None:
        self._out += commands.encode_dpub(topic, delay_ms, body)

    def cls(self) -> None:
        self._out += commands.encode_cls()

    def nop(self) -> None:
        self._out += _NOP


def _json_object(data: bytes, command: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise ValueError(f"{command} reply is neither OK nor a JSON object: {data[:64]!r}")
    return value
