"""pnsq.wire.compression's codecs against independent ones (python-snappy's framing, zlib), in
any split of the bytes, and their bounds: at most ``max_out`` per decode, corrupt input refused."""

from __future__ import annotations

import tracemalloc
import zlib

import pytest
import snappy
from hypothesis import given
from hypothesis import strategies as st

from pnsq.wire.compression import (
    CompressionError,
    DeflateDecoder,
    DeflateEncoder,
    SnappyDecoder,
    SnappyEncoder,
)

STREAM_ID = b"\xff\x06\x00\x00sNaPpY"

payloads = st.lists(st.binary(max_size=3000) | st.just(b"z" * 70_000), min_size=1, max_size=6)


def split_feed(decoder: SnappyDecoder | DeflateDecoder, data: bytes, step: int) -> bytes:
    out = bytearray()
    for i in range(0, len(data), step):
        out += decoder.decode(data[i : i + step], 1 << 30)
    return bytes(out)


@given(payloads, st.integers(1, 5000))
def test_snappy_encoder_output_decodes_with_python_snappy_and_back(
    writes: list[bytes], step: int
) -> None:
    encoder = SnappyEncoder()
    wire = b"".join(encoder.encode(w) for w in writes)
    assert snappy.StreamDecompressor().decompress(wire) == b"".join(writes)
    theirs = snappy.StreamCompressor()
    wire = b"".join(theirs.add_chunk(w) for w in writes)
    assert split_feed(SnappyDecoder(), wire, step) == b"".join(writes)


@given(payloads, st.integers(1, 5000))
def test_deflate_every_encode_is_decodable_at_once(writes: list[bytes], step: int) -> None:
    encoder, inflater = DeflateEncoder(6), zlib.decompressobj(-15)
    for write in writes:
        assert inflater.decompress(encoder.encode(write)) == write  # no byte held back
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    wire = b"".join(compressor.compress(w) for w in writes) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert split_feed(DeflateDecoder(), wire, step) == b"".join(writes)


def test_a_deflate_bomb_inflates_at_most_max_out_per_call_in_bounded_memory() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(b"\0" * (64 << 20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    decoder = DeflateDecoder()
    tracemalloc.start()
    try:
        total, chunk = 0, decoder.decode(bomb, 65536)
        while chunk:
            assert len(chunk) <= 65536
            total += len(chunk)
            chunk = decoder.decode(b"", 65536)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 64 << 20
    assert peak < 2 << 20  # 64 MiB inflated, never more than a chunk (and the input) held


def test_snappy_decode_stops_near_max_out() -> None:
    wire = SnappyEncoder().encode(b"\0" * (1 << 20))
    decoder = SnappyDecoder()
    first = decoder.decode(wire, 1)
    assert len(first) == 65536  # one whole chunk, no more
    rest = bytearray()
    while decoder.pending:
        rest += decoder.decode(b"", 65536)
    assert len(first) + len(rest) == 1 << 20


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x01\x05\x00\x00\x00\x00\x00\x00x", "snappy: corrupt input"),  # no stream identifier
        (b"\xff\x06\x00\x00sNaPpZ", "snappy: corrupt input"),  # a wrong identifier
        (STREAM_ID + b"\x00\xff\xff\xff", "snappy: corrupt input"),  # a chunk too long to be valid
        (STREAM_ID + b"\x05\x01\x00\x00x", "snappy: unsupported input"),  # reserved unskippable
        (STREAM_ID + b"\x01\x05\x00\x00\x00\x00\x00\x00x", "snappy: corrupt input"),  # bad CRC
        (STREAM_ID + b"\x00\x06\x00\x00\x00\x00\x00\x00\xff\xff", "snappy: corrupt input"),
    ],
)
def test_corrupt_snappy_is_refused_with_gos_wording(wire: bytes, message: str) -> None:
    with pytest.raises(CompressionError, match=message):
        SnappyDecoder().decode(wire, 1 << 20)


def test_snappy_padding_and_skippable_chunks_carry_nothing() -> None:
    wire = (
        STREAM_ID
        + b"\xfe\x02\x00\x00\x00\x00"
        + b"\x80\x01\x00\x00?"
        + SnappyEncoder().encode(b"hi")
    )
    assert SnappyDecoder().decode(wire, 100) == b"hi"


def test_corrupt_deflate_is_refused() -> None:
    with pytest.raises(CompressionError, match="flate: corrupt input"):
        DeflateDecoder().decode(b"\xff" * 16, 100)
