"""Running nsqd as a process: trio, signals, and a clean exit.

SIGINT, and SIGTERM with ``--sigterm-mode=shutdown`` (the default), stop accepting connections,
close clients (a grace period, then cancel), write the queues to disk and return, so the process
exits 0 within a few seconds. SIGTERM with ``--sigterm-mode=drain`` starts a drain instead
(``drain.py``): the process exits 0 once the node is empty or ``--drain-timeout`` has passed; a
second SIGTERM, or a SIGINT, during the drain shuts down at once.
"""

from __future__ import annotations

import gc
import logging
import signal

from .._internal import daemon
from .nsqd import NSQD
from .options import Options

log = logging.getLogger("pnsq.nsqd")


def run(options: Options) -> None:
    """Serve until a signal says stop (exit 0). Called by ``pnsq nsqd``; exits 1 if it cannot start."""
    nsqd = NSQD(options)
    # The collector's defaults cost a consumer ~0.3 us per message: every delivery makes a
    # tracked Message that lives until its FIN, so at 700 allocations a young collection ran
    # every few hundred deliveries, promoted what was in flight, and so set off a full
    # collection every few thousand, each walking the whole heap (~25,000 objects loaded at
    # start) and every entry of a backlog's queue. Frozen, what was loaded at start is never
    # walked again; at 20,000 a collection waits for that many more allocations than
    # releases, which a steady stream of deliveries and FINs never reaches.
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)

    def on_signal(signum: int) -> str | None:
        if signum == signal.SIGTERM and options.sigterm_mode == "drain" and nsqd.drain.start():
            return "draining (send it again to exit now)"
        return None

    daemon.run(nsqd, log, on_signal)
