"""A small HTTP/1.1 server loop for the fakes tests stand up (notification sinks, graphite).

``serve_h11(stream, answer)`` reads each request of a keep-alive connection whole and sends
``answer(request, body)``'s ``(status, headers, body)`` back, until the client hangs up.
"""

from __future__ import annotations

from collections.abc import Callable

import h11
import trio

Answer = Callable[[h11.Request, bytes], tuple[int, list[tuple[str, str]], bytes]]


async def serve_h11(stream: trio.SocketStream, answer: Answer) -> None:
    conn = h11.Connection(h11.SERVER)
    request: h11.Request | None = None
    body = b""
    async with stream:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                status, headers, payload = answer(request, body)
                headers = [*headers, ("Content-Length", str(len(payload)))]
                data = conn.send(h11.Response(status_code=status, headers=headers))
                data += conn.send(h11.Data(data=payload)) if payload else b""
                await stream.send_all(data + conn.send(h11.EndOfMessage()))
                conn.start_next_cycle()
                request, body = None, b""
            else:
                return
