"""The throughput phases of bench/run.py, and what every phase is made of.

Why this shape: a phase is a plain function ``(Subject, options) -> PhaseResult`` so run.py can
run any selection of them, against pnsq and Go's nsqd alternately. The phases here share one
nsqd per subject (bench.sh's fresh nsqd with a large memory queue); durable, backlog and memory
start their own nsqd with the flags their figure is about (own_nsqd_phases.py). Every phase
also asks nsqd (``/stats``) how many messages it took, so a miscount or a lost message shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsq_load import run_http_pub, run_pub, run_reader, run_writer
from nsqd_process import Nsqd

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from nsq_load import LoadResult

TOPIC, CHANNEL = "sub_bench", "ch"
SETTLE_S = 10.0  # how long nsqd may take to move what it acknowledged where /stats sees it


@dataclass
class PhaseResult:
    """The figures of one phase (see report.FIGURES for their keys) and what backs them."""

    figures: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # p50, p99
    nsqd_us: dict[str, str] = field(default_factory=dict)  # nsqd CPU per unit, "12.3/msg"
    lines: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Subject:
    """One nsqd implementation under test: how to start it, and its shared nsqd."""

    label: str
    cmd: Sequence[str]
    workdir: Path
    cpus: tuple[int, int] | None
    shared: Nsqd | None = None
    idle_rss_mib: float = 0.0
    published: int = 0  # by the publish phase, for the consume phase to drain
    started: list[Nsqd] = field(default_factory=list)

    def start(self, name: str, extra: Sequence[str], data: Path | None = None) -> Nsqd:
        if data is None:
            data = self.workdir / name
            data.mkdir()
        log = self.workdir / f"{name}.log"
        nsqd = Nsqd(self.cmd, str(data), log, self.cpus[0] if self.cpus else None, extra)
        self.started.append(nsqd)
        nsqd.wait_ready()
        return nsqd

    def main(self) -> Nsqd:
        """bench.sh's nsqd: started on first use, idle RSS read before any load."""
        if self.shared is None:
            self.shared = self.start("main", ["--mem-queue-size=10000000"])
            self.idle_rss_mib = self.shared.rss_mib()
            self.shared.create(TOPIC, CHANNEL)
        return self.shared

    def stop_all(self) -> list[int]:
        """Stop every nsqd started; the shared one's topics are deleted first, or a graceful
        stop would write millions of throwaway messages to disk first (NSQ's shutdown)."""
        if self.shared is not None and self.shared.proc.poll() is None:
            try:
                for topic in self.shared.topic_names():
                    self.shared.request("POST", f"/topic/delete?topic={topic}")
            except (OSError, RuntimeError, ValueError):
                pass  # stopped all the same, just slower
        return [nsqd.stop() for nsqd in self.started]


def measured(nsqd: Nsqd, load: Callable[[], LoadResult], key: str) -> PhaseResult:
    """Run one load; its rate becomes figure ``key``. Also nsqd's CPU meanwhile, as cores and
    as CPU time per unit of work: on a shared machine the latter is the steadier figure."""
    cpu = nsqd.cpu_seconds()
    result = load()
    cpu = nsqd.cpu_seconds() - cpu  # includes the connections' set-up: a little over
    if nsqd.proc.poll() is not None:
        raise RuntimeError(f"nsqd died during {result.name}:\n{nsqd.log_tail()}")
    cores = cpu / result.seconds if result.seconds > 0 else 0.0
    unit = "msg" if result.unit == "msgs" else "req"
    per_unit = cpu * 1e6 / result.count if result.count else 0.0
    cost = f"{per_unit:.2f} us/{unit}"
    if result.batch > 1:
        cost += f", {per_unit / result.batch:.2f} us/msg"
    phase = PhaseResult(
        figures={key: result.rate},
        nsqd_us={key: f"{per_unit:.2f}/{unit}"},
        lines=[f"{result.line()}  [nsqd CPU {cores:.2f} cores, {cost}]"],
        detail={**result.as_dict(), "nsqd_cpu_seconds": cpu, "nsqd_cores": cores},
        failures=list(result.failures),
    )
    phase.detail[f"nsqd_us_per_{unit}"] = per_unit
    if result.p99:
        phase.latency_ms[key] = (result.p50 * 1000, result.p99 * 1000)
    return phase


def check_count(phase: PhaseResult, what: str, ours: int, nsqd_count: int) -> None:
    phase.detail["nsqd_count"] = nsqd_count
    if ours != nsqd_count:
        phase.warnings.append(f"{what}: the generator counted {ours}, nsqd {nsqd_count}")


def wait_for(condition: Callable[[], bool], seconds: float = SETTLE_S) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def channel_of(topic: dict[str, Any], channel: str = CHANNEL) -> dict[str, Any]:
    return next((c for c in topic.get("channels", []) if c["channel_name"] == channel), {})


def publish(subject: Subject, args: argparse.Namespace) -> PhaseResult:
    nsqd = subject.main()
    size, batch, conns = args.size, args.batch_size, args.writer_connections
    phase = measured(
        nsqd, lambda: run_writer(nsqd.tcp, TOPIC, size, batch, conns, args.runfor), "publish"
    )
    subject.published += phase.detail["count"]
    check_count(phase, "MPUB", subject.published, nsqd.topic_stats(TOPIC)["message_count"])
    return phase


def consume(subject: Subject, args: argparse.Namespace) -> PhaseResult:
    nsqd, left = subject.main(), subject.published
    conns, rdy = args.reader_connections, args.rdy
    phase = measured(
        nsqd,
        lambda: run_reader(nsqd.tcp, TOPIC, CHANNEL, conns, rdy, args.runfor, left, args.size),
        "consume",
    )
    # nsqd has read every FIN of a reader once it saw the reader hang up (NSQ leaves the
    # messages in flight at that moment to time out: they are neither finished nor queued)
    wait_for(lambda: not channel_of(nsqd.topic_stats(TOPIC)).get("clients"))
    channel = channel_of(nsqd.topic_stats(TOPIC))
    finished = channel["message_count"] - channel["depth"] - channel["deferred_count"]
    check_count(phase, "FIN", phase.detail["count"], finished - channel["in_flight_count"])
    subject.published -= phase.detail["count"]
    return phase


def pub(subject: Subject, args: argparse.Namespace) -> PhaseResult:
    nsqd, conns = subject.main(), args.pub_connections
    phase = measured(
        nsqd, lambda: run_pub(nsqd.tcp, "pub_bench", args.size, conns, args.runfor), "pub"
    )
    check_count(phase, "PUB", phase.detail["count"], nsqd.topic_stats("pub_bench")["message_count"])
    return phase


def http_phase(mpub: bool, close: bool) -> Callable[[Subject, argparse.Namespace], PhaseResult]:
    """POST /pub, or /mpub of ``--batch-size`` messages; keep-alive, or a connection each."""
    key = ("http_mpub" if mpub else "http_pub") + ("_close" if close else "")

    def run(subject: Subject, args: argparse.Namespace) -> PhaseResult:
        nsqd, topic, conns = subject.main(), f"{key}_bench", args.http_connections
        batch = args.batch_size if mpub else 1
        phase = measured(
            nsqd,
            lambda: run_http_pub(nsqd.http, topic, args.size, conns, args.runfor, batch, close),
            key,
        )
        if batch > 1:
            phase.figures[f"{key}_msgs"] = phase.detail["message_rate"]
        taken = nsqd.topic_stats(topic).get("message_count", 0)
        check_count(phase, f"HTTP {key}", phase.detail["count"] * batch, taken)
        return phase

    return run
