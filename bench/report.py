"""The figures of issue 16, their targets, and the tables bench/run.py prints.

Why this shape: one table (``FIGURES``) says, for every figure a phase can produce, its label,
unit, absolute target on this class of machine and target ratio to Go's nsqd, so the text
table, the JSON verdicts, the Go side-by-side table and ``--strict`` all read the same rules.
An absolute target is written only where the issue gives one; the others are ratio targets,
checked when Go's nsqd ran beside pnsq (``--go-bin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    label: str
    unit: str
    target: float | None = None  # absolute, on this class of machine
    at_least: bool = True  # True: higher is better (>= target); False: <= target
    go_ratio: float | None = None  # pnsq / Go at least this (for at_least figures)

    def passed(self, value: float) -> bool:
        if self.target is None:
            return True
        return value >= self.target if self.at_least else value <= self.target

    def show(self, value: float) -> str:
        if self.unit in ("MiB", "x"):
            return f"{value:,.2f} {self.unit}" if self.unit == "x" else f"{value:,.1f} MiB"
        return f"{value:,.0f} {self.unit}"

    def show_target(self) -> str:
        if self.target is None:
            return "-"
        return f"{'>=' if self.at_least else '<='} {self.show(self.target)}"


FIGURES: dict[str, Figure] = {
    "publish": Figure("MPUB publish, {writer_connections} conns", "msg/s", 680_000, go_ratio=0.8),
    "consume": Figure("consume, RDY {rdy}, FIN each", "msg/s", 350_000, go_ratio=0.7),
    "pub": Figure("single PUB over TCP, {pub_connections} conns", "msg/s", go_ratio=0.5),
    "http_pub": Figure(
        "HTTP /pub, keep-alive, {http_connections} conns", "req/s", 30_000, go_ratio=0.5
    ),
    "http_pub_close": Figure("HTTP /pub, a connection each", "req/s", go_ratio=0.5),
    "http_mpub": Figure("HTTP /mpub x {batch_size}, keep-alive", "req/s", go_ratio=0.5),
    "http_mpub_msgs": Figure("  (messages)", "msg/s"),
    "http_mpub_close": Figure(
        "HTTP /mpub x {batch_size}, a connection each", "req/s", go_ratio=0.5
    ),
    "http_mpub_close_msgs": Figure("  (messages)", "msg/s"),
    "durable": Figure("durable PUB, {durable_connections} conns, --sync-every=1", "msg/s", 20_000),
    "durable_lost": Figure("  acknowledged, lost by kill -9", "msgs", 0, at_least=False),
    "backlog_rss": Figure("RSS, {backlog:,} msgs on disk", "MiB", 150, at_least=False),
    "memory_ratio": Figure("RSS growth / payload, {held:,} in memory", "x", 2.0, at_least=False),
    "idle_rss": Figure("idle RSS", "MiB", 60, at_least=False),
}


def verdicts(figures: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Each measured figure with an absolute target: measured, target, passed."""
    return {
        key: {
            "measured": value,
            "target": FIGURES[key].target,
            "passed": FIGURES[key].passed(value),
        }
        for key, value in figures.items()
        if key in FIGURES and FIGURES[key].target is not None
    }


def ratios(go: dict[str, float], ours: dict[str, float]) -> dict[str, dict[str, Any]]:
    """pnsq / Go for every figure both measured; ``passed`` where a ratio target exists."""
    table = {}
    for key, figure in FIGURES.items():
        if key not in go or key not in ours:
            continue
        ratio = ours[key] / go[key] if go[key] else None
        passed = None
        if figure.go_ratio is not None:
            passed = ratio is not None and ratio >= figure.go_ratio
        table[key] = {
            "go": go[key],
            "pnsq": ours[key],
            "ratio": ratio,
            "target_ratio": figure.go_ratio,
            "passed": passed,
        }
    return table


def latency_text(latency_ms: dict[str, list[float]], key: str) -> str:
    if key not in latency_ms:
        return ""
    p50, p99 = latency_ms[key]
    return f"{p50:.2f} / {p99:.2f}"


def print_figures(
    label: str, result: dict[str, Any], options: dict[str, Any], judged: bool = True
) -> None:
    """One subject's figures next to their targets (and p50/p99 latency where measured);
    the targets are pnsq's, so Go's figures are printed without them (``judged=False``)."""
    figures, latency, cost = result["figures"], result["latency_ms"], result["nsqd_us"]
    checked = verdicts(figures) if judged else {}
    print(f"\n{label}:")
    print(
        f"| {'figure':<40} | {'measured':>16} | {'p50 / p99 ms':>15} | {'nsqd CPU us':>12} "
        f"| {'target':>16} | ok  |"
    )
    print(f"|{'-' * 42}|{'-' * 18}|{'-' * 17}|{'-' * 14}|{'-' * 18}|-----|")
    for key, figure in FIGURES.items():
        if key not in figures:
            continue
        mark = ("yes" if checked[key]["passed"] else "NO") if key in checked else ""
        print(
            f"| {figure.label.format(**options):<40} | {figure.show(figures[key]):>16} "
            f"| {latency_text(latency, key):>15} | {cost.get(key, ''):>12} "
            f"| {figure.show_target() if judged else '':>16} | {mark:<3} |"
        )


def print_ratios(table: dict[str, dict[str, Any]], options: dict[str, Any]) -> None:
    print("\nGo nsqd beside pnsq (same run, same machine):")
    print(f"| {'workload':<40} | {'Go':>16} | {'pnsq':>16} | {'ratio':>6} | {'target':>7} | ok  |")
    print(f"|{'-' * 42}|{'-' * 18}|{'-' * 18}|{'-' * 8}|{'-' * 9}|-----|")
    for key, row in table.items():
        figure = FIGURES[key]
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        target = "-" if row["target_ratio"] is None else f">= {row['target_ratio']}x"
        mark = {True: "yes", False: "NO", None: ""}[row["passed"]]
        print(
            f"| {figure.label.format(**options):<40} | {figure.show(row['go']):>16} "
            f"| {figure.show(row['pnsq']):>16} "
            f"| {ratio:>6} | {target:>7} | {mark:<3} |"
        )
