"""pnsq's own client against pnsq's nsqd over TLS, snappy, deflate and AUTH (with pnsq authd).

The client's upgrades are checked byte by byte against a scripted nsqd in tests/client, and
nsqd's against raw sockets and pynsq in this folder; this closes the loop: both of pnsq's
halves, as a user runs them, on real sockets with trustme certificates.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio
from auth_helpers import authd_address, start_authd, write_secrets
from tls_helpers import Certs, make_certs, tls_options

from pnsq.client import AuthError, Consumer, Message, Producer, SyncProducer
from pnsq.nsqd.nsqd import NSQD

StartNSQD = Any
SECRET = b"s3cret"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


async def secure_nsqd(
    start_nsqd: StartNSQD, nursery: trio.Nursery, certs: Certs, tmp_path: Path
) -> NSQD:
    """TLS required, snappy and deflate on, AUTH through pnsq authd: SECRET may publish
    anywhere and subscribe to ``orders`` only."""
    secrets = write_secrets(
        tmp_path / "secrets.toml",
        [
            {
                "secret": SECRET.decode(),
                "identity": "orders-service",
                "authorizations": [
                    {"topic": ".*", "channels": [".*"], "permissions": ["publish"]},
                    {"topic": "^orders$", "channels": [".*"], "permissions": ["subscribe"]},
                ],
            }
        ],
    )
    authd = await start_authd(nursery, secrets)
    return await start_nsqd(  # type: ignore[no-any-return]
        **tls_options(certs, tls_required="true"),
        auth_http_addresses=(authd_address(authd),),
    )


def address(nsqd: NSQD) -> str:
    assert nsqd.tcp_address is not None
    return f"127.0.0.1:{nsqd.tcp_address[1]}"


@pytest.mark.parametrize("compression", [{"snappy": True}, {"deflate": True, "deflate_level": 3}])
async def test_publish_and_consume_through_tls_compression_and_auth(
    start_nsqd: StartNSQD,
    nursery: trio.Nursery,
    certs: Certs,
    tmp_path: Path,
    compression: dict[str, Any],
) -> None:
    nsqd = await secure_nsqd(start_nsqd, nursery, certs, tmp_path)
    secure = {"tls": certs.client_context(), "auth_secret": SECRET, **compression}
    bodies = [b"order %d" % n for n in range(500)]
    async with Producer(address(nsqd), **secure) as producer:
        await producer.multi_publish("orders", bodies[:250])
        for body in bodies[250:]:
            await producer.publish("orders", body)
    seen: collections.Counter[bytes] = collections.Counter()

    async def handle(message: Message) -> None:
        seen[message.body] += 1

    consumer = Consumer(
        "orders", "billing", handle, nsqd_tcp_addresses=[address(nsqd)], max_in_flight=100, **secure
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer.run)
        with trio.fail_after(20):
            while consumer.stats().finished < len(bodies):  # noqa: ASYNC110 - client state
                await trio.sleep(0.01)
        (client,) = [c for c in nsqd.clients.values() if c.channel is not None]
        assert client.tls is not None
        assert client.tls["tls"] is True
        assert (client.snappy, client.deflate) == (
            "snappy" in compression,
            "deflate" in compression,
        )
        assert client.authed
        assert client.auth_state is not None
        await consumer.close()
    assert seen == collections.Counter(bodies)  # every body, once


async def test_a_refused_secret_or_command_is_an_auth_error_with_nsqs_code(
    start_nsqd: StartNSQD, nursery: trio.Nursery, certs: Certs, tmp_path: Path
) -> None:
    nsqd = await secure_nsqd(start_nsqd, nursery, certs, tmp_path)
    with trio.fail_after(10):
        with pytest.raises(AuthError) as wrong_secret:
            async with Producer(address(nsqd), tls=certs.client_context(), auth_secret=b"no") as p:
                await p.publish("orders", b"x")
        assert wrong_secret.value.code == "E_AUTH_FAILED"
        with pytest.raises(AuthError) as no_secret:
            async with Producer(address(nsqd), tls=certs.client_context()) as p:
                await p.publish("orders", b"x")
        assert no_secret.value.code == "E_AUTH_FIRST"
    assert "orders" not in nsqd.topics


async def test_the_blocking_producer_publishes_over_tls_deflate_and_auth(
    start_nsqd: StartNSQD, nursery: trio.Nursery, certs: Certs, tmp_path: Path
) -> None:
    nsqd = await secure_nsqd(start_nsqd, nursery, certs, tmp_path)
    context = certs.client_context()

    def publish() -> None:
        with SyncProducer(address(nsqd), tls=context, deflate=True, auth_secret=SECRET) as p:
            p.publish("orders", b"one")
            p.multi_publish("orders", [b"two", b"three"])

    with trio.fail_after(20):
        await trio.to_thread.run_sync(publish)
    assert nsqd.topics["orders"].depth() == 3
