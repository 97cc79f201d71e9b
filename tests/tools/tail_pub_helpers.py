"""Running ``pnsq tail`` / ``pnsq pub`` as real processes next to in-process nsqds.

The tools run as ``python -m pnsq <tool>`` child processes (their own trio loop, signals, exit
codes, stdout), while the nsqds run in the test's trio loop, so the test can look inside them.
Every wait is under a deadline; a process still running when its deadline passes is killed by
its PID (trio's ``run_process`` does that on cancellation).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence

import trio

from pnsq.client import Producer
from pnsq.nsqd.nsqd import NSQD

DEADLINE = 40.0
MakeNSQD = Callable[..., Awaitable[NSQD]]


def pnsq(*args: str) -> list[str]:
    return [sys.executable, "-m", "pnsq", *args]


async def run(
    args: Sequence[str], stdin: bytes = b"", deadline: float = DEADLINE
) -> subprocess.CompletedProcess[bytes]:
    """Run ``pnsq <args>`` to its end; stdout and stderr captured."""
    with trio.fail_after(deadline):
        return await trio.run_process(
            pnsq(*args), stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
        )


def address(nsqd: NSQD) -> str:
    assert nsqd.tcp_address is not None
    return "{}:{}".format(*nsqd.tcp_address)


async def publish(nsqd: NSQD, topic: str, bodies: Sequence[bytes]) -> None:
    async with Producer(address(nsqd)) as producer:
        for start in range(0, len(bodies), 500):
            await producer.multi_publish(topic, bodies[start : start + 500])


def depth(nsqd: NSQD, topic: str, channel: str | None = None) -> int:
    """Messages queued on the topic (no channel yet) or on one of its channels."""
    found = nsqd.topics.get(topic)
    if found is None:
        return 0
    if channel is None:
        return found.depth()
    return found.channels[channel].depth()


def stderr_lines(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    return result.stderr.decode().strip().splitlines()
