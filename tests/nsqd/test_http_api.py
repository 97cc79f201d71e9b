"""nsqd's HTTP API over real sockets: every endpoint, every error code, and bad clients.

Each test starts its own nsqd on 127.0.0.1 (the ``nsqd`` fixture here has HTTP on) and talks
to it with a fresh connection per request (``http``), raw bytes where the framing itself is
under test, and the shared V2 test client where a message must come out of the TCP side.
"""

from __future__ import annotations

import json
import logging
import struct
from typing import Any

import pytest
import trio
from disk_faults import failing_write
from v2client import open_consumer, wait_until

from pnsq.nsqd import disk_files, http_api
from pnsq.nsqd.nsqd import NSQD

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@pytest.fixture
async def nsqd(make_nsqd: Any) -> NSQD:
    started: NSQD = await make_nsqd()  # with HTTP, unlike tests/nsqd/conftest.py's
    return started


async def call(
    http: Any, nsqd: NSQD, method: str, target: str, body: bytes = b"", **kw: Any
) -> Any:
    return await http(nsqd.http_address, method, target, body, **kw)


async def expect_error(
    http: Any, nsqd: NSQD, method: str, target: str, status: int, message: str, body: bytes = b""
) -> None:
    response = await call(http, nsqd, method, target, body)
    assert (response.status, response.json()) == (status, {"message": message}), target
    assert response.headers["content-type"] == JSON
    assert response.headers["x-nsq-content-type"] == "nsq; version=1.0"


async def raw_exchange(nsqd: NSQD, data: bytes, *, deadline: float = 5.0) -> bytes:
    """Send raw bytes, then read everything until the server closes the connection."""
    assert nsqd.http_address is not None
    with trio.fail_after(deadline):
        stream = await trio.open_tcp_stream(*nsqd.http_address)
        async with stream:
            await stream.send_all(data)
            received = b""
            while chunk := await stream.receive_some(65536):
                received += chunk
            return received


def binary_mpub(bodies: list[bytes]) -> bytes:
    return struct.pack(">i", len(bodies)) + b"".join(struct.pack(">i", len(b)) + b for b in bodies)


# -- /ping and /info --------------------------------------------------------------------------


async def test_ping_answers_ok_as_text(nsqd: NSQD, http: Any) -> None:
    response = await call(http, nsqd, "GET", "/ping")
    assert (response.status, response.body) == (200, b"OK")
    assert response.headers["content-type"] == TEXT
    assert response.headers["x-nsq-content-type"] == "nsq; version=1.0"


async def test_ping_answers_500_with_the_reason_when_unhealthy(nsqd: NSQD, http: Any) -> None:
    nsqd.health = "NOK - disk full"
    response = await call(http, nsqd, "GET", "/ping")
    assert (response.status, response.body) == (500, b"NOK - disk full")


async def test_info_reports_version_ports_and_client_limits_in_nanoseconds(
    nsqd: NSQD, http: Any
) -> None:
    assert nsqd.http_address is not None
    assert nsqd.tcp_address is not None
    info = (await call(http, nsqd, "GET", "/info")).json()
    assert list(info) == [
        "version",
        "broadcast_address",
        "hostname",
        "http_port",
        "tcp_port",
        "start_time",
        "max_heartbeat_interval",
        "max_output_buffer_size",
        "max_output_buffer_timeout",
        "max_deflate_level",
        "topology_zone",
        "topology_region",
        "state",  # pnsq's addition (drain mode); NSQ's keys come first, unchanged
    ]
    assert info["state"] == "running"
    assert info["version"] == "1.3.0"
    assert info["broadcast_address"] == "127.0.0.1"
    assert (info["http_port"], info["tcp_port"]) == (nsqd.http_address[1], nsqd.tcp_address[1])
    assert info["start_time"] == nsqd.start_time
    assert info["max_heartbeat_interval"] == 60_000_000_000
    assert info["max_output_buffer_timeout"] == 30_000_000_000
    assert (info["max_output_buffer_size"], info["max_deflate_level"]) == (65536, 6)


# -- /pub -------------------------------------------------------------------------------------


