"""Client-to-server commands: the events the server reads, and their encoders.

A command is a line ``NAME[ param]*\\n``; PUB, DPUB, IDENTIFY and AUTH add
``[4-byte size][body]``, MPUB adds ``[4-byte size]`` and the multi-publish body of ``mpub.py``.
The classes are the events ``CommandReader`` emits; the ``encode_*`` functions build the bytes a
client sends. Both sides share the classes so that a test can round-trip them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .mpub import encode_mpub_body

MAGIC_V2 = b"  V2"

_SIZE = struct.Struct(">i")


@dataclass(slots=True)
class Identify:
    body: bytes

    def data(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class Auth:
    secret: bytes


@dataclass(slots=True)
class Sub:
    topic: str
    channel: str


@dataclass(slots=True)
class Pub:
    topic: str
    body: bytes


@dataclass(slots=True)
class MPub:
    topic: str
    bodies: list[bytes]


@dataclass(slots=True)
class DPub:
    topic: str
    delay_ms: int
    body: bytes


@dataclass(slots=True)
class Rdy:
    count: int


@dataclass(slots=True)
class Fin:
    id: bytes


@dataclass(slots=True)
class Req:
    id: bytes
    timeout_ms: int


@dataclass(slots=True)
class Touch:
    id: bytes


@dataclass(slots=True)
class Cls:
    pass


@dataclass(slots=True)
class Nop:
    pass


Command = Identify | Auth | Sub | Pub | MPub | DPub | Rdy | Fin | Req | Touch | Cls | Nop


def _sized(body: bytes) -> bytes:
    return _SIZE.pack(len(body)) + body


def encode_identify(data: Mapping[str, Any]) -> bytes:
    return b"IDENTIFY\n" + _sized(json.dumps(data, separators=(",", ":")).encode())


def encode_auth(secret: bytes) -> bytes:
    return b"AUTH\n" + _sized(secret)


def encode_sub(topic: str, channel: str) -> bytes:
    return b"SUB %s %s\n" % (topic.encode(), channel.encode())


def encode_pub(topic: str, body: bytes) -> bytes:
    return b"PUB %s\n" % topic.encode() + _sized(body)


def encode_mpub(topic: str, bodies: Iterable[bytes]) -> bytes:
    return b"MPUB %s\n" % topic.encode() + _sized(encode_mpub_body(list(bodies)))


def encode_dpub(topic: str, delay_ms: int, body: bytes) -> bytes:
    return b"DPUB %s %d\n" % (topic.encode(), delay_ms) + _sized(body)


def encode_rdy(count: int) -> bytes:
    return b"RDY %d\n" % count


def encode_fin(msg_id: bytes) -> bytes:
    return b"FIN " + msg_id + b"\n"


def encode_req(msg_id: bytes, timeout_ms: int) -> bytes:
    return b"REQ " + msg_id + b" %d\n" % timeout_ms


def encode_touch(msg_id: bytes) -> bytes:
    return b"TOUCH " + msg_id + b"\n"


def encode_cls() -> bytes:
    return b"CLS\n"


def encode_nop() -> bytes:
    return b"NOP\n"


def encode(command: Command) -> bytes:
    """The bytes of any command event."""
    match command:
        case Identify(body):
            return b"IDENTIFY\n" + _sized(body)
        case Auth(secret):
            return encode_auth(secret)
        case Sub(topic, channel):
            return encode_sub(topic, channel)
        case Pub(topic, body):
            return encode_pub(topic, body)
        case MPub(topic, bodies):
            return encode_mpub(topic, bodies)
        case DPub(topic, delay_ms, body):
            return encode_dpub(topic, delay_ms, body)
        case Rdy(count):
            return encode_rdy(count)
        case Fin(msg_id):
            return encode_fin(msg_id)
        case Req(msg_id, timeout_ms):
            return encode_req(msg_id, timeout_ms)
        case Touch(msg_id):
            return encode_touch(msg_id)
        case Cls():
            return encode_cls()
        case Nop():
            return encode_nop()
        case _:
            raise TypeError(f"not a command: {command!r}")
