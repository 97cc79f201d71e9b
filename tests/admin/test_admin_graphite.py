"""The admin's graphite options, as nsqadmin's: ``/api/graphite`` rates and the ``/render`` proxy.

Graphite is a fake on 127.0.0.1:0 (``FakeGraphite``): it records each request's target and
answers what the test set, so the query nsqadmin sends and the rate it computes are both seen.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import click
import h11
import pytest
import trio
from fake_http import serve_h11

from pnsq.admin.graphite import rate_target, sanitize_key
from pnsq.admin.options import AdminOptions
from pnsq.admin.server import AdminServer
from pnsq.cli import admin as admin_cli
from pnsq.cli import table

MakeAdmin = Callable[..., Awaitable[AdminServer]]


def address(pair: tuple[str, int]) -> str:
    return f"{pair[0]}:{pair[1]}"


@dataclass
class FakeGraphite:
    """Answers every request with ``status``, ``body`` and ``content_type``; keeps the targets."""

    address: str = ""
    status: int = 200
    body: bytes = b"[]"
    content_type: str = "application/json"
    targets: list[str] = field(default_factory=list)

    def answer_points(self, *values: float | None) -> None:
        points = [[value, 1_700_000_000 + 60 * i] for i, value in enumerate(values)]
        self.body = json.dumps([{"target": "t", "datapoints": points}]).encode()

    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.targets[-1]).query))

    def answer(self, request: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        self.targets.append(request.target.decode())
        return self.status, [("Content-Type", self.content_type)], self.body


@pytest.fixture
async def graphite(nursery: trio.Nursery) -> FakeGraphite:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    fake = FakeGraphite(address(listeners[0].socket.getsockname()))
    nursery.start_soon(
        trio.serve_listeners, lambda stream: serve_h11(stream, fake.answer), listeners
    )
    return fake


async def admin_with(make_admin: MakeAdmin, graphite: FakeGraphite, **overrides: Any) -> Any:
    return await make_admin(
        nsqd_http_addresses=("127.0.0.1:1",),
        graphite_url=f"http://{graphite.address}",
        **overrides,
    )


async def get(http: Any, admin: Any, target: str) -> tuple[int, Any]:
    response = await http(admin.http_address, "GET", target)
    return response.status, response.json()


# -- /api/graphite?metric=rate -----------------------------------------------------------------


async def test_rate_asks_graphite_for_the_interval_before_last_and_divides_by_it(
    make_admin: MakeAdmin, graphite: FakeGraphite, http: Any
) -> None:
    admin = await admin_with(make_admin, graphite, statsd_interval=30.0)
    graphite.answer_points(75.0, 12.0)
    target = "sumSeries(stats.counters.nsq.*.topic.orders.message_count.count)"
    status, body = await get(http, admin, f"/api/graphite?metric=rate&target={target}")
    assert (status, body) == (200, {"rate": "2.50"})  # the first point, 75 per 30 s
    assert urlsplit(graphite.targets[-1]).path == "/render"
    assert graphite.query() == {
        "format": "json",
        "from": "-60sec",
        "target": target,
        "until": "-30sec",
    }


@pytest.mark.parametrize(
    "body",
    [
        json.dumps([{"target": "t", "datapoints": [[-4.0, 1]]}]),  # a counter that went back
        json.dumps([{"target": "t", "datapoints": [[None, 1]]}]),  # no data yet
        json.dumps([{"target": "t", "datapoints": []}]),
        "[]",  # no such series
    ],
)
async def test_rate_is_na_for_a_negative_or_missing_point(
    make_admin: MakeAdmin, graphite: FakeGraphite, http: Any, body: str
) -> None:
    admin = await admin_with(make_admin, graphite)
    graphite.body = body.encode()
    assert await get(http, admin, "/api/graphite?metric=rate&target=x") == (200, {"rate": "N/A"})


async def test_rate_of_a_topic_or_channel_uses_nsqadmins_target(
    make_admin: MakeAdmin, graphite: FakeGraphite, http: Any
) -> None:
    admin = await admin_with(make_admin, graphite)
    graphite.answer_points(120.0)
    query = "metric=rate&topic=orders&channel=tail%23ephemeral&node=10.0.0.1:4151"
    assert await get(http, admin, f"/api/graphite?{query}") == (200, {"rate": "2.00"})
    assert graphite.query()["target"] == (
        "sumSeries(stats.counters.nsq.10_0_0_1_4151.topic.orders.channel.tailephemeral"
        ".message_count.count)"
    )


def test_targets_follow_the_statsd_prefix_and_counter_format() -> None:
    plain = AdminOptions(statsd_prefix="prod.%s.nsqd", statsd_counter_format="")
    assert rate_target(plain, "orders") == "sumSeries(prod.*.nsqd.topic.orders.message_count)"
    assert rate_target(AdminOptions(), "a b/c", "d") == (
        "sumSeries(stats.counters.nsq.*.topic.a_b-c.channel.d.message_count.count)"
    )
    assert sanitize_key("x#ephemeral") == "xephemeral"


@pytest.mark.parametrize(
    ("target", "status", "message"),
    [
        ("/api/graphite?metric=depth&target=x", 400, "INVALID_ARG_METRIC"),
        ("/api/graphite?target=x", 400, "INVALID_ARG_METRIC"),
        ("/api/graphite?metric=rate", 400, "INVALID_ARG_TARGET"),
    ],
)
async def test_bad_rate_requests_are_400_as_nsqadmins(
    make_admin: MakeAdmin, graphite: FakeGraphite, http: Any, target: str, status: int, message: str
) -> None:
    admin = await admin_with(make_admin, graphite)
    assert await get(http, admin, target) == (status, {"message": message})
    assert graphite.targets == []


async def test_rate_without_graphite_url_says_so(make_admin: MakeAdmin, http: Any) -> None:
    admin = await make_admin(nsqd_http_addresses=("127.0.0.1:1",))
    status, body = await get(http, admin, "/api/graphite?metric=rate&target=x")
    assert status == 400
    assert body["message"].startswith("GRAPHITE_NOT_CONFIGURED")


async def test_a_graphite_that_fails_is_a_500(
    make_admin: MakeAdmin, graphite: FakeGraphite, http: Any
) -> None:
    admin = await admin_with(make_admin, graphite)
    graphite.status, graphite.body = 500, b"boom"
    internal = (500, {"message": "INTERNAL_ERROR"})
    assert await get(http, admin, "/api/graphite?metric=rate&target=x") == internal
    graphite.status, graphite.body = 200, b"<html>not json"
    assert await get(http, admin, "/api/graphite?metric=rate&target=x") == internal


async def test_a_graphite_that_is_down_is_a_500(make_admin: MakeAdmin, http: Any) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    closed = address(listeners[0].socket.getsockname())
    await listeners[0].aclose()
    admin = await make_admin(nsqd_http_addresses=("127.0.0.1:1",), graphite_url=f"http://{closed}")
    status, body = await get(http, admin, "/api/graphite?metric=rate&target=x")
    assert (status, body) == (500, {"message": "INTERNAL_ERROR"})


# -- /render -----------------------------------------------------------------------------------


async def test_proxy_graphite_passes_render_through(
    make_admin: MakeAdmin, graphite: FakeGraphite, http: Any
) -> None:
    admin = await admin_with(make_admin, graphite, proxy_graphite=True)
    graphite.body, graphite.content_type = b"\x89PNG fake", "image/png"
    query = "target=sumSeries(nsq.*.mem.heap_objects)&from=-1h&width=800"
    response = await http(admin.http_address, "GET", f"/render?{query}")
    assert (response.status, response.body) == (200, b"\x89PNG fake")
    assert response.headers["content-type"] == "image/png"
    assert graphite.targets == [f"/render?{query}"]


async def test_render_is_not_served_without_proxy_graphite(
    make_admin: MakeAdmin, graphite: FakeGraphite, http: Any
) -> None:
    admin = await admin_with(make_admin, graphite)
    response = await http(admin.http_address, "GET", "/render?target=x")
    assert response.status == 404
    assert graphite.targets == []


# -- flags -------------------------------------------------------------------------------------


def test_flags_take_nsqadmins_names_and_defaults() -> None:
    defaults = table.build(admin_cli.SPEC, {"nsqd_http_addresses": "127.0.0.1:4151"})
    assert (
        defaults.graphite_url,
        defaults.proxy_graphite,
        defaults.statsd_prefix,
        defaults.statsd_counter_format,
        defaults.statsd_gauge_format,
        defaults.statsd_interval,
    ) == ("", False, "nsq.%s", "stats.counters.%s.count", "stats.gauges.%s", 60.0)
    names = {flag.name for flag in admin_cli.SPEC.flags}
    assert {
        "graphite-url",
        "proxy-graphite",
        "statsd-prefix",
        "statsd-counter-format",
        "statsd-gauge-format",
        "statsd-interval",
    } <= names


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ({"proxy_graphite": "true"}, "--proxy-graphite needs --graphite-url"),
        ({"graphite_url": "graphite:8080"}, "invalid value for --graphite-url"),
        ({"statsd_interval": "0s"}, "invalid value for --statsd-interval"),
    ],
)
def test_bad_graphite_flags_are_refused_at_startup(given: dict[str, str], error: str) -> None:
    with pytest.raises(click.ClickException, match=error):
        table.build(admin_cli.SPEC, {"nsqd_http_addresses": "127.0.0.1:4151", **given})
