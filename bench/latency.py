"""Per-request latencies, recorded cheaply inside a load loop and summed up in the parent.

Why this shape: a loop doing 30,000 round trips a second cannot afford a list append and a
growing list per request, nor can it afford to keep every value of a 60 s run. ``Samples`` is
a preallocated float32 array: one store and one add per round trip. When it fills, every other
sample is dropped and from then on only every 2nd (then 4th, ...) round trip is stored, so
memory stays fixed and the samples stay spread evenly over the whole run. The worker ships the
raw bytes to the parent (one pickle of a few MB at most), which merges and sorts them once.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

CAPACITY = 1 << 18  # 256 Ki samples, 1 MiB per connection


class Samples:
    """Round-trip times in seconds, thinned by halves once ``capacity`` is reached."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 2:
            raise ValueError("capacity must be >= 2")
        self._values = array("f", bytes(4 * capacity))
        self._stored = 0
        self._seen = 0
        self._stride = 1

    def add(self, seconds: float) -> None:
        self._seen += 1
        if self._seen % self._stride:
            return
        if self._stored == len(self._values):
            kept = self._values[1 : self._stored : 2]
            self._values[: len(kept)] = kept
            self._stored = len(kept)
            self._stride *= 2
        self._values[self._stored] = seconds
        self._stored += 1

    def __len__(self) -> int:
        return self._stored

    def to_bytes(self) -> bytes:
        return self._values[: self._stored].tobytes()


def merged(parts: Iterable[bytes]) -> list[float]:
    """The samples of several workers (``Samples.to_bytes``), sorted."""
    values = array("f")
    for part in parts:
        values.frombytes(part)
    return sorted(values)


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values (0.0 when there are none)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil, at least the first value
    return ordered[min(len(ordered), int(rank)) - 1]