async def test_pub_reaches_a_tcp_consumer(nsqd: NSQD, http: Any) -> None:
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "orders", "ship") as consumer:
        response = await call(http, nsqd, "POST", "/pub?topic=orders", b"order 1")
        assert (response.status, response.body) == (200, b"OK")
        assert response.headers["content-type"] == TEXT
        message = await consumer.read_message()
    assert (message.body, message.attempts) == (b"order 1", 1)


async def test_pub_with_defer_delivers_no_sooner_than_asked(nsqd: NSQD, http: Any) -> None:
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "later", "c") as consumer:
        published_at = trio.current_time()
        response = await call(http, nsqd, "POST", "/pub?topic=later&defer=300", b"x")
        assert response.status == 200
        assert len(nsqd.topics["later"].channels["c"].deferred) == 1
        message = await consumer.read_message()
    assert message.received_at - published_at >= 0.3


@pytest.mark.parametrize(
    ("target", "body", "status", "message"),
    [
        ("/pub?topic=bad!topic", b"", 400, "MSG_EMPTY"),  # the body is checked first (B.5)
        ("/pub", b"x", 400, "MISSING_ARG_TOPIC"),
        ("/pub?topic=bad!topic", b"x", 400, "INVALID_TOPIC"),
        ("/pub?topic=" + "a" * 65, b"x", 400, "INVALID_TOPIC"),
        ("/pub?topic=t&defer=-1", b"x", 400, "INVALID_DEFER"),
        ("/pub?topic=t&defer=1s", b"x", 400, "INVALID_DEFER"),
        ("/pub?topic=t&defer=3600001", b"x", 400, "INVALID_DEFER"),
        ("/pub?topic=t&defer=" + "9" * 5000, b"x", 400, "INVALID_DEFER"),
        ("/pub?topic=t%zz", b"x", 400, "INVALID_REQUEST"),
        ("/pub?topic=t;x=1", b"x", 400, "INVALID_REQUEST"),
        ("/pub?topic=t", b"x" * 1025, 413, "MSG_TOO_BIG"),
    ],
)
async def test_pub_errors(
    make_nsqd: Any, http: Any, target: str, body: bytes, status: int, message: str
) -> None:
    nsqd = await make_nsqd(max_msg_size=1024)
    await expect_error(http, nsqd, "POST", target, status, message, body)
    assert not any(topic.message_count for topic in nsqd.topics.values())


async def test_pub_accepts_the_largest_message_and_defer_at_the_limit(
    make_nsqd: Any, http: Any
) -> None:
    nsqd = await make_nsqd(max_msg_size=1024, max_req_timeout=2.0)
    response = await call(http, nsqd, "POST", "/pub?topic=t&defer=2000", b"x" * 1024)
    assert response.status == 200
    assert nsqd.topics["t"].message_count == 1


async def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(
    make_nsqd: Any, http: Any
) -> None:
    nsqd = await make_nsqd(max_msg_size=100)
    response = await call(
        http, nsqd, "POST", "/pub?topic=t", b"x" * 101, headers=[("Transfer-Encoding", "chunked")]
    )
    assert (response.status, response.json()) == (413, {"message": "MSG_TOO_BIG"})
    assert response.headers["connection"] == "close"
    assert "t" not in nsqd.topics


async def test_a_2gb_content_length_is_refused_at_once(nsqd: NSQD, http: Any) -> None:
    head = b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 2147483648\r\n\r\nabc"
    answer = await raw_exchange(nsqd, head, deadline=2.0)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b'{"message":"MSG_TOO_BIG"}')
    assert (await call(http, nsqd, "GET", "/ping")).status == 200


async def test_pub_answers_503_when_nsqd_is_exiting(nsqd: NSQD, http: Any) -> None:
    nsqd.exiting = True
    try:
        await expect_error(http, nsqd, "POST", "/pub?topic=t", 503, "EXITING", b"x")
    finally:
        nsqd.exiting = False


