#!/usr/bin/env python3
"""``pnsq to-file`` throughput: a preloaded topic drained to disk, fsync before every FIN.

    .venv/bin/python bench/tools_to_file.py [--messages 1000000] [--size 200] [--gzip]

Starts one pnsq nsqd subprocess (like bench/run.py: on 127.0.0.1, pinned to the first CPU,
stopped by its PID), preloads ``--messages`` bodies of ``--size`` bytes with MPUB, then runs
``pnsq to-file`` as a process (pinned to the second CPU, ``--max-in-flight`` 2500) and polls
nsqd's /stats until the channel is empty with nothing in flight. Prints msg/s (messages FINed,
i.e. written and fsynced, per second of the tool's run), the tool's CPU time (a steadier
figure on a busy machine) and checks the output line count.
The run is bounded by ``--timeout``; the tool is stopped with SIGTERM by its PID.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nsqd_process import Nsqd, default_nsqd_cmd, pick_cpus

from pnsq import wire

TOPIC, CHANNEL = "bench_to_file", "nsq_to_file"


def preload(address: tuple[str, int], count: int, size: int) -> float:
    """MPUB ``count`` bodies (batches of 200, many in flight); returns the seconds taken."""
    body = b"m" * size
    batch = wire.encode_mpub(TOPIC, [body] * 200)
    started = time.perf_counter()
    with socket.create_connection(address) as sock:
        sock.sendall(wire.MAGIC_V2)
        frames = wire.FrameReader()
        sent = answered = 0
        while answered < count:
            while sent < count and sent - answered < 20_000:
                sock.sendall(batch)
                sent += 200
            frames.receive_data(sock.recv(65536))
            while (frame := frames.next_frame()) is not None:
                if frame[0] == wire.FRAME_TYPE_ERROR:
                    raise RuntimeError(frame[1].decode())
                answered += 200
    return time.perf_counter() - started


def channel_stats(nsqd: Nsqd) -> dict[str, int]:
    status, body = nsqd.request("GET", f"/stats?format=json&topic={TOPIC}")
    if status != 200:
        raise RuntimeError(f"/stats: HTTP {status}")
    for topic in json.loads(body)["topics"]:
        for channel in topic["channels"]:
            if channel["channel_name"] == CHANNEL:
                return {"depth": channel["depth"], "in_flight": channel["in_flight_count"]}
    return {"depth": -1, "in_flight": -1}


def count_lines(directory: Path) -> int:
    lines = 0
    for path in directory.iterdir():
        data = path.read_bytes()
        lines += (gzip.decompress(data) if path.suffix == ".gz" else data).count(b"\n")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--max-in-flight", type=int, default=2500)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the drain")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    cpus = pick_cpus(args.no_pin)
    with tempfile.TemporaryDirectory(prefix="pnsq-bench-to-file-") as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        (root / "out").mkdir()
        nsqd = Nsqd(default_nsqd_cmd(), str(root / "data"), root / "nsqd.log", cpus and cpus[0])
        tool: subprocess.Popen[bytes] | None = None
        try:
            nsqd.wait_ready()
            seconds = preload(nsqd.tcp, args.messages, args.size)
            print(f"preloaded {args.messages:,} x {args.size} B in {seconds:.1f} s")
            argv = [
                sys.executable, "-m", "pnsq", "to-file", f"--topic={TOPIC}",
                f"--nsqd-tcp-address={nsqd.tcp[0]}:{nsqd.tcp[1]}",
                f"--output-dir={root / 'out'}", f"--max-in-flight={args.max_in_flight}",
                "--status-interval=0s", *(["--gzip"] if args.gzip else []),
            ]  # fmt: skip
            nsqd_cpu = nsqd.cpu_seconds()
            started = time.perf_counter()
            tool = subprocess.Popen(argv, stderr=(root / "tool.log").open("wb"))
            if cpus:
                os.sched_setaffinity(tool.pid, {cpus[1]})
            deadline = started + args.timeout
            while (stats := channel_stats(nsqd)) != {"depth": 0, "in_flight": 0}:
                if time.perf_counter() > deadline or tool.poll() is not None:
                    print(f"gave up: {stats}, tool exit {tool.poll()}", file=sys.stderr)
                    print((root / "tool.log").read_text(errors="replace")[-2000:], file=sys.stderr)
                    return 1
                time.sleep(0.05)  # polling another process's /stats, bounded by the deadline
            elapsed = time.perf_counter() - started  # includes the tool's start-up
            nsqd_cpu = nsqd.cpu_seconds() - nsqd_cpu
            tool.send_signal(signal.SIGTERM)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            code = tool.wait(30)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            lines = count_lines(root / "out")
            print(
                f"pnsq to-file: {args.messages / elapsed:,.0f} msg/s "
                f"({args.messages:,} in {elapsed:.2f} s, start-up included; "
                f"{'gzip' if args.gzip else 'plain'}); exit {code}; {lines:,} lines on disk; "
                f"tool CPU {cpu:.2f} s = {args.messages / cpu:,.0f} msg per CPU second; "
                f"nsqd CPU {nsqd_cpu:.2f} s"
            )
            return 0 if code == 0 and lines >= args.messages else 1
        finally:
            if tool is not None and tool.poll() is None:
                tool.kill()
                tool.wait()
            nsqd.stop()


if __name__ == "__main__":
    sys.exit(main())
