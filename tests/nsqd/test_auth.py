"""AUTH against a real ``pnsq authd``: NSQ's permission matrix, its error texts, the TTL, and an
auth server that is down, silent or talking junk (that client fails, nobody else notices).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from auth_helpers import (
    authd_address,
    closed_port,
    fake_auth_server,
    https_auth_server,
    start_authd,
    write_secrets,
)
from v2client import StartNSQD, V2Client

from pnsq.authd.authd import Authd
from pnsq.nsqd.nsqd import NSQD
from pnsq.wire.commands import encode_auth

HTTPRequest = Callable[..., Awaitable[Any]]  # the root conftest's ``http`` fixture
SECRETS: list[dict[str, Any]] = [
    {
        "secret": "pub-orders",
        "identity": "orders-writer",
        "identity_url": "https://example.com/orders-writer",
        "ttl": 3600,
        "authorizations": [{"topic": "^orders$", "channels": [".*"], "permissions": ["publish"]}],
    },
    {
        "secret": "sub-archive",
        "identity": "archiver",
        "ttl": 3600,
        "authorizations": [
            # unanchored: "log" matches any topic containing it
            {"topic": "log", "channels": ["^archive$"], "permissions": ["subscribe"]},
        ],
    },
    {
        # no channels: NSQ's quirk says this can never publish (a channel regex must match "")
        "secret": "no-channels",
        "identity": "quirk",
        "authorizations": [{"topic": ".*", "channels": [], "permissions": ["publish"]}],
    },
    {"secret": "nothing", "identity": "nobody", "authorizations": []},
    {
        "secret": "short",
        "identity": "short-lived",
        "ttl": 1,
        "authorizations": [{"topic": ".*", "channels": [".*"], "permissions": ["publish"]}],
    },
]


@pytest.fixture
async def authd(nursery: trio.Nursery, tmp_path: Path) -> Authd:
    return await start_authd(nursery, write_secrets(tmp_path / "secrets.toml", SECRETS))


@pytest.fixture
async def nsqd(start_nsqd: StartNSQD, authd: Authd) -> NSQD:
    return await start_nsqd(auth_http_addresses=(authd_address(authd),))


async def connect(nsqd: NSQD) -> V2Client:
    assert nsqd.tcp_address is not None
    client = await V2Client.connect(nsqd.tcp_address)
    identified = json.loads(await client.identify(feature_negotiation=True))
    assert identified["auth_required"] is True
    return client


async def authed(nsqd: NSQD, secret: bytes) -> tuple[V2Client, dict[str, Any]]:
    client = await connect(nsqd)
    await client.send(encode_auth(secret))
    return client, json.loads(await client.read_response())


async def test_auth_replies_with_identity_and_permission_count(nsqd: NSQD) -> None:
    client, reply = await authed(nsqd, b"pub-orders")
    assert reply == {
        "identity": "orders-writer",
        "identity_url": "https://example.com/orders-writer",
        "permission_count": 1,
    }
    await client.aclose()


async def test_publish_allowed_on_the_granted_topic_only(nsqd: NSQD) -> None:
    client, _ = await authed(nsqd, b"pub-orders")
    await client.pub("orders", b"1")
    await client.send(b"MPUB orders\n" + _mpub_body([b"2", b"3"]))
    await client.expect_response(b"OK")
    await client.dpub("orders", 10, b"4")
    assert nsqd.topics["orders"].depth() >= 3
    await client.send(b"PUB orders2\n" + _sized(b"x"))  # ^orders$ is anchored by its author
    assert await client.read_error() == b'E_UNAUTHORIZED AUTH failed for PUB on "orders2" ""'
    await client.expect_closed()


async def test_publish_permission_does_not_allow_subscribe(nsqd: NSQD) -> None:
    client, _ = await authed(nsqd, b"pub-orders")
    await client.send(b"SUB orders c\n")
    assert await client.read_error() == b'E_UNAUTHORIZED AUTH failed for SUB on "orders" "c"'
    await client.expect_closed()


async def test_subscribe_with_unanchored_topic_regex_and_the_granted_channel(nsqd: NSQD) -> None:
    client, _ = await authed(nsqd, b"sub-archive")
    await client.sub("app_logs", "archive")  # "log" found inside the topic name
    await client.aclose()


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (b"SUB app_logs other\n", b'E_UNAUTHORIZED AUTH failed for SUB on "app_logs" "other"'),
        (b"SUB metrics archive\n", b'E_UNAUTHORIZED AUTH failed for SUB on "metrics" "archive"'),
        (b"PUB app_logs\n" + b"\0\0\0\1x", b'E_UNAUTHORIZED AUTH failed for PUB on "app_logs" ""'),
    ],
    ids=["wrong-channel", "wrong-topic", "subscriber-cannot-publish"],
)
async def test_subscribe_grant_refuses_the_rest(nsqd: NSQD, command: bytes, error: bytes) -> None:
    client, _ = await authed(nsqd, b"sub-archive")
    await client.send(command)
    assert await client.read_error() == error
    await client.expect_closed()


async def test_an_authorization_without_channels_cannot_publish(nsqd: NSQD) -> None:
    client, _ = await authed(nsqd, b"no-channels")
    await client.send(b"PUB anything\n" + _sized(b"x"))
    assert await client.read_error() == b'E_UNAUTHORIZED AUTH failed for PUB on "anything" ""'


@pytest.mark.parametrize("command", [b"PUB t\n\0\0\0\1x", b"SUB t c\n", b"MPUB t\n" + b"\0" * 4])
async def test_commands_before_auth_get_e_auth_first(nsqd: NSQD, command: bytes) -> None:
    client = await connect(nsqd)
    if command.startswith(b"MPUB"):
        command = b"MPUB t\n" + _mpub_body([b"x"])
    await client.send(command)
    name = command.split(b" ")[0].decode()
    assert await client.read_error() == f"E_AUTH_FIRST AUTH required before {name}".encode()
    await client.expect_closed()


async def test_auth_twice_is_invalid(nsqd: NSQD) -> None:
    client, _ = await authed(nsqd, b"pub-orders")
    await client.send(encode_auth(b"pub-orders"))
    assert await client.read_error() == b"E_INVALID AUTH already set"
    await client.expect_closed()


async def test_auth_after_sub_is_invalid_in_that_state(nsqd: NSQD) -> None:
    client, _ = await authed(nsqd, b"sub-archive")
    await client.sub("logs", "archive")
    await client.send(encode_auth(b"sub-archive"))
    assert await client.read_error() == b"E_INVALID cannot AUTH in current state"


async def test_unknown_secret_fails_and_a_grant_of_nothing_is_unauthorized(nsqd: NSQD) -> None:
    client = await connect(nsqd)
    await client.send(encode_auth(b"wrong"))
    assert await client.read_error() == b"E_AUTH_FAILED AUTH failed"
    await client.expect_closed()
    client = await connect(nsqd)
    await client.send(encode_auth(b"nothing"))
    assert await client.read_error() == b"E_UNAUTHORIZED AUTH no authorizations found"
    await client.expect_closed()


async def test_expired_ttl_asks_again_on_the_next_publish(
    nsqd: NSQD, authd: Authd, tmp_path: Path
) -> None:
    client, _ = await authed(nsqd, b"short")
    await client.pub("t", b"1")
    revoked = [dict(s, authorizations=[]) if s["secret"] == "short" else s for s in SECRETS]
    write_secrets(tmp_path / "secrets.toml", revoked)
    assert authd.reload()
    await client.pub("t", b"2")  # within the TTL: nsqd does not ask again
    await trio.sleep(1.1)  # the TTL is whole seconds by protocol: this waits out 1 s of it
    await client.send(b"PUB t\n" + _sized(b"3"))
    assert await client.read_error() == b'E_UNAUTHORIZED AUTH failed for PUB on "t" ""'


async def test_stats_show_authed_identity_per_client(
    make_nsqd: StartNSQD, authd: Authd, http: HTTPRequest
) -> None:
    nsqd = await make_nsqd(auth_http_addresses=(authd_address(authd),))
    consumer, _ = await authed(nsqd, b"sub-archive")
    await consumer.sub("logs", "archive")
    producer, _ = await authed(nsqd, b"pub-orders")
    await producer.pub("orders", b"x")
    document = (await http(nsqd.http_address, "GET", "/stats?format=json")).json()
    (sub,) = next(t for t in document["topics"] if t["topic_name"] == "logs")["channels"][0][
        "clients"
    ]
    assert (sub["authed"], sub["auth_identity"]) == (True, "archiver")
    assert "auth_identity_url" not in sub  # empty: left out, as NSQ's omitempty
    keys = list(sub)
    assert keys[keys.index("user_agent") + 1 : keys.index("topology_zone")] == [
        "authed",
        "auth_identity",
    ]
    (pub,) = document["producers"]
    assert pub["auth_identity_url"] == "https://example.com/orders-writer"
    await consumer.aclose()
    await producer.aclose()


# -- the auth server misbehaves ---------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\njunk!",
        b'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{"ttl": "x"}',
        b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"ttl": 0}',
        b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
        b"garbage, not HTTP\r\n\r\n",
    ],
    ids=["not-json", "ttl-not-int", "ttl-zero", "status-500", "not-http"],
)
async def test_junk_from_the_auth_server_fails_that_auth(
    start_nsqd: StartNSQD, nursery: trio.Nursery, reply: bytes
) -> None:
    nsqd = await start_nsqd(auth_http_addresses=(await fake_auth_server(nursery, reply),))
    client = await connect(nsqd)
    await client.send(encode_auth(b"s"))
    assert await client.read_error() == b"E_AUTH_FAILED AUTH failed"
    await client.expect_closed()


async def test_auth_server_down_fails_auth_and_a_second_server_is_tried(
    start_nsqd: StartNSQD, authd: Authd
) -> None:
    nsqd = await start_nsqd(auth_http_addresses=(closed_port(),))
    client = await connect(nsqd)
    await client.send(encode_auth(b"pub-orders"))
    assert await client.read_error() == b"E_AUTH_FAILED AUTH failed"
    both = await start_nsqd(auth_http_addresses=(closed_port(), authd_address(authd)))
    for _ in range(4):  # the rotation starts anywhere; the good one always answers
        _, reply = await authed(both, b"pub-orders")
        assert reply["identity"] == "orders-writer"


async def test_silent_auth_server_times_out_and_other_clients_carry_on(
    start_nsqd: StartNSQD, nursery: trio.Nursery
) -> None:
    silent = await fake_auth_server(nursery, None)
    nsqd = await start_nsqd(auth_http_addresses=(silent,), http_client_request_timeout=2.0)
    waiting = await connect(nsqd)
    await waiting.send(encode_auth(b"s"))
    start = trio.current_time()
    other = await connect(nsqd)  # served while the first AUTH waits
    await other.send(b"PUB t\n" + _sized(b"x"))
    assert await other.read_error() == b"E_AUTH_FIRST AUTH required before PUB"
    assert trio.current_time() - start < 1.8
    assert await waiting.read_error() == b"E_AUTH_FAILED AUTH failed"
    assert trio.current_time() - start >= 1.8
    await waiting.expect_closed()


async def test_no_auth_server_means_auth_disabled(start_nsqd: StartNSQD) -> None:
    nsqd = await start_nsqd()
    assert nsqd.tcp_address is not None
    client = await V2Client.connect(nsqd.tcp_address)
    assert json.loads(await client.identify(feature_negotiation=True))["auth_required"] is False
    await client.send(encode_auth(b"s"))
    assert await client.read_error() == b"E_AUTH_DISABLED AUTH disabled"


def _sized(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def _mpub_body(bodies: list[bytes]) -> bytes:
    inner = len(bodies).to_bytes(4, "big") + b"".join(_sized(b) for b in bodies)
    return _sized(inner)


async def test_commands_sent_with_auth_in_one_write_run_after_the_answer(nsqd: NSQD) -> None:
    client = await connect(nsqd)
    await client.send(encode_auth(b"pub-orders") + b"PUB orders\n" + _sized(b"x") + b"NOP\n")
    assert json.loads(await client.read_response())["identity"] == "orders-writer"
    await client.expect_response(b"OK")
    assert nsqd.topics["orders"].depth() == 1


async def test_requery_after_ttl_against_a_dead_auth_server_fails_auth(
    nsqd: NSQD, authd: Authd
) -> None:
    client, _ = await authed(nsqd, b"short")
    authd.stop()
    await trio.sleep(1.1)  # the TTL is whole seconds by protocol: this waits out 1 s of it
    await client.send(b"PUB t\n" + _sized(b"x"))
    assert await client.read_error() == b"E_AUTH_FAILED AUTH failed"
    await client.expect_closed()


@pytest.mark.parametrize("trusted", [True, False], ids=["root-ca-given", "unknown-ca"])
async def test_https_auth_server_is_verified_with_tls_root_ca_file(
    start_nsqd: StartNSQD, nursery: trio.Nursery, tmp_path: Path, trusted: bool
) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    answer = json.dumps(
        {"ttl": 60, "identity": "tls", "authorizations": [{"topic": "t", "channels": [""]}]}
    ).encode()
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer)
    url = await https_auth_server(nursery, reply, server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    nsqd = await start_nsqd(
        auth_http_addresses=(url,), tls_root_ca_file=str(ca_file) if trusted else ""
    )
    client = await connect(nsqd)
    await client.send(encode_auth(b"s"))
    if trusted:
        assert json.loads(await client.read_response())["identity"] == "tls"
    else:
        assert await client.read_error() == b"E_AUTH_FAILED AUTH failed"
