"""The admin in a real browser: headless Chromium (Debian's) driven by Playwright.

A running cluster, as the issue asks: the real lookupd and two real nsqds registered with it
over TCP, all in-process; the admin finds the nsqds through the lookupd. The browser script
runs in one worker thread (Playwright's sync API belongs to the thread that started it) while
trio serves the daemons; it checks what a person sees, clicks like one, and checks the effect
in nsqd's own ``/stats``, as any operator's script would.

Access control in the browser: with ``--admin-user alice``, a browser whose proxy header names
eve sees no action button on any page and has the API refuse the page's own action request
with 403; alice's browser sees the buttons and its click pauses the channel in nsqd.

E2E processing latency: with nsqd's ``--e2e-processing-latency-percentile``, the channel page
shows a quantile table (all nodes, then each) and the topic page a column per quantile; without
it, the channel page says why there is none. Every node links its own ``/metrics``.

Set ``PNSQ_ADMIN_SCREENSHOTS=docs`` to write a screenshot of each main page (the README's).
It needs Debian's Chromium (``.ci/run`` installs it); without it the test fails and says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trio
from lookup_helpers import knows, tcp, until
from playwright import sync_api
from v2client import open_consumer, wait_until


def address(pair: tuple[str, int] | None) -> str:
    """``host:port`` of a bound address."""
    assert pair is not None
    return f"{pair[0]}:{pair[1]}"


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.timeout(120)


def _stats(nsqd_http: str) -> dict[str, Any]:
    url = f"http://{nsqd_http}/stats?format=json"
    with urllib.request.urlopen(url, timeout=5) as response:
        result: dict[str, Any] = json.load(response)
    return result


def _channel(nsqd_http: str, topic: str, channel: str) -> dict[str, Any]:
    topics = {t["topic_name"]: t for t in _stats(nsqd_http)["topics"] or []}
    return next(c for c in topics[topic]["channels"] if c["channel_name"] == channel)


def _publish(nsqd_http: str, topic: str, body: bytes) -> None:
    request = urllib.request.Request(f"http://{nsqd_http}/pub?topic={topic}", body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _browse(base: str, nsqds: list[str], shots: Path | None) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            # bypass_csp: the page forbids eval, which Playwright's wait_for_function uses
            page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            page.set_default_timeout(15_000)
            expect = sync_api.expect

            def visit(path: str) -> None:
                page.goto(base + path)
                page.wait_for_selector("body[data-ready]")

            # Topics: both topics, with orders' depth over both nodes.
            visit("/")
            orders = page.locator('[data-testid="topics-table"] tr[data-topic="orders"]')
            expect(orders).to_contain_text("orders")
            expect(orders.locator("td").nth(1)).to_have_text("5")
            expect(page.locator('tr[data-topic="audit"]')).to_be_visible()

            # Topic: a row per node, its channel with the depth.
            visit("/topics/orders")
            expect(page.locator('[data-testid="nodes-table"] tbody tr')).to_have_count(2)
            ship = page.locator('[data-testid="channels-table"] tr[data-channel="ship"]')
            expect(ship.locator("td").nth(1)).to_have_text("5")

            # Channel: the connected client and the waiting messages.
            visit("/topics/orders/ship")
            client = page.locator('[data-testid="clients-table"] tbody tr')
            expect(client).to_have_count(1)
            expect(client).to_contain_text("browser-test/1.0")
            expect(page.locator('[data-testid="peek-table"]')).to_contain_text("order 2")
            expect(page.locator('[data-testid="e2e-none"]')).to_contain_text(
                "--e2e-processing-latency-percentile"
            )

            # Pause: the button pauses the channel on every node, as nsqd itself reports.
            page.locator("#pause-button").click()
            expect(page.locator("#status")).to_have_text("pause: done")
            assert all(_channel(n, "orders", "ship")["paused"] for n in nsqds)
            expect(page.locator("#pause-button")).to_have_text("Unpause")
            expect(page.locator('[data-testid="channel-totals"]')).to_contain_text("paused")
            page.locator("#pause-button").click()
            expect(page.locator("#status")).to_have_text("unpause: done")
            assert not any(_channel(n, "orders", "ship")["paused"] for n in nsqds)

            # Empty asks first: dismissed, nothing happens; accepted, the queue is empty.
            page.once("dialog", lambda dialog: dialog.dismiss())
            page.locator('button[data-action="empty"]').click()
            assert sum(_channel(n, "orders", "ship")["depth"] for n in nsqds) >= 4
            page.once("dialog", lambda dialog: dialog.accept())
            page.locator('button[data-action="empty"]').click()
            expect(page.locator("#status")).to_have_text("empty: done")
            assert sum(_channel(n, "orders", "ship")["depth"] for n in nsqds) == 0

            # A chart updates live as messages flow, without a reload.
            visit("/topics/orders")
            chart = page.locator('[data-testid="chart-rate"]')
            for i in range(60):
                _publish(nsqds[i % 2], "orders", b"flow %d" % i)
                if float(chart.get_attribute("data-last") or 0) > 0:
                    break
                page.wait_for_timeout(50)
            page.wait_for_function(
                "Number(document.querySelector('[data-testid=chart-rate]').dataset.last) > 0"
            )
            assert page.locator('[data-testid="chart-rate"] polyline').count() == 1

            visit("/nodes")
            expect(page.locator('[data-testid="nodes-table"] tbody tr')).to_have_count(2)
            for node in nsqds:
                link = page.locator(f'tr[data-node="{node}"] a.metrics-link')
                expect(link).to_have_attribute("href", f"http://{node}/metrics")
            visit(f"/nodes/{nsqds[0]}")
            expect(page.locator('[data-testid="node-topics-table"]')).to_contain_text("orders")
            visit("/lookup")
            expect(page.locator('[data-testid="lookup-table"]')).to_contain_text("planned")
            visit("/counter")
            expect(page.locator('[data-testid="counter"]')).not_to_have_text("…")
            if shots is not None:
                _screenshots(page, base, nsqds, shots)

            # Drain asks first, then the node drains (the consumer holds a message in flight
            # there, so it stays up) and its page says so.
            visit(f"/nodes/{nsqds[0]}")
            page.once("dialog", lambda dialog: dialog.accept())
            page.locator("#drain-button").click()
            expect(page.locator("#status")).to_have_text("drain: done")
            expect(page.locator("#totals")).to_contain_text("draining")
            assert _stats(nsqds[0])["state"] == "draining"
            visit("/nodes")
            expect(page.locator(f'tr[data-node="{nsqds[0]}"]')).to_contain_text("draining")
            expect(page.locator(f'tr[data-node="{nsqds[1]}"]')).not_to_contain_text("draining")
        finally:
            browser.close()


def _screenshots(page: Any, base: str, nsqds: list[str], shots: Path) -> None:
    """One screenshot per main page, with messages flowing so the charts have a shape."""
    stop = threading.Event()

    def publish() -> None:
        i = 0
        while not stop.wait(0.02 + 0.03 * (i // 40 % 2)):
            _publish(nsqds[i % 2], "orders", b'{"order": %d, "items": ["book"]}' % i)
            i += 1

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        pages = {
            "topics": "/",
            "topic": "/topics/orders",
            "channel": "/topics/orders/ship",
            "nodes": "/nodes",
            "node": f"/nodes/{nsqds[0]}",
            "lookup": "/lookup",
            "counter": "/counter",
        }
        for name, path in pages.items():
            page.goto(base + path)
            page.wait_for_selector("body[data-ready]")
            page.wait_for_function(
                "[...document.querySelectorAll('figure.chart')]"
                ".every(f => Number(f.dataset.points || 0) >= 12)",
                timeout=30_000,
            )
            page.screenshot(path=str(shots / f"admin-{name}.png"), full_page=True)
    finally:
        stop.set()
        publisher.join()


async def test_admin_in_a_browser(
    make_lookupd: Any, make_nsqd: Any, make_admin: Any, http: Any
) -> None:
    if not HAVE_CHROMIUM:
        pytest.fail(
            f"the admin's browser test needs Chromium at {CHROMIUM}: apt-get install chromium"
        )
    lookupd = await make_lookupd()
    nsqds = [await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),)) for _ in range(2)]
    for nsqd, count in zip(nsqds, (4, 2), strict=True):
        await http(nsqd.http_address, "POST", "/topic/create?topic=orders")
        await http(nsqd.http_address, "POST", "/channel/create?topic=orders&channel=ship")
        body = b"\n".join(b"order %d" % i for i in range(count))
        assert (await http(nsqd.http_address, "POST", "/mpub?topic=orders", body)).status == 200
    await http(nsqds[1].http_address, "POST", "/pub?topic=audit", b"x")
    # known to lookupd only: an inactive topic
    response = await http(
        lookupd.http_address, "POST", "/channel/create?topic=planned&channel=later"
    )
    assert response.status == 200
    await until(lambda: all(knows(lookupd, n) for n in nsqds))
    admin = await make_admin(
        lookupd_http_addresses=(address(lookupd.http_address),), sample_interval=0.25
    )
    shots_env = os.environ.get("PNSQ_ADMIN_SCREENSHOTS")
    shots = Path(shots_env) if shots_env else None
    assert nsqds[0].tcp_address is not None
    # One message in flight to this consumer: 6 published, 5 waiting.
    consumer = await open_consumer(
        nsqds[0].tcp_address, "orders", "ship", rdy=1, user_agent="browser-test/1.0"
    )
    async with consumer:
        await consumer.read_message()
        base = f"http://{address(admin.http_address)}"
        await trio.to_thread.run_sync(
            _browse, base, [address(n.http_address) for n in nsqds], shots
        )


def _browse_as_users(base: str, nsqds: list[str]) -> None:
    """eve (not an admin) sees no action anywhere and is refused by the API; alice acts."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            expect = sync_api.expect
            # the proxy in front of the admin would set this header after authenticating
            eve = browser.new_context(extra_http_headers={"X-Forwarded-User": "eve"})
            page = eve.new_page()
            page.set_default_timeout(15_000)

            def visit(path: str) -> None:
                page.goto(base + path)
                page.wait_for_selector("body[data-ready]")

            visit("/topics/orders/ship")
            expect(page.locator('[data-testid="clients-table"]')).to_be_visible()
            expect(page.locator("#read-only")).to_have_text("read-only")
            for path in ("/", "/topics/orders", "/topics/orders/ship", f"/nodes/{nsqds[0]}"):
                visit(path)
                expect(page.locator("h1")).not_to_have_text("Not found")
                expect(page.locator("main button")).to_have_count(0)
                expect(page.locator('[data-testid="create-form"]')).to_have_count(0)
            # the page's own fetch, as a script in it would send it: refused
            answer = page.evaluate(
                """async () => {
                  const r = await fetch("/api/topics/orders/ship", {method: "POST",
                    headers: {"Content-Type": "application/json"},
                    body: JSON.stringify({action: "pause"})});
                  return [r.status, await r.json()];
                }"""
            )
            assert answer == [403, {"message": "FORBIDDEN"}]
            assert not any(_channel(n, "orders", "ship")["paused"] for n in nsqds)
            eve.close()

            alice = browser.new_context(extra_http_headers={"X-Forwarded-User": "alice"})
            page = alice.new_page()
            page.set_default_timeout(15_000)
            visit("/topics/orders/ship")
            expect(page.locator("#read-only")).to_have_count(0)
            expect(page.locator('button[data-action="empty"]')).to_be_visible()
            page.locator("#pause-button").click()
            expect(page.locator("#status")).to_have_text("pause: done")
            assert all(_channel(n, "orders", "ship")["paused"] for n in nsqds)
            visit("/")
            expect(page.locator('[data-testid="create-form"]')).to_be_visible()
            visit(f"/nodes/{nsqds[0]}")
            expect(page.locator("#drain-button")).to_be_visible()
            alice.close()
        finally:
            browser.close()


