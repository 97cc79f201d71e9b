"""The server side of protocol V2: bytes in, validated commands out.

``CommandReader`` knows the client's state (init, subscribed, closing) because NSQ checks state
before parameters, and the order decides which error a client sees. It parses one command per
``next_command()`` call so that the server can act on it (a SUB changes the state the next
RDY is checked against) before the next is parsed; many commands are still parsed per socket
read. A command waiting for its body returns None and is parsed again from its first byte when
more data comes (commit/rollback, nothing copied until the command is whole).

Errors are raised in NSQ's order with NSQ's texts; all of them are fatal (the non-fatal
FIN/REQ/TOUCH failures belong to the broker, which knows what is in flight).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum

from .commands import (
    MAGIC_V2,
    Auth,
    Cls,
    Command,
    DPub,
    Fin,
    Identify,
    MPub,
    Nop,
    Pub,
    Rdy,
    Req,
    Sub,
    Touch,
)
from .errors import (
    BadBodyError,
    BadChannelError,
    BadMessageError,
    BadProtocolError,
    BadTopicError,
    InvalidError,
    ProtocolError,
)
from .frames import MSG_ID_LENGTH
from .mpub import check_mpub_count, check_mpub_part, uniform_parts
from .names import is_valid_name

MAX_LINE_LENGTH = 16 * 1024  # Go nsqd reads lines through a 16 KiB bufio buffer
_COMPACT_AT = 256 * 1024

_INT32 = struct.Struct(">i")
_FIN_LENGTH = 4 + MSG_ID_LENGTH + 1
_FIN_RUN = 256  # FINs copied out of the buffer at a time
_TOPICS_KEPT = 64  # validated topic names a reader remembers
_UINT64_MASK = (1 << 64) - 1


class ClientState(IntEnum):
    """The numbers NSQ shows in /stats (1 and 2 exist but V2 never uses them)."""

    INIT = 0
    DISCONNECTED = 1
    CONNECTED = 2
    SUBSCRIBED = 3
    CLOSING = 4


_FIN_STATES = (ClientState.SUBSCRIBED, ClientState.CLOSING)


def parse_base10(value: bytes) -> int:
    """NSQ's ByteToBase10: ASCII digits only ("" is 0), wrapping like uint64, read as int64."""
    n = 0
    for d in value:
        if not 48 <= d <= 57:
            raise ValueError(value)
        n = (n * 10 + d - 48) & _UINT64_MASK
    return n - (1 << 64) if n >= 1 << 63 else n


def go_quote(value: bytes) -> str:
    """Go's %q of a byte string, as in NSQ's error texts."""
    text = value.decode("utf-8", "surrogateescape")
    out = ['"']
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_GO_ESCAPES.get(ch) or _go_escape(code))
    out.append('"')
    return "".join(out)


def _go_escape(code: int) -> str:
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}

_Handler = Callable[[list[bytes], int], "tuple[Command, int] | None"]


