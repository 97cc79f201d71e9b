"""Running a daemon as a process: listeners, signals, a clean exit, and a clear failure to start.

Every daemon (nsqd, lookupd, admin) has ``serve(task_status=...)`` and ``stop()``. SIGTERM and SIGINT
call ``stop()`` and the process exits 0 once ``serve`` returns; a daemon that cannot start (an
address in use, a locked data path) logs ``FATAL: <why>`` and exits 1, with no traceback.
Under systemd (``Type=notify``) the service manager hears ``READY=1`` once ``serve`` reports
every listener bound and ``STOPPING=1`` when a signal starts the shutdown (``sd_notify``).
A daemon may take a signal another way (``on_signal``: nsqd's drain mode) and may end by itself
(``serve`` returns: a drain finished); the process then exits 0 as well.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from typing import Any, Protocol

import trio

from . import sd_notify
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


OnSignal = Callable[[int], str | None]
"""Given a signal, what the daemon does instead of stopping (logged), or None to stop."""


async def serve_until_signalled(
    daemon: Daemon, log: logging.Logger, on_signal: OnSignal | None = None
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def serve(task_status: trio.TaskStatus[Any]) -> None:
                await daemon.serve(task_status=task_status)
                nursery.cancel_scope.cancel()  # ended by itself, or after stop(): exit

            await nursery.start(serve)
            sd_notify.notify(sd_notify.READY)
            async for signum in signals:
                name = signal.Signals(signum).name
                sd_notify.notify(sd_notify.STOPPING)  # a drain ends in the process exiting too
                instead = on_signal(signum) if on_signal is not None else None
                if instead is not None:
                    log.info("received signal %s: %s", name, instead)
                    continue
                log.info("received signal %s: exiting", name)
                daemon.stop()


def run(daemon: Daemon, log: logging.Logger, on_signal: OnSignal | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or ``serve`` returns), then exit 0; exit 1 if it cannot start."""
    failed = False
    try:
        trio.run(serve_until_signalled, daemon, log, on_signal)
    except* OSError as group:  # includes a data path locked by another process
        for err in group.exceptions:
            log.critical("%s", err)
        failed = True
    if failed:
        sys.exit(1)
