"""A producer process for the cluster tests: MPUB batches through pnsq's ProducerPool.

It records only what nsqd acknowledged: after each acknowledged batch one line
``<unix time> <nsqd address> <first seq> <count>`` is appended and flushed, so the file is the
exact set of bodies the test may demand back (``<tag>-<seq>``), even if this process is killed.
A batch that no nsqd took is retried (the pool already tried every node) until ``--deadline``;
a batch whose answer was lost may be queued twice, which the test counts as a duplicate.

Several publisher tasks share one sequence so that one slow fsync does not stall the load.
The summary (a JSON line on stdout) says how many were acknowledged and by which node.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections import Counter
from typing import IO

import anyio

from pnsq.client import ConnectionConfig, NSQError, ProducerPool


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nsqd", action="append", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between a task's batches")
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--out", required=True)
    return parser.parse_args()


class Run:
    def __init__(self, args: argparse.Namespace, out: IO[str]) -> None:
        self.args, self.out = args, out
        self.starts = iter(range(0, args.count, args.batch))
        self.by_node: Counter[str] = Counter()
        self.retries = 0
        self.stop_at = time.monotonic() + args.deadline

    async def publisher(self, pool: ProducerPool) -> None:
        args = self.args
        for start in self.starts:
            count = min(args.batch, args.count - start)
            bodies = [f"{args.tag}-{seq}".encode() for seq in range(start, start + count)]
            for attempt in itertools.count():
                if time.monotonic() > self.stop_at:
                    return
                try:
                    node = await pool.multi_publish(args.topic, bodies)
                except NSQError as exc:
                    self.retries += 1
                    print(f"batch {start} attempt {attempt}: {exc}", file=sys.stderr)
                    await anyio.sleep(0.1)
                else:
                    break
            self.out.write(f"{time.time():.3f} {node} {start} {count}\n")
            self.out.flush()
            self.by_node[node] += count
            await anyio.sleep(args.pause)


async def main(args: argparse.Namespace, out: IO[str]) -> None:
    began = time.monotonic()
    run = Run(args, out)
    pool = ProducerPool(args.nsqd, config=ConnectionConfig(connect_timeout=0.5))
    async with pool, anyio.create_task_group() as tg:
        for _ in range(args.tasks):
            tg.start_soon(run.publisher, pool)
    summary = {
        "acked": sum(run.by_node.values()),
        "by_node": dict(run.by_node),
        "retries": run.retries,
        "seconds": round(time.monotonic() - began, 3),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    arguments = parse()
    with open(arguments.out, "a") as out_file:
        anyio.run(main, arguments, out_file, backend="trio")
