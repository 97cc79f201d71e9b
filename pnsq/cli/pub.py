"""``pnsq pub``: its flags are ``pnsq.tools.pub.FLAGS``, plus the input file as an optional
argument (``pnsq pub --topic=t events.log``), the same as ``--input``."""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

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
)
command = build_command(SPEC)
command.params.append(click.Argument(["file"], required=False, metavar="[FILE]"))
_from_flags = command.callback


def _with_file(**params: Any) -> Any:
    """The argument becomes ``--input`` as if given as a flag (an explicit flag value)."""
    ctx = click.get_current_context()
    file = params.pop("file", None)
    if file is not None:
        if ctx.get_parameter_source("input") is ParameterSource.COMMANDLINE:
            raise click.ClickException("give the input file as an argument or --input, not both")
        params["input"] = file
        ctx.set_parameter_source("input", ParameterSource.COMMANDLINE)
    assert _from_flags is not None
    return _from_flags(**params)


command.callback = _with_file
