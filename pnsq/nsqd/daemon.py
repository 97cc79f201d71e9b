"""Running nsqd as a process: trio, signals, and a clean exit.

SIGINT, and SIGTERM with ``--sigterm-mode=shutdown`` (the default), stop accepting connections,
close clients (a grace period, then cancel), write the queues to disk and return, so the process
exits 0 within a few seconds. SIGTERM with ``--sigterm-mode=drain`` starts a drain instead
(``drain.py``): the process exits 0 once the node is empty or ``--drain-timeout`` has passed; a
second SIGTERM, or a SIGINT, during the drain shuts down at once.
"""

from __future__ import annotations

import logging
import signal

import trio

from .._internal import daemon
from .nsqd import NSQD
from .options import Options

log = logging.getLogger("pnsq.nsqd")


async def serve_until_signalled(nsqd: NSQD, log: logging.Logger) -> None:
    """Serve until ``serve`` returns: after a shutdown signal, or a drain that finished."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def serve(task_status: trio.TaskStatus[None]) -> None:
                await nsqd.serve(task_status=task_status)
                nursery.cancel_scope.cancel()

            await nursery.start(serve)
            async for signum in signals:
                name = signal.Signals(signum).name
                drain = signum == signal.SIGTERM and nsqd.options.sigterm_mode == "drain"
                if drain and nsqd.drain.start():
                    log.info("received signal %s: draining (send it again to exit now)", name)
                else:
                    log.info("received signal %s: exiting", name)
                    nsqd.stop()


def run(options: Options) -> None:
    """Serve until a signal says stop (exit 0). Called by ``pnsq nsqd``; exits 1 if it cannot start."""
    daemon.run(NSQD(options), log, serve_until_signalled)
