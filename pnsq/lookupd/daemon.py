"""Running nsqlookupd as a process: trio, signals, and a clean exit (exit code 0)."""

from __future__ import annotations

import logging
import signal

import trio

from .lookupd import Lookupd
from .options import LookupdOptions

log = logging.getLogger("pnsq.lookupd")


async def serve_until_signalled(lookupd: Lookupd) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(lookupd.serve)
            async for signum in signals:
                log.info("received signal %s: exiting", signal.Signals(signum).name)
                lookupd.stop()
                break


def run(options: LookupdOptions) -> None:
    """Serve until SIGTERM/SIGINT. Called by ``pnsq lookupd``."""
    trio.run(serve_until_signalled, Lookupd(options))
