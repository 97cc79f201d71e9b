"""The client's TLS, snappy, deflate and AUTH against a scripted nsqd doing NSQ's side of them.

Each test checks the bytes the client sent at each stage: the magic and IDENTIFY in plain text
(asking for exactly the upgrades configured), then, decrypted and decompressed, the AUTH and the
commands, with nothing in between. Certificates come from trustme, made in the test.
"""

from __future__ import annotations

import json
import ssl
import struct
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trustme
from upgrade_server import OK, Raw, Script, UpgradeServer, error, frame, response

from pnsq.client import (
    AuthError,
    Consumer,
    Message,
    NSQConnectionError,
    NSQError,
    NSQProtocolError,
    Producer,
    ProducerPool,
    SyncProducer,
)

SECRET = b"s3cret"
AUTH = b"AUTH\n" + struct.pack(">i", len(SECRET)) + SECRET
AUTH_REPLY = response(b'{"identity":"me","identity_url":"","permission_count":1}')
PUB = b"PUB t\n" + struct.pack(">i", 5) + b"hello"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "nsqd.test").configure_cert(context)
    return context


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def nsqd_reply(**granted: Any) -> dict[str, Any]:
    return {"max_rdy_count": 2500, "version": "1.3.0", "msg_timeout": 60000, **granted}


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[UpgradeServer] = []

    def start(script: Script) -> UpgradeServer:
        server = UpgradeServer(script).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


def assert_identify(server: UpgradeServer, **asked: Any) -> None:
    """The plain part is the magic and one IDENTIFY asking for exactly ``asked``."""
    assert server.plain.startswith(b"  V2IDENTIFY\n")
    upgrades = {k: server.identify.get(k) for k in ("tls_v1", "snappy", "deflate", "deflate_level")}
    assert upgrades == {k: asked.get(k) for k in upgrades}
    assert server.identify["feature_negotiation"] is True


async def publish_once(address: str, **options: Any) -> None:
    with trio.fail_after(10):
        async with Producer(address, **options) as producer:
            await producer.publish("t", b"hello")


@pytest.mark.parametrize(
    ("options", "granted"),
    [
        ({"snappy": True}, {"snappy": True}),
        ({"deflate": True, "deflate_level": 3}, {"deflate": True, "deflate_level": 3}),
    ],
)
async def test_tls_then_compression_then_auth_in_nsqs_order(
    serve: Any,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
    options: dict[str, Any],
    granted: dict[str, Any],
) -> None:
    reply = nsqd_reply(tls_v1=True, auth_required=True, **granted)
    server = serve(Script(reply, [(AUTH, AUTH_REPLY), (PUB, OK)], tls=server_tls))
    await publish_once(server.address, tls=client_tls, auth_secret=SECRET, **options)
    assert server.failure is None
    assert_identify(server, tls_v1=True, **granted)
    assert server.tls_version in ("TLSv1.2", "TLSv1.3")
    assert server.upgraded == AUTH + PUB  # the secret went encrypted and compressed


@pytest.mark.parametrize("compression", ["snappy", "deflate"])
async def test_compression_without_tls(serve: Any, compression: str) -> None:
    # nsqd's compressed OK may share a read with its plain IDENTIFY reply: the client must not
    # take it for plain bytes.
    server = serve(Script(nsqd_reply(**{compression: True}), [(PUB, OK)]))
    await publish_once(server.address, **{compression: True})
    assert server.failure is None
    assert server.upgraded == PUB


