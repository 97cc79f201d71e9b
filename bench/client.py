#!/usr/bin/env python3
"""Client benchmark: pnsq's client beside pynsq 0.9.1, against one pnsq nsqd subprocess.

    .venv/bin/python bench/client.py [--seconds 3] [--json]

nsqd is started like bench/run.py does (pinned to the first CPU, this process to the second,
stopped by its PID). Phases, each at most ``--seconds`` (plus draining):

- mpub: ``Producer.multi_publish`` batches of 200 x 200 B, one connection, awaited in turn
- consume: ``Consumer`` with a trivial async handler, max_in_flight 2500, draining a backlog
- sync pub: ``SyncProducer.publish`` single 200 B PUB round trips
- the same three with pynsq (``nsq.Writer.mpub`` / ``nsq.Reader`` / ``nsq.Writer.pub``, each
  publish awaited before the next, on Tornado over asyncio)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import anyio
from run import Nsqd, default_nsqd_cmd

from pnsq.client import Consumer, Message, Producer, SyncProducer

BODY = b"x" * 200
BATCH = [BODY] * 200


async def pnsq_mpub(address: str, topic: str, seconds: float, pipeline: int) -> float:
    """``pipeline`` tasks share one Producer, so that many MPUBs are in flight at once."""
    sent = 0

    async def loop(p: Producer, start: float) -> None:
        nonlocal sent
        while time.perf_counter() - start < seconds:
            await p.multi_publish(topic, BATCH)
            sent += len(BATCH)

    async with Producer(address) as p:
        await p.multi_publish(topic, BATCH)  # connect outside the clock
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(pipeline):
                tg.start_soon(loop, p, start)
        return sent / (time.perf_counter() - start)


async def pnsq_consume(address: str, topic: str, total: int, seconds: float) -> float:
    count = 0
    done = anyio.Event()

    async def handle(message: Message) -> None:
        nonlocal count
        count += 1
        if count == total:
            done.set()

    consumer = Consumer(topic, "ch", handle, nsqd_tcp_addresses=[address], max_in_flight=2500)
    start = time.perf_counter()
    async with consumer:
        with anyio.move_on_after(seconds):
            await done.wait()
        elapsed = time.perf_counter() - start
    return count / elapsed


def sync_pub(address: str, topic: str, seconds: float) -> float:
    with SyncProducer(address) as p:
        p.publish(topic, BODY)
        sent, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            p.publish(topic, BODY)
            sent += 1
        return sent / (time.perf_counter() - start)


def pynsq_phases(address: str, seconds: float, backlog_topic: str, total: int) -> dict[str, float]:
    import nsq

    results: dict[str, float] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        class Writer(nsq.Writer):  # type: ignore[misc]
            def _on_connection_ready(self, conn: Any, **kwargs: Any) -> None:
                super()._on_connection_ready(conn, **kwargs)
                if not ready.done():
                    ready.set_result(None)

        writer = Writer([address])
        await ready

        async def call(method: str, *args: Any) -> None:
            fut = loop.create_future()
            getattr(writer, method)(*args, callback=lambda conn, data: fut.set_result(data))
            data = await fut
            if isinstance(data, Exception):
                raise data

        for name, method, arg, per in (("mpub", "mpub", BATCH, 200), ("sync_pub", "pub", BODY, 1)):
            sent, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                await call(method, f"pynsq_{name}", arg)
                sent += per
            results[name] = sent / (time.perf_counter() - start)

        count, finished = 0, loop.create_future()

        def handler(message: Any) -> bool:
            nonlocal count
            count += 1
            if count == total and not finished.done():
                finished.set_result(None)
            return True

        start = time.perf_counter()
        reader = nsq.Reader(
            topic=backlog_topic,
            channel="ch",
            message_handler=handler,
            nsqd_tcp_addresses=[address],
            max_in_flight=2500,
        )
        try:
            await asyncio.wait_for(finished, seconds)
        except TimeoutError:
            pass
        results["consume"] = count / (time.perf_counter() - start)
        reader.close()
        for conn in list(writer.conns.values()):
            conn.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        asyncio.run(main())
    return results


def fill(address: str, topic: str, count: int) -> None:
    """A backlog of ``count`` messages on ``topic``/ch (the channel exists before publishing)."""

    async def go() -> None:
        async with Producer(address) as p:
            for _ in range(count // 200):
                await p.multi_publish(topic, BATCH)

    anyio.run(go, backend="asyncio")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--backlog", type=int, default=150_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--pipeline", type=int, default=4, help="concurrent MPUBs on one connection"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        nsqd = Nsqd(
            default_nsqd_cmd(), tmp, Path(tmp) / "nsqd.log", cpus[0] if len(cpus) > 1 else None
        )
        try:
            nsqd.wait_ready()
            if len(cpus) > 1:
                os.sched_setaffinity(0, {cpus[1]})
            address = "{}:{}".format(*nsqd.tcp)
            for topic in ("pnsq_backlog", "pynsq_backlog"):
                nsqd.request("POST", f"/channel/create?topic={topic}&channel=ch")
                fill(address, topic, args.backlog)
            pnsq = {
                "mpub": anyio.run(
                    pnsq_mpub, address, "pnsq_mpub", args.seconds, args.pipeline, backend="asyncio"
                ),
                "consume": anyio.run(
                    pnsq_consume,
                    address,
                    "pnsq_backlog",
                    args.backlog,
                    args.seconds * 3,
                    backend="asyncio",
                ),
                "sync_pub": sync_pub(address, "pnsq_sync", args.seconds),
                "mpub_1": anyio.run(
                    pnsq_mpub, address, "pnsq_mpub", args.seconds, 1, backend="asyncio"
                ),
            }
            pynsq = pynsq_phases(address, args.seconds, "pynsq_backlog", args.backlog)
        finally:
            nsqd.stop()
    pynsq["mpub_1"] = pynsq["mpub"]  # pynsq's Writer: one MPUB awaited at a time
    targets = {"mpub": 200_000, "mpub_1": 200_000, "consume": 45_000, "sync_pub": 8_000}
    names = ("consume", "mpub", "mpub_1", "sync_pub")
    rows = [(name, pnsq[name], pynsq[name], targets[name]) for name in names]
    if args.json:
        print(json.dumps({"pnsq": pnsq, "pynsq": pynsq, "targets": targets}))
    else:
        print(f"{'phase (msg/s)':<16}{'pnsq':>12}{'pynsq 0.9.1':>14}{'target':>10}")
        for name, mine, theirs, target in rows:
            print(f"{name:<16}{mine:>12,.0f}{theirs:>14,.0f}{target:>10,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
