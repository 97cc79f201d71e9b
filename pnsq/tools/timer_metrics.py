"""``--status-every N``: every N requests, one line of latency figures, as NSQ's relays log.

nsq_to_http and nsq_to_nsq keep the durations of the last N requests (per destination, and in
aggregate) and then log ``[aggregate]: finished 250 requests - 99th: 3.21ms - 95th: 2.80ms -
avg: 1.10ms``; scripts that grep those lines keep working. N = 0 turns it off. Recording is a
list append, so it costs nothing per message worth measuring.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger("pnsq.tools")


class TimerMetrics:
    def __init__(self, every: int, prefix: str = "", *, logger: logging.Logger = log) -> None:
        self.every, self.prefix, self.log = every, prefix, logger
        self._durations: list[float] = []

    def record(self, seconds: float, count: int = 1) -> None:
        """``count`` requests (a batch) that each took ``seconds``."""
        if self.every <= 0:
            return
        self._durations.extend([seconds] * count)
        while len(self._durations) >= self.every:
            window, self._durations = (
                self._durations[: self.every],
                self._durations[self.every :],
            )
            self.log.info("%s", self.line(window))

    def line(self, window: list[float]) -> str:
        ordered = sorted(window)
        average = sum(ordered) / len(ordered)
        return "{}finished {} requests - 99th: {:.2f}ms - 95th: {:.2f}ms - avg: {:.2f}ms".format(
            f"{self.prefix} " if self.prefix else "",
            len(ordered),
            _percentile(99, ordered) * 1000,
            _percentile(95, ordered) * 1000,
            average * 1000,
        )


def _percentile(percent: float, ordered: list[float]) -> float:
    # the nearest-rank rule NSQ's timer_metrics uses, clamped to the last sample
    index = math.ceil(percent / 100 * len(ordered) + 0.5)
    return ordered[min(index, len(ordered) - 1)]
