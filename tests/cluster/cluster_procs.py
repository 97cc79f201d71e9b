"""Processes on the test's hosts, and HTTP to them from the test itself.

Every process is ``ip netns exec <ns> <python> ...``: ``ip netns exec`` execs the command in
place, so the PID we hold is the daemon's own and signals (kill -9, SIGTERM) reach it directly.
Logs go to one file per process start under the test's tmp dir, so a failure can be read.
Each child is also told to die with the test process (``PR_SET_PDEATHSIG``), in case pytest
itself is killed before its teardown runs.

The test process stays in the machine's namespace and reaches the hosts through sockets made
by a short-lived thread that has entered the host's namespace (``setns`` moves only the calling
thread); a socket keeps the namespace it was created in, so the rest of the test uses it
normally. This avoids both a link into the machine's namespace and a Python start per request.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster_net import Host

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
HERE = Path(__file__).resolve().parent
_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(host: Host) -> socket.socket:
    """A TCP socket that lives in ``host``'s network namespace."""
    made: list[socket.socket | BaseException] = []

    def enter_and_make() -> None:
        try:
            with open(f"/var/run/netns/{host.netns}") as ns:
                if _libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            made.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the caller's thread
            made.append(exc)

    thread = threading.Thread(target=enter_and_make)
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


def http(via: Host, address: str, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request from inside ``via`` to ``address`` (``ip:port``); (status, body)."""
    sock = socket_in(via)
    sock.settimeout(5)
    ip_text, port = address.rsplit(":", 1)
    with sock:
        sock.connect((ip_text, int(port)))
        head = f"{method} {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n"
        sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        # a relay closes the client when the daemon behind it is not listening yet: a
        # connection error, which ``wait_for`` polls through
        raise ConnectionError(f"{method} {address}{target}: no HTTP answer ({raw[:80]!r})")
    return int(fields[1]), payload


def get_json(via: Host, address: str, target: str) -> Any:
    status, payload = http(via, address, "GET", target)
    if status != 200:
        raise AssertionError(f"GET {address}{target}: HTTP {status} {payload[:200]!r}")
    return json.loads(payload)


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, AssertionError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it if pytest dies without its teardown (kill -9),
    so that no daemon or relay outlives the test run."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Proc:
    """One process started on a host; ``stop()`` signals it by PID and reaps it."""

    def __init__(self, name: str, host: Host, argv: list[str], log_dir: Path) -> None:
        self.name, self.host, self.argv = name, host, argv
        self.log_path = log_dir / f"{name}.{time.monotonic_ns()}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [*host.exec_prefix(), *argv],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.running():
            os.kill(self.pid, signum)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.popen.wait(10)

    def output(self) -> str:
        """Its stdout (only once it has exited)."""
        assert self.popen.stdout is not None
        return self.popen.stdout.read().decode()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class Procs:
    """Every process a test started, so that teardown stops each one by its PID."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Proc] = []

    def python(self, name: str, host: Host, *args: str) -> Proc:
        proc = Proc(name, host, [sys.executable, *args], self.log_dir)
        self.started.append(proc)
        return proc

    def pnsq(self, name: str, host: Host, *args: str) -> Proc:
        return self.python(name, host, "-m", "pnsq", *args)

    def script(self, name: str, host: Host, script: str, *args: str) -> Proc:
        return self.python(name, host, str(HERE / script), *args)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            if proc.running():
                proc.signal(signal.SIGCONT)
                proc.signal(signal.SIGKILL)
            proc.popen.wait(10)
            if proc.popen.stdout is not None:
                proc.popen.stdout.close()