async def test_pub_answers_503_disk_error_when_memory_is_full_and_the_disk_fails(
    make_nsqd: Any, http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd = await make_nsqd(mem_queue_size=1)
    monkeypatch.setattr(disk_files, "_os_write", failing_write)
    assert (await call(http, nsqd, "POST", "/pub?topic=t", b"1")).status == 200  # memory
    assert (await call(http, nsqd, "POST", "/pub?topic=t", b"2")).status == 200  # disk
    await wait_until(lambda: nsqd.health != "OK")
    await expect_error(http, nsqd, "POST", "/pub?topic=t", 503, "DISK_ERROR", b"3")
    assert nsqd.topics["t"].depth() == 2


# -- /mpub ------------------------------------------------------------------------------------


async def test_mpub_text_skips_empty_lines(nsqd: NSQD, http: Any) -> None:
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "t", "c", rdy=10) as consumer:
        response = await call(http, nsqd, "POST", "/mpub?topic=t", b"a\n\nb\nc\n")
        assert (response.status, response.body) == (200, b"OK")
        messages = await consumer.read_messages(3)
    assert [m.body for m in messages] == [b"a", b"b", b"c"]


@pytest.mark.parametrize("binary", ["true", "1", "yes", ""])
async def test_mpub_binary(nsqd: NSQD, http: Any, binary: str) -> None:
    body = binary_mpub([b"one", b"two\nlines", b"three"])
    response = await call(http, nsqd, "POST", f"/mpub?topic=t&binary={binary}", body)
    assert response.status == 200
    assert nsqd.topics["t"].message_count == 3
    assert nsqd.topics["t"].message_bytes == len(b"one" + b"two\nlines" + b"three")


async def test_mpub_binary_false_is_text(nsqd: NSQD, http: Any) -> None:
    response = await call(http, nsqd, "POST", "/mpub?topic=t&binary=false", b"a\nb")
    assert response.status == 200
    assert nsqd.topics["t"].message_count == 2


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ("", b"ok\n" + b"x" * 101 + b"\nok", "MSG_TOO_BIG"),
        ("&binary=true", b"\x00\x00", "BAD_BODY"),
        ("&binary=true", struct.pack(">i", 0), "BAD_BODY"),
        ("&binary=true", struct.pack(">i", -1), "BAD_BODY"),
        ("&binary=true", struct.pack(">i", 10_000), "BAD_BODY"),
        ("&binary=true", binary_mpub([b"ok", b""]), "BAD_MESSAGE"),
        ("&binary=true", binary_mpub([b"ok", b"x" * 101]), "BAD_MESSAGE"),
        ("&binary=true", binary_mpub([b"ok", b"cut"])[:-1], "BAD_MESSAGE"),
        ("&binary=true", struct.pack(">i", 2) + binary_mpub([b"ok"])[4:], "BAD_MESSAGE"),
    ],
)
async def test_mpub_is_atomic_and_creates_the_topic_even_when_refused(
    make_nsqd: Any, http: Any, query: str, body: bytes, message: str
) -> None:
    nsqd = await make_nsqd(max_msg_size=100, max_body_size=1000)
    await expect_error(http, nsqd, "POST", f"/mpub?topic=t{query}", 413, message, body)
    assert nsqd.topics["t"].message_count == 0  # created (B.7), nothing queued


@pytest.mark.parametrize(
    ("target", "status", "message"),
    [
        ("/mpub", 400, "MISSING_ARG_TOPIC"),
        ("/mpub?topic=no/slash", 400, "INVALID_TOPIC"),
        ("/mpub?topic=%", 400, "INVALID_REQUEST"),
    ],
)
async def test_mpub_topic_errors(
    nsqd: NSQD, http: Any, target: str, status: int, message: str
) -> None:
    await expect_error(http, nsqd, "POST", target, status, message, b"a\nb")
    assert not nsqd.topics


async def test_mpub_body_too_big(make_nsqd: Any, http: Any) -> None:
    nsqd = await make_nsqd(max_body_size=100)
    await expect_error(http, nsqd, "POST", "/mpub?topic=t", 413, "BODY_TOO_BIG", b"x\n" * 51)
    response = await call(
        http, nsqd, "POST", "/mpub?topic=t", b"x\n" * 51, headers=[("Transfer-Encoding", "chunked")]
    )
    assert (response.status, response.json()) == (413, {"message": "BODY_TOO_BIG"})
    assert nsqd.topics["t"].message_count == 0


