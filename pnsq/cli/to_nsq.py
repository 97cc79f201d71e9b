"""``pnsq to-nsq``: its flags are ``pnsq.tools.to_nsq.FLAGS``."""

from __future__ import annotations

from ..tools import to_nsq
from .table import Spec, build_command

SPEC = Spec(
    name="to-nsq",
    options=to_nsq.ToNSQOptions,
    flags=to_nsq.FLAGS,
    run="pnsq.tools.to_nsq:run",
    help="Copy topics from nsqds to other nsqds (like nsq_to_nsq).",
    finish=to_nsq.check,
    epilog="""\b
Examples:
  pnsq to-nsq --topic=events --nsqd-tcp-address=127.0.0.1:4150 \\
      --destination-nsqd-tcp-address=10.0.0.2:4150 --destination-nsqd-tcp-address=10.0.0.3:4150
  pnsq to-nsq --topic=events --lookupd-http-address=127.0.0.1:4161 \\
      --destination-nsqd-tcp-address=10.0.0.2:4150 --destination-topic=events_copy \\
      --require-json-field=type --require-json-value=click --whitelist-json-field=user

A message is FINed at the source only after a destination acknowledged it.""",
)
command = build_command(SPEC)
