"""Flag tables to click commands: the one place every ``pnsq`` command gets its options from.

A command is a ``Spec``: its options dataclass, the ``Flag`` table declared beside it, and the
function that runs it. ``build_command(spec)`` makes the click command: one option per flag (help with
the dataclass default), ``--config FILE`` (TOML, NSQ's keys) for the daemons, ``--version``, and
Go's single-dash long flags (``-tcp-address=...``) accepted. Precedence is NSQ's: an explicit
flag beats the config file, which beats the dataclass default. Every bad value, from a flag or a
file, is one line naming it and exit code 1, as NSQ's programs exit.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import click
from click.core import ParameterSource

from .. import NSQ_VERSION
from .._internal import flags
from .._internal.duration import format_duration
from .._internal.flags import Flag
from .._internal.logging import setup_logging


def _same(options: Any) -> Any:
    return options


@dataclass(frozen=True)
class Spec:
    """A ``pnsq`` command built from a flag table."""

    name: str  # the command: ``pnsq <name>``
    options: type[Any]  # the frozen options dataclass the flags fill
    flags: tuple[Flag, ...]
    run: str  # "module:function", imported when the command runs; its int result is the exit code
    help: str
    program: str = ""  # the name --version prints (nsqd, nsqlookupd ...); "" = no --version
    config: bool = False  # --config FILE (TOML)
    finish: Callable[[Any], Any] = _same  # cross-option checks (ValueError) and fill-ins
    deprecated: Mapping[str, str] = field(default_factory=dict)  # flag -> warning
    ignored_config_keys: frozenset[str] = frozenset()
    epilog: str = ""
    # a flag whose value may also be given as the one optional positional argument
    # (``pnsq pub --topic=t events.log`` for ``--input=events.log``)
    argument: str = ""

    def defaults(self) -> dict[str, object]:
        return {f.name: f.default for f in dataclasses.fields(self.options)}


def default_help(flag: Flag, defaults: Mapping[str, object]) -> str:
    if flag.default_text is not None:
        return flag.default_text
    value = defaults.get(flag.field, dataclasses.MISSING)
    if value is dataclasses.MISSING:
        return ""
    if isinstance(value, float) and flag.convert in (flags.duration, flags.positive_duration):
        return format_duration(value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value in ("", ()) else str(value)


def load_config(path: str, spec: Spec, warn: Callable[[str], None]) -> dict[str, object]:
    """Read a TOML config file; unknown keys are reported through ``warn`` and dropped."""
    try:
        with open(path, "rb") as file:
            raw = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.ClickException(f"failed to load config file {path} - {exc}") from None
    known = {flag.config_key for flag in spec.flags}
    for key in sorted(set(raw) - known - spec.ignored_config_keys):
        warn(f"pnsq {spec.name}: ignoring unknown key {key!r} in config file {path}")
    return {key: value for key, value in raw.items() if key in known}


def build(
    spec: Spec,
    given: Mapping[str, object],
    config: Mapping[str, object] | None = None,
    config_path: str = "config file",
) -> Any:
    """Options from explicit flag values (by field) over config values (by key) over defaults.

    Raises click.ClickException naming the flag or key on an invalid value.
    """
    config = config or {}
    values: dict[str, Any] = {}
    for flag in spec.flags:
        if flag.field in given:
            raw, where = given[flag.field], f"--{flag.name}"
        elif flag.config_key in config:
            raw, where = config[flag.config_key], f"{flag.config_key!r} in {config_path}"
        else:
            continue
        try:
            values[flag.field] = flag.convert(raw)
        except ValueError as exc:
            raise click.ClickException(f"invalid value for {where}: {exc}") from None
    try:
        return spec.finish(spec.options(**values))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


class GoFlagCommand(click.Command):
    """Accepts Go's single-dash long flags (``-tcp-address=...``) and exits 1 on any bad input.

    NSQ deployments (systemd units, compose files) often use single dashes; rewriting known
    flags keeps those command lines working unchanged. Errors are one line, as NSQ prints them.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names = {opt for param in self.params for opt in getattr(param, "opts", ())}
        rewritten: list[str] = []
        for index, arg in enumerate(args):
            if arg == "--":
                rewritten.extend(args[index:])
                break
            name, eq, _ = arg.partition("=")
            # "-n 5" stays a short option; "-n=5" and "-tcp-address" are Go's long spellings
            go_long = name[:2] != "--" and "-" + name in names and (eq or name not in names)
            rewritten.append("-" + arg if go_long else arg)
        try:
            return super().parse_args(ctx, rewritten)
        except click.UsageError as exc:
            raise click.ClickException(exc.format_message()) from None