# -- topics -----------------------------------------------------------------------------------


async def test_topic_create_delete_and_their_errors(nsqd: NSQD, http: Any) -> None:
    response = await call(http, nsqd, "POST", "/topic/create?topic=new")
    assert (response.status, response.body) == (200, b"")
    assert "content-type" not in response.headers
    assert "new" in nsqd.topics
    await expect_error(http, nsqd, "POST", "/topic/create", 400, "MISSING_ARG_TOPIC")
    await expect_error(http, nsqd, "POST", "/topic/create?topic=a:b", 400, "INVALID_TOPIC")
    await expect_error(http, nsqd, "POST", "/topic/delete", 400, "MISSING_ARG_TOPIC")
    await expect_error(http, nsqd, "POST", "/topic/delete?topic=nope", 404, "TOPIC_NOT_FOUND")
    assert (await call(http, nsqd, "POST", "/topic/delete?topic=new")).status == 200
    assert "new" not in nsqd.topics


async def test_topic_delete_closes_its_consumers(nsqd: NSQD, http: Any) -> None:
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "t", "c") as consumer:
        assert (await call(http, nsqd, "POST", "/topic/delete?topic=t")).status == 200
        await consumer.expect_closed()


async def test_topic_empty_drops_the_topics_own_messages(nsqd: NSQD, http: Any) -> None:
    await call(http, nsqd, "POST", "/mpub?topic=t", b"1\n2\n3")
    assert nsqd.topics["t"].depth() == 3
    assert (await call(http, nsqd, "POST", "/topic/empty?topic=t")).status == 200
    assert nsqd.topics["t"].depth() == 0
    await expect_error(http, nsqd, "POST", "/topic/empty", 400, "MISSING_ARG_TOPIC")
    await expect_error(http, nsqd, "POST", "/topic/empty?topic=a*", 400, "INVALID_TOPIC")
    await expect_error(http, nsqd, "POST", "/topic/empty?topic=nope", 404, "TOPIC_NOT_FOUND")


async def test_topic_pause_holds_messages_until_unpause(nsqd: NSQD, http: Any) -> None:
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "t", "c") as consumer:
        assert (await call(http, nsqd, "POST", "/topic/pause?topic=t")).status == 200
        assert nsqd.topics["t"].paused
        await call(http, nsqd, "POST", "/pub?topic=t", b"held")
        assert nsqd.topics["t"].depth() == 1
        assert (await call(http, nsqd, "POST", "/topic/unpause?topic=t")).status == 200
        assert (await consumer.read_message()).body == b"held"
    assert not nsqd.topics["t"].paused
    await expect_error(http, nsqd, "POST", "/topic/pause", 400, "MISSING_ARG_TOPIC")
    await expect_error(http, nsqd, "POST", "/topic/pause?topic=nope", 404, "TOPIC_NOT_FOUND")
    await expect_error(http, nsqd, "POST", "/topic/unpause?topic=nope", 404, "TOPIC_NOT_FOUND")


# -- channels ---------------------------------------------------------------------------------

CHANNEL_ACTIONS = ["create", "delete", "empty", "pause", "unpause"]


@pytest.mark.parametrize("action", CHANNEL_ACTIONS)
@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, "MISSING_ARG_TOPIC"),
        ("?topic=bad!&channel=c", 400, "INVALID_ARG_TOPIC"),
        ("?topic=t", 400, "MISSING_ARG_CHANNEL"),
        ("?topic=t&channel=bad!", 400, "INVALID_ARG_CHANNEL"),
        ("?topic=nope&channel=c", 404, "TOPIC_NOT_FOUND"),  # create too (B.6)
        ("?topic=%zz&channel=c", 400, "INVALID_REQUEST"),
    ],
)
async def test_channel_argument_errors(
    nsqd: NSQD, http: Any, action: str, query: str, status: int, message: str
) -> None:
    nsqd.get_topic("t")
    await expect_error(http, nsqd, "POST", f"/channel/{action}{query}", status, message)
    assert not nsqd.topics["t"].channels


