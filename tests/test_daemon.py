"""The nsqd process: it starts from the command line and stops cleanly on SIGTERM/SIGINT."""

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

pytestmark = pytest.mark.timeout(30)


def _start(tmp_path: str) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pnsq",
            "nsqd",
            "--tcp-address=127.0.0.1:0",
            "--http-address=",
            f"--data-path={tmp_path}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        found = re.search(r"TCP: listening on ([\d.]+):(\d+)", line)
        if found:
            return proc, (found[1], int(found[2]))
    proc.kill()
    raise AssertionError(f"nsqd did not start; exit code {proc.wait()}")


@pytest.fixture
def daemon(tmp_path: object) -> Iterator[tuple[subprocess.Popen[str], tuple[str, int]]]:
    proc, address = _start(str(tmp_path))
    try:
        yield proc, address
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _round_trip(address: tuple[str, int]) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(wire.MAGIC_V2 + wire.encode_pub("t", b"hello"))
        reader = wire.FrameReader()
        while (frame := reader.next_frame()) is None:
            reader.receive_data(sock.recv(4096))
        return frame[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_nsqd_with_exit_code_0_and_closes_clients(
    daemon: tuple[subprocess.Popen[str], tuple[str, int]], signum: int
) -> None:
    proc, address = daemon
    assert _round_trip(address) == b"OK"
    idle = socket.create_connection(address, timeout=10)
    idle.sendall(wire.MAGIC_V2)
    started = time.monotonic()
    os.kill(proc.pid, signum)
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    assert idle.recv(4096) == b""  # the connected client was closed, not left hanging
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=2)


def test_a_second_nsqd_on_the_same_data_path_exits_at_once_with_a_clear_message(
    daemon: tuple[subprocess.Popen[str], tuple[str, int]], tmp_path: object
) -> None:
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "pnsq",
            "nsqd",
            "--tcp-address=127.0.0.1:0",
            "--http-address=",
            f"--data-path={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert second.returncode == 1
    assert f"FATAL: --data-path={tmp_path} is in use by another nsqd" in second.stderr
    assert "Traceback" not in second.stderr
    assert _round_trip(daemon[1]) == b"OK", "the first nsqd is unaffected"
