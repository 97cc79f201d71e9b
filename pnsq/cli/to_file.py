"""``pnsq to-file``: its flags are ``pnsq.tools.to_file_options.FLAGS``."""

from __future__ import annotations

from ..tools import to_file_options as to_file
from .table import Spec, build_command

SPEC = Spec(
    name="to-file",
    options=to_file.ToFileOptions,
    flags=to_file.FLAGS,
    run="pnsq.tools.to_file:run",
    help="Archive topics to newline-delimited files (like nsq_to_file).",
    finish=to_file.finish,
    epilog="""Examples:

\b
  pnsq to-file --topic=events --nsqd-tcp-address=127.0.0.1:4150 --output-dir=/var/archive
  pnsq to-file --topic-pattern='^clicks' --lookupd-http-address=127.0.0.1:4161 \\
      --gzip --rotate-interval=1h --work-dir=/var/archive/tmp --output-dir=/var/archive

Messages are FINed only after the batch holding them is fsynced: kill -9 loses nothing
that was FINed (nsqd redelivers the rest, so a line may appear twice).""",
)
command = build_command(SPEC)