@pytest.mark.parametrize("action", ["delete", "empty", "pause", "unpause"])
async def test_channel_not_found(nsqd: NSQD, http: Any, action: str) -> None:
    nsqd.get_topic("t")
    target = f"/channel/{action}?topic=t&channel=nope"
    await expect_error(http, nsqd, "POST", target, 404, "CHANNEL_NOT_FOUND")


async def test_channel_create_then_messages_wait_in_it(nsqd: NSQD, http: Any) -> None:
    await call(http, nsqd, "POST", "/topic/create?topic=t")
    response = await call(http, nsqd, "POST", "/channel/create?topic=t&channel=c")
    assert (response.status, response.body) == (200, b"")
    await call(http, nsqd, "POST", "/pub?topic=t", b"kept")
    assert nsqd.topics["t"].channels["c"].depth() == 1


async def test_channel_delete_closes_its_consumers(nsqd: NSQD, http: Any) -> None:
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "t", "c") as consumer:
        response = await call(http, nsqd, "POST", "/channel/delete?topic=t&channel=c")
        assert response.status == 200
        await consumer.expect_closed()
    assert "c" not in nsqd.topics["t"].channels


async def test_channel_empty_drops_queued_and_in_flight(nsqd: NSQD, http: Any) -> None:
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "t", "c", rdy=1) as consumer:
        await call(http, nsqd, "POST", "/mpub?topic=t", b"1\n2\n3")
        await consumer.read_message()
        channel = nsqd.topics["t"].channels["c"]
        assert (channel.depth(), len(channel.in_flight)) == (2, 1)
        assert (await call(http, nsqd, "POST", "/channel/empty?topic=t&channel=c")).status == 200
        assert (channel.depth(), len(channel.in_flight)) == (0, 0)


async def test_channel_pause_stops_delivery_until_unpause(nsqd: NSQD, http: Any) -> None:
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "t", "c") as consumer:
        assert (await call(http, nsqd, "POST", "/channel/pause?topic=t&channel=c")).status == 200
        channel = nsqd.topics["t"].channels["c"]
        assert channel.paused
        await call(http, nsqd, "POST", "/pub?topic=t", b"held")
        assert channel.depth() == 1
        assert (await call(http, nsqd, "POST", "/channel/unpause?topic=t&channel=c")).status == 200
        assert (await consumer.read_message()).body == b"held"


# -- /config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("mem_queue_size", 10000),
        ("msg_timeout", 60_000_000_000),
        ("min_output_buffer_timeout", 25_000_000),
        ("nsqlookupd_tcp_addresses", None),
        ("e2e_processing_latency_percentiles", None),
        ("log_level", 2),  # NSQ's number for info
        ("tls_required", 0),
        ("tls_min_version", 0x0301),
        ("deflate", True),
        ("statsd_exclude_ephemeral", False),
    ],
)
async def test_get_config_answers_as_nsq_does(
    nsqd: NSQD, http: Any, option: str, expected: Any
) -> None:
    response = await call(http, nsqd, "GET", f"/config/{option}")
    assert (response.status, response.json()) == (200, expected)
    assert response.headers["content-type"] == JSON


async def test_get_config_of_strings_and_the_node_id(nsqd: NSQD, http: Any) -> None:
    response = await call(http, nsqd, "GET", "/config/broadcast_address")
    assert (response.status, response.body) == (200, b"127.0.0.1")  # plain text, as NSQ
    assert (await call(http, nsqd, "GET", "/config/id")).json() == nsqd.options.node_id


@pytest.mark.parametrize("option", ["nope", "node_id", "client_timeout", "queue_scan_interval"])
async def test_get_config_of_an_unknown_option(nsqd: NSQD, http: Any, option: str) -> None:
    await expect_error(http, nsqd, "GET", f"/config/{option}", 400, "INVALID_OPTION")


async def test_put_config_lookupd_addresses(nsqd: NSQD, http: Any) -> None:
    addresses = ["127.0.0.1:4160", "127.0.0.1:4260"]
    response = await call(
        http, nsqd, "PUT", "/config/nsqlookupd_tcp_addresses", json.dumps(addresses).encode()
    )
    assert (response.status, response.json()) == (200, addresses)
    assert nsqd.options.nsqlookupd_tcp_addresses == tuple(addresses)
    got = await call(http, nsqd, "GET", "/config/nsqlookupd_tcp_addresses")
    assert got.json() == addresses


