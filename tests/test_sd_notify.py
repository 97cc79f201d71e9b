"""systemd readiness (``Type=notify`` units in deploy/systemd): a real daemon process tells the
socket in ``NOTIFY_SOCKET`` ``READY=1`` once its ports answer and ``STOPPING=1`` on SIGTERM, and
runs as before when the variable is missing or the socket is gone."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pnsq._internal import sd_notify

pytestmark = pytest.mark.timeout(40)

# each daemon on port 0, and how many "listening on" lines it prints before it is ready
DAEMONS = {
    "nsqd": (["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"], 2),
    "lookupd": (["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"], 2),
    "admin": (["--http-address=127.0.0.1:0", "--nsqd-http-address=127.0.0.1:1"], 1),
}
LISTENING = re.compile(r"\b(TCP|HTTP): listening on ([\d.]+):(\d+)")


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket at a short path (a unix address is at most 107 bytes)."""
    folder = tempfile.mkdtemp(prefix="pnsq-notify-")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    try:
        yield sock, path
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(folder)


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(f"\0pnsq-test-{os.getpid()}")
    sock.settimeout(20)
    try:
        yield sock, f"@pnsq-test-{os.getpid()}"
    finally:
        sock.close()


def _start(name: str, data: Path, notify: str | None) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if key != "NOTIFY_SOCKET"}
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify
    flags = DAEMONS[name][0] + ([f"--data-path={data}"] if name == "nsqd" else [])
    return subprocess.Popen(
        [sys.executable, "-m", "pnsq", name, *flags],
        env=env,
        stderr=subprocess.PIPE,
    )


def _addresses(proc: subprocess.Popen[bytes], name: str, wait: float) -> dict[str, tuple[str, int]]:
    """The listeners the daemon logged within ``wait`` seconds (0: what it has logged so far)."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    os.set_blocking(fd, False)
    logged, deadline = b"", time.monotonic() + wait
    while len(found := LISTENING.findall(logged.decode())) < DAEMONS[name][1]:
        remaining = deadline - time.monotonic()
        readable, _, _ = select.select([fd], [], [], max(remaining, 0))
        chunk = os.read(fd, 65536) if readable else b""
        assert chunk or remaining > 0, f"{name} has not logged its listeners: {logged!r}"
        assert chunk or not readable, f"{name} exited: {proc.wait()}"
        logged += chunk
    return {kind: (host, int(port)) for kind, host, port in found}


def _answers(addresses: dict[str, tuple[str, int]]) -> None:
    if "TCP" in addresses:
        socket.create_connection(addresses["TCP"], timeout=5).close()
    host, port = addresses["HTTP"]
    with urllib.request.urlopen(f"http://{host}:{port}/ping", timeout=5) as response:
        assert response.status == 200


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("name", DAEMONS)
def test_ready_once_every_port_answers_and_stopping_on_sigterm(
    name: str,
    notify_socket: tuple[socket.socket, str],
    tmp_path: Path,
    stopped: list[subprocess.Popen[bytes]],
) -> None:
    sock, path = notify_socket
    proc = _start(name, tmp_path, path)
    stopped.append(proc)
    assert sock.recv(4096) == b"READY=1"  # the first thing sent, and no earlier than this:
    _answers(_addresses(proc, name, wait=0))  # every listener is bound and answers at once
    os.kill(proc.pid, signal.SIGTERM)
    assert sock.recv(4096) == b"STOPPING=1"
    assert proc.wait(timeout=15) == 0


def test_abstract_namespace_address(
    abstract_socket: tuple[socket.socket, str],
    tmp_path: Path,
    stopped: list[subprocess.Popen[bytes]],
) -> None:
    sock, address = abstract_socket
    proc = _start("lookupd", tmp_path, address)
    stopped.append(proc)
    assert sock.recv(4096) == b"READY=1"
    os.kill(proc.pid, signal.SIGTERM)
    assert sock.recv(4096) == b"STOPPING=1"
    assert proc.wait(timeout=15) == 0


@pytest.mark.parametrize("notify", [None, "", "/nonexistent/notify", "@", "vsock:2:1"])
def test_without_a_usable_notify_socket_the_daemon_runs_and_exits_0(
    notify: str | None,
    notify_socket: tuple[socket.socket, str],
    tmp_path: Path,
    stopped: list[subprocess.Popen[bytes]],
) -> None:
    sock, _ = notify_socket
    proc = _start("nsqd", tmp_path, notify)
    stopped.append(proc)
    _answers(_addresses(proc, "nsqd", wait=15))
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)  # nothing was sent anywhere we listen


def test_notify_sends_only_when_the_variable_is_set(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    assert sd_notify.notify("READY=1", {}) is False
    assert sd_notify.notify("READY=1", {"NOTIFY_SOCKET": path}) is True
    assert sock.recv(4096) == b"READY=1"


def test_a_full_notify_socket_does_not_block(notify_socket: tuple[socket.socket, str]) -> None:
    """A service manager that stops reading must not stall the daemon's event loop."""
    _, path = notify_socket
    results = [
        sd_notify.notify("STATUS=" + "x" * 1000, {"NOTIFY_SOCKET": path}) for _ in range(1000)
    ]
    assert results[0] is True
    assert results[-1] is False  # the queue filled up and the send gave up at once
