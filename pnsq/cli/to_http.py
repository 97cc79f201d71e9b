"""``pnsq to-http``: its flags are ``pnsq.tools.to_http.FLAGS``."""

from __future__ import annotations

from ..tools import to_http
from .table import Spec, build_command

SPEC = Spec(
    name="to-http",
    options=to_http.ToHTTPOptions,
    flags=to_http.FLAGS,
    run="pnsq.tools.to_http:run",
    help="Deliver each message of a topic as an HTTP request (like nsq_to_http).",
    finish=to_http.check,
    epilog="""\b
Examples:
  pnsq to-http --topic=events --nsqd-tcp-address=127.0.0.1:4150 \\
      --post=http://127.0.0.1:8080/ingest --header='Authorization: Bearer xyz'
  pnsq to-http --topic=events --lookupd-http-address=127.0.0.1:4161 \\
      --get='http://a:8080/hit?data=%s' --get='http://b:8080/hit?data=%s' --mode=round-robin

A message is FINed only after a 2xx answer; anything else requeues it (with backoff).""",
)
command = build_command(SPEC)
