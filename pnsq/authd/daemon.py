"""Running ``pnsq authd`` as a process: the shared runner, plus SIGHUP to reload the secrets."""

from __future__ import annotations

import logging
import sys

from .._internal import daemon
from .authd import Authd
from .options import AuthdOptions

log = logging.getLogger("pnsq.authd")


def run(options: AuthdOptions) -> None:
    """Serve until SIGTERM/SIGINT (exit 0); exit 1 if the secrets file or the address is bad."""
    try:
        authd = Authd(options, watch_sighup=True)
    except ValueError as err:
        log.critical("%s", err)
        sys.exit(1)
    daemon.run(authd, log)
