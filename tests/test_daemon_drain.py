"""The nsqd process with ``--sigterm-mode=drain``: SIGTERM drains, a second signal exits at once."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from pnsq import wire

pytestmark = pytest.mark.timeout(40)

Daemon = tuple[subprocess.Popen[str], tuple[str, int]]


@pytest.fixture
def daemon(tmp_path: object) -> Iterator[Daemon]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pnsq",
            "nsqd",
            "--tcp-address=127.0.0.1:0",
            "--http-address=",
            f"--data-path={tmp_path}",
            "--sigterm-mode=drain",
            "--drain-timeout=60s",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 15
    address = None
    while address is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if found := re.search(r"TCP: listening on ([\d.]+):(\d+)", line):
            address = (found[1], int(found[2]))
    try:
        assert address is not None, f"nsqd did not start; exit code {proc.poll()}"
        yield proc, address
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


class Conn:
    """A blocking V2 connection, enough for these tests."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=10)
        self.sock.sendall(wire.MAGIC_V2)
        self.frames = wire.FrameReader()

    def frame(self) -> tuple[int, bytes]:
        while (frame := self.frames.next_frame()) is None:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed")
            self.frames.receive_data(data)
        return frame

    def command(self, data: bytes) -> bytes:
        self.sock.sendall(data)
        return self.frame()[1]


def _consumer(address: tuple[str, int]) -> Conn:
    conn = Conn(address)
    assert conn.command(wire.encode_sub("t", "c")) == b"OK"
    return conn


def _publish(address: tuple[str, int], body: bytes) -> bytes:
    return Conn(address).command(wire.encode_pub("t", body))


def test_sigterm_drains_then_exits_0_once_the_consumer_has_finished(daemon: Daemon) -> None:
    proc, address = daemon
    consumer = _consumer(address)
    assert _publish(address, b"m") == b"OK"
    os.kill(proc.pid, signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1)  # a message is still to deliver: nsqd waits for it
    assert _publish(address, b"late") == b"E_PUB_FAILED PUB failed nsqd draining"
    consumer.sock.sendall(wire.encode_rdy(1))
    frame_type, data = consumer.frame()
    assert frame_type == wire.FRAME_TYPE_MESSAGE
    _, _, msg_id, body = wire.decode_message(data)
    assert body == b"m"
    consumer.sock.sendall(wire.encode_fin(msg_id))
    assert proc.wait(timeout=10) == 0
    assert proc.stderr is not None
    log = proc.stderr.read()
    assert "received signal SIGTERM: draining" in log
    assert "DRAIN: done" in log


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_during_a_drain_exits_at_once(daemon: Daemon, second: int) -> None:
    proc, address = daemon
    consumer = _consumer(address)  # connected, so the message is still to deliver
    assert _publish(address, b"m") == b"OK"
    os.kill(proc.pid, signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1)
    started = time.monotonic()
    os.kill(proc.pid, second)
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    consumer.sock.close()