async def test_tls_alone(
    serve: Any, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    server = serve(Script(nsqd_reply(tls_v1=True), [(PUB, OK)], tls=server_tls))
    await publish_once(server.address, tls=client_tls)
    assert server.failure is None
    assert_identify(server, tls_v1=True)
    assert server.upgraded == PUB


async def test_producer_pool_passes_the_options_to_its_producers(
    serve: Any, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    reply = nsqd_reply(tls_v1=True, snappy=True, auth_required=True)
    server = serve(Script(reply, [(AUTH, AUTH_REPLY), (PUB, OK)], tls=server_tls))
    with trio.fail_after(10):
        async with ProducerPool(
            [server.address], tls=client_tls, snappy=True, auth_secret=SECRET
        ) as pool:
            await pool.publish("t", b"hello")
    assert server.failure is None
    assert server.upgraded == AUTH + PUB


def test_sync_producer_tls_snappy_auth(
    serve: Any, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    reply = nsqd_reply(tls_v1=True, snappy=True, auth_required=True)
    server = serve(Script(reply, [(AUTH, AUTH_REPLY), (PUB, OK)], tls=server_tls))
    with SyncProducer(server.address, tls=client_tls, snappy=True, auth_secret=SECRET) as p:
        p.publish("t", b"hello")
    assert server.done.wait(10)
    assert server.failure is None
    assert server.upgraded == AUTH + PUB


def test_sync_producer_deflate(serve: Any) -> None:
    server = serve(Script(nsqd_reply(deflate=True, deflate_level=6), [(PUB, OK)]))
    with SyncProducer(server.address, deflate=True, timeout=5) as p:
        p.publish("t", b"hello")
    assert server.done.wait(10)
    assert server.failure is None
    assert server.upgraded == PUB


async def test_consumer_receives_and_fins_through_tls_and_deflate(
    serve: Any, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    msg_id = b"0123456789abcdef"
    message = frame(2, struct.pack(">qH", 1, 1) + msg_id + b"body")
    reply = nsqd_reply(tls_v1=True, deflate=True, deflate_level=6)
    steps = [
        (b"SUB t c\n", OK),
        (b"RDY 1\n", message),
        (b"FIN " + msg_id + b"\n", b""),
        (b"CLS\n", response(b"CLOSE_WAIT")),
    ]
    server = serve(Script(reply, steps, tls=server_tls))
    got: list[bytes] = []
    done = trio.Event()

    async def handler(msg: Message) -> None:
        got.append(msg.body)
        done.set()

    consumer = Consumer(
        "t", "c", handler, nsqd_tcp_addresses=[server.address], tls=client_tls, deflate=True
    )
    with trio.fail_after(10):
        async with consumer:
            await done.wait()
    assert await trio.to_thread.run_sync(server.done.wait, 10)
    assert got == [b"body"]
    assert server.failure is None
    assert server.upgraded == b"".join(e for e, _ in steps)


async def test_mutual_tls_presents_the_client_certificate(
    serve: Any, ca: trustme.CA, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    server_tls.verify_mode = ssl.CERT_REQUIRED  # nsqd's --tls-client-auth-policy=require-verify
    ca.configure_trust(server_tls)
    server = serve(Script(nsqd_reply(tls_v1=True), [(PUB, OK)], tls=server_tls))
    ca.issue_cert("client.test").configure_cert(client_tls)
    await publish_once(server.address, tls=client_tls)
    assert server.failure is None
    assert server.upgraded == PUB


async def test_a_client_without_the_required_certificate_is_refused(
    serve: Any, ca: trustme.CA, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    server_tls.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server_tls)
    server = serve(Script(nsqd_reply(tls_v1=True), [(PUB, OK)], tls=server_tls))
    with trio.fail_after(10):
        async with Producer(server.address, tls=client_tls) as producer:
            # TLS 1.3 reports the refusal after the handshake: at the OK or the PUB.
            with pytest.raises(NSQConnectionError):
                await producer.publish("t", b"hello")
    assert server.upgraded == b""


# Bytes that come with the IDENTIFY reply are refused before the handshake starts; later ones
# fail the handshake: either way the connection fails with a reason, and never hangs.
NOT_TLS = Script(nsqd_reply(tls_v1=True), instead_of_tls=b"HTTP/1.1 400 Bad Request\r\n\r\n")


async def test_garbage_instead_of_a_tls_handshake_fails_the_connection(
    serve: Any, client_tls: ssl.SSLContext
) -> None:
    server = serve(NOT_TLS)
    with trio.fail_after(10):
        async with Producer(server.address, tls=client_tls) as producer:
            with pytest.raises(NSQError, match="negotiation"):
                await producer.publish("t", b"hello")


def test_sync_producer_garbage_instead_of_a_tls_handshake(
    serve: Any, client_tls: ssl.SSLContext
) -> None:
    server = serve(NOT_TLS)
    with (
        SyncProducer(server.address, tls=client_tls) as p,
        pytest.raises(NSQError, match="negotiation"),
    ):
        p.publish("t", b"hello")


async def test_corrupt_compressed_bytes_fail_the_request_not_the_process(serve: Any) -> None:
    server = serve(Script(nsqd_reply(snappy=True), [(PUB, Raw(b"\x00\x08\x00\x00garbage!"))]))
    with trio.fail_after(10):
        async with Producer(server.address, snappy=True) as producer:
            with pytest.raises(NSQConnectionError):
                await producer.publish("t", b"hello")


def test_sync_producer_corrupt_deflate_is_a_protocol_error(serve: Any) -> None:
    server = serve(Script(nsqd_reply(deflate=True), [(PUB, Raw(b"\xff\xff\xff\xff garbage"))]))
    with (
        SyncProducer(server.address, deflate=True) as p,
        pytest.raises(NSQProtocolError, match="corrupt deflate"),
    ):
        p.publish("t", b"hello")


async def test_an_untrusted_certificate_fails_the_connection(
    serve: Any, server_tls: ssl.SSLContext
) -> None:
    server = serve(Script(nsqd_reply(tls_v1=True), tls=server_tls))
    with trio.fail_after(10):
        async with Producer(server.address, tls=True) as producer:  # the system's CAs only
            with pytest.raises(NSQConnectionError, match="certificate verify failed"):
                await producer.publish("t", b"x")


async def test_a_certificate_for_another_host_fails_the_connection(
    serve: Any, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    server = serve(Script(nsqd_reply(tls_v1=True), tls=server_tls))
    opts: dict[str, Any] = {"tls": client_tls, "tls_server_hostname": "other.test"}
    with trio.fail_after(10):
        async with Producer(server.address, **opts) as producer:
            with pytest.raises(NSQConnectionError, match="certificate verify failed"):
                await producer.publish("t", b"x")


async def test_tls_refused_by_nsqd_is_an_error_not_plain_text(serve: Any) -> None:
    server = serve(Script(nsqd_reply(tls_v1=False, auth_required=True), []))
    with trio.fail_after(10):
        async with Producer(server.address, tls=True, auth_secret=SECRET) as producer:
            with pytest.raises(NSQProtocolError, match="refused TLS"):
                await producer.publish("t", b"x")
    assert await trio.to_thread.run_sync(server.done.wait, 10)
    assert server.upgraded == b""  # the secret never left


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("E_AUTH_FAILED", b"E_AUTH_FAILED AUTH failed"),
        ("E_UNAUTHORIZED", b"E_UNAUTHORIZED AUTH no authorizations found"),
    ],
)
async def test_a_refused_secret_is_an_auth_error_with_nsqs_code(
    serve: Any, code: str, text: bytes
) -> None:
    reply = nsqd_reply(snappy=True, auth_required=True)
    server = serve(Script(reply, [(AUTH, error(text))]))
    with trio.fail_after(10):
        async with Producer(server.address, snappy=True, auth_secret=SECRET) as producer:
            with pytest.raises(AuthError) as info:
                await producer.publish("t", b"x")
    assert info.value.code == code


def test_sync_producer_refused_secret_is_an_auth_error(serve: Any) -> None:
    server = serve(Script(nsqd_reply(auth_required=True), [(AUTH, error(b"E_AUTH_FAILED x"))]))
    with (
        SyncProducer(server.address, auth_secret=SECRET) as p,
        pytest.raises(AuthError, match="E_AUTH_FAILED"),
    ):
        p.publish("t", b"x")


def test_identify_asks_for_nothing_more_by_default(serve: Any) -> None:
    server = serve(Script(nsqd_reply(), [(PUB, OK)]))
    with SyncProducer(server.address) as p:
        p.publish("t", b"hello")
    assert server.done.wait(10)
    assert_identify(server)
    body = json.loads(server.plain[4 + 9 + 4 :])
    assert not {"tls_v1", "snappy", "deflate"} & body.keys()
