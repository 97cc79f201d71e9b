#!/usr/bin/env python3
"""Load generators for any NSQ 1.3 nsqd, after NSQ's bench_writer and bench_reader.

    nsq_load.py writer   --nsqd-tcp-address 127.0.0.1:4150 --topic sub_bench --runfor 10s
    nsq_load.py reader   --nsqd-tcp-address 127.0.0.1:4150 --topic sub_bench --channel ch
    nsq_load.py pub      --nsqd-tcp-address 127.0.0.1:4150 --topic pub_bench --connections 8
    nsq_load.py http-pub --nsqd-http-address 127.0.0.1:4151 --topic http_bench [--close]
                         [--batch-size 200: POST /mpub]

One process per connection (see load_loops.py for why); this module only starts them, lines
them up on a common start signal, and adds up what they report. Load goes to 127.0.0.1 only and
every run is bounded in time (``--runfor``, at most 60 s).
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import queue
import re
import sys
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from http_loops import http_loop, http_request
from latency import merged, percentile
from load_loops import WorkerReport, encode_mpub, encode_pub, reader_loop, writer_loop

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event

    Job = Callable[[Callable[[], float]], WorkerReport]

ALLOWED_HOST = "127.0.0.1"
HARD_CAP_S = 60.0
HANDSHAKE_S = 15.0
_NAME = re.compile(r"^[.a-zA-Z0-9_-]+(#ephemeral)?$")


@dataclass(frozen=True)
class LoadResult:
    """All connections of one run added up; ``seconds`` spans first start to last finish.

    ``count`` is in ``unit`` (msgs or requests); a request carries ``batch`` messages.
    """

    name: str
    unit: str
    count: int
    seconds: float
    errors: int
    connections: int
    item_bytes: int
    generator_cpu_seconds: float
    first_error: str
    failures: tuple[str, ...]
    worst_round_trip: float
    p50: float = 0.0  # round-trip latency percentiles in seconds (0.0: not measured)
    p99: float = 0.0
    batch: int = 1

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def message_rate(self) -> float:
        return self.rate * self.batch if self.unit == "requests" else self.rate

    def line(self) -> str:
        text = f"{self.name}: {self.count} {self.unit} in {self.seconds:.2f} s = {self.rate:,.0f} {self.unit[:3]}/s"
        if self.unit == "msgs":
            text += f" ({self.rate * self.item_bytes / (1024 * 1024):.1f} MB/s)"
        elif self.batch > 1:
            text += f" ({self.message_rate:,.0f} msg/s)"
        if self.p99:
            text += f", p50 {self.p50 * 1000:.2f} ms, p99 {self.p99 * 1000:.2f} ms"
        if self.errors:
            text += f", {self.errors} errors (first: {self.first_error})"
        if self.worst_round_trip:
            text += f", slowest reply {self.worst_round_trip * 1000:.0f} ms"
        cores = self.generator_cpu_seconds / self.seconds if self.seconds > 0 else 0.0
        text += f" [generator CPU {cores:.2f} cores, {self.connections} conns]"
        return "\n".join([text, *(f"  FAILED: {f}" for f in self.failures)])

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": self.rate, "message_rate": self.message_rate}


def _worker_main(job: Job, index: int, mailbox: Queue[Any], go: Event) -> None:
    def arrive() -> float:
        mailbox.put(("ready", index, None))
        if not go.wait(HANDSHAKE_S + 5):
            raise TimeoutError("start signal never came")
        return time.monotonic()

    try:
        report = job(arrive)
    except Exception as exc:  # reported to the parent, which prints it
        report = WorkerReport(failure=f"{type(exc).__name__}: {exc}")
    mailbox.put(("report", index, report))


def run_workers(jobs: Sequence[Job], runfor: float) -> list[WorkerReport]:
    """Run each job in its own process; start them together once all have connected."""
    ctx = multiprocessing.get_context("fork")
    mailbox: Queue[Any] = ctx.Queue()
    go = ctx.Event()
    procs = [
        ctx.Process(target=_worker_main, args=(job, i, mailbox, go), daemon=True)
        for i, job in enumerate(jobs)
    ]
    for proc in procs:
        proc.start()
    arrived: set[int] = set()
    reports: dict[int, WorkerReport] = {}
    try:
        deadline = time.monotonic() + HANDSHAKE_S
        while len(arrived) < len(jobs):
            kind, index, report = mailbox.get(timeout=max(0.01, deadline - time.monotonic()))
            arrived.add(index)
            if kind == "report":
                reports[index] = report
        go.set()
        deadline = time.monotonic() + runfor + HANDSHAKE_S
        while len(reports) < len(jobs):
            kind, index, report = mailbox.get(timeout=max(0.01, deadline - time.monotonic()))
            if kind == "report":
                reports[index] = report
    except queue.Empty:
        pass
    finally:
        go.set()
        for proc in procs:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    missing = WorkerReport(failure="no report before the deadline")
    return [reports.get(i, missing) for i in range(len(jobs))]


def summarize(
    name: str, unit: str, item_bytes: int, reports: Sequence[WorkerReport], batch: int = 1
) -> LoadResult:
    ran = [r for r in reports if not r.failure]
    latencies = merged(r.latencies for r in ran)
    started = min((r.started for r in ran), default=0.0)
    finished = max((r.finished for r in ran), default=0.0)
    return LoadResult(
        name=name,
        unit=unit,
        count=sum(r.count for r in reports),
        seconds=max(0.0, finished - started),
        errors=sum(r.errors for r in reports),
        connections=len(reports),
        item_bytes=item_bytes,
        generator_cpu_seconds=sum(r.cpu_seconds for r in reports),
        first_error=next((r.first_error for r in reports if r.first_error), ""),
        failures=tuple(r.failure for r in reports if r.failure),
        worst_round_trip=max((r.worst_round_trip for r in reports), default=0.0),
        p50=percentile(latencies, 0.50),
        p99=percentile(latencies, 0.99),
        batch=batch,
    )


def run_writer(
    address: tuple[str, int],
    topic: str,
    size: int,
    batch: int,
    connections: int,
    runfor: float,
    count: int = 0,
) -> LoadResult:
    """MPUBs of ``batch`` messages; with ``count``, stop once about that many are published
    (each connection sends its share, rounded up to whole batches)."""
    mpub = encode_mpub(topic, b"x" * size, batch)
    limit = -(-count // (batch * connections)) if count else 0
    job = functools.partial(writer_loop, address, mpub, batch, runfor, limit=limit)
    return summarize("writer", "msgs", size, run_workers([job] * connections, runfor))


def run_pub(
    address: tuple[str, int], topic: str, size: int, connections: int, runfor: float
) -> LoadResult:
    """Single PUBs, each waiting for its OK, on ``connections`` connections."""
    job = functools.partial(writer_loop, address, encode_pub(topic, b"x" * size), 1, runfor)
    return summarize("pub", "msgs", size, run_workers([job] * connections, runfor))


def run_reader(
    address: tuple[str, int],
    topic: str,
    channel: str,
    connections: int,
    rdy: int,
    runfor: float,
    count: int = 0,
    size: int = 200,
) -> LoadResult:
    counts = multiprocessing.get_context("fork").RawArray("q", connections)
    jobs = [
        functools.partial(reader_loop, address, topic, channel, rdy, runfor, (counts, i, count))
        for i in range(connections)
    ]
    return summarize("reader", "msgs", size, run_workers(jobs, runfor))


def run_http_pub(
    address: tuple[str, int],
    topic: str,
    size: int,
    connections: int,
    runfor: float,
    batch: int = 1,
    close: bool = False,
) -> LoadResult:
    """POST /pub (``batch`` 1) or /mpub of ``batch`` messages; keep-alive unless ``close``."""
    request = http_request(address, topic, b"x" * size, batch, close)
    job = functools.partial(http_loop, address, request, close, runfor)
    name = ("http-pub" if batch == 1 else "http-mpub") + ("-close" if close else "")
    reports = run_workers([job] * connections, runfor)
    return summarize(name, "requests", size, reports, batch)


def parse_duration(text: str) -> float:
    """Go-style ``10s`` / ``500ms`` / ``1m`` or plain seconds; 0 < d <= 60 s."""
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0}
    unit = next((u for u in ("ms", "s", "m") if text.endswith(u)), "")
    try:
        value = float(text[: len(text) - len(unit)]) * scale.get(unit, 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}") from None
    if not 0 < value <= HARD_CAP_S:
        raise argparse.ArgumentTypeError(f"duration must be in (0, {HARD_CAP_S:.0f}s]")
    return value


def parse_address(text: str) -> tuple[str, int]:
    """``127.0.0.1:PORT``; any other host is refused (no load on other machines)."""
    host, _, port = text.rpartition(":")
    if host != ALLOWED_HOST:
        raise argparse.ArgumentTypeError(f"only {ALLOWED_HOST}:PORT is allowed, got {text!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}")
    return host, int(port)


def parse_name(text: str) -> str:
    if not _NAME.match(text) or len(text) > 64:
        raise argparse.ArgumentTypeError(f"invalid NSQ topic/channel name {text!r}")
    return text


def positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--connections", type=positive, default=1)
    common.add_argument("--runfor", type=parse_duration, default=10.0, help="e.g. 10s (max 60s)")
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    tcp = argparse.ArgumentParser(add_help=False)
    tcp.add_argument("--nsqd-tcp-address", type=parse_address, default=(ALLOWED_HOST, 4150))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    writer = sub.add_parser("writer", parents=[common, tcp], help="MPUB batches (bench_writer)")
    writer.add_argument("--topic", type=parse_name, default="sub_bench")
    writer.add_argument("--size", type=positive, default=200, help="message bytes")
    writer.add_argument("--batch-size", type=positive, default=200, help="messages per MPUB")
    reader = sub.add_parser("reader", parents=[common, tcp], help="SUB + FIN (bench_reader)")
    reader.add_argument("--topic", type=parse_name, default="sub_bench")
    reader.add_argument("--channel", type=parse_name, default="ch")
    reader.add_argument("--rdy", type=positive, default=2500)
    reader.add_argument("--count", type=int, default=0, help="stop after N msgs (0 = no limit)")
    reader.add_argument("--size", type=positive, default=200, help="for MB/s only")
    pub = sub.add_parser("pub", parents=[common, tcp], help="single PUBs, each awaited")
    pub.add_argument("--topic", type=parse_name, default="pub_bench")
    pub.add_argument("--size", type=positive, default=200, help="message bytes")
    http = sub.add_parser("http-pub", parents=[common], help="HTTP POST /pub or /mpub")
    http.add_argument("--nsqd-http-address", type=parse_address, default=(ALLOWED_HOST, 4151))
    http.add_argument("--topic", type=parse_name, default="http_bench")
    http.add_argument("--size", type=positive, default=200, help="body bytes")
    http.add_argument("--batch-size", type=positive, default=1, help="> 1: POST /mpub")
    http.add_argument("--close", action="store_true", help="a new connection per request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "writer":
        result = run_writer(
            args.nsqd_tcp_address,
            args.topic,
            args.size,
            args.batch_size,
            args.connections,
            args.runfor,
        )
    elif args.command == "reader":
        result = run_reader(
            args.nsqd_tcp_address,
            args.topic,
            args.channel,
            args.connections,
            args.rdy,
            args.runfor,
            args.count,
            args.size,
        )
    elif args.command == "pub":
        result = run_pub(
            args.nsqd_tcp_address, args.topic, args.size, args.connections, args.runfor
        )
    else:
        result = run_http_pub(
            args.nsqd_http_address,
            args.topic,
            args.size,
            args.connections,
            args.runfor,
            args.batch_size,
            args.close,
        )
    print(json.dumps(result.as_dict()) if args.json else result.line())
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
