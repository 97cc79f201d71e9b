"""Real processes: lookupd forgets a killed nsqd at once and a hung one after the timeout."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)


class Daemons:
    def __init__(self, tmp_path: Any) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.tmp_path = tmp_path
        self.last_ports: dict[str, int] = {}

    def start(self, *args: str) -> tuple[subprocess.Popen[str], dict[str, int]]:
        """Start ``pnsq *args``; its ports from the 'listening on' log lines."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "pnsq", *args], stderr=subprocess.PIPE, text=True
        )
        self.procs.append(proc)
        assert proc.stderr is not None
        ports: dict[str, int] = {}
        deadline = time.monotonic() + 15
        while len(ports) < 2 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            found = re.search(r"(TCP|HTTP): listening on [\d.]+:(\d+)", line)
            if found:
                ports[found[1]] = int(found[2])
        assert len(ports) == 2, f"{args[0]} did not start"
        # keep reading its log so that it never blocks on a full pipe
        subprocess_drain(proc)
        self.last_ports = ports
        return proc, ports

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def subprocess_drain(proc: subprocess.Popen[str]) -> None:
    stream = proc.stderr
    assert stream is not None
    threading.Thread(target=lambda: stream.read(), daemon=True).start()


@pytest.fixture
def daemons(tmp_path: Any) -> Iterator[Daemons]:
    d = Daemons(tmp_path)
    try:
        yield d
    finally:
        d.stop_all()


def get(port: int, target: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{target}", timeout=5) as response:
        return json.loads(response.read())


def wait_for(predicate: Callable[[], bool], deadline: float = 10.0) -> float:
    """Seconds until ``predicate()`` held (fails after ``deadline``)."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < deadline, "condition not reached"
        time.sleep(0.02)
    return time.monotonic() - started


def node_ports(lookupd_http: int) -> set[int]:
    return {n["tcp_port"] for n in get(lookupd_http, "/nodes")["producers"]}


def start_nsqd(daemons: Daemons, name: str, *lookupds: int) -> int:
    data = daemons.tmp_path / name
    data.mkdir()
    _, ports = daemons.start(
        "nsqd",
        "--tcp-address=127.0.0.1:0",
        "--http-address=127.0.0.1:0",
        "--broadcast-address=127.0.0.1",
        f"--data-path={data}",
        *(f"--lookupd-tcp-address=127.0.0.1:{port}" for port in lookupds),
    )
    return ports["TCP"]


def test_a_killed_nsqd_leaves_at_once_and_a_hung_one_after_the_inactive_timeout(
    daemons: Daemons,
) -> None:
    timeout = 4.0
    _, lookupd = daemons.start(
        "lookupd",
        "--tcp-address=127.0.0.1:0",
        "--http-address=127.0.0.1:0",
        f"--inactive-producer-timeout={timeout:g}s",
    )
    killed = start_nsqd(daemons, "a", lookupd["TCP"])
    hung_proc_index = len(daemons.procs)
    hung = start_nsqd(daemons, "b", lookupd["TCP"])
    wait_for(lambda: node_ports(lookupd["HTTP"]) == {killed, hung})

    os.kill(daemons.procs[1].pid, signal.SIGKILL)
    assert wait_for(lambda: killed not in node_ports(lookupd["HTTP"])) < 1.0
    assert hung in node_ports(lookupd["HTTP"])

    stopped_at = time.monotonic()
    os.kill(daemons.procs[hung_proc_index].pid, signal.SIGSTOP)
    wait_for(lambda: hung not in node_ports(lookupd["HTTP"]), deadline=timeout + 5)
    assert time.monotonic() - stopped_at < timeout + 5
    os.kill(daemons.procs[hung_proc_index].pid, signal.SIGCONT)


def test_lookupd_process_exits_0_on_sigint(daemons: Daemons) -> None:
    proc, _ = daemons.start("lookupd", "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0")
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) == 0
