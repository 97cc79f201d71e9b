"""``pnsq lookupd``: its flags are ``pnsq.lookupd.options.FLAGS``."""

from __future__ import annotations

from ..lookupd import options
from .table import Spec, build_command

SPEC = Spec(
    name="lookupd",
    options=options.LookupdOptions,
    flags=options.FLAGS,
    run="pnsq.lookupd.daemon:run",
    help="Run nsqlookupd, the directory that tells consumers which nsqd has which topic.",
    program="nsqlookupd",
    config=True,
    finish=options.finish,
    deprecated=options.DEPRECATED,
)
command = build_command(SPEC)
