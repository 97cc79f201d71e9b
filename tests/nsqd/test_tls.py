"""nsqd's TLS: the TCP upgrade in IDENTIFY, --tls-required, client certificates, the version
floor, the HTTPS listener and /stats' tls fields; real sockets, trustme certificates."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trio
from tls_helpers import Certs, https_get, make_certs, raw_identify, tls_options, upgrade_tls
from v2client import ConnectionClosedError, V2Client, open_consumer

from pnsq.nsqd.nsqd import NSQD
from pnsq.nsqd.stats import client_stats
from pnsq.wire import FrameReader, encode_pub

StartNSQD = Any


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


async def test_the_upgrade_on_the_wire_json_plain_then_handshake_then_ok_inside_tls(
    start_nsqd: StartNSQD, certs: Certs
) -> None:
    nsqd = await start_nsqd(**tls_options(certs))
    stream = await trio.open_tcp_stream(*nsqd.tcp_address)
    response, early = await raw_identify(stream, tls_v1=True)
    assert response["tls_v1"] is True
    assert response["snappy"] is False
    assert early == b""  # nothing plain follows the JSON: the next bytes are TLS's
    tls = trio.SSLStream(stream, certs.client_context(), server_hostname="127.0.0.1")
    await tls.do_handshake()
    frames = FrameReader()
    with trio.fail_after(5):
        frames.receive_data(bytes(await tls.receive_some(65536)))
    assert frames.next_frame() == (0, b"OK")  # FRAME_TYPE_RESPONSE inside TLS
    await tls.send_all(encode_pub("t", b"secret"))
    with trio.fail_after(5):
        frames.receive_data(bytes(await tls.receive_some(65536)))
    assert frames.next_frame() == (0, b"OK")
    assert nsqd.topics["t"].depth() == 1
    await tls.aclose()


async def test_stats_report_the_tls_version_and_cipher_suite_as_nsq_names_them(
    start_nsqd: StartNSQD, certs: Certs
) -> None:
    nsqd = await start_nsqd(**tls_options(certs))
    async with await V2Client.connect(nsqd.tcp_address) as tls13:
        await upgrade_tls(tls13, certs.client_context())
        async with await V2Client.connect(nsqd.tcp_address) as tls12:
            await upgrade_tls(tls12, certs.client_context(maximum=ssl.TLSVersion.TLSv1_2))
            async with await V2Client.connect(nsqd.tcp_address) as plain:
                await plain.identify()
                first, second, third = [client_stats(c) for c in nsqd.clients.values()]
    assert first["tls"] is True
    assert first["tls_version"] == "TLS1.3"
    assert first["tls_cipher_suite"].startswith("TLS_")
    assert first["tls_cipher_suite"] in {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    }
    assert first["tls_negotiated_protocol"] == ""
    assert first["tls_negotiated_protocol_is_mutual"] is True
    assert second["tls_version"] == "TLS1.2"
    assert second["tls_cipher_suite"].startswith("TLS_ECDHE_ECDSA_WITH_")  # trustme: ECDSA keys
    assert third["tls"] is False
    assert third["tls_version"] == ""


async def test_tls_required_refuses_every_command_before_the_upgrade(
    start_nsqd: StartNSQD, certs: Certs
) -> None:
    nsqd = await start_nsqd(**tls_options(certs, tls_required="true"))
    for command in (encode_pub("t", b"x"), b"NOP\n", b"SUB t c\n", b"RDY 1\n"):
        async with await V2Client.connect(nsqd.tcp_address) as client:
            await client.send(command)
            name = command.split(b" ")[0].strip()
            expected = b"E_INVALID cannot " + name + b" in current state (TLS required)"
            assert await client.read_error() == expected
            await client.expect_closed()
    async with await V2Client.connect(nsqd.tcp_address) as client:
        await upgrade_tls(client, certs.client_context())
        await client.pub("t", b"after the upgrade")
    assert nsqd.topics["t"].depth() == 1


async def test_tls_required_without_the_client_asking_for_tls_still_refuses(
    start_nsqd: StartNSQD, certs: Certs
) -> None:
    nsqd = await start_nsqd(**tls_options(certs, tls_required="tcp-https"))
    async with await V2Client.connect(nsqd.tcp_address) as client:
        assert (await client.identify_json())["tls_v1"] is False
        await client.send(encode_pub("t", b"x"))
        assert b"(TLS required)" in await client.read_error()
        await client.expect_closed()


async def refused_upgrade(client: V2Client, context: ssl.SSLContext) -> None:
    await upgrade_tls(client, context)
    await client.pub("t", b"never")


@pytest.mark.parametrize("policy", ["require", "require-verify"])
async def test_a_client_auth_policy_wants_a_certificate_from_the_ca(
    start_nsqd: StartNSQD, certs: Certs, policy: str
) -> None:
    nsqd = await start_nsqd(
        **tls_options(certs, tls_client_auth_policy=policy, tls_root_ca_file=certs.ca_file)
    )
    async with await V2Client.connect(nsqd.tcp_address) as client:
        await upgrade_tls(client, certs.client_context(leaf=certs.client))
        await client.pub("t", b"with a certificate")
    for leaf in (None, certs.stranger):
        async with await V2Client.connect(nsqd.tcp_address) as client:
            with pytest.raises((trio.BrokenResourceError, ConnectionClosedError)):
                # TLS 1.3: the refusal may come after the client's side of the handshake
                await refused_upgrade(client, certs.client_context(leaf=leaf))
    assert nsqd.topics["t"].depth() == 1
    # the policy makes TLS required, as in NSQ
    async with await V2Client.connect(nsqd.tcp_address) as client:
        await client.send(b"NOP\n")
        assert b"(TLS required)" in await client.read_error()


async def test_tls_min_version_1_3_refuses_a_tls_1_2_client(
    start_nsqd: StartNSQD, certs: Certs
) -> None:
    nsqd = await start_nsqd(**tls_options(certs, tls_min_version="tls1.3"))
    async with await V2Client.connect(nsqd.tcp_address) as client:
        with pytest.raises(trio.BrokenResourceError):
            await upgrade_tls(client, certs.client_context(maximum=ssl.TLSVersion.TLSv1_2))
    async with await V2Client.connect(nsqd.tcp_address) as client:
        await upgrade_tls(client, certs.client_context())
        await client.pub("t", b"tls 1.3")


async def test_garbage_instead_of_a_client_hello_gets_identify_failed_others_flow(
    start_nsqd: StartNSQD, certs: Certs
) -> None:
    nsqd = await start_nsqd(**tls_options(certs))
    consumer = await open_consumer(nsqd.tcp_address, "t", "c")
    stream = await trio.open_tcp_stream(*nsqd.tcp_address)
    await raw_identify(stream, tls_v1=True)
    await stream.send_all(b"this is not a TLS ClientHello\n" * 4)
    bad = V2Client(stream)
    error = await bad.read_error()
    assert error.startswith(b"E_IDENTIFY_FAILED IDENTIFY failed ")
    await bad.expect_closed()
    await consumer.pub("t", b"still flowing")
    assert (await consumer.read_message()).body == b"still flowing"
    await consumer.aclose()


async def test_a_silent_client_after_asking_for_tls_is_closed_after_the_handshake_deadline(
    start_nsqd: StartNSQD, certs: Certs, autojump_clock: trio.testing.MockClock
) -> None:
    nsqd = await start_nsqd(**tls_options(certs))
    stream = await trio.open_tcp_stream(*nsqd.tcp_address)
    await raw_identify(stream, tls_v1=True)
    client = V2Client(stream, timeout=10)
    assert await client.read_error() == b"E_IDENTIFY_FAILED IDENTIFY failed TLS handshake timeout"
    await client.expect_closed()


# -- HTTPS -----------------------------------------------------------------------------------


async def test_the_https_listener_serves_the_whole_api(make_nsqd: StartNSQD, certs: Certs) -> None:
    nsqd = await make_nsqd(**tls_options(certs))
    assert nsqd.https_address is not None
    ping = await https_get(nsqd.https_address, "/ping", certs.client_context())
    assert ping.startswith(b"HTTP/1.1 200 ")
    assert ping.endswith(b"\r\n\r\nOK")
    info = await https_get(nsqd.https_address, "/info", certs.client_context())
    assert b'"version":"1.3.0"' in info.replace(b" ", b"")
    plain = await https_get(nsqd.http_address, "/ping", None)  # plain HTTP too, by default
    assert plain.startswith(b"HTTP/1.1 200 ")


async def test_tls_required_true_answers_plain_http_403_with_the_https_port(
    make_nsqd: StartNSQD, certs: Certs
) -> None:
    nsqd = await make_nsqd(**tls_options(certs, tls_required="true"))
    assert nsqd.https_address is not None
    answer = await https_get(nsqd.http_address, "/stats", None)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 ")
    assert b"x-nsq-content-type: nsq; version=1.0" in head.lower()
    port = nsqd.https_address[1]
    assert body == b'{"message": "TLS_REQUIRED", "https_port": %d}' % port
    ping = await https_get(nsqd.https_address, "/ping", certs.client_context())
    assert ping.startswith(b"HTTP/1.1 200 ")
    # NSQ answers before routing: a method Go reads but llhttp does not know gets it too
    with trio.fail_after(5):
        async with await trio.open_tcp_stream(*nsqd.http_address) as stream:
            await stream.send_all(b"BREW /stats HTTP/1.1\r\nHost: x\r\n\r\n")
            brew = b""
            while data := await stream.receive_some(65536):
                brew += data
    assert brew.startswith(b"HTTP/1.1 403 ")
    assert brew.endswith(b'{"message": "TLS_REQUIRED", "https_port": %d}' % port)


async def test_tls_required_tcp_https_leaves_plain_http_open_as_nsq_does(
    make_nsqd: StartNSQD, certs: Certs
) -> None:
    # NSQ's TLSRequiredExceptHTTP: TCP must upgrade, HTTP stays plain
    nsqd = await make_nsqd(**tls_options(certs, tls_required="tcp-https"))
    answer = await https_get(nsqd.http_address, "/ping", None)
    assert answer.startswith(b"HTTP/1.1 200 ")


async def test_no_https_listener_without_a_certificate(make_nsqd: StartNSQD) -> None:
    nsqd: NSQD = await make_nsqd(https_address="127.0.0.1:0")
    assert nsqd.https_address is None
    assert nsqd.tls_context is None


def test_an_unreadable_certificate_is_refused_at_startup(tmp_path: Path) -> None:
    from pnsq.nsqd.options import Options, finish

    with pytest.raises(ValueError, match=r"failed to build TLS config - open .*: no such file"):
        finish(Options(tls_cert=str(tmp_path / "absent.pem"), tls_key=str(tmp_path / "k.pem")))
