"""``pnsq dev``: its flags are ``pnsq.tools.dev.FLAGS``."""

from __future__ import annotations

from ..tools import dev
from .table import Spec, build_command

SPEC = Spec(
    name="dev",
    options=dev.Addresses,
    flags=dev.FLAGS,
    run="pnsq.tools.dev:run",
    help="""Run a local cluster: nsqlookupd, nsqd (registered with it) and the admin (using it).

    Each daemon starts once the one before listens; port 0 in an address picks a free port.
    Logs are prefixed with each daemon's name; Ctrl-C or SIGTERM stops them all.""",
)
command = build_command(SPEC)