@pytest.mark.parametrize("body", [b"not json", b'"127.0.0.1:4160"', b"[1, 2]", b"{}"])
async def test_put_config_lookupd_addresses_refuses_other_values(
    nsqd: NSQD, http: Any, body: bytes
) -> None:
    target = "/config/nsqlookupd_tcp_addresses"
    await expect_error(http, nsqd, "PUT", target, 400, "INVALID_VALUE", body)
    assert nsqd.options.nsqlookupd_tcp_addresses == ()


async def test_put_config_lookupd_addresses_null_clears_them(make_nsqd: Any, http: Any) -> None:
    nsqd = await make_nsqd(nsqlookupd_tcp_addresses=("127.0.0.1:4160",))
    response = await call(http, nsqd, "PUT", "/config/nsqlookupd_tcp_addresses", b"null")
    assert (response.status, response.json()) == (200, None)
    assert nsqd.options.nsqlookupd_tcp_addresses == ()


@pytest.mark.parametrize("body", [b"debug", b'"DEBUG"'])
async def test_put_config_log_level_sets_the_logging_level(
    nsqd: NSQD, http: Any, body: bytes
) -> None:
    root = logging.getLogger()
    before = root.level
    try:
        response = await call(http, nsqd, "PUT", "/config/log_level", body)
        assert (response.status, response.json()) == (200, 1)
        assert nsqd.options.log_level == "debug"
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(before)


async def test_put_config_errors(make_nsqd: Any, http: Any) -> None:
    nsqd = await make_nsqd(max_msg_size=100)
    await expect_error(http, nsqd, "PUT", "/config/log_level", 400, "INVALID_VALUE", b"loud")
    await expect_error(http, nsqd, "PUT", "/config/log_level", 400, "INVALID_VALUE", b'"info')
    await expect_error(http, nsqd, "PUT", "/config/log_level", 413, "INVALID_VALUE")
    await expect_error(http, nsqd, "PUT", "/config/log_level", 413, "INVALID_VALUE", b"x" * 101)
    await expect_error(http, nsqd, "PUT", "/config/mem_queue_size", 400, "INVALID_OPTION", b"1")
    assert nsqd.options.log_level == "info"


# -- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "allow"),
    [
        # httprouter v1.3.0 sorts OPTIONS in with the rest (router.go, allowed())
        ("GET", "/pub?topic=t", "OPTIONS, POST"),
        ("PUT", "/pub?topic=t", "OPTIONS, POST"),
        ("POST", "/ping", "GET, OPTIONS"),
        ("POST", "/stats", "GET, OPTIONS"),
        ("GET", "/topic/create?topic=t", "OPTIONS, POST"),
        ("DELETE", "/config/log_level", "GET, OPTIONS, PUT"),
    ],
)
async def test_wrong_method_is_405(
    nsqd: NSQD, http: Any, method: str, target: str, allow: str
) -> None:
    await expect_error(http, nsqd, method, target, 405, "METHOD_NOT_ALLOWED")
    response = await call(http, nsqd, method, target)
    assert response.headers["allow"] == allow
    assert not nsqd.topics


@pytest.mark.parametrize("target", ["/", "/put?topic=t", "/ping/", "/config/", "/config/a/b"])
async def test_unknown_path_is_404(nsqd: NSQD, http: Any, target: str) -> None:
    await expect_error(http, nsqd, "GET", target, 404, "NOT_FOUND")


async def test_options_lists_the_allowed_methods(nsqd: NSQD, http: Any) -> None:
    response = await call(http, nsqd, "OPTIONS", "/config/log_level")
    assert (response.status, response.headers["allow"]) == (200, "GET, OPTIONS, PUT")


async def test_head_gets_the_headers_only(nsqd: NSQD, http: Any) -> None:
    response = await call(http, nsqd, "HEAD", "/ping")
    assert (response.status, response.body) == (405, b"")


async def test_debug_freememory(nsqd: NSQD, http: Any) -> None:
    assert (await call(http, nsqd, "POST", "/debug/freememory")).status == 200


