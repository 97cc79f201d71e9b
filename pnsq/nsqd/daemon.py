"""Running nsqd as a process: trio, signals, and a clean exit.

SIGTERM and SIGINT stop accepting connections, close clients (a grace period, then cancel) and
return, so the process exits 0 within a few seconds.
"""

from __future__ import annotations

import logging
import signal
import sys

import trio

from .nsqd import NSQD, DataPathLockedError
from .options import Options

log = logging.getLogger("pnsq.nsqd")


async def serve_until_signalled(nsqd: NSQD) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(nsqd.serve)
            async for signum in signals:
                log.info("received signal %s: exiting", signal.Signals(signum).name)
                nsqd.stop()
                break


def run(options: Options) -> None:
    """Serve until SIGTERM/SIGINT. Called by ``pnsq nsqd``; exits 1 if it cannot start."""
    failed = False
    try:
        trio.run(serve_until_signalled, NSQD(options))
    except* (DataPathLockedError, OSError) as group:
        for err in group.exceptions:
            log.critical("%s", err)
        failed = True
    if failed:
        sys.exit(1)
