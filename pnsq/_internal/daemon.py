"""Running a daemon as a process: listeners, signals, a clean exit, and a clear failure to start.

Every daemon (nsqd, lookupd, admin) has ``serve(task_status=...)`` and ``stop()``. SIGTERM and SIGINT
call ``stop()`` and the process exits 0 once ``serve`` returns; a daemon that cannot start (an
address in use, a locked data path) logs ``FATAL: <why>`` and exits 1, with no traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from .netaddr import split_host_port


class Daemon(Protocol):
    async def serve(self, *, task_status: trio.TaskStatus[Any] = ...) -> None: ...

    def stop(self) -> None: ...


async def listen(address: str) -> list[trio.SocketListener]:
    """TCP listeners on ``host:port`` (every address of the host; all interfaces if empty)."""
    host, port = split_host_port(address)
    return await trio.open_tcp_listeners(port, host=host or None)


def bound_address(listeners: list[trio.SocketListener]) -> tuple[str, int]:
    """The (host, port) the first listener is bound to (the real port when 0 was asked)."""
    sockname = listeners[0].socket.getsockname()
    return sockname[0], sockname[1]


async def serve_until_signalled(daemon: Daemon, log: logging.Logger) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(daemon.serve)
            async for signum in signals:
                log.info("received signal %s: exiting", signal.Signals(signum).name)
                daemon.stop()
                break


def run(
    daemon: Daemon,
    log: logging.Logger,
    main: Callable[[Any, logging.Logger], Awaitable[None]] = serve_until_signalled,
) -> None:
    """Serve until SIGTERM/SIGINT (or as ``main`` says), then exit 0; exit 1 if it cannot start."""
    failed = False
    try:
        trio.run(main, daemon, log)
    except* OSError as group:  # includes a data path locked by another process
        for err in group.exceptions:
            log.critical("%s", err)
        failed = True
    if failed:
        sys.exit(1)