# -- the connection ---------------------------------------------------------------------------


async def test_100_requests_on_one_keep_alive_connection(nsqd: NSQD) -> None:
    assert nsqd.http_address is not None
    request = b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nm"
    with trio.fail_after(10):
        async with await trio.open_tcp_stream(*nsqd.http_address) as stream:
            for _ in range(100):
                await stream.send_all(request)
                answer = b""
                while not answer.endswith(b"\r\n\r\nOK"):
                    answer += await stream.receive_some(65536)
                assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert nsqd.topics["t"].message_count == 100


async def test_pipelined_requests_are_all_answered_in_order(nsqd: NSQD) -> None:
    requests = b"".join(
        b"POST /pub?topic=t%d HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nm" % i
        for i in range(10)
    )
    requests += b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = await raw_exchange(nsqd, requests)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 10
    assert answer.rindex(b"HTTP/1.1 200") < answer.index(b"HTTP/1.1 404")
    assert [nsqd.topics[f"t{i}"].message_count for i in range(10)] == [1] * 10


async def test_an_absolute_form_target_is_understood(nsqd: NSQD) -> None:
    request = b"GET http://127.0.0.1:4151/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert (await raw_exchange(nsqd, request)).startswith(b"HTTP/1.1 200 OK\r\n")


async def test_a_client_leaving_in_the_middle_of_a_body_spares_the_daemon(
    nsqd: NSQD, http: Any
) -> None:
    assert nsqd.http_address is not None
    async with await trio.open_tcp_stream(*nsqd.http_address) as stream:
        await stream.send_all(
            b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc"
        )
    assert (await call(http, nsqd, "GET", "/ping")).status == 200
    assert "t" not in nsqd.topics


async def test_connection_close_is_honoured(nsqd: NSQD) -> None:
    answer = await raw_exchange(nsqd, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nconnection: close\r\n" in answer.lower()


async def test_expect_100_continue_gets_an_interim_answer(nsqd: NSQD) -> None:
    assert nsqd.http_address is not None
    head = b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    with trio.fail_after(5):
        async with await trio.open_tcp_stream(*nsqd.http_address) as stream:
            await stream.send_all(head)
            interim = await stream.receive_some(65536)
            assert interim.startswith(b"HTTP/1.1 100 ")
            await stream.send_all(b"body")
            answer = await stream.receive_some(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert nsqd.topics["t"].message_count == 1


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
    ],
)
async def test_garbage_gets_400_and_the_connection_closed(
    nsqd: NSQD, http: Any, garbage: bytes
) -> None:
    answer = await raw_exchange(nsqd, garbage)
    assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 "))
    assert b"\r\nConnection: close\r\n" in answer
    assert (await call(http, nsqd, "GET", "/ping")).status == 200


async def test_a_silent_connection_is_closed_after_the_idle_timeout(
    nsqd: NSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_api, "IDLE_TIMEOUT", 0.2)
    assert await raw_exchange(nsqd, b"", deadline=5.0) == b""
    partial = await raw_exchange(nsqd, b"GET /ping HTTP/1.1\r\n", deadline=5.0)
    assert partial == b""


async def test_a_bug_in_a_handler_answers_500_and_spares_the_daemon(
    nsqd: NSQD, http: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(nsqd: NSQD, request: http_api.Request) -> http_api.Response:
        raise RuntimeError("bug")

    monkeypatch.setitem(http_api._ROUTES["/info"], "GET", http_api.Route(broken))
    response = await call(http, nsqd, "GET", "/info")
    assert (response.status, response.json()) == (500, {"message": "INTERNAL_ERROR"})
    assert response.headers["connection"] == "close"
    assert any(r.exc_info and "bug" in str(r.exc_info[1]) for r in caplog.records)
    assert (await call(http, nsqd, "GET", "/ping")).status == 200


async def test_many_clients_at_once(nsqd: NSQD, http: Any) -> None:
    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(call, http, nsqd, "POST", f"/pub?topic=t{i % 3}", b"m")
    assert sum(t.message_count for t in nsqd.topics.values()) == 20
