"""What ``pnsq bench`` prints, to the character of NSQ's bench_writer/bench_reader.

The Go tools end with ``log.Printf("duration: %s - %.03fmb/s - %.03fops/s - %.03fus/op")``
after ``log.SetPrefix("[bench_writer] ")``; NSQ's bench.py and people's scripts parse that line,
so it is reproduced exactly: Go's log date, ``Duration.String()``, ``Duration.Seconds()``,
whole microseconds per op, and Go's ``+Inf``/``NaN`` for a run of no messages. ``--deadline`` is
Go's ``time.Parse("2006-01-02 15:04:05")``, a UTC time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

import anyio

from .._internal import flags
from .._internal.duration import format_duration, format_duration_ns

DEADLINE_FORMAT = "%Y-%m-%d %H:%M:%S"  # Go's "2006-01-02 15:04:05", read as UTC


def deadline(value: object) -> str:
    text = flags.string(value)
    if text:
        try:
            datetime.strptime(text, DEADLINE_FORMAT)
        except ValueError:
            raise ValueError(f'expected "YYYY-MM-DD HH:MM:SS" (UTC), got {text!r}') from None
    return text


@dataclass(frozen=True)
class BenchResult:
    count: int  # messages published (acknowledged) or consumed (FINned)
    duration_ns: int


def _go_float(value: float) -> str:
    """Go's ``%.03f``, including its spelling of infinities and NaN (a run of no messages)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.3f}"


def _divide(a: float, b: float) -> float:
    """Go's float division: x/0 is ±Inf, 0/0 is NaN."""
    if b:
        return a / b
    return math.nan if a == 0 else math.copysign(math.inf, a)


def result_text(result: BenchResult, size: int) -> str:
    """NSQ's ``duration: %s - %.03fmb/s - %.03fops/s - %.03fus/op`` for ``result``."""
    whole, nanos = divmod(result.duration_ns, 1_000_000_000)
    seconds = whole + nanos / 1e9  # as Go's Duration.Seconds()
    mb = _divide(result.count * size, seconds) / 1024 / 1024
    ops = _divide(result.count, seconds)
    us_per_op = _divide(result.duration_ns // 1000, result.count)
    return (
        f"duration: {format_duration_ns(result.duration_ns)} - {_go_float(mb)}mb/s - "
        f"{_go_float(ops)}ops/s - {_go_float(us_per_op)}us/op"
    )


def log_line(program: str, text: str, now: datetime | None = None) -> str:
    """A line as Go's ``log`` prints it after ``log.SetPrefix("[program] ")``."""
    return f"[{program}] {(now or datetime.now()):%Y/%m/%d %H:%M:%S} {text}\n"


async def wait_for_deadline(text: str, program: str, err: TextIO, stop: anyio.Event) -> bool:
    """Sleep until the ``--deadline`` (if any); False if stopped first."""
    if text:
        target = datetime.strptime(text, DEADLINE_FORMAT).replace(tzinfo=UTC)
        delay = (target - datetime.now(UTC)).total_seconds()
        until = f"{target:%Y-%m-%d %H:%M:%S} +0000 UTC ({format_duration(delay)})"
        err.write(log_line(program, f"sleeping until {until}"))
        err.flush()
        with anyio.move_on_after(max(0.0, delay)):
            await stop.wait()
    return not stop.is_set()
