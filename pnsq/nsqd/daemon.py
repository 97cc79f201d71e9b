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

from .._internal import daemon
from .nsqd import NSQD
from .options import Options

log = logging.getLogger("pnsq.nsqd")


def run(options: Options) -> None:
    """Serve until a signal says stop (exit 0). Called by ``pnsq nsqd``; exits 1 if it cannot start."""
    nsqd = NSQD(options)

    def on_signal(signum: int) -> str | None:
        if signum == signal.SIGTERM and options.sigterm_mode == "drain" and nsqd.drain.start():
            return "draining (send it again to exit now)"
        return None

    daemon.run(nsqd, log, on_signal)
