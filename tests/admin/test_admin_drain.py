"""The admin's Drain action: it puts the nsqd into drain mode, and the node page says so."""

from __future__ import annotations

import json
from typing import Any

import trio
from v2client import open_consumer

JSON_HEADERS = [("Content-Type", "application/json")]


def address(pair: tuple[str, int] | None) -> str:
    assert pair is not None
    return f"{pair[0]}:{pair[1]}"


async def test_drain_action_drains_the_node_and_the_node_page_shows_it(
    make_nsqd: Any, make_admin: Any, http: Any
) -> None:
    leaving, staying = await make_nsqd(), await make_nsqd()
    consumer = await open_consumer(leaving.tcp_address, "t", "c", rdy=0)  # keeps it draining
    leaving.topics["t"].put([b"m"], trio.current_time(), 0)
    admin = await make_admin(
        nsqd_http_addresses=(address(leaving.http_address), address(staying.http_address))
    )
    node = address(leaving.http_address)

    page = await http(admin.http_address, "GET", f"/api/nodes/{node}")
    assert page.json()["state"] == "running"
    body = json.dumps({"action": "drain"}).encode()
    response = await http(admin.http_address, "POST", f"/api/nodes/{node}", body, JSON_HEADERS)
    assert response.status == 200, response.body
    assert response.json()["message"] == ""
    assert leaving.draining
    assert not staying.draining
    page = await http(admin.http_address, "GET", f"/api/nodes/{node}")
    assert page.json()["state"] == "draining"
    nodes = (await http(admin.http_address, "GET", "/api/nodes")).json()["nodes"]
    assert {n["node"]: n["state"] for n in nodes} == {
        node: "draining",
        address(staying.http_address): "running",
    }

    missing = await http(admin.http_address, "POST", "/api/nodes/nowhere:1", body, JSON_HEADERS)
    assert missing.status == 404
    await consumer.aclose()
