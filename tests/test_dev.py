"""``pnsq dev`` (what ``make run`` starts) as a process, on free ports: lookupd, nsqd and the
admin come up wired together, and SIGINT (Ctrl-C) stops all three and exits 0."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from process_lines import ProcessLines

pytestmark = pytest.mark.timeout(60)

FREE = "127.0.0.1:0"


def get(address: str, target: str) -> Any:
    with urllib.request.urlopen(f"http://{address}{target}", timeout=5) as response:
        return json.load(response)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Dev:
    """``pnsq dev`` with every daemon on a free port; its output read line by line."""

    def __init__(self, data_path: Path, **addresses: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pnsq",
                "dev",
                f"--data-path={data_path}",
                *(
                    f"--{flag}-address={addresses.get(flag, FREE)}"
                    for flag in (
                        "lookupd-tcp",
                        "lookupd-http",
                        "nsqd-tcp",
                        "nsqd-http",
                        "admin-http",
                    )
                ),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = ProcessLines(self.proc.stdout, "pnsq dev")

    def read_until(self, pattern: str, deadline: float = 20.0) -> re.Match[str]:
        """The first line from now on that matches ``pattern`` (fails at EOF or after
        ``deadline`` seconds)."""
        return self.lines.read_until(pattern, deadline)

    def rest(self, deadline: float = 10.0) -> str:
        """Everything it prints until its output ends."""
        return "".join(self.lines.rest(deadline))

    @property
    def output(self) -> list[str]:
        return self.lines.output


def until(predicate: Callable[[], object], deadline: float = 10.0) -> None:
    """Wait, under a deadline, for a condition the daemons bring about."""
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.02)


def stop(running: Dev) -> None:
    if running.proc.poll() is None:
        running.proc.terminate()  # it stops its children itself
        try:
            running.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            running.proc.kill()
            running.proc.wait()


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    running = Dev(tmp_path)
    try:
        yield running
    finally:
        stop(running)


def test_dev_runs_lookupd_nsqd_and_admin_together_and_sigint_stops_all(dev: Dev) -> None:
    # one after the other, each once the one before listens
    pids = {"lookupd": int(dev.read_until(r"^dev +\| started lookupd: pid (\d+)")[1])}
    dev.read_until(r"^lookupd +\| .*HTTP: listening on")
    pids["nsqd"] = int(dev.read_until(r"^dev +\| started nsqd: pid (\d+)")[1])
    dev.read_until(r"^nsqd +\| .*HTTP: listening on")
    pids["admin"] = int(dev.read_until(r"^dev +\| started admin: pid (\d+)")[1])
    lookupd = dev.read_until(r"\| lookupd ready: tcp \S+, http://([\d.:]+)/")[1]
    nsqd_tcp, nsqd_http = dev.read_until(r"\| nsqd ready: tcp (\S+), http://([\d.:]+)/").groups()
    admin = dev.read_until(r"\| admin ready: http://([\d.:]+)/")[1]
    assert all(alive(pid) for pid in pids.values())

    # the nsqd registers with the lookupd (dev started it once lookupd listened)
    nsqd = ("127.0.0.1", int(nsqd_tcp.rsplit(":", 1)[1]), int(nsqd_http.rsplit(":", 1)[1]))

    def producers() -> list[tuple[str, int, int]]:
        nodes = get(lookupd, "/nodes")["producers"]
        return [(p["broadcast_address"], p["tcp_port"], p["http_port"]) for p in nodes]

    until(lambda: producers() == [nsqd])
    # the admin finds that nsqd through the lookupd
    nodes = get(admin, "/api/nodes")["nodes"]
    assert [n["node"] for n in nodes] == [nsqd_http]

    os.kill(dev.proc.pid, signal.SIGINT)
    assert dev.proc.wait(timeout=30) == 0
    assert "Traceback" not in dev.rest()
    assert not [name for name, pid in pids.items() if alive(pid)]


def test_dev_stops_the_others_and_exits_1_when_a_daemon_cannot_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        failing = Dev(tmp_path, **{"nsqd-http": f"127.0.0.1:{port}"})
        try:
            lookupd = int(failing.read_until(r"started lookupd: pid (\d+)")[1])
            failing.read_until(r"^nsqd +\| exited with code 1; stopping")
            assert failing.proc.wait(timeout=30) == 1
            assert "started admin" not in failing.rest()
            assert not alive(lookupd)
        finally:
            stop(failing)
