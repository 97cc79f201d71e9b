"""A client connection's stream once snappy or deflate was negotiated: (de)compresses in place.

The connection's reader and writer go on calling ``receive_some`` and ``send_all``; only the
stream object changed. ``send_all`` compresses and flushes each batch the writer hands it, so
the client can decode every frame as soon as it arrives. ``receive_some`` inflates at most
``max_bytes`` (the reader's chunk) per call, so a decompression bomb costs the reader one
chunk at a time, and the command parser's limits (--max-body-size, --max-msg-size) end it.
A connection that negotiated nothing never gets this layer.
"""

from __future__ import annotations

import trio

from ..wire.compression import (
    CompressionError,
    Decoder,
    DeflateDecoder,
    DeflateEncoder,
    Encoder,
    SnappyDecoder,
    SnappyEncoder,
)

__all__ = ["CompressedStream", "CompressionError"]

CHUNK = 64 * 1024


class CompressedStream(trio.abc.Stream):
    def __init__(self, inner: trio.abc.Stream, encoder: Encoder, decoder: Decoder) -> None:
        self.inner = inner
        self._encoder = encoder
        self._decoder = decoder
        self._backlog = bytearray()

    @classmethod
    def snappy(cls, inner: trio.abc.Stream) -> CompressedStream:
        return cls(inner, SnappyEncoder(), SnappyDecoder())

    @classmethod
    def deflate(cls, inner: trio.abc.Stream, level: int) -> CompressedStream:
        return cls(inner, DeflateEncoder(level), DeflateDecoder())

    def feed(self, data: bytes | bytearray) -> None:
        """Compressed bytes that arrived before the upgrade (read with the plain stream)."""
        self._backlog += data

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Inflated bytes (at most about ``max_bytes``); b"" at the end of the stream.

        CompressionError (NSQ's reader error text) when the input is corrupt."""
        limit = max_bytes or CHUNK
        decoder = self._decoder
        out = decoder.decode(b"", limit) if decoder.pending else b""
        if not out and self._backlog:
            out = decoder.decode(self._backlog, limit)
            self._backlog = bytearray()
        while not out:
            data = await self.inner.receive_some(CHUNK)
            if not data:
                return b""
            out = decoder.decode(data, limit)
        return out

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if isinstance(data, memoryview):
            data = bytes(data)
        await self.inner.send_all(self._encoder.encode(data))

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()
