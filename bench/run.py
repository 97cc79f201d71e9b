#!/usr/bin/env python3
"""The one-command nsqd benchmark of issue 16: start nsqd, run each phase, print every figure.

    .venv/bin/python bench/run.py [--phases publish,consume,...] [--runfor 10s] [--json]
    .venv/bin/python bench/run.py --go-bin DIR    # Go's nsqd beside pnsq, with ratios

Phases (phases.py, own_nsqd_phases.py): MPUB publish and consume (NSQ's bench_writer and
bench_reader), single PUB over TCP, HTTP /pub and /mpub with and without keep-alive, durable
single PUB (``--sync-every=1``), RSS with a backlog on disk, and RSS growth with messages held
in memory.
With ``--go-bin`` every phase runs against Go's nsqd and then pnsq, back to back, so both see
the same machine; then a table of pnsq / Go ratios. Only NSQ's standard flags, TCP V2 and HTTP
are used, so any NSQ 1.3 nsqd can be measured. Load goes to 127.0.0.1 only; each phase is
bounded (``--runfor``, at most 60 s). Exit status: 0 when every phase ran, 1 when one failed,
3 with ``--strict`` when a target was missed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsq_load import parse_duration, positive
from nsqd_process import default_nsqd_cmd, pick_cpus
from own_nsqd_phases import backlog, durable, memory
from phases import PhaseResult, Subject, consume, http_phase, pub, publish
from report import print_figures, print_ratios, ratios, verdicts

if TYPE_CHECKING:
    from collections.abc import Callable

PHASES: dict[str, Callable[[Subject, argparse.Namespace], PhaseResult]] = {
    "publish": publish,
    "consume": consume,
    "pub": pub,
    "http-pub": http_phase(mpub=False, close=False),
    "http-pub-close": http_phase(mpub=False, close=True),
    "http-mpub": http_phase(mpub=True, close=False),
    "http-mpub-close": http_phase(mpub=True, close=True),
    "durable": durable,
    "backlog": backlog,
    "memory": memory,
}
NEEDS = {"consume": "publish"}  # consume drains the backlog publish left


def parse_phases(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PHASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown phase(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(PHASES)}"
        )
    names += [NEEDS[name] for name in names if name in NEEDS]
    return [name for name in PHASES if name in names]  # in their canonical order


def go_nsqd(text: str) -> list[str]:
    binary = Path(text) / "nsqd"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise argparse.ArgumentTypeError(f"no executable nsqd in {text!r}")
    return [str(binary.resolve())]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--nsqd-cmd", help="nsqd command line (default: this python -m pnsq nsqd)")
    add("--go-bin", type=go_nsqd, metavar="DIR", help="run Go's DIR/nsqd beside pnsq")
    add("--phases", type=parse_phases, default=list(PHASES), help=",".join(PHASES))
    add("--runfor", type=parse_duration, default=10.0, help="per phase, max 60s")
    add("--size", type=positive, default=200, help="message bytes")
    add("--batch-size", type=positive, default=200, help="messages per MPUB and HTTP /mpub")
    add("--writer-connections", type=positive, default=2)
    add("--reader-connections", type=positive, default=2)
    add("--rdy", type=positive, default=2500)
    add("--pub-connections", type=positive, default=8, help="single PUB over TCP")
    add("--http-connections", type=positive, default=16)
    add("--durable-connections", type=positive, default=8)
    add("--backlog", type=positive, default=1_000_000, help="messages on disk (backlog)")
    add("--held", type=positive, default=100_000, help="messages in memory (memory)")
    add("--no-pin", action="store_true", help="do not pin nsqd / generators")
    add("--json", action="store_true", help="print the results as JSON")
    add("--strict", action="store_true", help="exit 3 when a target is missed")
    return parser


def run_subject_phase(name: str, subject: Subject, args: argparse.Namespace) -> PhaseResult:
    try:
        return PHASES[name](subject, args)
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        return PhaseResult(failures=[f"{type(exc).__name__}: {exc}"])


def collect(subject: Subject, results: dict[str, PhaseResult]) -> dict[str, Any]:
    figures: dict[str, float] = {}
    latency: dict[str, tuple[float, float]] = {}
    nsqd_us: dict[str, str] = {}
    for result in results.values():
        figures.update(result.figures)
        latency.update(result.latency_ms)
        nsqd_us.update(result.nsqd_us)
    if subject.shared is not None:
        figures["idle_rss"] = subject.idle_rss_mib
    return {
        "cmd": list(subject.cmd),
        "figures": figures,
        "latency_ms": latency,
        "nsqd_us": nsqd_us,
        "verdicts": verdicts(figures),
        "phases": {name: asdict(result) for name, result in results.items()},
        "failures": [f"{n}: {f}" for n, r in results.items() for f in r.failures],
        "warnings": [f"{n}: {w}" for n, r in results.items() for w in r.warnings],
    }


def run_all(args: argparse.Namespace, subjects: list[Subject]) -> dict[str, dict[str, Any]]:
    """Every phase against every subject in turn; each subject's results and exit codes."""
    results: dict[str, dict[str, PhaseResult]] = {s.label: {} for s in subjects}
    try:
        for name in args.phases:
            for subject in subjects:
                result = run_subject_phase(name, subject, args)
                results[subject.label][name] = result
                if not args.json:
                    for line in [*result.lines, *result.failures, *result.warnings]:
                        print(f"[{subject.label}] {name}: {line}", flush=True)
    finally:
        exit_codes = {s.label: s.stop_all() for s in subjects}
    return {
        s.label: {**collect(s, results[s.label]), "exit_codes": exit_codes[s.label]}
        for s in subjects
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ours = shlex.split(args.nsqd_cmd) if args.nsqd_cmd else default_nsqd_cmd()
    specs = [("pnsq" if not args.nsqd_cmd or args.go_bin else "nsqd", ours)]
    if args.go_bin:
        specs.insert(0, ("Go", args.go_bin))
    cpus = pick_cpus(args.no_pin or bool(args.go_bin))
    placement = (
        f"pinned: nsqd to CPU {cpus[0]}, load generators to CPU {cpus[1]}"
        if cpus
        else "not pinned (nsqd and load generators share all CPUs"
        + ("; Go's nsqd is multi-threaded)" if args.go_bin else ")")
    )
    if not args.json:
        print(placement, flush=True)
    with tempfile.TemporaryDirectory(prefix="pnsq-bench-") as tmp:
        subjects = [Subject(label, cmd, Path(tmp) / label, cpus) for label, cmd in specs]
        for subject in subjects:
            subject.workdir.mkdir()
        if cpus:
            os.sched_setaffinity(0, {cpus[1]})
        results = run_all(args, subjects)
    report: dict[str, Any] = {"placement": placement, "phases": args.phases, "results": results}
    if args.go_bin:
        report["ratios"] = ratios(results["Go"]["figures"], results["pnsq"]["figures"])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for label, result in results.items():
            print_figures(f"{label} ({' '.join(result['cmd'])})", result, vars(args), label != "Go")
        if "ratios" in report:
            print_ratios(report["ratios"], vars(args))
    return exit_status(results, report.get("ratios", {}), args.strict)


def exit_status(
    results: dict[str, dict[str, Any]], ratio_rows: dict[str, dict[str, Any]], strict: bool
) -> int:
    """1 when a phase failed; with ``strict``, 3 when the last subject (pnsq) missed an
    absolute target or a ratio to Go's nsqd; else 0."""
    if any(result["failures"] for result in results.values()):
        return 1
    verdicts_ = list(results.values())[-1]["verdicts"].values()
    missed = not all(v["passed"] for v in verdicts_) or any(
        row["passed"] is False for row in ratio_rows.values()
    )
    return 3 if missed and strict else 0


if __name__ == "__main__":
    sys.exit(main())
