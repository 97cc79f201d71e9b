"""kill -9 while publishers are being acknowledged with --sync-every=1: nothing acknowledged is lost.

Real nsqd processes (stopped by their PID). Each round publishes from 8 connections (PUB and
MPUB), kills nsqd with SIGKILL at a different moment, restarts it on the same data path and
consumes everything: every message that got its OK must be there.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from v2client import V2Client, open_consumer

pytestmark = pytest.mark.timeout(300)

PUBLISHERS = 8


def start_nsqd(data_path: Path, log: Path) -> tuple[subprocess.Popen[bytes], tuple[str, int]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pnsq",
                "nsqd",
                "--tcp-address=127.0.0.1:0",
                "--http-address=",
                f"--data-path={data_path}",
                "--sync-every=1",
            ],
            stderr=out,
        )
    deadline = time.monotonic() + 20
    while not (found := re.search(rb"TCP: listening on ([\d.]+):(\d+)", log.read_bytes())):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("nsqd did not start: " + log.read_text())
        time.sleep(0.02)  # the log file of another process: polled under a deadline
    return proc, (found[1].decode(), int(found[2]))


@asynccontextmanager
async def nsqd_process(data_path: Path, log: Path) -> AsyncIterator[tuple[int, tuple[str, int]]]:
    proc, address = await trio.to_thread.run_sync(start_nsqd, data_path, log)
    try:
        yield proc.pid, address
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        await trio.to_thread.run_sync(proc.wait)


async def publish_until_killed(
    address: tuple[str, int], n: int, acked: set[bytes], reached: tuple[int, trio.Event]
) -> None:
    """PUBs and MPUBs of 3, each body recorded once its OK has arrived; stops when cut off."""
    try:
        async with await V2Client.connect(address) as producer:
            for i in range(100_000):
                if i % 2:
                    body = b"p%d-%d" % (n, i)
                    await producer.pub("t", body)
                    acked.add(body)
                else:
                    bodies = [b"m%d-%d-%d" % (n, i, j) for j in range(3)]
                    await producer.mpub("t", bodies)
                    acked.update(bodies)
                if len(acked) >= reached[0]:
                    reached[1].set()
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, OSError):
        return
    except Exception as err:  # the V2Client's "connection closed" while reading a reply
        if "closed" not in str(err).lower():
            raise


@pytest.mark.parametrize("round_number", range(6))
async def test_kill_9_loses_no_acknowledged_message(tmp_path: Path, round_number: int) -> None:
    rng = random.Random(round_number)
    data_path = tmp_path / "data"
    data_path.mkdir()
    acked: set[bytes] = set()
    with_channel = round_number % 2 == 0
    async with nsqd_process(data_path, tmp_path / "first.log") as (pid, address):
        if with_channel:  # the channel's disk queue takes the records; else the topic's
            async with await open_consumer(address, "t", "c", rdy=0):
                pass
        target = rng.choice([1, 50, 400, 1500, 3000])
        reached = trio.Event()
        async with trio.open_nursery() as nursery:
            for n in range(PUBLISHERS):
                nursery.start_soon(publish_until_killed, address, n, acked, (target, reached))
            with trio.fail_after(60):
                await reached.wait()
            await trio.sleep(rng.random() * 0.05)
            os.kill(pid, signal.SIGKILL)
    assert len(acked) >= target

    async with nsqd_process(data_path, tmp_path / "restarted.log") as (pid, address):
        received: set[bytes] = set()
        async with await open_consumer(address, "t", "c", rdy=2500) as consumer:
            with trio.fail_after(60):
                while not acked <= received:
                    for message in await consumer.read_messages(1):
                        received.add(message.body)
                        await consumer.fin(message.id)
        assert acked <= received
        assert received & acked == acked
