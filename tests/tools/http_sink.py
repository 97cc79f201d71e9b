"""An HTTP endpoint for ``pnsq to-http`` tests: h11 on trio, on 127.0.0.1:0, keep-alive.

It records every request and answers with what ``answer(request)`` returns (a status code);
``answer`` may sleep first to act slow. ``delivered`` holds the bodies of requests answered
2xx (for GET, the decoded ``data`` query value), the messages to-http may FIN.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import parse_qs, urlsplit

import h11
import trio


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> bytes:
        """POST: the body; GET: the ``data`` query parameter, unescaped."""
        if self.method == "POST":
            return self.body
        values = parse_qs(urlsplit(self.target).query, keep_blank_values=True)
        return values["data"][0].encode()


Answer = Callable[[Request], Awaitable[int]]


async def always_ok(request: Request) -> int:
    return 200


@dataclass
class HTTPSink:
    answer: Answer = always_ok
    requests: list[Request] = field(default_factory=list)
    delivered: list[bytes] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self, nursery: trio.Nursery) -> HTTPSink:
        listeners = await nursery.start(partial(trio.serve_tcp, self._serve, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]
        return self

    async def _serve(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while await self._one(conn, stream):
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass
        finally:
            await stream.aclose()

    async def _one(self, conn: h11.Connection, stream: trio.SocketStream) -> bool:
        head: h11.Request | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return False
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                return False
        assert head is not None
        request = Request(
            head.method.decode(),
            head.target.decode(),
            {k.decode().lower(): v.decode() for k, v in head.headers},
            body,
        )
        self.requests.append(request)
        status = await self.answer(request)
        reply = conn.send(h11.Response(status_code=status, headers=[("content-length", "2")]))
        reply = (reply or b"") + (conn.send(h11.Data(data=b"ok")) or b"")
        reply += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(reply)
        if 200 <= status < 300:
            self.delivered.append(request.payload)
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE
