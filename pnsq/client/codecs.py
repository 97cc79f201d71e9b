"""Body codecs: how values become message bodies and back.

A codec is any object with ``encode(value) -> bytes`` and ``decode(bytes) -> value``. The
producer encodes what it is given; a consumer's ``Message.data`` decodes the body lazily, so the
raw default costs nothing.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import msgpack  # type: ignore[import-untyped]


class Codec(Protocol):
    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


class RawCodec:
    """Bodies are bytes (``str`` is encoded as UTF-8)."""

    def encode(self, value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, bytearray | memoryview):
            return bytes(value)
        if isinstance(value, str):
            return value.encode()
        raise TypeError(f"the raw codec publishes bytes or str, not {type(value).__name__}")

    def decode(self, data: bytes) -> Any:
        return data


class JSONCodec:
    """Compact UTF-8 JSON."""

    def encode(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def decode(self, data: bytes) -> Any:
        return json.loads(data)


class MsgpackCodec:
    def encode(self, value: Any) -> bytes:
        data: bytes = msgpack.packb(value, use_bin_type=True)
        return data

    def decode(self, data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False)


RAW = RawCodec()
JSON = JSONCodec()
MSGPACK = MsgpackCodec()
