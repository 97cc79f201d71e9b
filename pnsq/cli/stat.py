"""``pnsq stat``: its flags are ``pnsq.tools.stat.FLAGS``."""

from __future__ import annotations

from ..tools import stat
from .table import Spec, build_command

SPEC = Spec(
    name="stat",
    options=stat.StatOptions,
    flags=stat.FLAGS,
    run="pnsq.tools.stat:run",
    help="Print a channel's figures summed over its nsqds, every interval (like nsq_stat).",
    program="nsq_stat",
    finish=stat.check,
    epilog="""\b
Examples:
  pnsq stat --topic=events --channel=archive --lookupd-http-address=127.0.0.1:4161
  pnsq stat --topic=events --channel=archive --nsqd-http-address=10.0.0.1:4151 \\
            --nsqd-http-address=10.0.0.2:4151 --interval=5s --count=12
""",
)
command = build_command(SPEC)
