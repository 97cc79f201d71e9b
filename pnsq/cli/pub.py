"""``pnsq pub``: its flags are ``pnsq.tools.pub.FLAGS``, plus the input file as an optional
argument (``pnsq pub --topic=t events.log``), the same as ``--input``."""

from __future__ import annotations

from ..tools import pub
from .table import Spec, build_command

SPEC = Spec(
    name="pub",
    options=pub.PubOptions,
    flags=pub.FLAGS,
    run="pnsq.tools.pub:run",
    help="Publish the lines of a file or stdin to a topic (like to_nsq).",
    epilog="""\b
Examples:
  pnsq pub --topic=events --nsqd-tcp-address=127.0.0.1:4150 events.log
  tail -F app.log | pnsq pub --topic=logs --nsqd-tcp-address=127.0.0.1:4150
  pnsq pub --topic=t --delimiter='\\0' --rate=1000 --nsqd-tcp-address=a:4150 \\
      --nsqd-tcp-address=b:4150 < records.bin

\b
Exit codes: 0 every line acknowledged; 1 some line was not (the summary says how many),
a bad flag, or Ctrl-C before the end of the input.""",
    argument="input",
)
command = build_command(SPEC)
