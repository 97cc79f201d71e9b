"""``pnsq tail``: its flags are ``pnsq.tools.tail.FLAGS``."""

from __future__ import annotations

from ..tools import tail
from .table import Spec, build_command

SPEC = Spec(
    name="tail",
    options=tail.TailOptions,
    flags=tail.FLAGS,
    run="pnsq.tools.tail:run",
    program="nsq_tail",
    help="Print a topic's messages to stdout (like nsq_tail).",
    epilog="""\b
Examples:
  pnsq tail --topic=events --nsqd-tcp-address=127.0.0.1:4150
  pnsq tail --topic=a --topic=b --print-topic --lookupd-http-address=127.0.0.1:4161
  pnsq tail --topic=events -n 10 --nsqd-tcp-address=127.0.0.1:4150 > first10.txt

\b
Exit codes: 0 after -n messages or on Ctrl-C/SIGTERM (in-flight messages printed and
FINed first); 1 on a bad flag or when stdout cannot be written.""",
)
command = build_command(SPEC)
