"""The ``pnsq`` command: NSQ's daemons and tools behind one entry point (``pnsq nsqd ...``).

One small module per command (``pnsq/cli/<command>.py``, each exposing ``command``); commands
built from a flag table go through ``pnsq.cli.table``. A command's module is imported only when
it runs or when ``pnsq --help`` lists it, so ``pnsq nsqd`` does not load the client or the
admin's web stack. ``pnsq --help`` lists the commands grouped as below.
"""

from __future__ import annotations

import importlib

import click

from .. import NSQ_VERSION, __version__

__all__ = ["SECTIONS", "main"]

SECTIONS: dict[str, tuple[str, ...]] = {
    "Daemons": ("nsqd", "lookupd", "admin", "authd"),
    "Tools": ("tail", "pub", "stat", "to-file", "to-http", "to-nsq", "bench"),
    "Development": ("dev",),
}
_ALL = tuple(name for names in SECTIONS.values() for name in names)


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_ALL)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _ALL:
            return None
        module = importlib.import_module(f"{__name__}.{cmd_name.replace('-', '_')}")
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for section, names in SECTIONS.items():
            rows = []
            for name in names:
                command = self.get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(80)))
            with formatter.section(section):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, prog_name="pnsq", message=f"%(prog)s %(version)s (NSQ {NSQ_VERSION})"
)
def main() -> None:
    """pnsq: NSQ, the realtime distributed message platform, in Python."""