async def test_admin_access_control_in_a_browser(
    make_nsqd: Any, make_admin: Any, http: Any
) -> None:
    if not HAVE_CHROMIUM:
        pytest.fail(
            f"the admin's browser test needs Chromium at {CHROMIUM}: apt-get install chromium"
        )
    nsqds = [await make_nsqd() for _ in range(2)]
    for nsqd in nsqds:
        for target in ("/topic/create?topic=orders", "/channel/create?topic=orders&channel=ship"):
            assert (await http(nsqd.http_address, "POST", target)).status == 200
        assert (await http(nsqd.http_address, "POST", "/pub?topic=orders", b"m")).status == 200
    nodes = [address(n.http_address) for n in nsqds]
    admin = await make_admin(nsqd_http_addresses=tuple(nodes), admin_users=("alice",))
    assert nsqds[0].tcp_address is not None
    consumer = await open_consumer(nsqds[0].tcp_address, "orders", "ship", rdy=0)
    async with consumer:
        base = f"http://{address(admin.http_address)}"
        await trio.to_thread.run_sync(_browse_as_users, base, nodes)


DURATION = re.compile(r"^\d+(\.\d+)?(ns|µs|ms|s)$")


def _browse_e2e(base: str, node: str) -> None:
    """The E2E quantiles on the channel and topic pages, and the node's /metrics link."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)
            expect = sync_api.expect

            def visit(path: str) -> None:
                page.goto(base + path)
                page.wait_for_selector("body[data-ready]")

            visit("/topics/orders/ship")
            e2e = page.locator('[data-testid="e2e-table"]')
            expect(e2e.locator("th")).to_have_text(["Node", "p100", "p50"])
            for selector in ('tr[data-node="*"]', f'tr[data-node="{node}"]'):
                cells = e2e.locator(f"{selector} td.e2e")
                expect(cells).to_have_count(2)
                for text in cells.all_inner_texts():
                    assert DURATION.match(text), text
            total = e2e.locator('tr[data-node="*"] td.e2e').first
            expect(total).to_have_attribute(
                "title", re.compile(r"^p100: min .+, max .+ \(3 finished\)$")
            )

            visit("/topics/orders")
            channels = page.locator('[data-testid="channels-table"]')
            expect(channels.locator("th").nth(-2)).to_have_text("E2E p100")
            expect(channels.locator("th").nth(-1)).to_have_text("E2E p50")
            expect(channels.locator('tr[data-channel="ship"] td.e2e')).to_have_count(2)

            visit(f"/nodes/{node}")
            link = page.locator("#totals a.metrics-link")
            expect(link).to_have_attribute("href", f"http://{node}/metrics")
            link.click()  # and it leads to the nsqd's own metrics
            expect(page.locator("body")).to_contain_text("nsq_topic_count")
        finally:
            browser.close()


async def test_admin_shows_e2e_quantiles_and_metrics_links_in_a_browser(
    make_nsqd: Any, make_admin: Any, http: Any
) -> None:
    if not HAVE_CHROMIUM:
        pytest.fail(
            f"the admin's browser test needs Chromium at {CHROMIUM}: apt-get install chromium"
        )
    nsqd = await make_nsqd(e2e_processing_latency_percentiles=(1.0, 0.5))
    for target in ("/topic/create?topic=orders", "/channel/create?topic=orders&channel=ship"):
        assert (await http(nsqd.http_address, "POST", target)).status == 200
    body = b"\n".join(b"order %d" % i for i in range(3))
    assert (await http(nsqd.http_address, "POST", "/mpub?topic=orders", body)).status == 200
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "orders", "ship", rdy=3) as consumer:
        for message in await consumer.read_messages(3):
            await consumer.fin(message.id)
        await wait_until(lambda: not len(nsqd.topics["orders"].channels["ship"].in_flight))
    node = address(nsqd.http_address)
    admin = await make_admin(nsqd_http_addresses=(node,))
    await trio.to_thread.run_sync(_browse_e2e, f"http://{address(admin.http_address)}", node)
