"""``pnsq tail``: its flags are ``pnsq.tools.tail.FLAGS``."""

from __future__ import annotations

from ..tools import tail
from .table import Spec, build_command

SPEC = Spec(
    name="tail",
    options=tail.TailOptions,
    flags=tail.FLAGS,
    run="pnsq.tools.tail:run",
    help="Print a topic's messages to stdout (like nsq_tail).",
)
command = build_command(SPEC)
