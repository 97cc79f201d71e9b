"""deploy/grafana/pnsq.json: importable, and every query reads metrics the daemons serve.

A dashboard goes stale silently: a renamed metric draws an empty panel, not an error. So the
test reads every panel's ``expr`` and every variable's query, takes the metric names out of
them (``promql_names``) and asks for each one where it would come from: an in-process nsqd
(real sockets, ``--e2e-processing-latency-percentile`` set, after messages were published,
finished and requeued by a consumer so every family has samples), the lookupd it registered
with, and an admin polling them. ``nsq_*`` must be on nsqd's ``/metrics``, ``nsqlookupd_*`` on
the lookupd's, ``nsqadmin_*`` on the admin's, process metrics on all three; ``up`` is the one
name Prometheus makes itself. A name that is served without a sample does not count.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from lookup_helpers import knows, tcp, until
from prometheus_client.parser import text_string_to_metric_families
from promql_names import metric_names
from v2client import open_consumer, wait_until

from pnsq.admin.options import AdminOptions
from pnsq.admin.server import AdminServer

DASHBOARD_PATH = Path(__file__).parents[2] / "deploy" / "grafana" / "pnsq.json"
DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SYNTHESIZED = frozenset({"up"})  # Prometheus' own series per scrape target
DAEMONS = ("nsqd", "lookupd", "admin")


# -- reading a dashboard ----------------------------------------------------------------------


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' own panels (a collapsed row keeps them inside) included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, query)`` for every panel target and every query variable."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            yield f"variable ${variable['name']}", text


def daemons_serving(name: str) -> tuple[str, ...]:
    for prefix, daemon in (("nsqlookupd_", "lookupd"), ("nsqadmin_", "admin"), ("nsq_", "nsqd")):
        if name.startswith(prefix):
            return (daemon,)
    return DAEMONS  # process_*, python_*: every pnsq daemon has them


def unserved(dashboard: Mapping[str, Any], served: Mapping[str, set[str]]) -> list[str]:
    """What is wrong: each query that reads no metric, each name its daemon does not serve."""
    problems = []
    for where, query in queries(dashboard):
        names = metric_names(query)
        if not names:
            problems.append(f"{where} reads no metric: {query}")
        for name in sorted(names - SYNTHESIZED):
            problems += [
                f"{where}: {name} is not on {daemon}'s /metrics"
                for daemon in daemons_serving(name)
                if name not in served[daemon]
            ]
    return problems


# -- the extractor ------------------------------------------------------------------------------

NAME_CASES = [
    (
        'sum by (topic) (rate(nsq_message_count{type="topic", topic=~"$topic"}[$__rate_interval]))',
        {"nsq_message_count"},
    ),
    (
        "histogram_quantile(0.99, sum by (le) (rate(nsqadmin_scrape_duration_seconds_bucket[5m])))",
        {"nsqadmin_scrape_duration_seconds_bucket"},
    ),
    (
        "nsq_depth - on (instance) group_left () nsq_backend_depth",
        {"nsq_depth", "nsq_backend_depth"},
    ),
    ('up{job="nsqd"} == 0 and nsq_health offset 1m', {"up", "nsq_health"}),
    ("sum(nsq_in_flight_count) without (channel, instance)", {"nsq_in_flight_count"}),
    ("count(nsq_health == 0) or vector(0)", {"nsq_health"}),
    ('label_replace(nsq_depth, "by_topic", "$1", "topic", "(sum.*)")', {"nsq_depth"}),
    ("1e3 * nsq_deferred_count > bool 5", {"nsq_deferred_count"}),
    ('{__name__="ignored"} or node:nsq_depth:sum5m', {"node:nsq_depth:sum5m"}),
    ('label_values(nsq_depth{type="channel", topic=~"$topic"}, channel)', {"nsq_depth"}),
    ("label_values(instance)", set()),
    ("rate(nsq_nonexistent[${__rate_interval}])", {"nsq_nonexistent"}),
]


@pytest.mark.parametrize(("query", "names"), NAME_CASES)
def test_metric_names_are_taken_out_of_a_query(query: str, names: set[str]) -> None:
    assert metric_names(query) == names


def test_a_dashboard_naming_a_metric_nobody_serves_is_caught() -> None:
    served = {"nsqd": {"nsq_depth"}, "lookupd": {"nsqlookupd_producers"}, "admin": set()}
    dashboard = {
        "panels": [
            {"title": "fine", "targets": [{"refId": "A", "expr": "sum(nsq_depth)"}]},
            {
                "type": "row",
                "title": "collapsed",
                "panels": [
                    {
                        "title": "stale",
                        "targets": [{"refId": "B", "expr": "rate(nsq_nonexistent[5m])"}],
                    },
                    {
                        "title": "wrong daemon",
                        "targets": [{"refId": "C", "expr": "nsqadmin_nodes"}],
                    },
                    {"title": "constant", "targets": [{"refId": "D", "expr": "vector(1)"}]},
                ],
            },
        ],
        "templating": {"list": [{"type": "query", "name": "x", "query": "label_values(nsq_x, y)"}]},
    }
    assert unserved(dashboard, served) == [
        "panel 'stale' B: nsq_nonexistent is not on nsqd's /metrics",
        "panel 'wrong daemon' C: nsqadmin_nodes is not on admin's /metrics",
        "panel 'constant' D reads no metric: vector(1)",
        "variable $x: nsq_x is not on nsqd's /metrics",
    ]
    assert unserved({"panels": [panels_of_fine := {"targets": []}]}, served) == []
    assert panels_of_fine == {"targets": []}


# -- the dashboard's own shape ----------------------------------------------------------------


def test_the_dashboard_imports_with_a_prometheus_datasource_input() -> None:
    (source,) = DASHBOARD["__inputs"]
    assert (source["name"], source["type"], source["pluginId"]) == (
        "DS_PROMETHEUS",
        "datasource",
        "prometheus",
    )
    assert DASHBOARD["id"] is None  # Grafana assigns one on import
    assert DASHBOARD["uid"]
    assert DASHBOARD["title"]
    ids = [p["id"] for p in panels(DASHBOARD)]
    assert len(ids) == len(set(ids))
    for panel in panels(DASHBOARD):
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert set(variables) >= {"node", "topic", "channel"}
    for variable in variables.values():
        assert variable["datasource"] == DATASOURCE
        # a plain string query: every Grafana reads it (the editor's object form varies by version)
        assert isinstance(variable["query"], str)
        assert variable["definition"] == variable["query"]


def test_every_query_uses_the_variables_it_filters_by() -> None:
    """Topic and channel panels follow the node/topic/channel pickers at the top."""
    for where, query in queries(DASHBOARD):
        if where.startswith("variable"):
            continue  # the pickers themselves: each filters by the ones before it
        if 'type="channel"' in query:
            assert all(v in query for v in ("$node", "$topic", "$channel")), where
        elif 'type="topic"' in query:
            assert all(v in query for v in ("$node", "$topic")), where


# -- against running daemons --------------------------------------------------------------------


async def scrape(http: Any, address: tuple[str, int] | None) -> set[str]:
    """The names of every sample on a daemon's /metrics (a family without samples: none)."""
    response = await http(address, "GET", "/metrics")
    assert response.status == 200, response.body[:200]
    families = text_string_to_metric_families(response.body.decode())
    return {sample.name for family in families for sample in family.samples}


