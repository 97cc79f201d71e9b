"""One nsqd under test: a subprocess started with NSQ's flags, observed through /proc and HTTP.

Why this shape: the benchmark must measure any NSQ 1.3 nsqd (pnsq's or Go's) the same way, so
it knows only NSQ's command-line flags, ``GET /ping`` and ``GET /stats?format=json``. CPU and
memory are read from /proc for the nsqd process *and its descendants*, so an nsqd that hands
work to child processes (ingress workers) is charged for them too. It is stopped by its own PID:
SIGTERM, then SIGKILL after a grace period, or SIGKILL at once to test what survives a crash.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsq_load import ALLOWED_HOST

if TYPE_CHECKING:
    from collections.abc import Sequence

START_TIMEOUT_S = 20.0
STOP_GRACE_S = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def default_nsqd_cmd() -> list[str]:
    if find_spec("pnsq.__main__") is not None:
        return [sys.executable, "-m", "pnsq", "nsqd"]
    return [str(Path(sys.executable).with_name("pnsq")), "nsqd"]  # the console script


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ALLOWED_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pick_cpus(no_pin: bool) -> tuple[int, int] | None:
    cpus = sorted(os.sched_getaffinity(0))
    return None if no_pin or len(cpus) < 2 else (cpus[0], cpus[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant (from /proc/PID/task/TID/children)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:  # exited meanwhile
            continue
    return tree


class Nsqd:
    """One nsqd subprocess, observed through /proc and stopped by its own PID."""

    def __init__(
        self,
        cmd: Sequence[str],
        data_path: str,
        log: Path,
        cpu: int | None,
        extra: Sequence[str] = ("--mem-queue-size=10000000",),
    ) -> None:
        self.tcp = (ALLOWED_HOST, free_port())
        self.http = (ALLOWED_HOST, free_port())
        self.argv = [
            *cmd,
            f"--tcp-address={ALLOWED_HOST}:{self.tcp[1]}",
            f"--http-address={ALLOWED_HOST}:{self.http[1]}",
            f"--data-path={data_path}",
            *extra,
        ]
        self._log_path = log
        mine = os.sched_getaffinity(0)
        if cpu is not None:  # the child inherits the affinity it is forked with
            os.sched_setaffinity(0, {cpu})
        try:
            with log.open("ab") as out:
                self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        finally:
            os.sched_setaffinity(0, mine)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(*self.http, timeout=10)
        try:
            conn.request(method, path)
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nsqd exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.request("GET", "/ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"nsqd did not answer /ping in {START_TIMEOUT_S:.0f} s")

    def create(self, topic: str, channel: str | None = None) -> None:
        paths = [f"/topic/create?topic={topic}"]
        if channel:
            paths.append(f"/channel/create?topic={topic}&channel={channel}")
        for path in paths:
            status, body = self.request("POST", path)
            if status != 200:
                raise RuntimeError(f"POST {path} answered {status} {body[:200]!r}")

    def topics(self, query: str = "") -> list[dict[str, Any]]:
        """The topics of NSQ 1.x ``/stats?format=json`` (``query``: e.g. ``&topic=t``)."""
        status, body = self.request("GET", f"/stats?format=json{query}")
        if status != 200:
            raise RuntimeError(f"GET /stats answered {status} {body[:200]!r}")
        document = json.loads(body)
        topics: list[dict[str, Any]] = document.get("topics", [])
        return topics

    def topic_stats(self, topic: str) -> dict[str, Any]:
        """One topic's stats (``{}`` if it does not exist)."""
        topics = self.topics(f"&topic={topic}")
        return next((t for t in topics if t.get("topic_name") == topic), {})

    def topic_names(self) -> list[str]:
        return [str(t["topic_name"]) for t in self.topics()]

    def status_kib(self, field: str) -> int:
        """``VmRSS``/``VmHWM`` summed over nsqd and its descendants, in KiB."""
        total = 0
        for pid in process_tree(self.proc.pid):
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            total += sum(int(line.split()[1]) for line in lines if line.startswith(field + ":"))
        return total

    def rss_mib(self) -> float:
        return self.status_kib("VmRSS") / 1024

    def cpu_seconds(self) -> float:
        """utime + stime of nsqd and its live descendants (threads included)."""
        total = 0.0
        for pid in process_tree(self.proc.pid):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        return total

    def stop(self, kill: bool = False) -> int:
        """SIGTERM (or SIGKILL with ``kill``), SIGKILL after the grace period; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
