"""The admin's own ``GET /metrics``, as a Prometheus server scrapes it.

A real nsqd and a dead address (port 1: connection refused) as ``--nsqd-http-address``, or a
dead lookupd: each poll of the cluster (a page, an API answer, a sample) that cannot reach a
node adds one to that node's ``nsqadmin_scrape_errors_total``, and a node that answers keeps
its series at 0. Everything is read back through prometheus_client's own parsers, both the
classic text format and OpenMetrics (chosen by ``Accept``).
"""

from __future__ import annotations

from typing import Any

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from pnsq.admin.server import AdminServer
from pnsq.nsqd.nsqd import NSQD

DEAD = "127.0.0.1:1"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def address(pair: tuple[str, int] | None) -> str:
    assert pair is not None
    return f"{pair[0]}:{pair[1]}"


async def scrape(http: Any, admin: AdminServer, accept: str = "") -> tuple[str, Samples]:
    headers = [("Accept", accept)] if accept else []
    response = await http(admin.http_address, "GET", "/metrics", b"", headers)
    assert response.status == 200
    text = response.body.decode()
    parse = openmetrics_families if accept == OPENMETRICS else text_string_to_metric_families
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in parse(text) for s in f.samples
    }
    return response.headers["content-type"], samples


def errors(samples: Samples, node: str) -> float:
    return samples[("nsqadmin_scrape_errors_total", (("node", node),))]


async def test_a_node_that_is_down_counts_a_scrape_error_per_poll(
    make_nsqd: Any, make_admin: Any, http: Any
) -> None:
    nsqd: NSQD = await make_nsqd()
    live = address(nsqd.http_address)
    admin = await make_admin(nsqd_http_addresses=(live, DEAD), sample_interval=3600)
    content_type, before = await scrape(http, admin)
    assert content_type.startswith("text/plain; version=0.0.4")
    for _ in range(3):
        assert (await http(admin.http_address, "GET", "/api/nodes")).status == 200
    _, after = await scrape(http, admin)
    assert errors(after, DEAD) >= errors(before, DEAD) + 3
    assert errors(after, live) == 0  # present before any failure, so rate() sees the first
    assert after[("nsqadmin_nodes", (("state", "up"),))] == 1
    assert after[("nsqadmin_nodes", (("state", "down"),))] == 1
    polls = after[("nsqadmin_scrape_duration_seconds_count", ())]
    assert polls >= before[("nsqadmin_scrape_duration_seconds_count", ())] + 3
    assert after[("nsqadmin_scrape_duration_seconds_sum", ())] > 0
    assert after[("process_resident_memory_bytes", ())] > 0
    assert ("python_info", ()) not in after  # the platform's info carries labels
    assert any(name == "python_info" for name, _ in after)


async def test_a_lookupd_that_is_down_counts_under_its_address(make_admin: Any, http: Any) -> None:
    admin = await make_admin(lookupd_http_addresses=(DEAD,), sample_interval=3600)
    _, before = await scrape(http, admin)
    assert errors(before, DEAD) >= 0
    body = (await http(admin.http_address, "GET", "/api/topics")).json()
    assert f"lookupd {DEAD} did not answer" in body["message"]
    _, after = await scrape(http, admin)
    # /api/topics polls the lookupd twice: its /nodes (for the nsqds) and its /topics
    assert errors(after, DEAD) >= errors(before, DEAD) + 2
    assert after[("nsqadmin_nodes", (("state", "up"),))] == 0


async def test_openmetrics_when_the_scraper_asks_for_it(
    make_nsqd: Any, make_admin: Any, http: Any
) -> None:
    nsqd: NSQD = await make_nsqd()
    admin = await make_admin(nsqd_http_addresses=(address(nsqd.http_address), DEAD))
    assert (await http(admin.http_address, "GET", "/api/nodes")).status == 200
    content_type, samples = await scrape(http, admin, OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    assert errors(samples, DEAD) >= 1
    response = await http(admin.http_address, "GET", "/metrics", b"", [("Accept", OPENMETRICS)])
    assert response.body.endswith(b"# EOF\n")
    families = {f.name: f.type for f in openmetrics_families(response.body.decode())}
    assert families["nsqadmin_scrape_errors"] == "counter"
    assert families["nsqadmin_scrape_duration_seconds"] == "histogram"
    assert families["nsqadmin_nodes"] == "gauge"
