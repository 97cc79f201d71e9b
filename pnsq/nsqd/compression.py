"""A client connection's stream once snappy or deflate was negotiated: (de)compresses in place.

The connection's reader and writer go on calling ``receive_some`` and ``send_all``; only the
stream object changed. ``send_all`` compresses and flushes each batch the writer hands it, so
the client can decode every frame as soon as it arrives. ``receive_some`` inflates at most
``MAX_OUTPUT`` (the reader's chunk) per call, so a decompression bomb costs the reader one
chunk at a time, and the command parser's limits (--max-body-size, --max-msg-size) end it.
A connection that negotiated nothing never gets this layer.
"""

from __future__ import annotations

import trio

from ..wire.compression import Codec, CompressionError, DeflateCodec, SnappyCodec

__all__ = ["CompressedStream", "CompressionError"]

CHUNK = 64 * 1024  # compressed bytes read from the socket at a time
MAX_OUTPUT = 256 * 1024  # inflated bytes handed to the reader per call (its read size)


class CompressedStream(trio.abc.Stream):
    def __init__(self, inner: trio.abc.Stream, codec: Codec) -> None:
        self.inner = inner
        self._codec = codec
        self._backlog = b""

    @classmethod
    def snappy(cls, inner: trio.abc.Stream) -> CompressedStream:
        return cls(inner, SnappyCodec(max_output=MAX_OUTPUT))

    @classmethod
    def deflate(cls, inner: trio.abc.Stream, level: int) -> CompressedStream:
        return cls(inner, DeflateCodec(level, max_output=MAX_OUTPUT))

    def feed(self, data: bytes | bytearray) -> None:
        """Compressed bytes that arrived before the upgrade (read with the plain stream)."""
        self._backlog += bytes(data)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Inflated bytes (at most ``MAX_OUTPUT``); b"" at the end of the stream.

        CompressionError (NSQ's reader error text) when the input is corrupt."""
        codec = self._codec
        out = codec.decompress(b"") if codec.pending else b""
        if not out and self._backlog:
            out, self._backlog = codec.decompress(self._backlog), b""
        while not out:
            data = await self.inner.receive_some(CHUNK)
            if not data:
                return b""
            out = codec.decompress(bytes(data))  # no copy when it is bytes already
        return out

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(self._codec.compress(bytes(data)))

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()
