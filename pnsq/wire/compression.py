"""The two stream compressions NSQ negotiates in IDENTIFY, as pure codecs (no socket).

Both sides of a connection use the same small API: ``compress(data)`` returns bytes the peer can
decode at once (a snappy frame, or deflate ending in a sync flush), since NSQ flushes after every
write and a reader must never wait for bytes that are still in the writer's buffer.
``decompress(data)`` takes a chunk of the stream as the socket gave it and returns whatever is
complete; a partial chunk waits for the next call. Output per call is bounded by ``max_output``:
a tiny input can expand a thousandfold, so the rest stays queued (``pending`` says so) and comes
out of the next ``decompress(b"")``. Corrupt input raises CompressionError (a ValueError) worded
as NSQ's Go readers word it (``snappy: corrupt input``, ``flate: corrupt input``), and every
later call the same (the stream cannot resynchronise). nsqd and pnsq's client use these same
codecs, one per connection.

Snappy is the *framing* format (stream identifier, then CRC-checked chunks of at most 64 KiB),
not raw snappy: it is what golang/snappy's Reader/Writer speak. cramjam does the chunk work; the
chunk boundaries are found here so a chunk split across reads waits instead of failing. cramjam
is imported by the first SnappyCodec, not with this module: loading it adds ~3 MiB to a
process's RSS, which an nsqd no client asks for snappy (and a plain client) must not pay.
Deflate is raw (no zlib header, wbits -15), as Go's compress/flate writes it.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

SNAPPY_STREAM_IDENTIFIER: Final = b"\xff\x06\x00\x00sNaPpY"
MAX_OUTPUT: Final = 1024 * 1024
_CHUNK_COMPRESSED: Final = 0x00
_CHUNK_UNCOMPRESSED: Final = 0x01
_MAX_CHUNK_OUTPUT: Final = 65536
# A 64 KiB chunk that does not compress grows to at most 76,490 bytes (snappy's bound) plus its
# CRC: anything longer is garbage, refused before it is buffered.
_MAX_CHUNK_LENGTH: Final = 4 + 32 + _MAX_CHUNK_OUTPUT + _MAX_CHUNK_OUTPUT // 6


class CompressionError(ValueError):
    """The peer's compressed stream is corrupt; the text starts as NSQ's Go readers word it."""


class SnappyCodec:
    """Snappy framing format, both directions of one connection."""

    def __init__(self, *, max_output: int = MAX_OUTPUT) -> None:
        import cramjam  # on first use: see the module's docstring

        self._snappy: Any = cramjam.snappy
        self.max_output = max(max_output, _MAX_CHUNK_OUTPUT)
        self._compressor = self._snappy.Compressor()
        self._in = bytearray()
        self._started = False  # the peer's stream identifier has been seen
        self._broken: CompressionError | None = None

    def compress(self, data: bytes) -> bytes:
        """``data`` as whole snappy frames (the stream identifier first, once)."""
        self._compressor.compress(data)
        return bytes(self._compressor.flush())

    def decompress(self, data: bytes) -> bytes:
        if self._broken is not None:
            raise self._broken
        self._in += data
        end = self._whole_chunks()
        if not end:
            return b""
        chunks = bytes(self._in[:end])
        del self._in[:end]
        try:
            # Each call decodes a stream of its own: the identifier goes in front of the batch
            # (a repeated identifier is allowed anywhere in a stream).
            return bytes(self._snappy.decompress(SNAPPY_STREAM_IDENTIFIER + chunks))
        except Exception as exc:  # cramjam raises OSError or its DecompressionError
            raise self._fail(f"snappy: corrupt input ({exc})") from None

    @property
    def pending(self) -> bool:
        """Whole chunks are waiting that the last call left for ``max_output``'s sake."""
        return self._broken is None and self._whole_chunks(peek=True) > 0

    def _whole_chunks(self, *, peek: bool = False) -> int:
        """How many buffered bytes are whole chunks, up to ``max_output`` bytes of output."""
        buf, pos, output = self._in, 0, 0
        if not self._started and not peek:
            if len(buf) < len(SNAPPY_STREAM_IDENTIFIER):
                if not SNAPPY_STREAM_IDENTIFIER.startswith(bytes(buf)):
                    raise self._fail("snappy: corrupt input (no stream identifier)")
                return 0
            if not buf.startswith(SNAPPY_STREAM_IDENTIFIER):
                raise self._fail("snappy: corrupt input (no stream identifier)")
            self._started = True
        while len(buf) - pos >= 4:
            kind = buf[pos]
            length = int.from_bytes(buf[pos + 1 : pos + 4], "little")
            if length > _MAX_CHUNK_LENGTH:
                raise self._fail(f"snappy: corrupt input (a chunk of {length} bytes)")
            end = pos + 4 + length
            if end > len(buf):
                break
            if kind == _CHUNK_UNCOMPRESSED:
                size = length - 4
            elif kind == _CHUNK_COMPRESSED:
                size = _varint(buf, pos + 8, end)
            elif kind < 0x80:  # reserved unskippable: a reader must stop (Go's wording)
                raise self._fail("snappy: unsupported input")
            else:
                size = 0  # stream identifier, padding (or a reserved type cramjam rejects)
            if size > _MAX_CHUNK_OUTPUT:
                raise self._fail(f"snappy: corrupt input (a chunk of {size} bytes uncompressed)")
            if output + size > self.max_output and pos:
                break
            output += size
            pos = end
        return pos

    def _fail(self, reason: str) -> CompressionError:
        self._broken = CompressionError(reason)
        self._in.clear()
        return self._broken


def _varint(buf: bytearray, pos: int, end: int) -> int:
    """The uncompressed length that opens a raw snappy block (past the chunk's CRC)."""
    value = shift = 0
    while pos < end and shift < 35:
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
        pos, shift = pos + 1, shift + 7
    return _MAX_CHUNK_OUTPUT + 1  # truncated or overlong: corrupt either way


class DeflateCodec:
    """Raw deflate, both directions of one connection; ``level`` 1..9 is this side's writer."""

    def __init__(self, level: int = 6, *, max_output: int = MAX_OUTPUT) -> None:
        if not 1 <= level <= 9:
            raise ValueError(f"deflate level {level} not in 1..9")
        self.level = level
        self.max_output = max_output
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._decompressor = zlib.decompressobj(-15)
        self._broken: CompressionError | None = None

    def compress(self, data: bytes) -> bytes:
        """``data`` deflated and sync-flushed: the peer can inflate all of it now."""
        compressor = self._compressor
        return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)

    def decompress(self, data: bytes) -> bytes:
        if self._broken is not None:
            raise self._broken
        decompressor = self._decompressor
        if decompressor.unconsumed_tail:
            data = decompressor.unconsumed_tail + data
        try:
            out = decompressor.decompress(data, self.max_output)
        except zlib.error as exc:
            self._broken = CompressionError(f"flate: corrupt input (corrupt deflate stream: {exc})")
            raise self._broken from None
        if decompressor.eof:  # NSQ's writers never end the stream; bytes after an end are junk
            self._broken = CompressionError("flate: corrupt input (the stream ended)")
            if decompressor.unused_data:
                raise self._broken
        return out

    @property
    def pending(self) -> bool:
        return self._broken is None and bool(self._decompressor.unconsumed_tail)


Codec = SnappyCodec | DeflateCodec
