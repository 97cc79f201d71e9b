"""Running nsqd as a process: trio, signals, and a clean exit.

SIGTERM and SIGINT stop accepting connections, close clients (a grace period, then cancel) and
return, so the process exits 0 within a few seconds.
"""

from __future__ import annotations

import logging

from .._internal import daemon
from .nsqd import NSQD
from .options import Options

log = logging.getLogger("pnsq.nsqd")


def run(options: Options) -> None:
    """Serve until SIGTERM/SIGINT (exit 0). Called by ``pnsq nsqd``; exits 1 if it cannot start."""
    daemon.run(NSQD(options), log)
