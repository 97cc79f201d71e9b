"""An nsqd process killed and restarted mid-stream on the same port: the consumer reconnects
and resumes, the producer reconnects on its next publish."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from client_helpers import wait_until

from pnsq.client import Consumer, Message, NSQConnectionError, Producer

pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class NsqdProcess:
    def __init__(self, port: int, data_path: Path) -> None:
        self.port, self.data_path = port, data_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "pnsq", "nsqd", f"--tcp-address=127.0.0.1:{self.port}"]
        argv += ["--http-address=", f"--data-path={self.data_path}"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def wait_listening(self) -> None:
        with trio.fail_after(15):
            while True:
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", self.port)
                except OSError:
                    await trio.sleep(0.05)
                else:
                    await stream.aclose()
                    return

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def nsqd_process(tmp_path: Path) -> Iterator[NsqdProcess]:
    process = NsqdProcess(free_port(), tmp_path)
    yield process
    process.kill()


async def publish_retrying(p: Producer, body: bytes) -> int:
    """Publish, retrying while nsqd is down; returns the number of failed tries."""
    failures = 0
    while True:
        try:
            await p.publish("t", body)
            return failures
        except NSQConnectionError:
            failures += 1
            await trio.sleep(0.05)


async def test_consumer_and_producer_survive_an_nsqd_restart(nsqd_process: NsqdProcess) -> None:
    nsqd_process.start()
    await nsqd_process.wait_listening()
    got: set[bytes] = set()

    async def handle(message: Message) -> None:
        got.add(message.body)

    address = f"127.0.0.1:{nsqd_process.port}"
    consumer = Consumer(
        "t",
        "c",
        handle,
        nsqd_tcp_addresses=[address],
        max_in_flight=10,
        reconnect_delay=0.05,
        max_reconnect_delay=0.2,
    )
    with trio.fail_after(40):
        async with Producer(address) as p, consumer:
            for i in range(50):
                await p.publish("t", b"%d" % i)
            await wait_until(lambda: len(got) == 50)
            nsqd_process.kill()
            with pytest.raises(NSQConnectionError):
                await p.publish("t", b"while down")
            await wait_until(lambda: not consumer.connections)
            nsqd_process.start()
            await nsqd_process.wait_listening()
            for i in range(50, 100):
                await publish_retrying(p, b"%d" % i)
            await wait_until(lambda: len(got) == 100)
            assert len(consumer.connections) == 1
    assert got == {b"%d" % i for i in range(100)}
