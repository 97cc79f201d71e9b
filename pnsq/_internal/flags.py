"""Command-line flags declared as data, beside the options dataclass they fill.

A daemon or tool declares its flags once, as a tuple of ``Flag`` rows next to its frozen options
dataclass (``pnsq/nsqd/options.py``, ``pnsq/tools/pub.py`` ...). The CLI (``pnsq.cli.table``)
turns a table into click options, config-file keys and ``--help`` defaults, so a flag cannot
exist in one place and be missing in another. Every value, from a flag or a TOML file, goes
through the same converter, so both give the same error for the same mistake.

This module knows nothing of click: converters take a flag string, a repeated flag's tuple or a
TOML value, and return the options value or raise ValueError with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .duration import parse_duration
from .logging import parse_log_format, parse_log_level
from .netaddr import split_host_port

Convert = Callable[[object], Any]
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True)
class Flag:
    """One flag: its NSQ name (no dashes), options field, converter and one-line help."""

    name: str
    field: str
    convert: Convert
    help: str
    cfg: str = ""  # config-file key when it is not the field name
    repeatable: bool = False
    bare: bool = False  # may be given without a value, like Go's bool flags (``--snappy``)
    default_text: str | None = None  # for --help, when the dataclass default does not say it
    short: str = ""  # a one-letter alias, e.g. "n" for ``-n``

    @property
    def config_key(self) -> str:
        return self.cfg or self.field


def flag(name: str, convert: Convert, text: str, **extra: Any) -> Flag:
    """A ``Flag`` whose field is the name with ``_`` for ``-`` unless ``field=`` says otherwise."""
    return Flag(name, extra.pop("field", name.replace("-", "_")), convert, text, **extra)


# -- converters: flag strings and TOML values -> options values; ValueError on bad input --------


def string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            pass
    raise ValueError(f"expected an integer, got {value!r}")


def natural(value: object) -> int:
    number = integer(value)
    if number < 0:
        raise ValueError(f"must not be negative, got {number}")
    return number


def at_least(low: int) -> Convert:
    def convert(value: object) -> int:
        number = integer(value)
        if number < low:
            raise ValueError(f"must be at least {low}, got {number}")
        return number

    return convert


def port(value: object) -> int:
    number = integer(value)
    if not 0 <= number <= 65535:
        raise ValueError(f"must be a port in [0,65535], got {number}")
    return number


def real(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {value!r}")


def boolean(value: object) -> bool:
    """Go's strconv.ParseBool spellings, or a TOML boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _GO_TRUE | _GO_FALSE:
        return value in _GO_TRUE
    raise ValueError(f"expected true or false, got {value!r}")


def duration(value: object) -> float:
    """A Go duration string; NSQ (since 1.1) takes no bare numbers for durations."""
    if not isinstance(value, str):
        raise ValueError(f'durations must be strings such as "60s" or "250ms", got {value!r}')
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return seconds


def positive_duration(value: object) -> float:
    seconds = duration(value)
    if seconds <= 0:
        raise ValueError(f"must be positive, got {value!r}")
    return seconds


def choice(*choices: str) -> Convert:
    def convert(value: object) -> str:
        text = string(value).lower()
        if text not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return text

    return convert


def log_level(value: object) -> str:
    return parse_log_level(string(value))


def log_format(value: object) -> str:
    return parse_log_format(string(value))


def address(value: object) -> str:
    """``host:port`` (``[::1]:4150``, ``:4150``), checked as Go's net.SplitHostPort checks it."""
    text = string(value)
    split_host_port(text)
    return text


def items(value: object) -> list[object]:
    """A repeated flag (tuple), a TOML array, or one comma-separated string."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, tuple | list):
        return list(value)
    return [value]


def string_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(string(item) for item in items(value))


def address_list(value: object) -> tuple[str, ...]:
    return tuple(address(item) for item in string_list(value))
