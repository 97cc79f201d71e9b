"""Requests llhttp refuses but Go's net/http takes: read here, on the parser's error path only.

llhttp knows a fixed list of methods and stops at any other; Go reads any RFC 9110 token as a
method and leaves it to httprouter, which answers 405 (with ``Allow``) on a known path and 404
on an unknown one. So when llhttp stops at a method, the request's head is read here. Its body
is never read: the connection closes after the answer, since nothing tells where the next
request would start without llhttp's state. llhttp also refuses a folded header line
(obs-fold), which Go joins to the line before: the head is unfolded here and parsed again.

Where the refused request starts is found by parsing the read again with a fresh llhttp
parser, up to the requests that completed before it: only on this path, so that the common
path keeps no offsets.
"""

from __future__ import annotations

import re

import httptools

__all__ = ["OddHead", "message_start", "parse_head", "unfold"]

# RFC 9110 token: what Go's net/http accepts as a method (validMethod)
_FOLD = re.compile(rb"[ \t]*\r?\n[ \t]+")
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


def unfold(head: bytes) -> bytes | None:
    """``head`` (up to its blank line) with each folded line (obs-fold) joined to the one
    before by a space, as Go's textproto reads it; None when nothing is folded, or when the
    first header line is (Go: "malformed MIME header initial line", 400)."""
    line_end = head.find(b"\n")
    if line_end < 0 or head[line_end + 1 : line_end + 2] in (b" ", b"\t"):
        return None
    unfolded, folds = _FOLD.subn(b" ", head)
    return unfolded if folds else None
