"""Serving one client connection, the same way on every port.

A client going away ends its connection quietly; a bug while serving it is logged with its
traceback and ends that connection only, never the daemon; the stream is always closed, even
when the serving task is being cancelled (a shielded close, bounded to a second).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError)


async def serve_connection(
    stream: trio.abc.AsyncResource,
    serve: Callable[[], Awaitable[None]],
    log: logging.Logger,
    who: str,
) -> None:
    try:
        await serve()
    except* _GONE:
        pass  # the client went away; a nursery (reader + writer) reports it as a group
    except* Exception:
        log.exception("[%s] internal error; closing this connection", who)
    finally:
        with trio.move_on_after(1) as scope:
            scope.shield = True
            try:
                await stream.aclose()
            except (*_GONE, OSError):
                pass
