"""E2E processing latency through the admin, and each node's /metrics link.

Two real nsqds run with ``--e2e-processing-latency-percentile=1.0,0.5``; a consumer finishes
4 messages on one and 2 on the other. The admin's channel answer then carries the quantiles,
merged as nsqadmin merges them: min and max over the nodes and an average weighted by the
messages each finished, checked against what each nsqd itself says in ``/stats``.
"""

from __future__ import annotations

from typing import Any

from v2client import open_consumer, wait_until

from pnsq.admin.server import AdminServer
from pnsq.nsqd.nsqd import NSQD

PERCENTILES = (1.0, 0.5)


def address(pair: tuple[str, int] | None) -> str:
    assert pair is not None
    return f"{pair[0]}:{pair[1]}"


async def get(http: Any, target: tuple[str, int] | None, path: str) -> Any:
    response = await http(target, "GET", path)
    assert response.status == 200, (path, response.body)
    return response.json()


async def finish(http: Any, nsqd: NSQD, count: int) -> None:
    """Publish ``count`` messages to orders/ship on ``nsqd`` and FIN each of them."""
    for target in ("/topic/create?topic=orders", "/channel/create?topic=orders&channel=ship"):
        assert (await http(nsqd.http_address, "POST", target)).status == 200
    body = b"\n".join(b"order %d" % i for i in range(count))
    assert (await http(nsqd.http_address, "POST", "/mpub?topic=orders", body)).status == 200
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "orders", "ship", rdy=count) as consumer:
        for message in await consumer.read_messages(count):
            await consumer.fin(message.id)
        # FINs are answered by nothing: wait until nsqd has taken every one
        await wait_until(lambda: not len(nsqd.topics["orders"].channels["ship"].in_flight))


async def e2e_of(http: Any, nsqd: NSQD) -> dict[str, Any]:
    stats = await get(http, nsqd.http_address, "/stats?format=json")
    (topic,) = [t for t in stats["topics"] if t["topic_name"] == "orders"]
    (channel,) = topic["channels"]
    e2e: dict[str, Any] = channel["e2e_processing_latency"]
    return e2e


async def test_channel_answer_carries_merged_e2e_quantiles(
    make_nsqd: Any, make_admin: Any, http: Any
) -> None:
    nsqds = [await make_nsqd(e2e_processing_latency_percentiles=PERCENTILES) for _ in range(2)]
    await finish(http, nsqds[0], 4)
    await finish(http, nsqds[1], 2)
    admin: AdminServer = await make_admin(
        nsqd_http_addresses=tuple(address(n.http_address) for n in nsqds)
    )
    own = [await e2e_of(http, n) for n in nsqds]
    channel = await get(http, admin.http_address, "/api/topics/orders/ship")

    merged = channel["e2e_processing_latency"]
    assert merged["count"] == 6
    assert [p["quantile"] for p in merged["percentiles"]] == list(PERCENTILES)
    for i, p in enumerate(merged["percentiles"]):
        values = [doc["percentiles"][i]["value"] for doc in own]
        assert p["quantile"] == own[0]["percentiles"][i]["quantile"]
        assert (p["min"], p["max"]) == (min(values), max(values))
        assert p["average"] == (4 * values[0] + 2 * values[1]) / 6
        assert p["average"] > 0
    per_node = {row["node"]: row["e2e_processing_latency"]["count"] for row in channel["nodes"]}
    assert per_node == {address(nsqds[0].http_address): 4, address(nsqds[1].http_address): 2}

    topic = await get(http, admin.http_address, "/api/topics/orders")
    assert topic["channels"][0]["e2e_processing_latency"] == merged


async def test_without_the_percentile_flag_there_are_no_quantiles(
    make_nsqd: Any, make_admin: Any, http: Any
) -> None:
    nsqd = await make_nsqd()
    for target in ("/topic/create?topic=orders", "/channel/create?topic=orders&channel=ship"):
        assert (await http(nsqd.http_address, "POST", target)).status == 200
    admin: AdminServer = await make_admin(nsqd_http_addresses=(address(nsqd.http_address),))
    channel = await get(http, admin.http_address, "/api/topics/orders/ship")
    assert channel["e2e_processing_latency"] == {"count": 0, "percentiles": None}


async def test_nodes_link_their_own_metrics_endpoint(
    make_nsqd: Any, make_admin: Any, http: Any
) -> None:
    nsqd = await make_nsqd()
    node = address(nsqd.http_address)
    admin: AdminServer = await make_admin(nsqd_http_addresses=(node,))
    (row,) = (await get(http, admin.http_address, "/api/nodes"))["nodes"]
    assert row["metrics_url"] == f"http://{node}/metrics"
    served = await http(nsqd.http_address, "GET", "/metrics")  # the link leads somewhere
    assert served.status == 200
    assert b"\nnsq_topic_count " in served.body
    detail = await get(http, admin.http_address, f"/api/nodes/{node}")
    assert detail["metrics_url"] == f"http://{node}/metrics"
    # a node given as https:// is linked over https, as the admin reaches it
    admin = await make_admin(nsqd_http_addresses=(f"https://{node}",))
    (row,) = (await get(http, admin.http_address, "/api/nodes"))["nodes"]
    assert row["metrics_url"] == f"https://{node}/metrics"
