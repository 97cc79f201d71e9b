"""nsqd's snappy and deflate connections: the upgrade's bytes on a raw socket, decoded with
independent codecs (python-snappy's framing decoder, zlib), then whole conversations through
them; corrupt input and a decompression bomb close that one connection only."""

from __future__ import annotations

import contextlib
import zlib
from typing import Any

import pytest
import snappy
import trio
from tls_helpers import Certs, make_certs, raw_identify, tls_options
from v2client import UnexpectedFrameError, V2Client, open_consumer

from pnsq.nsqd.stats import client_stats
from pnsq.wire import encode_mpub, encode_pub
from pnsq.wire.frames import OK_FRAME

StartNSQD = Any


class ClientSide(trio.abc.Stream):
    """A client's compressed stream, built on python-snappy or zlib rather than on pnsq."""

    def __init__(self, inner: trio.abc.Stream, kind: str, early: bytes = b"") -> None:
        self.inner = inner
        if kind == "snappy":
            self._compress = snappy.StreamCompressor().add_chunk
            self._decompress = snappy.StreamDecompressor().decompress
        else:
            compressor, decompressor = (
                zlib.compressobj(6, zlib.DEFLATED, -15),
                zlib.decompressobj(-15),
            )
            self._compress = lambda data: (
                compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            )
            self._decompress = decompressor.decompress
        self._early = early

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._early:
            data, self._early = self._early, b""
            return bytes(self._decompress(data))
        while True:
            data = await self.inner.receive_some(65536)
            if not data:
                return b""
            out = bytes(self._decompress(bytes(data)))
            if out:
                return out

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(self._compress(bytes(data)))

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def compressed_client(address: tuple[str, int], kind: str, **identify: Any) -> V2Client:
    stream = await trio.open_tcp_stream(*address)
    response, early = await raw_identify(stream, **{kind: True}, **identify)
    assert response[kind] is True
    client = V2Client(ClientSide(stream, kind, early))
    await client.expect_response(b"OK")
    return client


async def read_upgraded(stream: trio.abc.Stream, early: bytes, want: int) -> bytes:
    data = bytearray(early)
    with trio.fail_after(5):
        while len(data) < want:
            chunk = await stream.receive_some(65536)
            assert chunk
            data += chunk
    return bytes(data)


async def test_snappy_upgrade_on_the_wire_is_a_framed_ok(start_nsqd: StartNSQD) -> None:
    nsqd = await start_nsqd()
    stream = await trio.open_tcp_stream(*nsqd.tcp_address)
    response, early = await raw_identify(stream, snappy=True)
    assert (response["snappy"], response["deflate"], response["tls_v1"]) == (True, False, False)
    data = await read_upgraded(stream, early, 10 + 4 + 4 + len(OK_FRAME))
    assert data.startswith(b"\xff\x06\x00\x00sNaPpY")  # the stream identifier, then one chunk
    assert snappy.StreamDecompressor().decompress(data) == OK_FRAME
    await stream.aclose()


async def test_deflate_upgrade_on_the_wire_is_a_sync_flushed_ok(start_nsqd: StartNSQD) -> None:
    nsqd = await start_nsqd()
    stream = await trio.open_tcp_stream(*nsqd.tcp_address)
    response, early = await raw_identify(stream, deflate=True, deflate_level=3)
    assert (response["deflate"], response["deflate_level"], response["snappy"]) == (True, 3, False)
    data = await read_upgraded(stream, early, 4)
    assert data.endswith(b"\x00\x00\xff\xff")  # Z_SYNC_FLUSH's marker: decodable right now
    assert zlib.decompressobj(-15).decompress(data) == OK_FRAME
    await stream.aclose()


@pytest.mark.parametrize(("asked", "given"), [(None, 6), (0, 6), (-3, 6), (1, 1), (9, 6)])
async def test_deflate_level_defaults_to_6_and_is_capped(
    start_nsqd: StartNSQD, asked: int | None, given: int
) -> None:
    nsqd = await start_nsqd()
    stream = await trio.open_tcp_stream(*nsqd.tcp_address)
    level = {} if asked is None else {"deflate_level": asked}
    response, _ = await raw_identify(stream, deflate=True, **level)
    assert (response["deflate"], response["deflate_level"]) == (True, given)
    await stream.aclose()


async def test_a_deflate_level_above_the_maximum_gets_the_maximum(start_nsqd: StartNSQD) -> None:
    nsqd = await start_nsqd(max_deflate_level=4)
    async with await V2Client.connect(nsqd.tcp_address) as client:
        response = await client.identify_json(deflate=True, deflate_level=9)
    assert (response["deflate_level"], response["max_deflate_level"]) == (4, 4)


async def test_snappy_and_deflate_together_are_refused(start_nsqd: StartNSQD) -> None:
    nsqd = await start_nsqd()
    async with await V2Client.connect(nsqd.tcp_address) as client:
        await client.send(b"IDENTIFY\n")
        await client.send(_identify_body(snappy=True, deflate=True))
        error = await client.read_error()
        assert error == b"E_IDENTIFY_FAILED cannot enable both deflate and snappy compression"
        await client.expect_closed()


def _identify_body(**fields: Any) -> bytes:
    import json

    body = json.dumps({"feature_negotiation": True, **fields}).encode()
    return len(body).to_bytes(4, "big") + body


