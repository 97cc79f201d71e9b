"""The two stream compressions NSQ negotiates in IDENTIFY, as sans-I/O codecs: bytes in, bytes out.

Both sides of a connection wrap their byte stream after the upgrade. Every ``encode`` call
returns bytes the peer can decode at once (deflate: a ``Z_SYNC_FLUSH`` per call; snappy: whole
framing-format chunks per call), because a writer that flushes must not leave a frame stuck in
the compressor. Every ``decode`` call returns at most about ``max_out`` bytes and keeps the rest
of its input for the next call, so a small compressed input that expands hugely (a
decompression bomb) is unpacked a bounded chunk at a time, never all at once.

snappy uses the framing format (stream identifier, then chunks of at most 64 KiB with a masked
CRC-32C), which is what NSQ's Go snappy reader and writer speak; the chunk parsing is here, the
block (de)compression and the checksum are cramjam's. deflate is raw DEFLATE (no zlib header).
"""

from __future__ import annotations

import zlib

import cramjam

MAX_BLOCK = 65536  # uncompressed bytes in one snappy chunk
# The largest chunk body a valid stream holds: a 64 KiB block's worst-case encoding + CRC.
_MAX_CHUNK = 32 + MAX_BLOCK + MAX_BLOCK // 6 + 4
_STREAM_ID = b"\xff\x06\x00\x00sNaPpY"
_COMPRESSED, _UNCOMPRESSED, _STREAM_ID_TYPE = 0x00, 0x01, 0xFF


class CompressionError(Exception):
    """The peer's compressed stream is corrupt; the text is the one NSQ's Go readers give."""


class SnappyEncoder:
    def __init__(self) -> None:
        self._compressor = cramjam.snappy.Compressor()

    def encode(self, data: bytes | bytearray) -> bytes:
        """Whole chunks for ``data`` (the stream identifier first, once)."""
        self._compressor.compress(data if type(data) is bytes else bytes(data))  # bytes only
        return bytes(self._compressor.flush())


class SnappyDecoder:
    def __init__(self) -> None:
        self._in = bytearray()
        self._started = False

    @property
    def pending(self) -> bool:
        """Whether buffered input may hold a whole chunk to decode."""
        return len(self._in) >= 4

    def decode(self, data: bytes | bytearray, max_out: int) -> bytes:
        """The bytes of the whole chunks received, stopping once ``max_out`` is reached."""
        buf = self._in
        buf += data
        out = bytearray()
        pos = 0
        while len(out) < max_out and len(buf) - pos >= 4:
            kind = buf[pos]
            length = int.from_bytes(buf[pos + 1 : pos + 4], "little")
            if length > _MAX_CHUNK:
                raise CompressionError("snappy: corrupt input")
            end = pos + 4 + length
            if end > len(buf):
                break
            self._chunk(kind, buf, pos, end, out)
            pos = end
        del buf[:pos]
        return bytes(out)

    def _chunk(self, kind: int, buf: bytearray, start: int, end: int, out: bytearray) -> None:
        if kind == _STREAM_ID_TYPE:
            if buf[start:end] != _STREAM_ID:
                raise CompressionError("snappy: corrupt input")
            self._started = True
            return
        if not self._started:
            raise CompressionError("snappy: corrupt input")
        if kind in (_COMPRESSED, _UNCOMPRESSED):
            chunk = bytes(buf[start:end])
            if kind == _COMPRESSED:
                try:
                    size = cramjam.snappy.decompress_raw_len(chunk[8:])
                except cramjam.DecompressionError:
                    raise CompressionError("snappy: corrupt input") from None
                if size > MAX_BLOCK:
                    raise CompressionError("snappy: decoded block is too large")
            elif end - start - 8 > MAX_BLOCK:
                raise CompressionError("snappy: corrupt input")
            try:  # cramjam checks the chunk's CRC-32C as it decodes
                out += cramjam.snappy.decompress(_STREAM_ID + chunk)
            except cramjam.DecompressionError:
                raise CompressionError("snappy: corrupt input") from None
        elif kind < 0x80:
            raise CompressionError("snappy: unsupported input")
        # 0x80-0xfe: padding and skippable chunks carry nothing


class DeflateEncoder:
    def __init__(self, level: int) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -15)

    def encode(self, data: bytes | bytearray) -> bytes:
        """``data`` compressed and sync-flushed: the peer can inflate all of it now."""
        compressor = self._compressor
        return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


class DeflateDecoder:
    def __init__(self) -> None:
        self._decompressor = zlib.decompressobj(-15)

    @property
    def pending(self) -> bool:
        """Whether input is held back that may inflate to more output."""
        return bool(self._decompressor.unconsumed_tail)

    def decode(self, data: bytes | bytearray, max_out: int) -> bytes:
        """At most ``max_out`` inflated bytes; input beyond that waits for the next call."""
        decompressor = self._decompressor
        tail = decompressor.unconsumed_tail
        try:
            return decompressor.decompress(tail + data if tail else data, max_out)
        except zlib.error:
            raise CompressionError("flate: corrupt input") from None


Encoder = SnappyEncoder | DeflateEncoder
Decoder = SnappyDecoder | DeflateDecoder
