"""``pnsq admin`` as a process: flags, a real start against a real ``pnsq nsqd``, a clean stop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from pnsq.cli import main

pytestmark = pytest.mark.timeout(30)


def _start(args: list[str], pattern: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``pnsq ARGS`` and wait for the log line that says where it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pnsq", *args], stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        found = re.search(pattern + r" listening on ([\d.]+:\d+)", line)
        if found:
            return proc, found[1]
    proc.kill()
    raise AssertionError(f"pnsq {args[0]} did not start; exit code {proc.wait()}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture
def nsqd(tmp_path: object) -> Iterator[str]:
    proc, address = _start(
        [
            "nsqd",
            "--tcp-address=127.0.0.1:0",
            "--http-address=127.0.0.1:0",
            "--broadcast-address=127.0.0.1",
            f"--data-path={tmp_path}",
        ],
        "HTTP:",
    )
    try:
        yield address
    finally:
        _stop(proc)


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as response:
        result: dict[str, object] = json.load(response)
    return result


def test_admin_process_serves_the_cluster_and_stops_on_sigterm(nsqd: str) -> None:
    request = urllib.request.Request(f"http://{nsqd}/pub?topic=orders", b"hi", method="POST")
    urllib.request.urlopen(request, timeout=5).close()
    proc, admin = _start(
        ["admin", "--http-address=127.0.0.1:0", f"--nsqd-http-address={nsqd}"], "HTTP:"
    )
    try:
        assert _get(f"http://{admin}/api/topics")["topics"] == ["orders"]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        _stop(proc)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ([], "not both"),
        (["--nsqd-http-address=a:1", "--lookupd-http-address=b:2"], "not both"),
        (["--nsqd-http-address=nohost"], "missing port"),
        (["--nsqd-http-address=a:1", "--sample-interval=5"], "missing unit in duration"),
        (["--nsqd-http-address=a:1", "--log-level=loud"], "invalid log level"),
    ],
)
def test_admin_flags_are_checked(args: list[str], error: str) -> None:
    result = CliRunner().invoke(main, ["admin", *args])
    assert result.exit_code == 1  # as pnsq nsqd and lookupd exit on bad flags
    assert error in result.output