def click_option(flag: Flag, defaults: Mapping[str, object]) -> click.Option:
    default = default_help(flag, defaults)
    bare: dict[str, Any] = {"is_flag": False, "flag_value": "true"} if flag.bare else {}
    is_duration = flag.convert in (flags.duration, flags.positive_duration)
    names = [f"--{flag.name}", *([f"-{flag.short}"] if flag.short else []), flag.field]
    return click.Option(
        names,
        multiple=flag.repeatable,
        metavar="BOOL" if flag.bare else ("DURATION" if is_duration else "VALUE"),
        help=f"{flag.help} [default: {default}]" if default else flag.help,
        **bare,
    )


def _version_callback(program: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value and not ctx.resilient_parsing:
            click.echo(f"{program} v{NSQ_VERSION} (pnsq)")
            ctx.exit()

    return show_version


def _params(spec: Spec) -> list[click.Parameter]:
    params: list[click.Parameter] = []
    if spec.config:
        params.append(click.Option(["--config"], metavar="FILE", help="path to config file (TOML)"))
    if spec.program:
        params.append(
            click.Option(
                ["--version"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=_version_callback(spec.program),
                help="print version string",
            )
        )
    defaults = spec.defaults()
    params += [click_option(flag, defaults) for flag in spec.flags]
    params += [
        click.Option([f"--{name}"], is_flag=False, flag_value="true", metavar="BOOL", help=text)
        for name, text in spec.deprecated.items()
    ]
    if spec.argument:
        metavar = f"[{spec.argument.upper()}]"
        params.append(click.Argument(["positional"], required=False, metavar=metavar))
    return params


def _warn(message: str) -> None:
    click.echo(message, err=True)


def build_command(spec: Spec) -> click.Command:
    """The click command of ``spec``: parse, build the options, run."""

    @click.pass_context
    def callback(ctx: click.Context, /, **params: object) -> None:
        for name in spec.deprecated:
            if ctx.get_parameter_source(name.replace("-", "_")) is ParameterSource.COMMANDLINE:
                _warn(f"pnsq {spec.name}: --{name} {spec.deprecated[name]}")
        given = {
            flag.field: params[flag.field]
            for flag in spec.flags
            if ctx.get_parameter_source(flag.field) is ParameterSource.COMMANDLINE
        }
        positional = params.get("positional")
        if isinstance(positional, str):
            field = next(flag.field for flag in spec.flags if flag.name == spec.argument)
            if field in given:
                raise click.ClickException(f"give --{spec.argument} or an argument, not both")
            given[field] = positional
        path = params.get("config")
        file_values = load_config(path, spec, _warn) if isinstance(path, str) else {}
        options = build(spec, given, file_values, path if isinstance(path, str) else "")
        if hasattr(options, "log_level"):
            setup_logging(
                options.log_level,
                getattr(options, "log_prefix", ""),
                log_format=getattr(options, "log_format", "text"),
                component=spec.name,
            )
        module, function = spec.run.split(":")
        result = getattr(importlib.import_module(module), function)(options)
        if isinstance(result, int):
            sys.exit(result)

    return GoFlagCommand(
        spec.name,
        callback=callback,
        params=_params(spec),
        help=spec.help,
        epilog=spec.epilog or None,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    )
