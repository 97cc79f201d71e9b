"""Running nsqlookupd as a process: trio, signals, and a clean exit (exit code 0)."""

from __future__ import annotations

import logging

from .._internal import daemon
from .lookupd import Lookupd
from .options import LookupdOptions

log = logging.getLogger("pnsq.lookupd")


def run(options: LookupdOptions) -> None:
    """Serve until SIGTERM/SIGINT (exit 0). Called by ``pnsq lookupd``; exits 1 if it cannot start."""
    daemon.run(Lookupd(options), log)
