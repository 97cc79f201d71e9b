"""Parse a deployment's ``pnsq ...`` command line exactly as ``pnsq`` would, without running it.

The command is the real click command (``pnsq.cli.<name>.command``, Go-style single dashes
included) and the options come from ``table.build`` on that command's spec, so an unknown or
renamed flag, or a value its converter rejects, fails here the way it would fail on a node.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import click
from click.core import ParameterSource

from pnsq.cli import table

DAEMONS = ("nsqd", "lookupd", "admin")


def parse(argv: Sequence[str], config: dict[str, object] | None = None) -> Any:
    """The options ``pnsq <argv>`` would start with; ``config`` stands in for ``--config``'s file.

    Raises click.ClickException with pnsq's own message for anything pnsq would refuse.
    """
    name, *args = argv
    if name not in DAEMONS:
        raise click.ClickException(f"{name!r} is not a pnsq daemon ({', '.join(DAEMONS)})")
    module = importlib.import_module(f"pnsq.cli.{name}")
    spec: table.Spec = module.SPEC
    command: click.Command = module.command
    with command.make_context(name, list(args)) as ctx:
        given = {
            flag.field: ctx.params[flag.field]
            for flag in spec.flags
            if ctx.get_parameter_source(flag.field) is ParameterSource.COMMANDLINE
        }
        deprecated = [
            name for name in spec.deprecated if ctx.params.get(name.replace("-", "_")) is not None
        ]
    if deprecated:
        raise click.ClickException(f"deprecated flags in a deployment: {deprecated}")
    return table.build(spec, given, config)


def config_of(argv: Sequence[str]) -> str | None:
    """The ``--config`` path of a command line, if any."""
    for arg in argv:
        if arg.startswith(("--config=", "-config=")):
            return arg.split("=", 1)[1]
    return None
