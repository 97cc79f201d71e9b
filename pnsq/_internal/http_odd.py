"""Requests llhttp refuses but Go's net/http takes: read here, on the parser's error path only.

llhttp knows a fixed list of methods and stops at any other; Go reads any RFC 9110 token as a
method and leaves it to httprouter, which answers 405 (with ``Allow``) on a known path and 404
on an unknown one. So when llhttp stops at a method, the request's head is read here: where it
starts is found by parsing the read again with a fresh llhttp parser, up to the requests
that completed before it (only on this path: the common path keeps no offsets). Its body is
never read: the connection closes after the answer, since nothing tells where the next
request would start without llhttp's state.
"""

from __future__ import annotations

import re

import httptools

__all__ = ["OddHead", "message_start", "parse_head"]

# RFC 9110 token: what Go's net/http accepts as a method (validMethod)
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^ \r\n]+) HTTP/(\d)\.(\d)\r?\n")


class _Count:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = 0

    def on_message_complete(self) -> None:
        self.done += 1


def _completed(data: bytes) -> int:
    counter = _Count()
    try:
        httptools.HttpRequestParser(counter).feed_data(data)
    except httptools.HttpParserError:
        pass  # what completed before the error counts
    return counter.done


def message_start(data: bytes, completed: int) -> int:
    """Where the request after the first ``completed`` ones of ``data`` starts (``data`` starts
    at a request): the shortest prefix in which llhttp completes that many, found by bisection."""
    if completed == 0:
        return 0
    low, high = 1, len(data)
    while low < high:
        middle = (low + high) // 2
        if _completed(data[:middle]) >= completed:
            high = middle
        else:
            low = middle + 1
    return low


class OddHead:
    """The request line (and what matters of the headers) of a request llhttp refused."""

    __slots__ = ("has_host", "method", "target", "version")

    def __init__(
        self, method: str, target: bytes, version: tuple[int, int], has_host: bool
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.has_host = has_host


def parse_head(head: bytes) -> OddHead | None:
    """``head`` up to its blank line; None when it is not a request Go's net/http would read."""
    match = _REQUEST_LINE.match(head)
    if match is None:
        return None
    method, target, major, minor = match.groups()
    if int(major) != 1:
        return None  # Go: "unsupported protocol version" (400); HTTP/1.x only
    has_host = False
    for line in head[match.end() :].splitlines():
        if not line or line[:1] in b" \t":
            continue  # a folded line (obs-fold) continues the header before it, as in Go
        name, colon, _ = line.partition(b":")
        if not colon or not name or name != name.strip():
            return None  # Go's textproto: a malformed header line is a 400
        has_host = has_host or name.lower() == b"host"
    return OddHead(method.decode("ascii"), target, (1, int(minor)), has_host)
