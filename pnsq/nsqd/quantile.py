"""End-to-end processing latency percentiles over a rolling window.

Enabled by --e2e-processing-latency-percentile. As in NSQ, two streams each cover half of
--e2e-processing-latency-window-time and rotate, so the figures describe roughly the last
window. Each half keeps at most ``MAX_SAMPLES`` values (reservoir sampling beyond that), so
memory stays bounded however many messages are FINed; percentiles are exact over the samples.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

MAX_SAMPLES = 4096


class Quantile:
    def __init__(self, window: float, percentiles: tuple[float, ...], now: float) -> None:
        self.percentiles = percentiles
        self._half = window / 2
        self._rotate_at = now + self._half
        self._current: list[int] = []
        self._current_seen = 0
        self._previous: list[int] = []
        self._previous_seen = 0

    def _maybe_rotate(self, now: float) -> None:
        if now < self._rotate_at:
            return
        stale = now >= self._rotate_at + self._half  # nothing inserted for a whole half
        self._previous, self._previous_seen = (
            ([], 0) if stale else (self._current, self._current_seen)
        )
        self._current, self._current_seen = [], 0
        self._rotate_at = now + self._half

    def insert(self, value: int, now: float) -> None:
        self._maybe_rotate(now)
        self._current_seen += 1
        if len(self._current) < MAX_SAMPLES:
            self._current.append(value)
        else:
            slot = random.randrange(self._current_seen)
            if slot < MAX_SAMPLES:
                self._current[slot] = value

    def samples(self, now: float) -> tuple[list[int], int]:
        """The window's samples and how many values they stand for."""
        self._maybe_rotate(now)
        return self._previous + self._current, self._previous_seen + self._current_seen


def e2e_stats(
    quantiles: Iterable[Quantile], percentiles: tuple[float, ...], now: float
) -> dict[str, Any]:
    """NSQ's ``e2e_processing_latency`` object for one or more (merged) streams."""
    streams = list(quantiles)
    if not percentiles or not streams:  # Go: no stream at all (a topic without channels)
        return {"count": 0, "percentiles": None}
    values: list[int] = []
    count = 0
    for quantile in streams:
        samples, seen = quantile.samples(now)
        values += samples
        count += seen
    values.sort()
    # a stream with no samples yet answers 0 for every percentile, as Go's does
    result = [
        {
            "quantile": q,
            "value": float(values[min(int(q * len(values)), len(values) - 1)]) if values else 0.0,
        }
        for q in percentiles
    ]
    return {"count": count, "percentiles": result}
