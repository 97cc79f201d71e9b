"""Who may act, and who is told: nsqadmin's ``--admin-user``/``--acl-http-header`` and
``--notification-http-endpoint``, over real HTTP against two real in-process nsqds.

A refused action is checked where it matters -- nothing changed in the nsqds -- and an allowed
one likewise. Notifications are caught by a small HTTP server in the test (``sink``).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from typing import Any

import pytest
import trio

from pnsq.admin.options import AdminOptions, finish, node_addresses
from pnsq.admin.server import AdminServer
from pnsq.nsqd.nsqd import NSQD


def address(pair: tuple[str, int] | None) -> str:
    assert pair is not None
    return f"{pair[0]}:{pair[1]}"


JSON = ("Content-Type", "application/json")


async def fill(http: Any, nsqds: list[NSQD]) -> None:
    for nsqd in nsqds:
        for target in ("/topic/create?topic=orders", "/channel/create?topic=orders&channel=ship"):
            assert (await http(nsqd.http_address, "POST", target)).status == 200
        assert (await http(nsqd.http_address, "POST", "/pub?topic=orders", b"m")).status == 200


@pytest.fixture
async def nsqds(make_nsqd: Any, http: Any) -> list[NSQD]:
    result = [await make_nsqd(), await make_nsqd()]
    await fill(http, result)
    return result


def nodes(nsqds: list[NSQD]) -> tuple[str, ...]:
    return tuple(address(n.http_address) for n in nsqds)


def every_action(node: str) -> list[tuple[str, str, Any]]:
    """Every mutating call of the API: (method, path, JSON body or None)."""
    return [
        ("POST", "/api/topics", {"topic": "fresh", "channel": "new"}),
        *[("POST", "/api/topics/orders", {"action": a}) for a in ("pause", "unpause", "empty")],
        ("POST", "/api/topics/orders", {"action": "delete"}),
        ("DELETE", "/api/topics/orders", None),
        *[
            ("POST", "/api/topics/orders/ship", {"action": a})
            for a in ("pause", "unpause", "empty", "delete")
        ],
        ("DELETE", "/api/topics/orders/ship", None),
        ("POST", f"/api/nodes/{node}", {"action": "tombstone", "topic": "orders"}),
        ("DELETE", f"/api/nodes/{node}", {"topic": "orders"}),
        ("POST", f"/api/nodes/{node}", {"action": "drain"}),
    ]


async def call(
    http: Any, admin: AdminServer, method: str, path: str, body: Any, *headers: tuple[str, str]
) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    return await http(admin.http_address, method, path, data, [JSON, *headers])


def untouched(nsqds: list[NSQD]) -> bool:
    return all(
        set(n.topics) == {"orders"}
        and not n.topics["orders"].paused
        and set(n.topics["orders"].channels) == {"ship"}
        and not n.topics["orders"].channels["ship"].paused
        and n.topics["orders"].channels["ship"].depth() == 1
        and not n.draining
        for n in nsqds
    )


@pytest.mark.parametrize(
    "headers",
    [(), (("X-Forwarded-User", "mallory"),), (("X-Forwarded-User", ""),)],
    ids=["no-header", "other-user", "empty-user"],
)
async def test_a_non_admin_is_refused_every_action_with_403_json(
    make_admin: Any, nsqds: list[NSQD], http: Any, headers: tuple[tuple[str, str], ...]
) -> None:
    admin = await make_admin(nsqd_http_addresses=nodes(nsqds), admin_users=("alice", "bob"))
    for method, path, body in every_action(nodes(nsqds)[0]):
        response = await call(http, admin, method, path, body, *headers)
        assert response.status == 403, (method, path, response.body)
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"message": "FORBIDDEN"}, (method, path)
    assert untouched(nsqds)
    # reading is for everyone
    assert (await http(admin.http_address, "GET", "/api/topics/orders/ship")).status == 200


async def test_an_admin_named_by_the_header_may_act(
    make_admin: Any, nsqds: list[NSQD], http: Any, caplog: pytest.LogCaptureFixture
) -> None:
    admin = await make_admin(nsqd_http_addresses=nodes(nsqds), admin_users=("alice", "bob"))
    bob = ("X-Forwarded-User", "bob")
    with caplog.at_level(logging.INFO, logger="pnsq.admin"):
        pause = {"action": "pause"}
        response = await call(http, admin, "POST", "/api/topics/orders/ship", pause, bob)
    assert response.status == 200, response.body
    assert "action pause channel orders:ship by bob: OK" in caplog.messages
    assert all(n.topics["orders"].channels["ship"].paused for n in nsqds)
    for method, path, body in every_action(nodes(nsqds)[0])[:-1]:  # drain: test_admin_drain
        response = await call(http, admin, method, path, body, ("X-Forwarded-User", "alice"))
        assert response.status != 403, (method, path, response.body)


async def test_the_acl_header_is_the_one_configured(
    make_admin: Any, nsqds: list[NSQD], http: Any
) -> None:
    admin = await make_admin(
        nsqd_http_addresses=nodes(nsqds), admin_users=("alice",), acl_http_header="X-Remote-User"
    )
    pause = ("POST", "/api/topics/orders", {"action": "pause"})
    refused = await call(http, admin, *pause, ("X-Forwarded-User", "alice"))
    assert refused.status == 403
    allowed = await call(http, admin, *pause, ("x-remote-user", "alice"))
    assert allowed.status == 200
    assert all(n.topics["orders"].paused for n in nsqds)


async def test_without_admin_users_everyone_may_act_as_in_nsqadmin(
    make_admin: Any, nsqds: list[NSQD], http: Any
) -> None:
    admin = await make_admin(nsqd_http_addresses=nodes(nsqds))
    response = await call(http, admin, "POST", "/api/topics/orders", {"action": "pause"})
    assert response.status == 200
    assert all(n.topics["orders"].paused for n in nsqds)
    page = await http(admin.http_address, "GET", "/topics/orders")
    assert b'<body data-admin="true">' in page.body


async def test_the_page_says_whether_this_user_is_an_admin(
    make_admin: Any, nsqds: list[NSQD], http: Any
) -> None:
    admin = await make_admin(nsqd_http_addresses=nodes(nsqds), admin_users=("alice",))
    for path in ("/", "/topics/orders/ship", "/nodes"):
        other = await http(admin.http_address, "GET", path, b"", [("X-Forwarded-User", "eve")])
        assert b'<body data-admin="false">' in other.body
        alice = await http(admin.http_address, "GET", path, b"", [("X-Forwarded-User", "alice")])
        assert b'<body data-admin="true">' in alice.body


# -- notifications ---------------------------------------------------------------------------


async def test_actions_are_notified_with_nsqadmins_json(
    make_admin: Any, nsqds: list[NSQD], http: Any, sink: Any
) -> None:
    admin = await make_admin(
        nsqd_http_addresses=nodes(nsqds),
        admin_users=("alice",),
        notification_http_endpoint=f"http://{sink.address}/notify",
    )
    alice = ("X-Forwarded-User", "alice")
    basic = ("Authorization", "Basic " + base64.b64encode(b"alice:secret").decode())
    agent = ("User-Agent", "ops-script/2")
    refused = await call(http, admin, "POST", "/api/topics/orders/ship", {"action": "pause"})
    assert refused.status == 403  # a refused action is not announced: the first one is pause
    calls = [
        ("POST", "/api/topics/orders/ship", {"action": "pause"}),
        ("POST", "/api/topics/orders", {"action": "pause"}),
        ("DELETE", "/api/topics/orders/ship", None),
        ("POST", f"/api/nodes/{nodes(nsqds)[0]}", {"action": "tombstone", "topic": "orders"}),
        ("DELETE", "/api/topics/orders", None),
        ("POST", "/api/topics", {"topic": "fresh", "channel": "new"}),
    ]
    for method, path, body in calls:
        response = await call(http, admin, method, path, body, alice, basic, agent)
        assert response.status == 200, (path, response.body)
    received = await sink.wait_for(7)
    host = address(admin.http_address)
    first = received[0]
    assert set(first) == {
        "action", "topic", "channel", "timestamp", "user", "remote_ip", "user_agent", "url", "via"
    }  # fmt: skip
    assert first["action"] == "pause_channel"
    assert (first["topic"], first["channel"]) == ("orders", "ship")
    assert first["user"] == "alice"
    assert first["user_agent"] == "ops-script/2"
    assert first["url"] == f"http://{host}/api/topics/orders/ship"
    assert first["via"] == socket.gethostname()
    assert first["remote_ip"].startswith("127.0.0.1:")
    assert isinstance(first["timestamp"], int)
    assert abs(first["timestamp"] - time.time()) < 60  # Unix seconds
    brief = [(r["action"], r["topic"], r.get("channel"), r.get("node")) for r in received]
    assert brief == [
        ("pause_channel", "orders", "ship", None),
        ("pause_topic", "orders", None, None),
        ("delete_channel", "orders", "ship", None),
        ("tombstone_topic_producer", "orders", None, nodes(nsqds)[0]),
        ("delete_topic", "orders", None, None),
        ("create_topic", "fresh", None, None),
        ("create_channel", "fresh", "new", None),
    ]


class _Seen(logging.Handler):
    """Sets ``event`` when a record containing ``text`` is logged (on trio's thread)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


async def test_a_hung_notification_endpoint_never_delays_an_action(
    make_admin: Any, nsqds: list[NSQD], http: Any, silent_node: str
) -> None:
    admin = await make_admin(
        nsqd_http_addresses=nodes(nsqds),
        notification_http_endpoint=f"http://{silent_node}/",
        http_client_request_timeout=0.5,
    )
    failed = _Seen("notification pause_topic to http://")
    logging.getLogger("pnsq.admin").addHandler(failed)
    try:
        with trio.fail_after(0.4):  # less than one notification's timeout
            for action in ("pause", "unpause", "pause"):
                body = {"action": action}
                response = await call(http, admin, "POST", "/api/topics/orders", body)
                assert response.status == 200
        assert all(n.topics["orders"].paused for n in nsqds)
        with trio.fail_after(10):  # and the failure is logged
            await failed.event.wait()
    finally:
        logging.getLogger("pnsq.admin").removeHandler(failed)


def test_admin_option_checks() -> None:
    base = AdminOptions(nsqd_http_addresses=("127.0.0.1:4151",))
    with pytest.raises(ValueError, match="--http-client-tls-key must be specified"):
        finish(AdminOptions(**{**base.__dict__, "http_client_tls_cert": "c.pem"}))
    with pytest.raises(ValueError, match="--http-client-tls-cert must be specified"):
        finish(AdminOptions(**{**base.__dict__, "http_client_tls_key": "k.pem"}))
    assert node_addresses(("https://127.0.0.1:4152", "h:1")) == ("https://127.0.0.1:4152", "h:1")
    with pytest.raises(ValueError, match="only http:// or https://"):
        node_addresses("ftp://h:1")
    with pytest.raises(ValueError):
        node_addresses("https://no-port")
