"""``pnsq to-http``: every message reaches an endpoint (FIN only after a 2xx, REQ otherwise),
in GET and POST form, with the headers asked for, spread over endpoints as ``--mode`` says."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
import trio
from http_sink import HTTPSink, Request
from relay_helpers import MakeNSQD, channel, publish, running, settled, tcp, wait_until

from pnsq.tools.to_http import ToHTTPOptions, check, to_http

TOPIC, CHANNEL = "events", "nsq_to_http"
# Fast retries, so a requeued message comes back within the test.
FAST = ("default_requeue_delay,20ms", "max_backoff_duration,50ms", "backoff_multiplier,10ms")


def options(nsqd_address: str, **overrides: object) -> ToHTTPOptions:
    base = ToHTTPOptions(
        topic=TOPIC, nsqd_tcp_addresses=(nsqd_address,), consumer_opts=FAST, status_every=0
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def failing_first(count: int, status: int = 500) -> object:
    seen = 0

    async def answer(request: Request) -> int:
        nonlocal seen
        seen += 1
        return status if seen <= count else 200

    return answer


async def test_post_requeues_on_5xx_then_delivers_every_message(
    make_nsqd: MakeNSQD, nursery: trio.Nursery
) -> None:
    nsqd = await make_nsqd()
    sink = await HTTPSink(failing_first(3)).start(nursery)  # type: ignore[arg-type]
    bodies = [f"message {i}".encode() for i in range(10)]
    await publish(nsqd, TOPIC, bodies)
    opts = options(tcp(nsqd), post=(sink.url("/ingest"),), header=("X-Token: s3cret",))
    async with running(lambda stop: to_http(opts, stop)) as codes:
        await wait_until(lambda: settled(nsqd, TOPIC, CHANNEL, len(bodies)))
    assert codes == [0]
    assert sorted(sink.delivered) == sorted(bodies)  # all of them, each once at 2xx
    assert len(sink.requests) == len(bodies) + 3
    ch = channel(nsqd, TOPIC, CHANNEL)
    assert ch is not None
    assert ch.requeue_count == 3
    first = sink.requests[0]
    assert (first.method, urlsplit(first.target).path) == ("POST", "/ingest")
    assert first.headers["content-type"] == "application/octet-stream"
    assert first.headers["x-token"] == "s3cret"
    assert first.headers["user-agent"].startswith("pnsq_to_http/")


async def test_get_puts_the_query_escaped_body_in_place_of_percent_s(
    make_nsqd: MakeNSQD, nursery: trio.Nursery
) -> None:
    nsqd = await make_nsqd()
    sink = await HTTPSink().start(nursery)
    bodies = ["plain", "a b&c=d/e?f#g+h%", "caf\u00e9 \u2713"]
    await publish(nsqd, TOPIC, [b.encode() for b in bodies])
    opts = options(tcp(nsqd), get=(sink.url("/hit?data=%s&v=1"),))
    async with running(lambda stop: to_http(opts, stop)):
        await wait_until(lambda: settled(nsqd, TOPIC, CHANNEL, len(bodies)))
    assert sorted(sink.delivered) == sorted(b.encode() for b in bodies)
    assert all(r.method == "GET" and r.target.endswith("&v=1") for r in sink.requests)
    assert any("a+b%26c%3Dd%2Fe%3Ff%23g%2Bh%25" in r.target for r in sink.requests)


async def test_a_request_that_times_out_is_requeued_and_delivered_later(
    make_nsqd: MakeNSQD, nursery: trio.Nursery
) -> None:
    nsqd = await make_nsqd()
    calls = 0

    async def slow_once(request: Request) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            await trio.sleep(5)
        return 200

    sink = await HTTPSink(slow_once).start(nursery)
    await publish(nsqd, TOPIC, [b"only"])
    opts = options(tcp(nsqd), post=(sink.url(),), http_timeout=0.3)
    async with running(lambda stop: to_http(opts, stop)):
        await wait_until(lambda: settled(nsqd, TOPIC, CHANNEL, 1))
    ch = channel(nsqd, TOPIC, CHANNEL)
    assert ch is not None
    assert (ch.requeue_count, ch.timeout_count) == (1, 0)
    assert sink.delivered == [b"only"]


async def test_round_robin_spreads_requests_over_the_endpoints(
    make_nsqd: MakeNSQD, nursery: trio.Nursery
) -> None:
    nsqd = await make_nsqd()
    sinks = [await HTTPSink().start(nursery) for _ in range(2)]
    bodies = [str(i).encode() for i in range(20)]
    await publish(nsqd, TOPIC, bodies)
    opts = options(tcp(nsqd), post=tuple(s.url() for s in sinks), mode="round-robin")
    async with running(lambda stop: to_http(opts, stop)):
        await wait_until(lambda: settled(nsqd, TOPIC, CHANNEL, len(bodies)))
    assert [len(s.delivered) for s in sinks] == [10, 10]
    assert sorted(sinks[0].delivered + sinks[1].delivered) == sorted(bodies)


async def test_hostpool_stops_sending_to_an_endpoint_that_failed(
    make_nsqd: MakeNSQD, nursery: trio.Nursery
) -> None:
    nsqd = await make_nsqd()

    async def broken(request: Request) -> int:
        return 503

    bad, good = await HTTPSink(broken).start(nursery), await HTTPSink().start(nursery)
    bodies = [str(i).encode() for i in range(10)]
    await publish(nsqd, TOPIC, bodies)
    opts = options(tcp(nsqd), post=(bad.url(), good.url()), mode="hostpool", n=1)
    async with running(lambda stop: to_http(opts, stop)):
        await wait_until(lambda: settled(nsqd, TOPIC, CHANNEL, len(bodies)))
    assert len(bad.requests) == 1  # marked down for 30 s after its first failure
    assert sorted(good.delivered) == sorted(bodies)


async def test_sample_zero_fins_every_message_without_a_request(
    make_nsqd: MakeNSQD, nursery: trio.Nursery
) -> None:
    nsqd = await make_nsqd()
    sink = await HTTPSink().start(nursery)
    await publish(nsqd, TOPIC, [b"a", b"b", b"c"])
    opts = options(tcp(nsqd), post=(sink.url(),), sample=0.0)
    async with running(lambda stop: to_http(opts, stop)):
        await wait_until(lambda: settled(nsqd, TOPIC, CHANNEL, 3))
    assert sink.requests == []


async def test_stop_lets_the_request_under_way_finish_and_fins_it(
    make_nsqd: MakeNSQD, nursery: trio.Nursery
) -> None:
    nsqd = await make_nsqd()
    arrived = trio.Event()

    async def slow(request: Request) -> int:
        arrived.set()
        await trio.sleep(0.5)
        return 200

    sink = await HTTPSink(slow).start(nursery)
    await publish(nsqd, TOPIC, [b"in flight"])
    opts = options(tcp(nsqd), post=(sink.url(),))
    async with running(lambda stop: to_http(opts, stop)) as codes:
        with trio.fail_after(10):
            await arrived.wait()
    # running() set stop and waited: the tool returned only after the answer and its FIN
    assert codes == [0]
    await wait_until(lambda: settled(nsqd, TOPIC, CHANNEL, 1))
    ch = channel(nsqd, TOPIC, CHANNEL)
    assert ch is not None
    assert ch.requeue_count == 0
    assert sink.delivered == [b"in flight"]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({}, "--get or --post required"),
        ({"get": ("http://a/?d=%s",), "post": ("http://b/",)}, "not both"),
        ({"get": ("http://a/no-placeholder",)}, "must contain '%s' once"),
        ({"post": ("a:80",)}, "must start with http://"),
        ({"post": ("http://a/",), "header": ("no-colon",)}, "expected key:value"),
        ({"post": ("http://a/",), "sample": 1.5}, "between 0.0 and 1.0"),
        ({"get": ("http://a/?d=%s",), "content_type": "text/plain"}, "only used with --post"),
    ],
)
def test_bad_flag_combinations_are_refused_before_connecting(
    changes: dict[str, object], error: str
) -> None:
    with pytest.raises(ValueError, match=error.replace("?", r"\?")):
        check(replace(options("127.0.0.1:4150"), **changes))  # type: ignore[arg-type]


BAD_GET = ("--nsqd-tcp-address=127.0.0.1:1", "--get=http://127.0.0.1:1/")


def test_the_command_line_reports_a_bad_flag_in_one_line_and_exits_1() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pnsq", "to-http", "--topic=t", *BAD_GET],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "must contain '%s' once" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
