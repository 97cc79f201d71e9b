"""nsqlookupd's TCP protocol (the one nsqd speaks to it), sans-I/O.

After the magic ``"  V1"`` a peer sends text lines (trimmed, split on single spaces)::

    IDENTIFY\\n[size: int32][JSON]     REGISTER <topic> [<channel>]\\n
    PING\\n                             UNREGISTER <topic> [<channel>]\\n

Every reply is ``[size: int32][data]`` with no frame type; an error is a reply whose data starts
with its code (``E_INVALID client must IDENTIFY``), and every error is fatal: lookupd sends it
and closes. The server side is ``LookupCommandReader`` (bytes in, commands out, errors raised
in NSQ's order with NSQ's texts) and ``encode_reply``; the client side (nsqd) is the
``encode_*`` functions and ``ReplyReader``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Final

from .errors import (
    BadBodyError,
    BadChannelError,
    BadProtocolError,
    BadTopicError,
    InvalidError,
    ProtocolError,
)
from .names import is_valid_name

__all__ = [
    "MAGIC_V1",
    "MAX_IDENTIFY_BODY",
    "MAX_LINE_LENGTH",
    "LookupCommand",
    "LookupCommandReader",
    "LookupIdentify",
    "LookupPing",
    "Register",
    "ReplyReader",
    "Unregister",
    "encode_lookup_identify",
    "encode_lookup_ping",
    "encode_register",
    "encode_reply",
    "encode_unregister",
]

MAGIC_V1: Final = b"  V1"
MAX_LINE_LENGTH: Final = 16 * 1024
MAX_IDENTIFY_BODY: Final = 64 * 1024  # NSQ reads any size; a peer's IDENTIFY is ~200 bytes
MAX_REPLY: Final = 16 * 1024 * 1024

_SIZE = struct.Struct(">i")
# IDENTIFY fields and their JSON types (Go's PeerInfo); the first four are required.
_STR_FIELDS = ("broadcast_address", "version", "hostname", "topology_zone", "topology_region")
_INT_FIELDS = ("tcp_port", "http_port")
_REQUIRED = ("broadcast_address", "tcp_port", "http_port", "version")


@dataclass(frozen=True, slots=True)
class LookupIdentify:
    """An nsqd's IDENTIFY: its PeerInfo fields (all keys present, validated)."""

    peer: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Register:
    topic: str
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Unregister:
    topic: str
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class LookupPing:
    pass


LookupCommand = LookupIdentify | Register | Unregister | LookupPing


def encode_reply(data: bytes) -> bytes:
    return _SIZE.pack(len(data)) + data


def parse_identify_body(body: bytes) -> dict[str, Any]:
    """The PeerInfo of an IDENTIFY body, or E_BAD_BODY as NSQ words it."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadBodyError("IDENTIFY failed to decode JSON body") from None
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise BadBodyError("IDENTIFY failed to decode JSON body")
    peer: dict[str, Any] = {}
    for key in _STR_FIELDS:
        item = value.get(key, "")
        if item is None:  # Go leaves a field alone when the JSON says null
            item = ""
        if not isinstance(item, str):
            raise BadBodyError("IDENTIFY failed to decode JSON body")
        peer[key] = item
    for key in _INT_FIELDS:
        item = value.get(key, 0)
        if item is None:
            item = 0
        if isinstance(item, float) and item.is_integer():
            item = int(item)
        if not isinstance(item, int) or isinstance(item, bool) or abs(item) >= 1 << 63:
            raise BadBodyError("IDENTIFY failed to decode JSON body")
        peer[key] = item
    if not all(peer[key] for key in _REQUIRED):
        raise BadBodyError("IDENTIFY missing fields")
    return peer


class LookupCommandReader:
    """Parses what an nsqd sends to nsqlookupd. Feed ``receive_data``, drain ``next_command``.

    ``next_command`` returns None until a whole command has arrived and raises ProtocolError
    (always fatal) on bad input. It knows whether the peer has identified, because NSQ checks
    that before anything else in REGISTER/UNREGISTER.
    """

    def __init__(self, *, expect_magic: bool = True) -> None:
        self.identified = False
        self._need_magic = expect_magic
        self._buf = bytearray()
        self._pos = 0

    def receive_data(self, data: bytes) -> None:
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    def next_command(self) -> LookupCommand | None:
        buf, pos = self._buf, self._pos
        if self._need_magic:
            if len(buf) - pos < 4:
                return None
            if buf[pos : pos + 4] != MAGIC_V1:
                raise BadProtocolError()
            self._need_magic = False
            pos = self._pos = pos + 4
        end = buf.find(b"\n", pos)
        if end < 0:
            if len(buf) - pos > MAX_LINE_LENGTH:
                raise InvalidError("command too long")
            return None
        line = bytes(buf[pos:end]).decode("utf-8", "surrogateescape").strip()
        params = line.split(" ")
        name, args = params[0], params[1:]
        if name == "IDENTIFY":
            if self.identified:
                raise InvalidError("cannot IDENTIFY again")
            if len(buf) - end - 1 < 4:
                return None
            (size,) = _SIZE.unpack_from(buf, end + 1)
            if not 0 <= size <= MAX_IDENTIFY_BODY:
                raise BadBodyError(f"IDENTIFY invalid body size {size}")
            start = end + 5
            if len(buf) - start < size:
                return None
            peer = parse_identify_body(bytes(buf[start : start + size]))
            self._pos = start + size
            self.identified = True
            return LookupIdentify(peer)
        self._pos = end + 1
        if name == "PING":
            return LookupPing()
        if name in ("REGISTER", "UNREGISTER"):
            if not self.identified:
                raise InvalidError("client must IDENTIFY")
            topic, channel = _topic_channel(name, args)
            return Register(topic, channel) if name == "REGISTER" else Unregister(topic, channel)
        raise InvalidError(f"invalid command {name}")


def _topic_channel(command: str, args: list[str]) -> tuple[str, str | None]:
    if not args:
        raise InvalidError(f"{command} insufficient number of params")
    topic = args[0]
    channel = args[1] if len(args) >= 2 else ""
    if not is_valid_name(topic):
        raise BadTopicError(f"{command} topic name '{topic}' is not valid")
    if channel and not is_valid_name(channel):
        raise BadChannelError(f"{command} channel name '{channel}' is not valid")
    return topic, channel or None


# -- the client side (nsqd) ---------------------------------------------------------------------


def encode_lookup_identify(peer: dict[str, Any]) -> bytes:
    body = json.dumps(peer, separators=(",", ":")).encode()
    return b"IDENTIFY\n" + _SIZE.pack(len(body)) + body


def encode_register(topic: str, channel: str | None = None) -> bytes:
    return f"REGISTER {topic} {channel}\n".encode() if channel else f"REGISTER {topic}\n".encode()


def encode_unregister(topic: str, channel: str | None = None) -> bytes:
    if channel:
        return f"UNREGISTER {topic} {channel}\n".encode()
    return f"UNREGISTER {topic}\n".encode()


def encode_lookup_ping() -> bytes:
    return b"PING\n"


class ReplyReader:
    """Splits lookupd's replies (``[size][data]``). Feed ``receive_data``, drain ``next_reply``."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def next_reply(self) -> bytes | None:
        buf = self._buf
        if len(buf) < 4:
            return None
        (size,) = _SIZE.unpack_from(buf)
        if not 0 <= size <= MAX_REPLY:
            raise ProtocolError(f"invalid reply size {size}")
        if len(buf) < 4 + size:
            return None
        data = bytes(buf[4 : 4 + size])
        del buf[: 4 + size]
        return data
