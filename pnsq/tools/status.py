"""The periodic status line of a long-running tool, on stderr.

Every ``interval`` seconds the tool's ``describe(elapsed)`` text is printed: on a terminal it
rewrites one line in place (``\\r``), elsewhere (a log file, a pipe) it prints one line per
interval so a log keeps the history. ``final()`` prints the last figures on their own line.
``rate`` turns a counter into a per-second figure over the last interval.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

import anyio


class StatusLine:
    def __init__(
        self,
        describe: Callable[[float], str],
        *,
        interval: float = 1.0,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.describe = describe
        self.interval = interval
        self.out = out or sys.stderr
        self.clock = clock
        self.started = clock()
        self.tty = self.out.isatty()
        self._width = 0

    async def run(self) -> None:
        """Print every ``interval`` until cancelled (0 or less: never)."""
        if self.interval <= 0:
            return
        while True:
            await anyio.sleep(self.interval)
            self.print()

    def print(self) -> None:
        text = self.describe(self.clock() - self.started)
        if self.tty:
            self.out.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def final(self) -> None:
        """The last figures, ending the line a terminal was rewriting."""
        self.print()
        if self.tty:
            self.out.write("\n")
            self.out.flush()


class Rate:
    """Per-second rate of a growing counter between successive ``update`` calls."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._last = (clock(), 0)

    def update(self, count: int) -> float:
        now = self.clock()
        then, before = self._last
        self._last = (now, count)
        return (count - before) / (now - then) if now > then else 0.0
