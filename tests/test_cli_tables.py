"""The flag tables behind every ``pnsq`` command: each flag declared once, in its table, and
the same mistake gives the same error from a flag and from a config file."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import pnsq
from pnsq._internal import flags
from pnsq.cli import SECTIONS, main, table

PNSQ = Path(pnsq.__file__).parent


def _specs() -> list[table.Spec]:
    specs = []
    for name in (name for names in SECTIONS.values() for name in names):
        module = importlib.import_module(f"pnsq.cli.{name.replace('-', '_')}")
        specs += [value for value in vars(module).values() if isinstance(value, table.Spec)]
    return specs


SPECS = _specs()


def test_every_command_in_the_help_groups_is_built_from_a_flag_table() -> None:
    listed = {name for names in SECTIONS.values() for name in names}
    assert {spec.name for spec in SPECS} >= listed - {"bench"}  # bench: a group of two specs
    assert {"nsqd", "lookupd", "admin", "dev", "tail"} <= {spec.name for spec in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_each_flag_sets_one_field_of_the_options_once(spec: table.Spec) -> None:
    fields = {field.name for field in dataclasses.fields(spec.options)}
    names = [flag.name for flag in spec.flags]
    assert len(names) == len(set(names)), "a flag declared twice"
    targets = [flag.field for flag in spec.flags]
    assert len(targets) == len(set(targets)), "two flags set one field"
    assert set(targets) <= fields, set(targets) - fields
    keys = [flag.config_key for flag in spec.flags]
    assert len(keys) == len(set(keys))


def test_no_command_declares_an_option_outside_the_tables() -> None:
    """click options are made in one place (pnsq/cli/table.py) from the tables: a flag added
    anywhere else would have no config key, no converter and no --help default."""
    offenders = [
        f"{path.relative_to(PNSQ)}:{node.lineno}"
        for path in PNSQ.rglob("*.py")
        if path != PNSQ / "cli" / "table.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "click"
        and node.attr in {"option", "Option", "argument", "Argument"}
    ]
    assert offenders == []


def test_each_daemon_flag_name_appears_once_in_the_code() -> None:
    """``flag("tcp-address", ...)`` is written once per command, in the table of that command."""
    for spec in SPECS:
        if spec.name not in {"nsqd", "lookupd", "admin"}:
            continue
        source = Path(importlib.import_module(spec.options.__module__).__file__ or "").read_text()
        for flag in spec.flags:
            assert source.count(f'flag("{flag.name}"') == 1, (spec.name, flag.name)


# One bad value per converter: the error must be the same from a flag and from the file.
_BAD = {
    flags.integer: "twelve",
    flags.natural: "-3",
    flags.port: "70000",
    flags.boolean: "maybe",
    flags.duration: "5",
    flags.positive_duration: "0s",
    flags.log_level: "loud",
    flags.address: "nohost",
    flags.address_list: "nohost",
}


def _bad_values() -> list[tuple[table.Spec, flags.Flag, str]]:
    cases = []
    for spec in SPECS:
        for flag in spec.flags:
            bad = _BAD.get(flag.convert)
            if bad is None and flag.name in {"auth-http-request-method", "tls-client-auth-policy"}:
                bad = "sideways"  # a choice
            if bad is not None and spec.config:
                cases.append((spec, flag, bad))
    return cases


@pytest.mark.parametrize(
    ("spec", "flag", "bad"),
    _bad_values(),
    ids=lambda value: value.name if isinstance(value, table.Spec | flags.Flag) else value,
)
def test_a_bad_value_gives_the_same_error_from_a_flag_and_a_config_key(
    spec: table.Spec, flag: flags.Flag, bad: str
) -> None:
    given = (bad,) if flag.repeatable else bad
    with pytest.raises(click.ClickException) as from_flag:
        table.build(spec, {flag.field: given}, {})
    with pytest.raises(click.ClickException) as from_file:
        table.build(spec, {}, {flag.config_key: bad}, "pnsq.toml")
    assert from_flag.value.message.startswith(f"invalid value for --{flag.name}: ")
    assert from_file.value.message.startswith(
        f"invalid value for '{flag.config_key}' in pnsq.toml: "
    )
    assert from_flag.value.message.split(": ", 1)[1] == from_file.value.message.split(": ", 1)[1]


def test_pnsq_help_groups_daemons_tools_and_development() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    out = result.output
    assert out.index("Daemons:") < out.index("nsqd") < out.index("Tools:") < out.index("tail")
    assert out.index("Tools:") < out.index("Development:") < out.index("dev ")
