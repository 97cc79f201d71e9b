"""The phases of bench/run.py: each runs one workload of issue 16 against one nsqd under test.

Why this shape: a phase is a plain function ``(Subject, options) -> PhaseResult`` so run.py can
run any selection of them, against pnsq and Go's nsqd alternately. The throughput phases share
one nsqd per subject (bench.sh's fresh nsqd with a large memory queue); durable, backlog and
memory each start their own nsqd with the flags their figure is about. Every phase also asks
nsqd (``/stats``) how many messages it took, so a generator miscount or a lost message shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsq_load import HARD_CAP_S, run_http_pub, run_pub, run_reader, run_writer
from nsqd_process import Nsqd

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from nsq_load import LoadResult

TOPIC, CHANNEL = "sub_bench", "ch"
SETTLE_S = 10.0  # how long nsqd may take to move what it acknowledged where /stats sees it
SYNC_SETTLE_S = 2.5  # one default --sync-timeout (2 s): the last disk round written


@dataclass
class PhaseResult:
    """The figures of one phase (see report.FIGURES for their keys) and what backs them."""

    figures: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # p50, p99
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
        return [nsqd.stop() for nsqd in self.started]


def measured(nsqd: Nsqd, load: Callable[[], LoadResult], key: str) -> PhaseResult:
    """Run one load; its rate becomes figure ``key``; note nsqd's cores meanwhile."""
    cpu, wall = nsqd.cpu_seconds(), time.monotonic()
    result = load()
    cores = (nsqd.cpu_seconds() - cpu) / max(1e-9, time.monotonic() - wall)
    if nsqd.proc.poll() is not None:
        raise RuntimeError(f"nsqd died during {result.name}:\n{nsqd.log_tail()}")
    phase = PhaseResult(
        figures={key: result.rate},
        lines=[f"{result.line()}  [nsqd CPU {cores:.2f} cores]"],
        detail={**result.as_dict(), "nsqd_cores": cores},
        failures=list(result.failures),
    )
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


def depth_of(nsqd: Nsqd, topic: str) -> int:
    """Messages nsqd holds for ``topic``: the topic's own queue plus every channel's."""
    stats = nsqd.topic_stats(topic)
    channels = sum(int(c["depth"]) for c in stats.get("channels", []))
    return int(stats.get("depth", 0)) + channels


def durable(subject: Subject, args: argparse.Namespace) -> PhaseResult:
    """8 publishers of single PUBs; every OK must survive ``kill -9`` (counted after restart)."""
    flags, topic = ["--sync-every=1", "--mem-queue-size=0"], "durable_bench"
    nsqd = subject.start("durable", flags)
    nsqd.create(topic, CHANNEL)
    conns = args.durable_connections
    phase = measured(
        nsqd, lambda: run_pub(nsqd.tcp, topic, args.size, conns, args.runfor), "durable"
    )
    acked = phase.detail["count"]
    check_count(phase, "durable PUB", acked, nsqd.topic_stats(topic)["message_count"])
    wait_for(lambda: channel_of(nsqd.topic_stats(topic)).get("depth", 0) >= acked)
    nsqd.stop(kill=True)
    again = subject.start("durable-restarted", flags, data=subject.workdir / "durable")
    try:
        held = depth_of(again, topic)
    finally:
        again.stop()
    phase.detail["held_after_kill9"] = held
    phase.figures["durable_lost"] = max(0, acked - held)
    phase.lines.append(f"  after kill -9 and a restart nsqd holds {held} of {acked} acknowledged")
    return phase


def backlog(subject: Subject, args: argparse.Namespace) -> PhaseResult:
    """``--backlog`` messages on disk behind NSQ's default memory queue, no consumer: RSS."""
    nsqd, topic, want = (
        subject.start("backlog", ["--mem-queue-size=10000"]),
        "backlog_bench",
        args.backlog,
    )
    nsqd.create(topic, CHANNEL)
    size, batch, conns = args.size, args.batch_size, args.writer_connections
    phase = measured(
        nsqd,
        lambda: run_writer(nsqd.tcp, topic, size, batch, conns, HARD_CAP_S, want),
        "backlog_rate",
    )
    published = phase.detail["count"]
    wait_for(lambda: channel_of(nsqd.topic_stats(topic)).get("depth", 0) >= published, HARD_CAP_S)
    time.sleep(SYNC_SETTLE_S)
    channel = channel_of(nsqd.topic_stats(topic))
    phase.figures = {"backlog_rss": nsqd.rss_mib()}
    phase.detail.update(
        published=published,
        depth=channel.get("depth"),
        backend_depth=channel.get("backend_depth"),
        peak_rss_mib=nsqd.status_kib("VmHWM") / 1024,
    )
    phase.lines.append(
        f"  {published:,} messages published, channel depth {channel.get('depth')} "
        f"(on disk {channel.get('backend_depth')}): RSS {phase.figures['backlog_rss']:.1f} MiB"
    )
    nsqd.stop()
    return phase


def memory(subject: Subject, args: argparse.Namespace) -> PhaseResult:
    """``--held`` messages in a topic's channel's memory queue, no consumer: RSS growth."""
    nsqd, topic, want = (
        subject.start("memory", ["--mem-queue-size=10000000"]),
        "memory_bench",
        args.held,
    )
    nsqd.create(topic, CHANNEL)
    idle = nsqd.rss_mib()
    size, batch = args.size, args.batch_size
    phase = measured(
        nsqd, lambda: run_writer(nsqd.tcp, topic, size, batch, 1, HARD_CAP_S, want), "memory_rate"
    )
    published = phase.detail["count"]
    wait_for(lambda: channel_of(nsqd.topic_stats(topic)).get("depth", 0) >= published)
    held_rss = nsqd.rss_mib()
    payload_mib = published * size / (1024 * 1024)
    phase.figures = {"memory_ratio": (held_rss - idle) / payload_mib if payload_mib else 0.0}
    phase.detail.update(idle_rss_mib=idle, held_rss_mib=held_rss, payload_mib=payload_mib)
    phase.lines.append(
        f"  {published:,} x {size} B held: RSS {idle:.1f} -> {held_rss:.1f} MiB, growth "
        f"{held_rss - idle:.1f} MiB for {payload_mib:.1f} MiB of payload "
        f"= {phase.figures['memory_ratio']:.2f}x"
    )
    nsqd.stop()
    return phase


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
