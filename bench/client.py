#!/usr/bin/env python3
"""Client benchmark: pnsq's client beside pynsq 0.9.1, against one pnsq nsqd subprocess.

    .venv/bin/python bench/client.py [--seconds 3] [--json]

nsqd is started like bench/run.py does (pinned to the first CPU, this process to the second,
stopped by its PID). Phases, each at most ``--seconds`` (plus draining):

- mpub: ``Producer.multi_publish`` batches of 200 x 200 B, one connection, awaited in turn
- consume: ``Consumer`` with a trivial async handler, max_in_flight 2500, draining a backlog
  (the rate is of messages nsqd saw FINished, checked against the handler's call count)
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
from nsqd_process import Nsqd, default_nsqd_cmd

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


async def pnsq_consume(address: str, topic: str, total: int, seconds: float) -> tuple[int, float]:
    """(handler calls, seconds until the consumer closed, its FINs sent)."""
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
    return count, time.perf_counter() - start


def sync_pub(address: str, topic: str, seconds: float) -> float:
    with SyncProducer(address) as p:
        p.publish(topic, BODY)
        sent, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            p.publish(topic, BODY)
            sent += 1
        return sent / (time.perf_counter() - start)


def pynsq_phases(
    address: str, seconds: float, backlog_topic: str, total: int
) -> tuple[dict[str, float], tuple[int, float]]:
    """Rates of mpub and sync_pub, and (handler calls, seconds) of consume."""
    import nsq

    results: dict[str, float] = {}
    consumed = (0, 0.0)

    async def main() -> None:
        nonlocal consumed
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
        reader.close()
        await asyncio.sleep(0)  # let the close (and the last FINs) reach the socket
        consumed = (count, time.perf_counter() - start)
        for conn in list(writer.conns.values()):
            conn.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        asyncio.run(main())
    return results, consumed


def fill(address: str, topic: str, count: int) -> None:
    """A backlog of ``count`` messages on ``topic``/ch (the channel exists before publishing)."""

    async def go() -> None:
        async with Producer(address) as p:
            for _ in range(count // 200):
                await p.multi_publish(topic, BATCH)

    anyio.run(go, backend="asyncio")


def finished_rate(
    nsqd: Nsqd, topic: str, backlog: int, consumed: tuple[int, float], *, exact: bool
) -> float:
    """Messages FINished per second as nsqd counts them (backlog minus what is still in the
    channel or in flight), checked against the handler: none requeued or timed out, and no
    more finished than handled. ``exact``: as many finished as handled (pnsq's ``close()``
    sends every FIN; pynsq's ``Reader.close()`` drops those still unsent)."""
    handled, elapsed = consumed
    deadline = time.monotonic() + 5  # the last FINs may still be on their way
    while True:
        status, body = nsqd.request("GET", f"/stats?format=json&topic={topic}&channel=ch")
        assert status == 200, (status, body)
        [channel] = [
            c
            for t in json.loads(body)["topics"]
            if t["topic_name"] == topic
            for c in t["channels"]
            if c["channel_name"] == "ch"
        ]
        finished: int = backlog - channel["depth"] - channel["in_flight_count"]
        if finished >= handled or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    retried = channel["requeue_count"] + channel["timeout_count"] + channel["deferred_count"]
    if finished > handled or retried or (exact and finished != handled):
        raise RuntimeError(f"{topic}: {handled} handled, nsqd saw {finished} finished: {channel}")
    if finished < handled:
        print(f"{topic}: {handled - finished} handled but not FINished", file=sys.stderr)
    return finished / elapsed


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
            consumed = anyio.run(
                pnsq_consume,
                address,
                "pnsq_backlog",
                args.backlog,
                args.seconds * 3,
                backend="asyncio",
            )
            pnsq = {
                "mpub": anyio.run(
                    pnsq_mpub, address, "pnsq_mpub", args.seconds, args.pipeline, backend="asyncio"
                ),
                "consume": finished_rate(nsqd, "pnsq_backlog", args.backlog, consumed, exact=True),
                "sync_pub": sync_pub(address, "pnsq_sync", args.seconds),
                "mpub_1": anyio.run(
                    pnsq_mpub, address, "pnsq_mpub", args.seconds, 1, backend="asyncio"
                ),
            }
            pynsq, consumed = pynsq_phases(address, args.seconds, "pynsq_backlog", args.backlog)
            pynsq["consume"] = finished_rate(
                nsqd, "pynsq_backlog", args.backlog, consumed, exact=False
            )
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
