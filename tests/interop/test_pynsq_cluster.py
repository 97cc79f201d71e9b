"""NSQ's classic topology on loopback: 2 lookupds, 3 nsqds (processes), one pynsq Reader.

The Reader knows only the two lookupds' HTTP addresses; it must find and read all three nsqds,
and keep reading from the others when one of them is killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.request
from typing import Any

import nsq
import pytest
from test_cluster import Daemons, daemons, start_nsqd

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.timeout(60),
]
__all__ = ["daemons"]  # the fixture, imported to be used here


def publish(http_port: int, body: bytes) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/pub?topic=t", data=body, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def test_a_reader_finds_every_nsqd_through_two_lookupds_and_survives_one_dying(
    daemons: Daemons,
) -> None:
    lookupds = [
        daemons.start("lookupd", "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0")[1]
        for _ in range(2)
    ]
    nsqds = []
    for i in range(3):
        start_nsqd(daemons, f"n{i}", *(lk["TCP"] for lk in lookupds))
        nsqds.append((daemons.procs[-1], daemons.last_ports))
    for proc_ports in nsqds:
        publish(proc_ports[1]["HTTP"], f"from {proc_ports[1]['TCP']}".encode())

    async def scenario() -> None:
        got: list[bytes] = []

        def handler(message: Any) -> bool:
            got.append(message.body)
            return True

        reader = nsq.Reader(
            topic="t",
            channel="c",
            message_handler=handler,
            lookupd_http_addresses=[f"http://127.0.0.1:{lk['HTTP']}" for lk in lookupds],
            lookupd_poll_interval=1,
            lookupd_poll_jitter=0.0,
            max_in_flight=10,
        )
        try:
            while len(got) < 3:  # noqa: ASYNC110 - pynsq announces nothing else
                await asyncio.sleep(0.02)
            assert sorted(got) == sorted(f"from {p['TCP']}".encode() for _, p in nsqds)
            dead, _ = nsqds[0]
            os.kill(dead.pid, signal.SIGKILL)
            for _, ports in nsqds[1:]:
                publish(ports["HTTP"], b"after")
            while len(got) < 5:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            assert got[3:] == [b"after", b"after"]
        finally:
            reader.close()

    asyncio.run(asyncio.wait_for(scenario(), 40))