async def workload(http: Any, nsqd: Any) -> None:
    """orders/ship: 5 published, 3 finished, 1 requeued; the consumer stays subscribed."""
    for target in ("/topic/create?topic=orders", "/channel/create?topic=orders&channel=ship"):
        assert (await http(nsqd.http_address, "POST", target)).status == 200
    body = b"\n".join(b"order %d" % i for i in range(5))
    assert (await http(nsqd.http_address, "POST", "/mpub?topic=orders", body)).status == 200
    consumer = await open_consumer(nsqd.tcp_address, "orders", "ship", rdy=4)
    messages = await consumer.read_messages(4)
    for message in messages[:3]:
        await consumer.fin(message.id)
    await consumer.req(messages[3].id, timeout_ms=60_000)
    channel = nsqd.topics["orders"].channels["ship"]
    await wait_until(lambda: channel.requeue_count == 1)  # after the FINs sent before it


async def test_every_dashboard_query_reads_metrics_the_daemons_serve(
    make_lookupd: Any, make_nsqd: Any, nursery: trio.Nursery, http: Any
) -> None:
    lookupd = await make_lookupd()
    nsqd = await make_nsqd(
        nsqlookupd_tcp_addresses=(tcp(lookupd),), e2e_processing_latency_percentiles=(0.99, 0.5)
    )
    await workload(http, nsqd)
    await until(lambda: knows(lookupd, nsqd))
    assert lookupd.http_address is not None
    lookupd_http = "{}:{}".format(*lookupd.http_address)
    admin = AdminServer(
        AdminOptions(http_address="127.0.0.1:0", lookupd_http_addresses=(lookupd_http,))
    )
    await nursery.start(admin.serve)
    assert (await http(admin.http_address, "GET", "/api/nodes")).status == 200

    served = {
        "nsqd": await scrape(http, nsqd.http_address),
        "lookupd": await scrape(http, lookupd.http_address),
        "admin": await scrape(http, admin.http_address),
    }
    assert unserved(DASHBOARD, served) == []
    # the test has teeth: the E2E summary is there because the workload finished messages
    assert "nsq_e2e_processing_latency_seconds" in served["nsqd"]
    admin.stop()
