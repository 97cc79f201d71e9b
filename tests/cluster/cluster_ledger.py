"""What was acknowledged, what was consumed, and the figures a scenario reports.

The producer's file holds one line per acknowledged batch (``time node first count``); the
consumers' files one line per finished message (``time body``). Both are read incrementally
while the load runs, so waiting for "everything acknowledged has been consumed" costs one pass
over each file in total. Loss is acknowledged minus consumed; duplicates are consumptions beyond
the first of a body.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cluster_topology import Cluster


class Tail:
    """New complete lines of a file that another process appends to."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial = path, 0, b""

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        *complete, self.partial = (self.partial + data).split(b"\n")
        return [line.decode() for line in complete]


class Ledger:
    def __init__(self, tag: str, acked_path: Path, consumed_paths: list[Path]) -> None:
        self.tag = tag
        self._acked_tail = Tail(acked_path)
        self._consumed_tails = [Tail(p) for p in consumed_paths]
        self.acked: dict[str, tuple[float, str]] = {}  # body -> (ack time, nsqd)
        self.consumed: Counter[str] = Counter()
        self.last_consumed_at: dict[str, float] = {}

    def add_consumer(self, path: Path) -> None:
        self._consumed_tails.append(Tail(path))

    def refresh(self) -> None:
        for line in self._acked_tail.lines():
            at, node, first, count = line.split()
            for seq in range(int(first), int(first) + int(count)):
                self.acked[f"{self.tag}-{seq}"] = (float(at), node)
        for tail in self._consumed_tails:
            for line in tail.lines():
                at, body = line.split()
                self.consumed[body] += 1
                self.last_consumed_at[body] = float(at)

    def consumed_count(self) -> int:
        """Distinct bodies consumed so far."""
        self.refresh()
        return len(self.consumed)

    def missing(self) -> set[str]:
        self.refresh()
        return set(self.acked) - set(self.consumed)

    def wait_all_consumed(self, timeout: float) -> float:
        """Wait until every acknowledged body was consumed; when the last one was (unix time)."""
        deadline = time.monotonic() + timeout
        while missing := self.missing():
            if time.monotonic() > deadline:
                sample = sorted(missing)[:10]
                raise AssertionError(
                    f"LOSS: {len(missing)} of {len(self.acked)} acknowledged messages never "
                    f"consumed, e.g. {sample}"
                )
            time.sleep(0.1)
        return max(self.last_consumed_at[body] for body in self.acked)

    def acked_by(self, node: str, before: float = float("inf")) -> set[str]:
        return {body for body, (at, by) in self.acked.items() if by == node and at < before}

    def ack_gaps(self) -> float:
        """The longest time between two acknowledged batches (how long publishing stalled)."""
        times = sorted({at for at, _ in self.acked.values()})
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def figures(self) -> dict[str, Any]:
        self.refresh()
        total = sum(self.consumed.values())
        stray = set(self.consumed) - set(self.acked)
        return {
            "acknowledged": len(self.acked),
            "consumed_unique": len(self.consumed),
            "consumed_total": total,
            "duplicates": total - len(self.consumed),
            "lost": len(set(self.acked) - set(self.consumed)),
            "consumed_not_acknowledged": len(stray),  # a publish whose OK was lost
            "by_nsqd": dict(Counter(node for _, node in self.acked.values())),
        }


def report(cluster: Cluster, scenario: str, figures: dict[str, Any]) -> None:
    """Print the scenario's figures (visible with ``-s``) and keep them as JSON in tmp_path.

    Added to every scenario: how many tracebacks the daemons logged ("internal error": a bug
    that closed one connection) -- reported, since it is not a loss."""
    figures["daemon_internal_errors"] = cluster.daemon_log_lines("internal error")
    path = cluster.tmp_path / f"cluster-{scenario}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True))
    summary = " ".join(f"{k}={v}" for k, v in sorted(figures.items()) if k != "by_nsqd")
    print(f"\nCLUSTER {scenario}: {summary}\nCLUSTER {scenario}: figures in {path}")
