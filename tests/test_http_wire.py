"""The HTTP server's request parser and answer writer, without sockets (pnsq._internal.http_wire).

A table of requests is fed whole, split at every byte offset, and byte by byte; every way must
give the same requests. Limits (head size, body size) are checked with heads and bodies that
arrive in pieces, since that is where a parser that only looks at whole reads goes wrong.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from pnsq._internal.http_messages import OK, Request, Response, Route, Router, error
from pnsq._internal.http_wire import MAX_HEAD, RefusedError, RequestParser, write_response

LIMIT = 100


def _handler(context: Any, request: Request) -> Response:
    return OK


ROUTER: Router[None] = Router(
    {
        "/pub": {"POST": Route(_handler, lambda _: 10, "MSG_TOO_BIG")},
        "/mpub": {"POST": Route(_handler, handler_checks_size=True)},
        "/ping": {"GET": Route(_handler)},
        "/config/:opt": {"GET": Route(_handler)},
    },
    lambda _: LIMIT,
    logging.getLogger("test"),
)

CL = b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"POST /mpub?topic=t&x=a+b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"X-Thing:  value  \r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer-Field: t\r\n\r\n"
)
GET = b"GET /config/log%5Flevel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
HTTP10 = b"GET /ping HTTP/1.0\r\n\r\n"
ABSOLUTE = b"GET http://127.0.0.1:4151/ping?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"

# (bytes, (method, path, query, path_param, body, keep_alive, headers))
CASES = [
    (CL, ("POST", "/pub", "topic=t", "", b"hello", True, [(b"host", b"x"), (b"content-length", b"5")])),
    (
        CHUNKED,
        (
            "POST", "/mpub", "topic=t&x=a+b", "", b"abcde", True,
            [(b"host", b"x"), (b"transfer-encoding", b"chunked"), (b"x-thing", b"value")],
        ),
    ),
    (ABSOLUTE, ("GET", "/ping", "a=1", "", b"", True, [(b"host", b"x")])),
    # no request may follow one that closes the connection (llhttp refuses it)
    (GET, ("GET", "/config/log_level", "", "log_level", b"", False, [(b"host", b"x"), (b"connection", b"close")])),
]  # fmt: skip
ALL = b"".join(case for case, _ in CASES)
EXPECTED = [expected for _, expected in CASES]
ALONE = [*CASES, (HTTP10, ("GET", "/ping", "", "", b"", False, []))]


def feed(*pieces: bytes) -> list[tuple[Any, ...]]:
    parser = RequestParser(None, ROUTER)
    for piece in pieces:
        parser.feed(piece)
    return [
        (r.method, r.path, r.query, r.path_param, r.body, exchange.keep_alive, list(r.headers))
        for exchange in parser.ready
        for r in [exchange.request]
    ]


def test_each_request_alone() -> None:
    for data, expected in ALONE:
        assert feed(data) == [expected], data


def test_pipelined_requests_split_at_every_byte_offset() -> None:
    assert feed(ALL) == EXPECTED
    for offset in range(1, len(ALL)):
        assert feed(ALL[:offset], ALL[offset:]) == EXPECTED, offset


def test_pipelined_requests_byte_by_byte() -> None:
    assert feed(*(ALL[i : i + 1] for i in range(len(ALL)))) == EXPECTED


def test_a_chunked_trailer_is_not_a_header() -> None:
    parser = RequestParser(None, ROUTER)
    parser.feed(CHUNKED)
    names = [name for name, _ in parser.ready[0].request.headers]
    assert names == [b"host", b"transfer-encoding", b"x-thing"]  # no b"trailer-field"


def refusal(*pieces: bytes) -> tuple[Response | None, list[Request]]:
    parser = RequestParser(None, ROUTER)
    for piece in pieces[:-1]:
        parser.feed(piece)
    with pytest.raises(RefusedError) as caught:
        parser.feed(pieces[-1])
    return caught.value.response, [exchange.request for exchange in parser.ready]


def _status(response: Response | None) -> tuple[int, bytes] | None:
    return (response.status, response.body) if response else None


def test_a_content_length_over_the_routes_limit_is_refused_before_the_body() -> None:
    response, ready = refusal(CL.replace(b"Content-Length: 5", b"Content-Length: 11"))
    assert _status(response) == (413, b'{"message":"MSG_TOO_BIG"}')
    assert ready == []


def test_a_chunked_body_over_the_limit_stops_the_parse_and_is_marked_truncated() -> None:
    head = b"POST /mpub?topic=t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = b"".join(b"a\r\n0123456789\r\n" for _ in range(11))  # 110 bytes > LIMIT
    response, ready = refusal(CL, head, chunks)
    assert response is None  # the handler answers the truncated request, then close
    assert [request.path for request in ready] == ["/pub", "/mpub"]
    assert (ready[1].truncated, ready[1].body) == (True, b"")


def test_a_body_at_the_limit_is_kept_whole() -> None:
    body = b"x" * LIMIT
    data = b"POST /mpub HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    assert feed(data)[0][4] == body


@pytest.mark.parametrize("piece", [1, 7, 100, 4096])
def test_a_head_over_the_limit_is_refused_431_however_it_arrives(piece: int) -> None:
    head = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEAD + b"\r\n\r\n"
    pieces = [head[i : i + piece] for i in range(0, len(head), piece)]
    parser = RequestParser(None, ROUTER)
    with pytest.raises(RefusedError) as caught:  # noqa: PT012 -- the piece that passes varies
        for piece in pieces:
            parser.feed(piece)
    assert _status(caught.value.response) == (431, b'{"message":"REQUEST_HEADER_FIELDS_TOO_LARGE"}')


@pytest.mark.parametrize("piece", [1, 100, 4096])
def test_a_head_near_the_limit_in_pieces_is_accepted(piece: int) -> None:
    head = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD - 200) + b"\r\n\r\n"
    assert len(feed(*[head[i : i + piece] for i in range(0, len(head), piece)])) == 1


@pytest.mark.parametrize("piece", [1, 100, 4096, 70000])
def test_a_chunked_trailer_over_the_head_limit_is_refused_431(piece: int) -> None:
    head = b"POST /mpub HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
    data = head + b"X-Trailer: " + b"t" * MAX_HEAD + b"\r\n\r\n"
    parser = RequestParser(None, ROUTER)
    with pytest.raises(RefusedError) as caught:  # noqa: PT012 -- the piece that passes varies
        for i in range(0, len(data), piece):
            parser.feed(data[i : i + piece])
    assert _status(caught.value.response) == (431, b'{"message":"REQUEST_HEADER_FIELDS_TOO_LARGE"}')
    assert parser.ready == []


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /pub HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /pub HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET /ping HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    ],
)
def test_bad_bytes_after_good_requests_keep_the_good_ones_then_refuse_400(garbage: bytes) -> None:
    response, ready = refusal(CL + GET.replace(b"Connection: close\r\n", b""), garbage)
    assert _status(response) == (400, b'{"message":"BAD_REQUEST"}')
    assert [request.path for request in ready] == ["/pub", "/config/log_level"]


UPGRADE = b"GET /ping HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"


@pytest.mark.parametrize(
    "request_",
    [UPGRADE, b"CONNECT 127.0.0.1:4151 HTTP/1.1\r\nHost: x\r\n\r\n"],
)
def test_an_upgrade_or_connect_without_a_body_is_a_request_like_any(request_: bytes) -> None:
    # Go's net/http switches protocols only if the handler hijacks (NSQ's never do): it answers
    # and reads the next request; llhttp stops there, so the parse goes on after it
    data = request_ + CL + request_ + CL
    for pieces in [(data,), tuple(data[i : i + 1] for i in range(len(data)))]:
        methods = [(method, path) for method, path, *_ in feed(*pieces)]
        target = "/ping" if request_ is UPGRADE else "127.0.0.1:4151"
        method = "GET" if request_ is UPGRADE else "CONNECT"
        assert methods == [(method, target), ("POST", "/pub")] * 2


def test_an_upgrade_with_a_body_is_answered_then_the_connection_closes() -> None:
    upgrade = UPGRADE.replace(b"\r\n\r\n", b"\r\nContent-Length: 2\r\n\r\nab")
    response, ready = refusal(upgrade + CL)
    assert response is None
    assert [request.path for request in ready] == ["/ping"]


def test_expect_100_continue_is_pending_only_until_the_body_starts() -> None:
    parser = RequestParser(None, ROUTER)
    head = b"POST /pub HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    parser.feed(head)
    assert (parser.expects_continue, parser.in_head) == (True, False)
    parser.feed(b"o")
    assert parser.expects_continue is False
    parser.feed(b"k" + head.replace(b"HTTP/1.1", b"HTTP/1.0"))
    assert parser.expects_continue is False  # HTTP/1.0 clients do not wait for it


# -- answers ------------------------------------------------------------------------------------

_DATE = rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n"


def written(method: str, response: Response, close: bool) -> bytes:
    out = bytearray()
    write_response(out, method, response, close)
    return re.sub(_DATE, b"Date: D\r\n", bytes(out))


def test_the_common_ok_answer() -> None:
    assert written("POST", OK, False) == (
        b"HTTP/1.1 200 OK\r\nX-Nsq-Content-Type: nsq; version=1.0\r\nDate: D\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nOK"
    )


def test_ok_closing_and_to_head_are_written_in_full() -> None:
    closing = written("POST", OK, True)
    assert closing.endswith(b"Content-Length: 2\r\nConnection: close\r\n\r\nOK")
    assert written("HEAD", OK, False).endswith(b"Content-Length: 2\r\n\r\n")


def test_an_error_with_extra_headers() -> None:
    response = error(405, "METHOD_NOT_ALLOWED", (b"Allow", b"GET, OPTIONS"))
    assert written("POST", response, False) == (
        b"HTTP/1.1 405 Method Not Allowed\r\nX-Nsq-Content-Type: nsq; version=1.0\r\nDate: D\r\n"
        b"Allow: GET, OPTIONS\r\nContent-Type: application/json; charset=utf-8\r\n"
        b'Content-Length: 32\r\n\r\n{"message":"METHOD_NOT_ALLOWED"}'
    )


def test_an_empty_answer_has_no_content_type() -> None:
    assert written("POST", Response(200), False).endswith(b"Date: D\r\nContent-Length: 0\r\n\r\n")


# -- what llhttp refuses but Go reads (http_odd) ------------------------------------------------


def test_an_unknown_method_after_requests_is_found_where_it_starts() -> None:
    # a body that looks like a request line must not be taken for the refused request
    lookalike = b"BREW /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    body_pub = b"POST /mpub HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        len(lookalike),
        lookalike,
    )
    odd = b"BREW /ping?a=1 HTTP/1.1\r\nHost: x\r\nX: y\r\n  folded\r\n\r\nbody, never read"
    for pieces in [(CL + body_pub + odd,), (CL + body_pub + odd[:2], odd[2:30], odd[30:])]:
        response, ready = refusal(*pieces)
        assert response is None  # answered by the router (405 here), then the connection closes
        assert [(r.method, r.path, r.query) for r in ready] == [
            ("POST", "/pub", "topic=t"),
            ("POST", "/mpub", ""),
            ("BREW", "/ping", "a=1"),
        ]
        assert ready[1].body == lookalike


@pytest.mark.parametrize(
    "odd",
    [
        b"BR\x01W /ping HTTP/1.1\r\nHost: x\r\n\r\n",  # not a token
        b"BREW /ping HTTP/2.0\r\nHost: x\r\n\r\n",
        b"BREW /ping\r\nHost: x\r\n\r\n",
        b"BREW /ping HTTP/1.1\r\nno colon\r\n\r\n",
        b"BREW /ping HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    ],
)
def test_an_unknown_method_in_a_malformed_request_is_400(odd: bytes) -> None:
    response, ready = refusal(CL + odd)
    assert _status(response) == (400, b'{"message":"BAD_REQUEST"}')
    assert [request.path for request in ready] == ["/pub"]


def test_an_unknown_methods_head_is_bounded_431() -> None:
    parser = RequestParser(None, ROUTER)
    parser.feed(b"BREW /ping HTTP/1.1\r\nHost: x\r\n")
    with pytest.raises(RefusedError) as caught:
        parser.feed(b"X-Big: " + b"a" * MAX_HEAD)
    assert _status(caught.value.response) == (431, b'{"message":"REQUEST_HEADER_FIELDS_TOO_LARGE"}')


@pytest.mark.parametrize("te", [b"gzip", b"gzip, chunked", b"chunked, gzip", b""])
def test_a_transfer_encoding_other_than_chunked_is_501(te: bytes) -> None:
    request = (
        b"POST /mpub HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: %s\r\n\r\n1\r\na\r\n0\r\n\r\n" % te
    )
    response, ready = refusal(CL + request)
    assert response is not None
    assert (response.status, response.body) == (501, b"Unsupported transfer encoding")
    assert [request.path for request in ready] == ["/pub"]


def test_a_transfer_encoding_on_http_1_0_stays_400() -> None:
    # Go ignores Transfer-Encoding on HTTP/1.0; llhttp cannot: a plain 400, not 501
    response, _ = refusal(b"POST /mpub HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert _status(response) == (400, b'{"message":"BAD_REQUEST"}')


def test_a_folded_header_line_is_joined_to_the_one_before_as_go_does() -> None:
    folded = (
        b"POST /mpub HTTP/1.1\r\nHost: x\r\nX-A: one\r\n  two\r\n\tthree\r\nX-B:\r\n b\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    )
    data = CL + folded + folded + CL
    split = len(CL + folded) + 60  # the second one's head: after its folds, before its end
    for pieces in [(data,), (CL, data[len(CL) :]), (data[:split], data[split:])]:
        requests = feed(*pieces)
        assert [(r[1], r[4]) for r in requests] == [
            ("/pub", b"hello"),
            ("/mpub", b"abc"),
            ("/mpub", b"abc"),
            ("/pub", b"hello"),
        ]
        assert requests[1][6][1:3] == [(b"x-a", b"one two three"), (b"x-b", b"b")]


@pytest.mark.parametrize(
    "head",
    [
        b"GET /ping HTTP/1.1\r\n folded\r\nHost: x\r\n\r\n",  # on the first header line: Go, 400
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: \x01\r\n\r\n",  # nothing folded: a bad value
    ],
)
def test_what_is_not_a_fold_go_takes_stays_400(head: bytes) -> None:
    response, ready = refusal(CL + head)
    assert _status(response) == (400, b'{"message":"BAD_REQUEST"}')
    assert [request.path for request in ready] == ["/pub"]
