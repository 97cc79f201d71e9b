#!/usr/bin/env python3
"""What a Prometheus scrape of nsqd costs: its time with 1,000 topics x 3 channels, and what
repeated scrapes do to publishers.

    .venv/bin/python bench/metrics_scrape.py [--topics 1000] [--scrapes 50] [--runfor 3s]

Starts ``<this python> -m pnsq nsqd`` on two free 127.0.0.1 ports (as bench/run.py does, and
pinned the same way: nsqd on the first CPU, this script and its publishers on the second),
creates the topics (one message each) and channels over HTTP, then:

1. times ``--scrapes`` sequential ``GET /metrics`` (client side, whole body read): median and
   p99, target < 50 ms;
2. runs the MPUB writer of bench/nsq_load.py (1 connection, 200 x 200 B) for ``--runfor``
   alone, then while a thread scrapes /metrics every ``--interval`` (1 s: 15 times Prometheus'
   default), then while it scrapes back to back, and prints each rate, its ratio to the first
   and the slowest MPUB reply. The writer publishes to an ephemeral topic without channels,
   which keeps --mem-queue-size (10,000) messages and drops the rest: memory stays flat, so
   the figures are not those of Python's GC walking a growing backlog.

nsqd is stopped by its PID at the end (SIGTERM, then SIGKILL after 5 s).
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from nsq_load import LoadResult, parse_duration, positive, run_writer
from nsqd_process import Nsqd, default_nsqd_cmd, pick_cpus

SIZE, BATCH = 200, 200


class Scraper:
    """GET /metrics over one keep-alive connection; each scrape timed to its last byte."""

    def __init__(self, address: tuple[str, int]) -> None:
        self._conn = http.client.HTTPConnection(*address, timeout=30)
        self.times: list[float] = []
        self.size = 0

    def scrape(self) -> None:
        start = time.perf_counter()
        self._conn.request("GET", "/metrics")
        reply = self._conn.getresponse()
        body = reply.read()
        self.times.append(time.perf_counter() - start)
        if reply.status != 200:
            raise RuntimeError(f"GET /metrics answered {reply.status}")
        self.size = len(body)

    def close(self) -> None:
        self._conn.close()


def populate(nsqd: Nsqd, topics: int) -> None:
    conn = http.client.HTTPConnection(*nsqd.http, timeout=30)
    try:
        for i in range(topics):
            requests = [("POST", f"/topic/create?topic=t{i:04d}", b"")]
            requests += [
                ("POST", f"/channel/create?topic=t{i:04d}&channel=c{c}", b"") for c in range(3)
            ]
            requests.append(("POST", f"/pub?topic=t{i:04d}", b"x" * SIZE))
            for method, path, body in requests:
                conn.request(method, path, body)
                reply = conn.getresponse()
                reply.read()
                if reply.status != 200:
                    raise RuntimeError(f"{path} answered {reply.status}")
    finally:
        conn.close()


def scrape_times(nsqd: Nsqd, n: int) -> tuple[float, float, float, int]:
    """Median and p99 (ms) of ``n`` sequential scrapes, nsqd's CPU ms per scrape (what the
    scrape costs nsqd whatever else the machine runs), and the body size."""
    scraper = Scraper(nsqd.http)
    try:
        scraper.scrape()  # warm-up: imports, first allocation of the families
        scraper.times.clear()
        cpu = nsqd.cpu_seconds()
        for _ in range(n):
            scraper.scrape()
        cpu = nsqd.cpu_seconds() - cpu
    finally:
        scraper.close()
    times = sorted(scraper.times)
    p99 = times[min(len(times) - 1, round(0.99 * len(times)))]
    return statistics.median(times) * 1000, p99 * 1000, cpu / n * 1000, scraper.size


def publish(
    nsqd: Nsqd, topic: str, runfor: float, interval: float | None
) -> tuple[LoadResult, list[float]]:
    """The writer for ``runfor``, with a scrape every ``interval`` seconds if given (0: back to
    back); returns its result and the durations of the scrapes done meanwhile."""
    stop = threading.Event()
    scraper = Scraper(nsqd.http)

    def scrape_loop(interval: float) -> None:
        while not stop.wait(interval):
            scraper.scrape()

    thread = None
    if interval is not None:
        thread = threading.Thread(target=scrape_loop, args=(interval,), daemon=True)
        thread.start()
    try:
        result = run_writer(nsqd.tcp, topic, SIZE, BATCH, 1, runfor)
    finally:
        stop.set()
        if thread is not None:
            thread.join(30)
        scraper.close()
    nsqd.request("POST", f"/topic/delete?topic={topic.replace('#', '%23')}")
    return result, scraper.times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=positive, default=1000)
    parser.add_argument("--scrapes", type=positive, default=50)
    parser.add_argument("--runfor", type=parse_duration, default=3.0, help="per writer run")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between scrapes")
    args = parser.parse_args()
    cpus = pick_cpus(no_pin=False)
    with tempfile.TemporaryDirectory(prefix="pnsq-bench-") as data:
        nsqd = Nsqd(
            default_nsqd_cmd(),
            data,
            Path(data) / "nsqd.log",
            cpus[0] if cpus else None,
            (),
        )
        try:
            if cpus:
                os.sched_setaffinity(0, {cpus[1]})
            nsqd.wait_ready()
            started = time.monotonic()
            populate(nsqd, args.topics)
            print(
                f"nsqd pid {nsqd.proc.pid}; {args.topics} topics x 3 channels created in "
                f"{time.monotonic() - started:.1f} s"
                + (f"; pinned to CPU {cpus[0]}" if cpus else "")
            )
            median, p99, cpu, size = scrape_times(nsqd, args.scrapes)
            verdict = "ok" if p99 < 50 else "OVER the 50 ms target"
            print(
                f"GET /metrics x {args.scrapes}: median {median:.1f} ms, p99 {p99:.1f} ms, "
                f"nsqd CPU {cpu:.1f} ms a scrape ({size / 1e6:.1f} MB) - {verdict}"
            )
            alone, _ = publish(nsqd, "bench_alone#ephemeral", args.runfor, None)
            print(
                f"MPUB alone:                {alone.rate:>9,.0f} msg/s, slowest reply "
                f"{alone.worst_round_trip * 1000:.1f} ms"
            )
            runs = [alone]
            for label, interval in (
                (f"every {args.interval:g} s", args.interval),
                ("back to back", 0.0),
            ):
                during, scrapes = publish(nsqd, "bench_scraped#ephemeral", args.runfor, interval)
                runs.append(during)
                print(
                    f"MPUB, scrapes {label + ':':13} {during.rate:>9,.0f} msg/s, slowest reply "
                    f"{during.worst_round_trip * 1000:.1f} ms, ratio {during.rate / max(alone.rate, 1):.2f} "
                    f"({len(scrapes)} scrapes, slowest {max(scrapes, default=0.0) * 1000:.0f} ms)"
                )
            failures = [failure for run in runs for failure in run.failures]
            if failures:
                print("writer failures:", *failures, file=sys.stderr)
                return 1
        finally:
            nsqd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
