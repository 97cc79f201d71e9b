"""The snappy and deflate codecs, and the client state machine's upgrades through IDENTIFY.

Codecs: what one side compresses the other decodes at once, however the socket splits it;
corrupt input is a ValueError for good; a small input that expands a thousandfold comes out in
bounded pieces. The state machine: NSQ's order (IDENTIFY reply, TLS, OK, compression, OK, AUTH),
its refusals, and compression applied to everything after the upgrade, both ways.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tracemalloc
import zlib
from typing import Any

import cramjam
import pytest
import snappy
from hypothesis import given
from hypothesis import strategies as st

from pnsq.wire import (
    NEED_DATA,
    ClientConnection,
    DeflateCodec,
    MessageEvent,
    Negotiated,
    Phase,
    Response,
    SnappyCodec,
    UpgradeTLS,
)
from pnsq.wire.compression import CompressionError

Codec = SnappyCodec | DeflateCodec
CODECS = [SnappyCodec, DeflateCodec]


def response(data: bytes) -> bytes:
    return struct.pack(">ii", len(data) + 4, 0) + data


def decode_all(codec: Codec, data: bytes, step: int) -> bytes:
    out = b""
    for i in range(0, len(data), step):
        out += codec.decompress(data[i : i + step])
        while codec.pending:
            out += codec.decompress(b"")
    return out


@pytest.mark.parametrize("make", CODECS)
@given(chunks=st.lists(st.binary(max_size=3000), max_size=8), step=st.integers(1, 700))
def test_every_write_decodes_at_once_however_split(
    make: type[Codec], chunks: list[bytes], step: int
) -> None:
    writer, reader = make(), make()
    for chunk in chunks:
        assert decode_all(reader, writer.compress(chunk), step) == chunk


@pytest.mark.parametrize("make", CODECS)
def test_a_large_write_round_trips(make: type[Codec]) -> None:
    data = bytes(range(256)) * 2000 + b"x" * 300_000  # several snappy chunks
    assert decode_all(make(), make().compress(data), 100_000) == data


def test_snappy_is_the_framing_format_other_libraries_read() -> None:
    data = b"hello snappy " * 100
    framed = SnappyCodec().compress(data)
    assert framed.startswith(b"\xff\x06\x00\x00sNaPpY")
    assert bytes(cramjam.snappy.decompress(framed)) == data
    assert SnappyCodec().decompress(bytes(cramjam.snappy.compress(data))) == data


def test_deflate_is_raw_and_sync_flushed() -> None:
    out = DeflateCodec(9).compress(b"hello deflate")
    assert out.endswith(b"\x00\x00\xff\xff")  # the sync flush marker: decodable now
    assert zlib.decompressobj(-15).decompress(out) == b"hello deflate"


@pytest.mark.parametrize(
    ("make", "garbage"),
    [
        (SnappyCodec, b"not snappy at all"),
        (SnappyCodec, b"\xff\x06\x00\x00sNaPpY\x00\x08\x00\x00\x00\x00\x00\x00\x05junk"),
        (SnappyCodec, b"\xff\x06\x00\x00sNaPpY\x00\xff\xff\xff"),  # 16 MiB chunk: not buffered
        # an uncompressed chunk of 69,628 bytes: more than snappy's 64 KiB of output
        (SnappyCodec, b"\xff\x06\x00\x00sNaPpY\x01\x00\x10\x01" + bytes(0x11000)),
        (DeflateCodec, b"\xff\xff\xff\xff\xff garbage"),
    ],
)
def test_corrupt_input_is_a_value_error_for_good(make: type[Codec], garbage: bytes) -> None:
    codec = make()
    with pytest.raises(ValueError, match=r"corrupt|stream identifier"):
        codec.decompress(garbage)
    with pytest.raises(ValueError):
        codec.decompress(make().compress(b"fine"))


def test_a_snappy_checksum_mismatch_is_corrupt() -> None:
    framed = bytearray(SnappyCodec().compress(b"checked data " * 10))
    framed[-1] ^= 0xFF
    with pytest.raises(ValueError, match="corrupt"):
        SnappyCodec().decompress(bytes(framed))


@pytest.mark.parametrize("make", CODECS)
def test_a_bomb_comes_out_in_bounded_pieces(make: type[Codec]) -> None:
    data = bytes(50 * 1024 * 1024)
    bomb = make().compress(data)
    assert len(bomb) < 3 * 1024 * 1024
    reader = make(max_output=1024 * 1024)
    total, largest = 0, 0
    piece = reader.decompress(bomb)
    while True:
        total, largest = total + len(piece), max(largest, len(piece))
        if not reader.pending:
            break
        piece = reader.decompress(b"")
    assert total == len(data)
    assert largest <= 1024 * 1024


# -- the state machine's upgrades ------------------------------------------------------------

BASE = {"client_id": "c", "feature_negotiation": True}


def negotiate(identify: dict[str, Any], reply: dict[str, Any], **kw: Any) -> ClientConnection[Any]:
    conn: ClientConnection[Any] = ClientConnection({**BASE, **identify}, **kw)
    conn.data_to_send()
    conn.receive_data(response(json.dumps(reply).encode()))
    return conn


@pytest.mark.parametrize(("name", "make"), [("snappy", SnappyCodec), ("deflate", DeflateCodec)])
def test_compressed_ok_in_the_same_read_as_the_reply(name: str, make: type[Codec]) -> None:
    server = make()
    conn: ClientConnection[Any] = ClientConnection({**BASE, name: True})
    conn.data_to_send()
    conn.receive_data(
        response(json.dumps({name: True}).encode()) + server.compress(response(b"OK"))
    )
    assert isinstance(conn.next_event(), Negotiated)
    assert conn.phase is Phase.READY
    conn.pub("t", b"x")
    assert server.decompress(conn.data_to_send()) == b"PUB t\n\x00\x00\x00\x01x"
    conn.receive_data(server.compress(response(b"OK") + response(b"OK")))
    assert conn.next_events() == [Response(b"OK"), Response(b"OK")]


def test_tls_comes_first_and_auth_goes_compressed_after_the_ok() -> None:
    reply = {"tls_v1": True, "snappy": True, "auth_required": True}
    conn = negotiate({"tls_v1": True, "snappy": True}, reply, auth_secret=b"pw")
    assert isinstance(conn.next_event(), UpgradeTLS)
    assert conn.data_to_send() == b""  # nothing may go out before the handshake
    server = SnappyCodec()
    conn.receive_data(response(b"OK"))  # inside TLS, not compressed
    conn.receive_data(server.compress(response(b"OK")))
    assert conn.next_event() is NEED_DATA
    assert server.decompress(conn.data_to_send()) == b"AUTH\n\x00\x00\x00\x02pw"
    conn.receive_data(server.compress(response(b'{"identity":"i"}')))
    event = conn.next_event()
    assert isinstance(event, Negotiated)
    assert event.auth == {"identity": "i"}


@pytest.mark.parametrize(
    ("asked", "reply", "match"),
    [
        ({"tls_v1": True}, {"tls_v1": False}, "refused TLS"),
        ({}, {"tls_v1": True}, "did not ask"),
        ({"snappy": True}, {"snappy": True, "deflate": True}, "both"),
    ],
)
def test_upgrades_nsqd_should_not_have_answered(
    asked: dict[str, Any], reply: dict[str, Any], match: str
) -> None:
    conn = negotiate(asked, reply)
    with pytest.raises(ValueError, match=match):
        conn.next_event()
    assert conn.phase is Phase.FAILED


def test_bytes_before_the_tls_handshake_are_refused() -> None:
    conn: ClientConnection[Any] = ClientConnection({**BASE, "tls_v1": True})
    conn.receive_data(response(b'{"tls_v1":true}') + b"\x16\x03")
    with pytest.raises(ValueError, match="before the TLS handshake"):
        conn.next_event()


def test_no_ok_after_an_upgrade_is_refused() -> None:
    conn = negotiate({"tls_v1": True}, {"tls_v1": True})
    assert isinstance(conn.next_event(), UpgradeTLS)
    conn.receive_data(response(b"NOT OK"))
    with pytest.raises(ValueError, match="expected OK"):
        conn.next_event()


def test_frames_before_corrupt_compressed_bytes_still_arrive() -> None:
    server = DeflateCodec()
    conn = negotiate({"deflate": True}, {"deflate": True})
    conn.receive_data(server.compress(response(b"OK")))
    assert isinstance(conn.next_event(), Negotiated)
    body = struct.pack(">qH", 1, 1) + b"0123456789abcdef" + b"body"
    conn.receive_data(server.compress(struct.pack(">ii", len(body) + 4, 2) + body))
    conn.receive_data(b"\xff\xff garbage")
    assert conn.next_events() == [MessageEvent(1, 1, b"0123456789abcdef", b"body")]
    with pytest.raises(ValueError, match="corrupt deflate"):
        conn.next_events()


def test_a_compressed_flood_of_messages_comes_in_bounded_batches() -> None:
    server = DeflateCodec()
    conn = negotiate({"deflate": True}, {"deflate": True})
    conn.receive_data(server.compress(response(b"OK")))
    assert isinstance(conn.next_event(), Negotiated)
    body = struct.pack(">qH", 1, 1) + b"0123456789abcdef" + bytes(100)
    one = struct.pack(">ii", len(body) + 4, 2) + body
    flood = server.compress(one * 30_000)  # 3.9 MB of frames
    assert len(flood) < 100_000
    conn.receive_data(flood)
    batches = []
    while events := conn.next_events():
        batches.append(len(events))
    assert sum(batches) == 30_000
    assert len(batches) > 1
    assert max(batches) * len(one) <= 1024 * 1024 + len(one)  # the codec's bound, one frame over


# -- against independent codecs (python-snappy's framing, zlib), with Go's wording -------------

STREAM_ID = b"\xff\x06\x00\x00sNaPpY"
payloads = st.lists(st.binary(max_size=3000) | st.just(b"z" * 70_000), min_size=1, max_size=6)


def split_feed(codec: SnappyCodec | DeflateCodec, data: bytes, step: int) -> bytes:
    out = bytearray()
    for i in range(0, len(data), step):
        out += codec.decompress(data[i : i + step])
        while codec.pending:
            out += codec.decompress(b"")
    return bytes(out)


@given(payloads, st.integers(1, 5000))
def test_snappy_output_decodes_with_python_snappy_and_back(writes: list[bytes], step: int) -> None:
    ours = SnappyCodec()
    wire = b"".join(ours.compress(w) for w in writes)
    assert snappy.StreamDecompressor().decompress(wire) == b"".join(writes)
    theirs = snappy.StreamCompressor()
    wire = b"".join(theirs.add_chunk(w) for w in writes)
    assert split_feed(SnappyCodec(), wire, step) == b"".join(writes)


@given(payloads, st.integers(1, 5000))
def test_every_deflate_write_is_decodable_at_once_by_zlib(writes: list[bytes], step: int) -> None:
    codec, inflater = DeflateCodec(6), zlib.decompressobj(-15)
    for write in writes:
        assert inflater.decompress(codec.compress(write)) == write  # no byte held back
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    wire = b"".join(compressor.compress(w) for w in writes) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert split_feed(DeflateCodec(), wire, step) == b"".join(writes)


def test_a_deflate_bomb_inflates_in_bounded_pieces_in_bounded_memory() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(b"\0" * (64 << 20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    codec = DeflateCodec(max_output=65536)
    tracemalloc.start()
    try:
        total, chunk = 0, codec.decompress(bomb)
        while chunk:
            assert len(chunk) <= 65536
            total += len(chunk)
            chunk = codec.decompress(b"")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 64 << 20
    assert peak < 2 << 20  # 64 MiB inflated, never more than a piece (and the input) held


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
        SnappyCodec().decompress(wire)


def test_snappy_padding_and_skippable_chunks_carry_nothing() -> None:
    wire = (
        STREAM_ID
        + b"\xfe\x02\x00\x00\x00\x00"
        + b"\x80\x01\x00\x00?"
        + SnappyCodec().compress(b"hi")
    )
    assert SnappyCodec().decompress(wire) == b"hi"


def test_corrupt_deflate_is_refused_with_gos_wording() -> None:
    with pytest.raises(CompressionError, match="flate: corrupt input"):
        DeflateCodec().decompress(b"\xff" * 16)


def test_nsqd_and_the_client_load_cramjam_only_for_a_snappy_connection() -> None:
    """cramjam adds ~3 MiB to a process's RSS: a plain nsqd or client must not load it."""
    script = (
        "import sys, pnsq.nsqd.nsqd, pnsq.client, pnsq.wire\n"
        "assert 'cramjam' not in sys.modules, 'loaded at import'\n"
        "codec = pnsq.wire.SnappyCodec()\n"
        "assert 'cramjam' in sys.modules\n"
        "assert codec.decompress(codec.compress(b'abc')) == b'abc'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()