class CommandReader:
    """Parses what a V2 client sends. Feed ``receive_data``, drain ``next_command``."""

    def __init__(
        self,
        *,
        max_msg_size: int = 1024 * 1024,
        max_body_size: int = 5 * 1024 * 1024,
        max_rdy_count: int = 2500,
        max_req_timeout_ms: int = 3_600_000,
        expect_magic: bool = True,
    ) -> None:
        self.max_msg_size = max_msg_size
        self.max_body_size = max_body_size
        self.max_rdy_count = max_rdy_count
        self.max_req_timeout_ms = max_req_timeout_ms
        self.state = ClientState.INIT
        self.heartbeats_enabled = True
        # The topic of an MPUB whose body is being read: NSQ creates the topic before it reads
        # the body, so a server that mirrors that creates it even when the body is bad.
        self.pending_topic: str | None = None
        # An MPUB read in part: (command start, position, the parts so far).
        self._mpub_scan: tuple[int, int, list[bytes]] | None = None
        self._need_magic = expect_magic
        self._topics: dict[bytes, str] = {}  # topic names this client sent, already validated
        self._buf = bytearray()
        self._pos = 0
        self._handlers: dict[bytes, _Handler] = {
            b"FIN": self._fin,
            b"RDY": self._rdy,
            b"REQ": self._req,
            b"PUB": self._pub,
            b"MPUB": self._mpub,
            b"DPUB": self._dpub,
            b"NOP": self._nop,
            b"TOUCH": self._touch,
            b"SUB": self._sub,
            b"CLS": self._cls,
            b"AUTH": self._auth,
            b"IDENTIFY": self._identify,
        }
        self._all_handlers = self._handlers

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed into a command."""
        return len(self._buf) - self._pos

    def require_tls(self, required: bool = True) -> None:
        """--tls-required: until the upgrade every command but IDENTIFY is refused (fatal) on
        its name, before its parameters, as NSQ's enforceTLSPolicy. A table of its own, so the
        commands of an upgraded (or plain) connection pay nothing for the check."""
        if required:
            self._handlers = {
                name: handler if name == b"IDENTIFY" else self._tls_required
                for name, handler in self._all_handlers.items()
            }
        else:
            self._handlers = self._all_handlers

    @staticmethod
    def _tls_required(params: list[bytes], start: int) -> tuple[Command, int] | None:
        name = params[0].decode("utf-8", "surrogateescape")
        raise InvalidError(f"cannot {name} in current state (TLS required)")

    def take_buffered(self) -> bytes:
        """Remove and return the bytes not yet parsed: after a transport upgrade (TLS,
        compression) they belong to the new stream, not to the command parser."""
        data = bytes(self._buf[self._pos :])
        del self._buf[:]
        self._pos = 0
        return data

    def next_command(self) -> Command | None:
        buf, pos = self._buf, self._pos
        if self._need_magic:
            if len(buf) - pos < 4:
                return None
            if buf[pos : pos + 4] != MAGIC_V2:
                raise BadProtocolError()
            self._need_magic = False
            pos = self._pos = pos + 4
        # Only the first MAX_LINE_LENGTH + 1 bytes may hold the newline, however the bytes arrived.
        nl = buf.find(b"\n", pos, pos + MAX_LINE_LENGTH + 1)
        if nl < 0:
            if len(buf) - pos > MAX_LINE_LENGTH:
                raise InvalidError(f"command longer than {MAX_LINE_LENGTH} bytes")
            return None
        line = bytes(buf[pos:nl])
        if line[-1:] == b"\r":
            line = line[:-1]
        params = line.split(b" ")
        handler = self._handlers.get(params[0])
        if handler is None:
            raise InvalidError("invalid command " + params[0].decode("utf-8", "surrogateescape"))
        result = handler(params, nl + 1)
        if result is None:
            return None
        command, end = result
        self._consumed(end)
        return command

    def take_fins(self) -> list[bytes]:
        """The IDs of the plain FINs next in the buffer (``FIN <16 letters or digits>\\n``),
        consumed: what a consumer sends most, read in a tight loop after a ``Fin`` was
        returned. Anything else, even a FIN spelled otherwise, is left for ``next_command``."""
        if self.state not in _FIN_STATES:
            return []
        buf, pos = self._buf, self._pos
        ids: list[bytes] = []
        while buf.startswith(b"FIN ", pos):
            n = min((len(buf) - pos) // _FIN_LENGTH, _FIN_RUN)  # copy a slice, not the buffer
            data = bytes(buf[pos : pos + n * _FIN_LENGTH])
            before = len(ids)
            for at in range(0, n * _FIN_LENGTH, _FIN_LENGTH):
                msg_id = data[at + 4 : at + 20]
                if data[at + 20] != 10 or not data.startswith(b"FIN ", at) or not msg_id.isalnum():
                    break
                ids.append(msg_id)
            pos += (len(ids) - before) * _FIN_LENGTH
            if len(ids) - before < n or not n:
                break
        self._consumed(pos)
        return ids

    def _consumed(self, end: int) -> None:
        """Everything before ``end`` has been read into commands."""
        if end >= _COMPACT_AT or end == len(self._buf):
            del self._buf[:end]
            self._pos = 0
        else:
            self._pos = end

    # -- helpers --------------------------------------------------------------------------

    def _require_state(self, name: str, *allowed: ClientState) -> None:
        if self.state not in allowed:
            raise InvalidError(f"cannot {name} in current state")

    def _sized(
        self,
        start: int,
        error: type[ProtocolError],
        invalid: str,
        too_big: str,
        limit: int,
        *,
        too_big_first: bool,
    ) -> tuple[bytes, int] | None:
        """A ``[4-byte size][body]`` at ``start``, validated as NSQ does, or None for more data."""
        buf = self._buf
        if len(buf) < start + 4:
            return None
        (size,) = _INT32.unpack_from(buf, start)
        if size <= 0 or size > limit:  # which text NSQ gives first depends on the command
            bad = too_big if size > limit and (too_big_first or size > 0) else invalid
            raise error(bad.format(size=size, limit=limit))
        end = start + 4 + size
        if len(buf) < end:
            return None
        return bytes(buf[start + 4 : end]), end

    def _topic(self, name: str, params: list[bytes], repeat_code: bool = False) -> str:
        raw = params[1]
        topic = self._topics.get(raw)  # a publisher names the same few topics again and again
        if topic is not None:
            return topic
        topic = raw.decode("utf-8", "replace")
        if not is_valid_name(topic) or topic.encode() != raw:
            prefix = "E_BAD_TOPIC " if repeat_code else ""
            raise BadTopicError(f"{prefix}{name} topic name {go_quote(raw)} is not valid")
        if len(self._topics) >= _TOPICS_KEPT:
            self._topics.clear()
        self._topics[raw] = topic
        return topic

    @staticmethod
    def _msg_id(value: bytes) -> bytes:
        if len(value) != MSG_ID_LENGTH:
            raise InvalidError("invalid message ID")
        return value

    # -- commands, in NSQ's order of checks --------------------------------------------------

    def _identify(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        self._require_state("IDENTIFY", ClientState.INIT)
        body = self._sized(
            start,
            BadBodyError,
            "IDENTIFY invalid body size {size}",
            "IDENTIFY body too big {size} > {limit}",
            self.max_body_size,
            too_big_first=True,
        )
        return None if body is None else (Identify(body[0]), body[1])

    def _auth(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        self._require_state("AUTH", ClientState.INIT)
        if len(params) != 1:
            raise InvalidError("AUTH invalid number of parameters")
        body = self._sized(
            start,
            BadBodyError,
            "AUTH invalid body size {size}",
            "AUTH body too big {size} > {limit}",
            self.max_body_size,
            too_big_first=True,
        )
        return None if body is None else (Auth(body[0]), body[1])

    def _sub(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        self._require_state("SUB", ClientState.INIT)
        if not self.heartbeats_enabled:
            raise InvalidError("cannot SUB with heartbeats disabled")
        if len(params) < 3:
            raise InvalidError("SUB insufficient number of parameters")
        topic = self._topic("SUB", params)
        raw = params[2]
        channel = raw.decode("utf-8", "replace")
        if not is_valid_name(channel) or channel.encode() != raw:
            raise BadChannelError(f"SUB channel name {go_quote(raw)} is not valid")
        return Sub(topic, channel), start

    def _pub(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        if len(params) < 2:
            raise InvalidError("PUB insufficient number of parameters")
        topic = self._topic("PUB", params)
        body = self._sized(
            start,
            BadMessageError,
            "PUB invalid message body size {size}",
            "PUB message too big {size} > {limit}",
            self.max_msg_size,
            too_big_first=False,
        )
        return None if body is None else (Pub(topic, body[0]), body[1])

    def _dpub(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        if len(params) < 3:
            raise InvalidError("DPUB insufficient number of parameters")
        topic = self._topic("DPUB", params)
        try:
            delay = parse_base10(params[2])
        except ValueError:
            raise InvalidError(
                "DPUB could not parse timeout " + params[2].decode("utf-8", "surrogateescape")
            ) from None
        if not 0 <= delay <= self.max_req_timeout_ms:
            raise InvalidError(
                f"DPUB timeout {delay & _UINT64_MASK} out of range 0-{self.max_req_timeout_ms}"
            )
        body = self._sized(
            start,
            BadMessageError,
            "DPUB invalid message body size {size}",
            "DPUB message too big {size} > {limit}",
            self.max_msg_size,
            too_big_first=False,
        )
        return None if body is None else (DPub(topic, delay, body[0]), body[1])

    def _mpub(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        if len(params) < 2:
            raise InvalidError("MPUB insufficient number of parameters")
        topic = self._topic("MPUB", params, repeat_code=True)
        self.pending_topic = topic
        buf = self._buf
        if len(buf) < start + 4:
            return None
        (size,) = _INT32.unpack_from(buf, start)
        if size <= 0:
            raise BadBodyError(f"MPUB invalid body size {size}")
        if size > self.max_body_size:
            raise BadBodyError(f"MPUB body too big {size} > {self.max_body_size}")
        if len(buf) < start + 8:
            return None
        (count,) = _INT32.unpack_from(buf, start + 4)
        check_mpub_count(count, self.max_body_size)
        # NSQ reads the parts straight from the stream and never reconciles them with the outer
        # size, so neither do we.
        whole = uniform_parts(buf, start + 8, count, self.max_msg_size) or self._mpub_parts(
            start, count
        )
        if whole is None:
            return None
        self._mpub_scan = self.pending_topic = None
        return MPub(topic, whole[0]), whole[1]

    def _mpub_parts(self, start: int, count: int) -> tuple[list[bytes], int] | None:
        """The parts one by one, or None for more data. The scan resumes where the last read
        left it (the buffer before an incomplete command never moves), so a large MPUB costs
        O(n) however it arrives."""
        buf, scan = self._buf, self._mpub_scan
        pos, bodies = (
            (scan[1], scan[2]) if scan is not None and scan[0] == start else (start + 8, [])
        )
        have, max_msg_size, unpack = len(buf), self.max_msg_size, _INT32.unpack_from
        for i in range(len(bodies), count):
            if have < pos + 4:
                self._mpub_scan = (start, pos, bodies)
                return None
            (size,) = unpack(buf, pos)
            check_mpub_part(i, size, max_msg_size)
            end = pos + 4 + size
            if have < end:
                self._mpub_scan = (start, pos, bodies)
                return None
            bodies.append(bytes(buf[pos + 4 : end]))
            pos = end
        self._mpub_scan = None
        return bodies, pos

    def _rdy(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        if self.state == ClientState.CLOSING:
            return Nop(), start  # NSQ ignores RDY after CLS
        self._require_state("RDY", ClientState.SUBSCRIBED)
        count = 1
        if len(params) > 1:
            try:
                count = parse_base10(params[1])
            except ValueError:
                raise InvalidError(
                    "RDY could not parse count " + params[1].decode("utf-8", "surrogateescape")
                ) from None
        if not 0 <= count <= self.max_rdy_count:
            raise InvalidError(f"RDY count {count} out of range 0-{self.max_rdy_count}")
        return Rdy(count), start

    def _fin(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        self._require_state("FIN", *_FIN_STATES)
        if len(params) < 2:
            raise InvalidError("FIN insufficient number of params")
        return Fin(self._msg_id(params[1])), start

    def _req(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        self._require_state("REQ", ClientState.SUBSCRIBED, ClientState.CLOSING)
        if len(params) < 3:
            raise InvalidError("REQ insufficient number of params")
        msg_id = self._msg_id(params[1])
        try:
            timeout = parse_base10(params[2])
        except ValueError:
            raise InvalidError(
                "REQ could not parse timeout " + params[2].decode("utf-8", "surrogateescape")
            ) from None
        return Req(msg_id, min(max(timeout, 0), self.max_req_timeout_ms)), start

    def _touch(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        self._require_state("TOUCH", ClientState.SUBSCRIBED, ClientState.CLOSING)
        if len(params) < 2:
            raise InvalidError("TOUCH insufficient number of params")
        return Touch(self._msg_id(params[1])), start

    def _cls(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        self._require_state("CLS", ClientState.SUBSCRIBED)
        self.state = ClientState.CLOSING
        return Cls(), start

    def _nop(self, params: list[bytes], start: int) -> tuple[Command, int] | None:
        return Nop(), start
