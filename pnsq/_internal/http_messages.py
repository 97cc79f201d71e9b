"""What the HTTP server of the daemons and their handlers share: requests, answers, routes.

Handlers are plain functions ``(context, request) -> Response`` where the context is the daemon
(an ``NSQD``, a ``Lookupd``); nothing in the APIs waits, so each answer is a consistent snapshot
of the daemon. A ``Response`` may carry ``pending``, an awaitable giving the real answer (nsqd's
durable publish waits for its fsync). Error answers are ``{"message": "CODE"}`` with NSQ's codes.
A ``Router`` holds a daemon's route table. The server itself is ``http_server``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import unquote_plus

__all__ = [
    "EMPTY",
    "OK",
    "HTTPError",
    "Request",
    "Response",
    "Route",
    "Router",
    "error",
    "first",
    "json_response",
    "parse_query",
    "text",
]

C = TypeVar("C")

TEXT = b"text/plain; charset=utf-8"
JSON = b"application/json; charset=utf-8"
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class HTTPError(Exception):
    """An answer with NSQ's error shape: ``status`` and ``{"message": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: bytes | None = None  # none for an empty body, as Go's net/http
    headers: tuple[tuple[bytes, bytes], ...] = ()
    pending: Coroutine[Any, Any, Response] | None = None  # the real answer, awaited first


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    body: bytes
    truncated: bool  # reading stopped when the body passed the route's limit
    path_param: str = ""  # the last segment of a ``/prefix/:name`` route
    headers: Sequence[tuple[bytes, bytes]] = ()  # names in lower case

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def params(self) -> dict[str, list[str]]:
        """The query string as Go's url.ParseQuery reads it; 400 INVALID_REQUEST if malformed."""
        try:
            return parse_query(self.query)
        except ValueError:
            raise HTTPError(400, "INVALID_REQUEST") from None


def parse_query(query: str) -> dict[str, list[str]]:
    """``a=1&b=x+y`` -> ``{"a": ["1"], "b": ["x y"]}``; ValueError where Go's parser errs."""
    params: dict[str, list[str]] = {}
    for part in query.split("&"):
        if not part:
            continue
        if ";" in part or ("%" in part and _BAD_ESCAPE.search(part)):
            raise ValueError(part)
        key, _, value = part.partition("=")
        params.setdefault(_unquote_plus(key), []).append(_unquote_plus(value))
    return params


def _unquote_plus(text: str) -> str:
    return unquote_plus(text) if "%" in text or "+" in text else text


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def first(params: dict[str, list[str]], key: str) -> str | None:
    """The first value of ``key``, as Go's ``url.Values.Get`` (None when absent)."""
    values = params.get(key)
    return values[0] if values else None


# -- responses --------------------------------------------------------------------------------


def text(body: str | bytes, status: int = 200) -> Response:
    data = body.encode() if isinstance(body, str) else body
    return Response(status, data, TEXT if data else None)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, _ENCODE(value).encode(), JSON)


def error(status: int, message: str, *headers: tuple[bytes, bytes]) -> Response:
    return Response(status, _ENCODE({"message": message}).encode(), JSON, headers)


EMPTY = Response(200)
OK = text("OK")


# -- routing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route(Generic[C]):
    handler: Callable[[C, Request], Response]
    body_limit: Callable[[C], int] | None = None  # None: the router's default limit
    too_big: str = "BODY_TOO_BIG"  # the 413 code for a body over the limit
    handler_checks_size: bool = False  # the handler reports a truncated body itself
    logged: bool = True  # NSQ logs every request but publishes


class Router(Generic[C]):
    """A daemon's routes: ``{path: {method: Route}}``; a path ending in ``/:name`` matches any
    one segment there, given to the handler as ``request.path_param``.

    The table is read at every request, so changing it (tests do) takes effect at once.
    """

    def __init__(
        self,
        routes: dict[str, dict[str, Route[C]]],
        default_limit: Callable[[C], int],
        log: logging.Logger,
    ) -> None:
        self.routes = routes
        self.default_limit = default_limit
        self.log = log
        self._prefixes = [(path.rpartition("/")[0] + "/", path) for path in routes if "/:" in path]

    def find(self, path: str) -> tuple[dict[str, Route[C]] | None, str]:
        """The routes of ``path`` by method, and its ``:name`` segment if it has one."""
        methods = self.routes.get(path)
        if methods is None:
            for prefix, pattern in self._prefixes:
                if path.startswith(prefix):
                    param = path[len(prefix) :]
                    if param and "/" not in param:
                        return self.routes[pattern], param
        return methods, ""
