"""The disk-queue benchmark (issue 3): nsqd's disk path, durable publishing, and a big backlog.

Three nsqd processes in turn, each on a fresh data path, nsqd pinned to one CPU and the load
generators (separate processes) to the other:

1. disk path: ``--mem-queue-size=0`` (default sync): MPUB 200 x 200 B from 2 connections, then
   SUB with RDY 2500 and a FIN per message until the backlog is drained (as ``bench/run.py``);
2. durable: ``--sync-every=1``, 8 connections each sending a PUB of 200 B (then MPUBs of 20 and
   of 200) and waiting for each OK (an OK means the records are fsynced): acknowledged messages
   per second; and, for scale, the same single PUBs with the default sync (memory queue);
3. backlog: the default ``--mem-queue-size`` (10000), 1,000,000 messages published to a topic
   with a channel and no consumer; nsqd's RSS once they sit on disk.

Usage: ``.venv/bin/python bench/disk.py [--runfor 10s] [--backlog 1000000] [--json]``
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from load_loops import encode_mpub, encode_pub, writer_loop
from nsq_load import parse_duration, positive, run_reader, run_workers, run_writer, summarize
from nsqd_process import Nsqd, default_nsqd_cmd, pick_cpus
from phases import CHANNEL, TOPIC, measured

if TYPE_CHECKING:
    from collections.abc import Callable

    from nsq_load import LoadResult


def run_phase(nsqd: Nsqd, name: str, load: Callable[[], LoadResult]) -> dict[str, Any]:
    phase = measured(nsqd, load, name)
    return {**phase.detail, "line": phase.lines[0]}


def start(tmp: str, name: str, cpus: tuple[int, int] | None, extra: list[str]) -> Nsqd:
    data = Path(tmp) / name
    data.mkdir()
    nsqd = Nsqd(default_nsqd_cmd(), str(data), Path(tmp) / f"{name}.log", cpus and cpus[0], extra)
    nsqd.wait_ready()
    for path in (
        f"/topic/create?topic={TOPIC}",
        f"/channel/create?topic={TOPIC}&channel={CHANNEL}",
    ):
        nsqd.request("POST", path)
    return nsqd


def depth(nsqd: Nsqd) -> tuple[int, int]:
    body = nsqd.request("GET", f"/stats?format=json&topic={TOPIC}&channel={CHANNEL}")[1]
    channel = json.loads(body)["topics"][0]["channels"][0]
    return channel["depth"], channel["backend_depth"]


def disk_path(args: argparse.Namespace, tmp: str, cpus: tuple[int, int] | None) -> dict[str, Any]:
    nsqd = start(tmp, "disk", cpus, ["--mem-queue-size=0"])
    try:
        writer = run_phase(
            nsqd, "writer", lambda: run_writer(nsqd.tcp, TOPIC, 200, 200, 2, args.runfor)
        )
        reader = run_phase(
            nsqd,
            "reader",
            lambda: run_reader(nsqd.tcp, TOPIC, CHANNEL, 2, 2500, 60.0, writer["count"], 200),
        )
        return {"writer": writer, "reader": reader, "left": depth(nsqd)}
    finally:
        nsqd.stop()


def publishers(nsqd: Nsqd, batch: int, runfor: float) -> dict[str, Any]:
    """8 connections, each sending a PUB (batch 1) or an MPUB and waiting for its OK."""
    command = encode_pub(TOPIC, b"x" * 200) if batch == 1 else encode_mpub(TOPIC, b"x" * 200, batch)
    job = functools.partial(writer_loop, nsqd.tcp, command, batch, runfor)
    name = "PUB" if batch == 1 else f"MPUB x{batch}"
    return run_phase(
        nsqd, name, lambda: summarize(name, "msgs", 200, run_workers([job] * 8, runfor))
    )


def durable(args: argparse.Namespace, tmp: str, cpus: tuple[int, int] | None) -> dict[str, Any]:
    """--sync-every=1 with single PUBs and MPUB batches; single PUBs without it for scale."""
    results = {}
    nsqd = start(tmp, "memory", cpus, [])
    try:
        results["memory_pub"] = publishers(nsqd, 1, args.runfor)
    finally:
        nsqd.stop()
    nsqd = start(tmp, "durable", cpus, ["--sync-every=1"])
    try:
        for batch in (1, 20, 200):
            results[f"durable_{batch}"] = publishers(nsqd, batch, args.runfor)
    finally:
        nsqd.stop()
    return results


def backlog(args: argparse.Namespace, tmp: str, cpus: tuple[int, int] | None) -> dict[str, Any]:
    nsqd = start(tmp, "backlog", cpus, [])
    try:
        published = 0
        while published < args.backlog:
            published += run_writer(
                nsqd.tcp, TOPIC, 200, 200, 2, 60.0, args.backlog - published
            ).count
        deadline = time.monotonic() + 60
        while depth(nsqd)[0] < published and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.5)  # one --sync-timeout: the last round written, buffers released
        return {
            "published": published,
            "depth": depth(nsqd),
            "rss_mib": nsqd.status_kib("VmRSS") / 1024,
            "peak_rss_mib": nsqd.status_kib("VmHWM") / 1024,
        }
    finally:
        nsqd.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runfor", type=parse_duration, default=10.0, help="per phase")
    parser.add_argument("--backlog", type=positive, default=1_000_000)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cpus = pick_cpus(args.no_pin)
    if cpus:
        os.sched_setaffinity(0, {cpus[1]})
    with tempfile.TemporaryDirectory(prefix="pnsq-bench-disk-") as tmp:
        results = {
            "disk_path": disk_path(args, tmp, cpus),
            "durable": durable(args, tmp, cpus),
            "backlog": backlog(args, tmp, cpus),
        }
    if args.json:
        print(json.dumps(results, indent=2, default=str))
        return 0
    disk, dur, big = results["disk_path"], results["durable"], results["backlog"]
    for line in (disk["writer"], disk["reader"], *dur.values()):
        print(line["line"])
    rows = [
        ("disk path publish (mem-queue-size=0)", disk["writer"]["rate"], ">= 100,000"),
        ("disk path consume", disk["reader"]["rate"], ">= 60,000"),
        ("--sync-every=1, 8 publishers, PUB", dur["durable_1"]["rate"], ">= 20,000"),
        ("--sync-every=1, 8 publishers, MPUB x20", dur["durable_20"]["rate"], ">= 20,000"),
        ("--sync-every=1, 8 publishers, MPUB x200", dur["durable_200"]["rate"], ">= 20,000"),
        ("memory queue, 8 publishers, PUB", dur["memory_pub"]["rate"], "(scale)"),
    ]
    print()
    print(f"| {'figure':<42} | {'measured':>14} | {'target':>12} |")
    print(f"|{'-' * 44}|{'-' * 16}|{'-' * 14}|")
    for name, value, target in rows:
        print(f"| {name:<42} | {value:>10,.0f} /s | {target:>12} |")
    rss = f"{big['rss_mib']:.1f} MiB"
    label = f"RSS, {big['published']:,} messages on disk"
    print(f"| {label:<42} | {rss:>14} | {'< 150 MiB':>12} |")
    print(
        f"(depth, backend_depth) after the backlog: {big['depth']}; peak {big['peak_rss_mib']:.1f} MiB"
    )
    print(f"(depth, backend_depth) left after consuming the disk path: {disk['left']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
