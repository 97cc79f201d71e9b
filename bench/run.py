#!/usr/bin/env python3
"""The one-command nsqd benchmark: start an nsqd, measure it, stop it, print a table.

    .venv/bin/python bench/run.py [--nsqd-cmd '/path/to/nsqd'] [--runfor 10s] [--json]

The workload is NSQ's bench.sh on one machine: a fresh nsqd with a large memory queue; topic
``sub_bench`` and channel ``ch`` created over HTTP; bench_writer (MPUB batches of 200 x 200-byte
messages, synchronous per connection) for ``--runfor``; then bench_reader (RDY 2500, FIN every
message) until the backlog is drained or ``--runfor`` passes; then HTTP POST /pub of single
200-byte messages over keep-alive connections. Idle RSS is read from /proc before any load.
Only NSQ's standard flags and protocol are used, so ``--nsqd-cmd`` can be Go's nsqd.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsq_load import ALLOWED_HOST, parse_duration, positive, run_http_pub, run_reader, run_writer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from nsq_load import LoadResult

TOPIC, CHANNEL, HTTP_TOPIC = "sub_bench", "ch", "http_bench"
MIB = 1024 * 1024
START_TIMEOUT_S = 20.0
STOP_GRACE_S = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Target:
    name: str
    unit: str
    limit: float
    at_least: bool  # True: measured >= limit passes; False: measured <= limit passes

    def passed(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit


TARGETS = {
    "publish": Target("publish (TCP MPUB)", "msg/s", 250_000, True),
    "consume": Target("consume (TCP SUB/FIN)", "msg/s", 120_000, True),
    "http_pub": Target("HTTP /pub, 200 B", "req/s", 10_000, True),
    "idle_rss": Target("idle RSS", "MiB", 60, False),
}


def default_nsqd_cmd() -> list[str]:
    if find_spec("pnsq.__main__") is not None:
        return [sys.executable, "-m", "pnsq", "nsqd"]
    return [str(Path(sys.executable).with_name("pnsq")), "nsqd"]  # the console script


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ALLOWED_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Nsqd:
    """One nsqd subprocess, observed through /proc and stopped by its own PID."""

    def __init__(
        self,
        cmd: list[str],
        data_path: str,
        log: Path,
        cpu: int | None,
        extra: Sequence[str] = ("--mem-queue-size=10000000",),
    ) -> None:
        self.tcp = (ALLOWED_HOST, free_port())
        self.http = (ALLOWED_HOST, free_port())
        self.argv = [
            *cmd,
            f"--tcp-address={ALLOWED_HOST}:{self.tcp[1]}",
            f"--http-address={ALLOWED_HOST}:{self.http[1]}",
            f"--data-path={data_path}",
            *extra,
        ]
        self._log_path = log
        mine = os.sched_getaffinity(0)
        if cpu is not None:  # the child inherits the affinity it is forked with
            os.sched_setaffinity(0, {cpu})
        try:
            with log.open("wb") as out:
                self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        finally:
            os.sched_setaffinity(0, mine)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(*self.http, timeout=5)
        try:
            conn.request(method, path)
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nsqd exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.request("GET", "/ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"nsqd did not answer /ping in {START_TIMEOUT_S:.0f} s")

    def status_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nsqd-cmd", help="nsqd command line (default: this python -m pnsq nsqd)")
    parser.add_argument("--runfor", type=parse_duration, default=10.0, help="per phase, max 60s")
    parser.add_argument("--size", type=positive, default=200, help="message bytes")
    parser.add_argument("--batch-size", type=positive, default=200, help="messages per MPUB")
    parser.add_argument("--writer-connections", type=positive, default=2)
    parser.add_argument("--reader-connections", type=positive, default=2)
    parser.add_argument("--http-connections", type=positive, default=4)
    parser.add_argument("--rdy", type=positive, default=2500)
    parser.add_argument("--no-pin", action="store_true", help="do not pin nsqd / generators")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    return parser


def pick_cpus(no_pin: bool) -> tuple[int, int] | None:
    cpus = sorted(os.sched_getaffinity(0))
    return None if no_pin or len(cpus) < 2 else (cpus[0], cpus[1])


def run_phase(nsqd: Nsqd, name: str, load: Callable[[], LoadResult]) -> dict[str, Any]:
    """Run one load generator and note how many cores nsqd used meanwhile."""
    cpu, wall = nsqd.cpu_seconds(), time.monotonic()
    result = load()
    nsqd_cores = (nsqd.cpu_seconds() - cpu) / max(1e-9, time.monotonic() - wall)
    if nsqd.proc.poll() is not None:
        raise RuntimeError(f"nsqd died during {name}:\n{nsqd.log_tail()}")
    return {**result.as_dict(), "nsqd_cores": nsqd_cores, "line": result.line()}


def measure(args: argparse.Namespace, nsqd: Nsqd) -> dict[str, Any]:
    nsqd.wait_ready()
    idle_rss = nsqd.status_kib("VmRSS") / 1024
    created = [
        nsqd.request("POST", f"/topic/create?topic={TOPIC}")[0],
        nsqd.request("POST", f"/channel/create?topic={TOPIC}&channel={CHANNEL}")[0],
    ]
    conns, runfor = args.writer_connections, args.runfor
    writer = run_phase(
        nsqd,
        "writer",
        lambda: run_writer(nsqd.tcp, TOPIC, args.size, args.batch_size, conns, runfor),
    )
    count, conns = writer["count"], args.reader_connections
    reader = run_phase(
        nsqd,
        "reader",
        lambda: run_reader(nsqd.tcp, TOPIC, CHANNEL, conns, args.rdy, runfor, count, args.size),
    )
    http_pub = run_phase(
        nsqd,
        "http-pub",
        lambda: run_http_pub(nsqd.http, HTTP_TOPIC, args.size, args.http_connections, runfor),
    )
    return {
        "idle_rss_mib": idle_rss,
        "peak_rss_mib": nsqd.status_kib("VmHWM") / 1024,
        "topic_channel_create_status": created,
        "writer": writer,
        "reader": reader,
        "http_pub": http_pub,
    }


def verdicts(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    measured = {
        "publish": results["writer"]["rate"],
        "consume": results["reader"]["rate"],
        "http_pub": results["http_pub"]["rate"],
        "idle_rss": results["idle_rss_mib"],
    }
    return {
        key: {"measured": value, "target": TARGETS[key].limit, "passed": TARGETS[key].passed(value)}
        for key, value in measured.items()
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"nsqd: {' '.join(report['argv'])}  (pid {report['pid']})")
    print(report["placement"])
    if report["results"]["topic_channel_create_status"] != [200, 200]:
        statuses = report["results"]["topic_channel_create_status"]
        print(f"warning: POST /topic/create, /channel/create answered {statuses}")
    for phase in ("writer", "reader", "http_pub"):
        result = report["results"][phase]
        print(f"{result['line']}  [nsqd CPU {result['nsqd_cores']:.2f} cores]")
    print()
    print(f"| {'figure':<24} | {'measured':>16} | {'target':>18} | ok  |")
    print(f"|{'-' * 26}|{'-' * 18}|{'-' * 20}|-----|")
    for key, verdict in report["verdicts"].items():
        target = TARGETS[key]
        sign = ">=" if target.at_least else "<="
        value = f"{verdict['measured']:,.0f} {target.unit}"
        if target.unit == "MiB":
            value = f"{verdict['measured']:.1f} MiB"
        limit = f"{sign} {target.limit:,.0f} {target.unit}"
        mark = "yes" if verdict["passed"] else "NO"
        print(f"| {target.name:<24} | {value:>16} | {limit:>18} | {mark:<3} |")
    print(
        f"| {'peak RSS (after load)':<24} | {report['results']['peak_rss_mib']:>12.1f} MiB | {'':>18} |     |"
    )
    print(f"nsqd stopped with exit code {report['exit_code']}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cmd = shlex.split(args.nsqd_cmd) if args.nsqd_cmd else default_nsqd_cmd()
    cpus = pick_cpus(args.no_pin)
    placement = (
        f"pinned: nsqd to CPU {cpus[0]}, load generators to CPU {cpus[1]}"
        if cpus
        else "not pinned (nsqd and load generators share all CPUs)"
    )
    with tempfile.TemporaryDirectory(prefix="pnsq-bench-") as tmp:
        nsqd = Nsqd(cmd, tmp, Path(tmp) / "nsqd.log", cpus[0] if cpus else None)
        if cpus:
            os.sched_setaffinity(0, {cpus[1]})
        try:
            results = measure(args, nsqd)
        except (RuntimeError, OSError) as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            exit_code = nsqd.stop()
    report: dict[str, Any] = {
        "argv": nsqd.argv,
        "pid": nsqd.proc.pid,
        "placement": placement,
        "results": results,
        "verdicts": verdicts(results),
        "exit_code": exit_code,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    failed = any(results[p]["failures"] for p in ("writer", "reader", "http_pub"))
    missed = not all(v["passed"] for v in report["verdicts"].values())
    return 1 if failed else 3 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