async def test_disabled_compression_is_not_negotiated(start_nsqd: StartNSQD) -> None:
    nsqd = await start_nsqd(snappy=False, deflate=False)
    async with await V2Client.connect(nsqd.tcp_address) as client:
        response = await client.identify_json(snappy=True)
        assert (response["snappy"], response["deflate"]) == (False, False)
        await client.pub("t", b"plain")  # no extra OK, no wrapping


@pytest.mark.parametrize("kind", ["snappy", "deflate"])
async def test_publish_and_consume_through_compression(start_nsqd: StartNSQD, kind: str) -> None:
    nsqd = await start_nsqd()
    consumer = await compressed_client(nsqd.tcp_address, kind)
    await consumer.subscribe("t", "c", rdy=100)
    producer = await compressed_client(nsqd.tcp_address, kind)
    bodies = [bytes([i]) * 300 for i in range(50)]
    await producer.mpub("t", bodies)
    await producer.pub("t", b"x" * 200_000)  # over one snappy chunk
    got = [m.body for m in await consumer.read_messages(51)]
    assert got == [*bodies, b"x" * 200_000]
    stats = [client_stats(c) for c in nsqd.clients.values()]
    assert all(s[kind] is True for s in stats)
    await producer.aclose()
    await consumer.aclose()


async def test_tls_then_snappy_both_wrap_the_socket(start_nsqd: StartNSQD, tmp_path: Any) -> None:
    certs: Certs = make_certs(tmp_path)
    nsqd = await start_nsqd(**tls_options(certs))
    stream = await trio.open_tcp_stream(*nsqd.tcp_address)
    response, _ = await raw_identify(stream, tls_v1=True, snappy=True)
    assert (response["tls_v1"], response["snappy"]) == (True, True)
    tls = trio.SSLStream(stream, certs.client_context(), server_hostname="127.0.0.1")
    await tls.do_handshake()
    data = b""
    with trio.fail_after(5):
        while len(data) < len(OK_FRAME):  # no further: the snappy stream starts right after
            data += await tls.receive_some(len(OK_FRAME) - len(data))
    assert data == OK_FRAME  # the TLS OK, plain inside TLS; the snappy one follows
    client = V2Client(ClientSide(tls, "snappy"))
    await client.expect_response(b"OK")
    await client.pub("t", b"both")
    (stats,) = [client_stats(c) for c in nsqd.clients.values()]
    assert (stats["tls"], stats["snappy"], stats["deflate"]) == (True, True, False)
    await client.aclose()


@pytest.mark.parametrize(
    ("kind", "garbage"),
    [
        ("snappy", b"\x00\x10\x00\x00" + b"\x01" * 16),  # a chunk whose CRC is wrong
        ("snappy", b"\x02\x01\x00\x00x"),  # a reserved unskippable chunk
        ("deflate", b"\xff" * 64),  # an invalid block type
    ],
)
async def test_corrupt_compressed_input_closes_that_connection_only(
    start_nsqd: StartNSQD, kind: str, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    nsqd = await start_nsqd()
    other = await open_consumer(nsqd.tcp_address, "t", "c")
    bad = await compressed_client(nsqd.tcp_address, kind)
    inner = bad.stream.inner  # type: ignore[attr-defined]
    await inner.send_all(garbage)
    await bad.expect_closed()
    assert f"failed to read command - {'snappy' if kind == 'snappy' else 'flate'}:" in caplog.text
    await other.pub("t", b"still flowing")
    assert (await other.read_message()).body == b"still flowing"
    await other.aclose()


async def test_a_deflate_bomb_closes_that_connection_others_flow(
    start_nsqd: StartNSQD, caplog: pytest.LogCaptureFixture
) -> None:
    nsqd = await start_nsqd()
    other = await open_consumer(nsqd.tcp_address, "t", "c")
    bad = await compressed_client(nsqd.tcp_address, "deflate")
    inner = bad.stream.inner  # type: ignore[attr-defined]
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(b"\0" * (16 << 20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    # 1 GiB of zeros (no newline: never a command) in ~1 MiB on the wire; nsqd inflates one
    # read's worth, finds no command in it and closes (the rest of the bomb is never inflated)
    with trio.fail_after(20):
        try:
            for _ in range(64):
                await inner.send_all(piece)
        except trio.BrokenResourceError:
            pass  # closed mid-bomb
        with contextlib.suppress(UnexpectedFrameError):
            await bad.expect_closed()  # the error frame may be lost to the reset
    assert "E_INVALID command longer than" in caplog.text
    await other.pub("t", b"still flowing")
    assert (await other.read_message()).body == b"still flowing"
    assert len(nsqd.clients) == 1
    await other.aclose()


async def test_bigger_than_max_body_size_is_refused_through_compression(
    start_nsqd: StartNSQD,
) -> None:
    nsqd = await start_nsqd(max_body_size=1000, max_msg_size=500)
    bad = await compressed_client(nsqd.tcp_address, "snappy")
    await bad.send(encode_mpub("t", [b"x" * 400] * 5))
    assert (await bad.read_error()).startswith(b"E_BAD_BODY MPUB body too big")
    await bad.expect_closed()
    ok = await compressed_client(nsqd.tcp_address, "snappy")
    await ok.send(encode_pub("t", b"x" * 400))
    await ok.expect_response(b"OK")
    await ok.aclose()
