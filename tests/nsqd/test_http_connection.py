"""One HTTP connection to nsqd over real sockets: pipelining, slow clients, bad bytes, closing.

The server answers every request that one read completes, in order, in one send, and waits for
more only after that; these tests hold a request back half-sent, mix a malformed request among
good ones, and open many connections at once, and check what the client sees and what reached
the topics.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path
from typing import Any

import pytest
import trio
from tls_helpers import make_certs, tls_options

from pnsq._internal import http_socket, http_wire
from pnsq.nsqd import http_api
from pnsq.nsqd.nsqd import NSQD

PUB = b"POST /pub?topic=%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
OK_ANSWER = b"HTTP/1.1 200 OK\r\n"


@pytest.fixture
async def nsqd(make_nsqd: Any) -> NSQD:
    started: NSQD = await make_nsqd()
    return started


def pub(topic: bytes, body: bytes) -> bytes:
    return PUB % (topic, len(body), body)


async def connect(nsqd: NSQD) -> trio.SocketStream:
    assert nsqd.http_address is not None
    return await trio.open_tcp_stream(*nsqd.http_address)


async def read_answers(stream: trio.abc.ReceiveStream, count: int) -> bytes:
    """Read until ``count`` answers ending in ``OK`` or a JSON body have arrived."""
    received = b""
    while received.count(b"HTTP/1.1 ") - received.count(b"HTTP/1.1 100 ") < count or not (
        received.endswith((b"OK", b"}"))
    ):
        data = await stream.receive_some(65536)
        assert data, f"closed after {received!r}"
        received += data
    return received


async def read_to_close(stream: trio.abc.ReceiveStream) -> bytes:
    received = b""
    while data := await stream.receive_some(65536):
        received += data
    return received


def count(nsqd: NSQD, topic: str) -> int:
    return nsqd.topics[topic].message_count if topic in nsqd.topics else 0


async def test_an_answer_leaves_while_the_next_pipelined_body_is_still_coming(nsqd: NSQD) -> None:
    slow = pub(b"slow", b"0123456789")
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            await stream.send_all(pub(b"fast", b"m") + slow[:-4])
            first = await read_answers(stream, 1)
            assert first.startswith(OK_ANSWER)
            assert first.count(b"HTTP/1.1 ") == 1
            assert (count(nsqd, "fast"), count(nsqd, "slow")) == (1, 0)
            await stream.send_all(slow[-4:])
            assert (await read_answers(stream, 1)).startswith(OK_ANSWER)
    assert nsqd.topics["slow"].message_count == 1


async def test_a_malformed_request_among_pipelined_ones_answers_400_and_closes(
    nsqd: NSQD, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pnsq")
    good = [pub(b"t", b"m%d" % i) for i in range(3)]
    garbage = b"GET /ping HTTP/1.1\r\nno colon here\r\n\r\n"
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            await stream.send_all(good[0] + good[1] + garbage + good[2])
            answer = await read_to_close(stream)
    assert answer.count(OK_ANSWER) == 2
    assert answer.index(b"HTTP/1.1 400 Bad Request\r\n") > answer.rindex(OK_ANSWER)
    assert b"Connection: close\r\n" in answer
    assert answer.endswith(b'{"message":"BAD_REQUEST"}')
    assert count(nsqd, "t") == 2  # nothing after the bad request is served
    assert any(
        "bad request from 127.0.0.1:" in r.getMessage() and "Invalid header token" in r.getMessage()
        for r in caplog.records
    )


async def test_100_continue_follows_the_answers_before_it(nsqd: NSQD) -> None:
    head = b"POST /pub?topic=b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            await stream.send_all(pub(b"a", b"m") + head)
            received = b""
            while b"HTTP/1.1 100 " not in received:
                received += await stream.receive_some(65536)
            assert received.index(OK_ANSWER) < received.index(b"HTTP/1.1 100 Continue\r\n\r\n")
            await stream.send_all(b"body")
            assert (await read_answers(stream, 1)).startswith(OK_ANSWER)
    assert (count(nsqd, "a"), count(nsqd, "b")) == (1, 1)


async def test_the_answers_to_one_read_leave_in_one_send(
    nsqd: NSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds, sends = [], []
    original_feed = http_wire.RequestParser.feed
    original_send = http_socket.SocketConnection._send

    def feed(self: Any, data: bytes) -> None:
        feeds.append(len(data))
        original_feed(self, data)

    async def send(self: Any, data: bytearray) -> None:
        sends.append(data.count(OK_ANSWER))
        await original_send(self, data)

    monkeypatch.setattr(http_wire.RequestParser, "feed", feed)
    monkeypatch.setattr(http_socket.SocketConnection, "_send", send)
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            await stream.send_all(b"".join(pub(b"t", b"m") for _ in range(20)))
            answers = await read_answers(stream, 20)
    assert answers.count(OK_ANSWER) == 20
    assert sum(sends) == 20
    assert len(sends) <= len(feeds) < 20  # one send per read, not one per answer


async def test_http_1_0_gets_its_answer_then_the_connection_closes(nsqd: NSQD) -> None:
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            await stream.send_all(b"POST /pub?topic=t HTTP/1.0\r\nContent-Length: 1\r\n\r\nm")
            answer = await read_to_close(stream)
    assert answer.startswith(OK_ANSWER)
    assert b"\r\nConnection: close\r\n" in answer
    assert answer.endswith(b"\r\n\r\nOK")
    assert count(nsqd, "t") == 1


async def test_an_upgrade_request_is_answered_as_any_and_the_next_one_served(nsqd: NSQD) -> None:
    # Go's net/http answers it as any request (NSQ never hijacks) and reads on
    upgrade = b"GET /ping HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            await stream.send_all(upgrade + pub(b"t", b"m"))
            answer = await read_answers(stream, 2)
    assert answer.count(OK_ANSWER) == 2
    assert b"Connection: close" not in answer
    assert count(nsqd, "t") == 1


async def test_an_upgrade_request_with_a_body_is_answered_then_the_connection_closed(
    nsqd: NSQD,
) -> None:
    upgrade = (
        b"GET /ping HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        b"Content-Length: 2\r\n\r\nab"
    )
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            await stream.send_all(upgrade + pub(b"t", b"m"))
            answer = await read_to_close(stream)
    assert answer.startswith(OK_ANSWER)
    assert answer.count(b"HTTP/1.1 ") == 1
    assert "t" not in nsqd.topics


async def test_a_head_over_16_kib_sent_slowly_is_refused_431(nsqd: NSQD) -> None:
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            await stream.send_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ")
            answer = b""
            for _ in range(40):  # 40 x 1 KiB, until the server answers
                try:
                    await stream.send_all(b"a" * 1024)
                except trio.BrokenResourceError:
                    break
                with trio.move_on_after(0.05):
                    answer += await stream.receive_some(65536)
                if answer:
                    break
            answer += await read_to_close(stream)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


async def test_a_burst_of_connections_each_gets_its_answer(nsqd: NSQD) -> None:
    answers: list[bytes] = []

    async def one(i: int) -> None:
        async with await connect(nsqd) as stream:
            await stream.send_all(
                b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Content-Length: 1\r\n\r\nm"
            )
            answers.append(await read_to_close(stream))

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(one, i)
    assert len(answers) == 200
    assert all(a.startswith(OK_ANSWER) and a.endswith(b"OK") for a in answers)
    assert count(nsqd, "t") == 200


async def test_a_client_that_does_not_read_is_dropped_after_the_idle_timeout(
    nsqd: NSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_api, "IDLE_TIMEOUT", 0.3)
    request = b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n"  # each answer is ~200 bytes
    with trio.fail_after(10):
        async with await connect(nsqd) as stream:
            stream.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
            with pytest.raises(trio.BrokenResourceError):  # noqa: PT012 -- until the server gives up
                while True:
                    await stream.send_all(request * 100)
    assert (await read_answers_fresh(nsqd)).startswith(OK_ANSWER)


async def read_answers_fresh(nsqd: NSQD) -> bytes:
    async with await connect(nsqd) as stream:
        await stream.send_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        return await read_answers(stream, 1)


async def test_https_serves_pipelined_requests_through_the_tls_stream(
    make_nsqd: Any, tmp_path: Path
) -> None:
    certs = make_certs(tmp_path)
    nsqd = await make_nsqd(**tls_options(certs))
    assert nsqd.https_address is not None
    with trio.fail_after(10):
        tcp = await trio.open_tcp_stream(*nsqd.https_address)
        context = certs.client_context()
        async with trio.SSLStream(tcp, context, server_hostname="127.0.0.1") as stream:
            await stream.send_all(b"".join(pub(b"t", b"m%d" % i) for i in range(5)))
            answers = await read_answers(stream, 5)
    assert answers.count(OK_ANSWER) == 5
    assert count(nsqd, "t") == 5


# -- a connection per request: served by the accept loop when the request is already there ----

CLOSING_PUB = (
    b"POST /pub?topic=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nm"
)


async def test_a_request_sent_after_the_connection_was_accepted_is_served(nsqd: NSQD) -> None:
    with trio.fail_after(5):
        async with await connect(nsqd) as late:
            # a whole exchange on a second connection: the first has been accepted by then
            async with await connect(nsqd) as other:
                await other.send_all(CLOSING_PUB % b"other")
                assert (await read_to_close(other)).startswith(OK_ANSWER)
            await late.send_all(CLOSING_PUB % b"late")
            answer = await read_to_close(late)
    assert answer.startswith(OK_ANSWER)
    assert (count(nsqd, "other"), count(nsqd, "late")) == (1, 1)


async def test_durable_publishes_on_new_connections_answer_after_the_fsync(
    make_nsqd: Any,
) -> None:
    nsqd = await make_nsqd(sync_every=1)

    async def one(i: int) -> bytes:
        async with await connect(nsqd) as stream:
            await stream.send_all(CLOSING_PUB % b"d" + pub(b"d", b"pipelined"))
            return await read_to_close(stream)

    with trio.fail_after(10):
        answers = [await one(i) for i in range(5)]
    assert all(a.startswith(OK_ANSWER) and a.count(b"HTTP/1.1 ") == 1 for a in answers)
    assert count(nsqd, "d") == 5  # the request after Connection: close is not served
    assert nsqd.disk.durable


async def test_an_answer_larger_than_the_socket_buffers_arrives_whole(
    nsqd: NSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_at_once = http_socket.SocketConnection.serve_at_once

    def small_buffers(self: Any) -> bool:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        served.append(True)
        done: bool = serve_at_once(self)
        return done

    served: list[bool] = []
    monkeypatch.setattr(http_socket.SocketConnection, "serve_at_once", small_buffers)
    async with await connect(nsqd) as stream:
        await stream.send_all(pub(b"t", b"m"))
        await read_answers(stream, 1)
    nsqd.topics["t"].get_channel("c", trio.current_time())
    for _ in range(99):
        nsqd.topics["t"].put([b"b" * 1000], trio.current_time(), 0, 0.0)
    assert nsqd.http_address is not None
    # Connect and send with blocking calls, which trio cannot interrupt: the request is there
    # when the server accepts, so the accept loop answers it itself, and must hand what the
    # small buffers would not take to a task of its own.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
    sock.connect(nsqd.http_address)
    sock.sendall(
        b"GET /channel/peek?topic=t&channel=c&n=100 HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n\r\n"
    )
    with trio.fail_after(10):
        async with trio.SocketStream(trio.socket.from_stdlib_socket(sock)) as stream:
            answer = await read_to_close(stream)
    assert len(served) == 2  # both connections went through the accept loop's first read
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(OK_ANSWER)
    assert len(body) > 100_000
    assert len(json.loads(body)["messages"]) == 100


async def test_a_keep_alive_client_first_served_by_the_accept_loop_goes_on(nsqd: NSQD) -> None:
    assert nsqd.http_address is not None
    sock = socket.socket()
    sock.connect(nsqd.http_address)
    sock.sendall(b"".join(pub(b"t", b"m%d" % i) for i in range(3)))  # there before the accept
    with trio.fail_after(5):
        async with trio.SocketStream(trio.socket.from_stdlib_socket(sock)) as stream:
            assert (await read_answers(stream, 3)).count(OK_ANSWER) == 3
            await stream.send_all(pub(b"t", b"later"))
            assert (await read_answers(stream, 1)).startswith(OK_ANSWER)
    assert count(nsqd, "t") == 4


# -- requests llhttp refuses but Go's net/http reads: answered as NSQ 1.3 answers them ---------

_DATE = re.compile(rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n")
_HEAD = b"X-Nsq-Content-Type: nsq; version=1.0\r\nDate: D\r\n"
_JSON = b"Content-Type: application/json; charset=utf-8\r\n"


def closing_405(allow: bytes) -> bytes:
    return (
        b"HTTP/1.1 405 Method Not Allowed\r\n" + _HEAD + b"Allow: " + allow + b"\r\n" + _JSON
        + b'Content-Length: 32\r\nConnection: close\r\n\r\n{"message":"METHOD_NOT_ALLOWED"}'
    )  # fmt: skip


CLOSING_404 = (
    b"HTTP/1.1 404 Not Found\r\n" + _HEAD + _JSON
    + b'Content-Length: 23\r\nConnection: close\r\n\r\n{"message":"NOT_FOUND"}'
)  # fmt: skip
CLOSING_400 = (
    b"HTTP/1.1 400 Bad Request\r\n" + _HEAD + _JSON
    + b'Content-Length: 25\r\nConnection: close\r\n\r\n{"message":"BAD_REQUEST"}'
)  # fmt: skip
# Go (net/http server.go): "HTTP/1.1 501 Not Implemented", text/plain, this body, and close
CLOSING_501 = (
    b"HTTP/1.1 501 Not Implemented\r\n" + _HEAD + b"Content-Type: text/plain; charset=utf-8\r\n"
    + b"Content-Length: 29\r\nConnection: close\r\n\r\nUnsupported transfer encoding"
)  # fmt: skip


async def exchange(nsqd: NSQD, *pieces: bytes) -> bytes:
    """Send ``pieces`` (each once the server has taken the one before), read to the close;
    the Date header masked."""
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            for piece in pieces:
                await stream.send_all(piece)
                await trio.lowlevel.checkpoint()  # the server takes it: a read of its own, mostly
            answer = await read_to_close(stream)
    return _DATE.sub(b"Date: D\r\n", answer)


@pytest.mark.parametrize(
    ("request_line", "answer"),
    [
        # any RFC 9110 token is a method to Go; httprouter: 405 with Allow on a known path
        (b"FOO /pub?topic=t HTTP/1.1", closing_405(b"OPTIONS, POST")),
        (b"BREW /stats HTTP/1.1", closing_405(b"GET, OPTIONS")),
        (b"X-Y.Z~1 /config/log_level HTTP/1.1", closing_405(b"GET, OPTIONS, PUT")),
        (b"FOO http://127.0.0.1:4151/ping HTTP/1.1", closing_405(b"GET, OPTIONS")),
        (b"BREW /nope HTTP/1.1", CLOSING_404),  # and 404 on an unknown one
        (b"F@O /ping HTTP/1.1", CLOSING_400),  # not a token: Go's "invalid method"
        (b"get /ping HTTP/1.1", closing_405(b"GET, OPTIONS")),  # methods are case-sensitive
    ],
)
async def test_a_method_llhttp_does_not_know_is_answered_as_go_does(
    nsqd: NSQD, request_line: bytes, answer: bytes
) -> None:
    request = request_line + b"\r\nHost: x\r\nContent-Length: 1\r\n\r\nm"
    assert await exchange(nsqd, request) == answer
    assert not nsqd.topics


async def test_an_unknown_method_without_host_is_400_as_any_http_1_1_request(nsqd: NSQD) -> None:
    assert await exchange(nsqd, b"BREW /stats HTTP/1.1\r\n\r\n") == CLOSING_400


async def test_an_unknown_method_after_pipelined_requests_is_answered_after_them(
    nsqd: NSQD,
) -> None:
    odd = b"BREW /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nm"
    answer = await exchange(nsqd, pub(b"t", b"a") + pub(b"t", b"b") + odd + pub(b"t", b"c"))
    assert answer.count(OK_ANSWER) == 2
    assert answer.endswith(b"\r\n\r\nOK" + closing_405(b"OPTIONS, POST"))
    assert count(nsqd, "t") == 2  # nothing after it is served


async def test_an_unknown_methods_head_in_pieces_is_answered_once_whole(nsqd: NSQD) -> None:
    head = b"BREW /stats HTTP/1.1\r\nHost: x\r\nX-Long: " + b"v" * 3000 + b"\r\n\r\n"
    # llhttp stops at "BR" (no method it knows starts so): the head is then read here
    pieces = [pub(b"t", b"a") + head[:2], head[2:40], head[40:2000], head[2000:]]
    answer = await exchange(nsqd, *pieces)
    assert answer.startswith(OK_ANSWER)
    assert answer.endswith(b"\r\n\r\nOK" + closing_405(b"GET, OPTIONS"))


async def test_an_unknown_methods_head_over_16_kib_is_431(nsqd: NSQD) -> None:
    head = b"BREW /stats HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * (16 * 1024) + b"\r\n\r\n"
    answer = await exchange(nsqd, head[:100], head[100:])
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


async def test_a_method_llhttp_knows_but_nsq_does_not_route_keeps_the_connection(
    nsqd: NSQD,
) -> None:
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            await stream.send_all(b"PURGE /ping HTTP/1.1\r\nHost: x\r\n\r\n" + pub(b"t", b"m"))
            answer = await read_answers(stream, 2)
    assert answer.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert b"\r\nAllow: GET, OPTIONS\r\n" in answer
    assert answer.endswith(OK_ANSWER + answer.partition(OK_ANSWER)[2])
    assert count(nsqd, "t") == 1


@pytest.mark.parametrize(
    "codings",
    [
        b"Transfer-Encoding: gzip\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",  # llhttp alone would take it as chunked
        b"Transfer-Encoding: chunked, gzip\r\n",
        b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",  # Go: one field only
        b"Transfer-Encoding: \r\n",
    ],
)
async def test_a_transfer_encoding_other_than_chunked_is_501_as_go(
    nsqd: NSQD, codings: bytes
) -> None:
    request = b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\n" + codings + b"\r\n1\r\nm\r\n0\r\n\r\n"
    answer = await exchange(nsqd, pub(b"t", b"first") + request)
    assert answer.endswith(b"\r\n\r\nOK" + CLOSING_501)
    assert count(nsqd, "t") == 1


async def test_chunked_in_any_case_is_still_read(nsqd: NSQD) -> None:
    request = b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            await stream.send_all(request + b"1\r\nm\r\n0\r\n\r\n")
            assert (await read_answers(stream, 1)).startswith(OK_ANSWER)
    assert count(nsqd, "t") == 1


async def test_a_folded_header_line_is_taken_as_go_takes_it(nsqd: NSQD) -> None:
    # Go's textproto joins an obs-fold line to the one before; llhttp alone refuses it
    folded = (
        b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nUser-Agent: a\r\n  b\r\n"
        b"Content-Length: 1\r\n\r\nm"
    )
    with trio.fail_after(5):
        async with await connect(nsqd) as stream:
            await stream.send_all(pub(b"t", b"m") + folded + pub(b"t", b"m"))
            answer = await read_answers(stream, 3)
    assert answer.count(OK_ANSWER) == 3
    assert count(nsqd, "t") == 3
