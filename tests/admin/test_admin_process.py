"""``pnsq admin`` as a process: flags, a real start against a real ``pnsq nsqd``, a clean stop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
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
        (["--nsqd-http-address=ftp://a:1"], "only http:// or https://"),
        (["--nsqd-http-address=a:1", "--http-client-tls-cert=c.pem"], "--http-client-tls-key"),
        (["--nsqd-http-address=a:1", "--http-client-tls-key=k.pem"], "--http-client-tls-cert"),
        (["--nsqd-http-address=a:1", "--notification-http-endpoint=x"], "not an http:// or"),
    ],
)
def test_admin_flags_are_checked(args: list[str], error: str) -> None:
    result = CliRunner().invoke(main, ["admin", *args])
    assert result.exit_code == 1  # as pnsq nsqd and lookupd exit on bad flags
    assert error in result.output


def test_admin_user_flags_guard_actions_in_the_process(nsqd: str) -> None:
    request = urllib.request.Request(f"http://{nsqd}/pub?topic=orders", b"hi", method="POST")
    urllib.request.urlopen(request, timeout=5).close()
    args = ["--admin-user=alice", "--admin-user=bob", "--acl-http-header=X-User"]
    proc, admin = _start(
        ["admin", "--http-address=127.0.0.1:0", f"--nsqd-http-address={nsqd}", *args], "HTTP:"
    )
    try:

        def pause(*user: tuple[str, str]) -> int:
            headers = {"Content-Type": "application/json", **dict(user)}
            body = json.dumps({"action": "pause"}).encode()
            url = f"http://{admin}/api/topics/orders"
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(url, body, headers, method="POST"), timeout=5
                ) as response:
                    return int(response.status)
            except urllib.error.HTTPError as err:
                return err.code

        assert pause() == 403
        assert pause(("X-User", "carol")) == 403
        assert pause(("X-User", "bob")) == 200
        stats = _get(f"http://{nsqd}/stats?format=json")
        assert stats["topics"][0]["paused"] is True  # type: ignore[index]
    finally:
        _stop(proc)


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--http-client-tls-root-ca-file=/nonexistent/ca.pem"], "failed to read TLS root CA"),
        (
            ["--http-client-tls-cert=/nonexistent/c.pem", "--http-client-tls-key=/nonexistent/k"],
            "failed to load TLS certificate /nonexistent/c.pem",
        ),
    ],
)
def test_unusable_tls_files_stop_the_admin_with_the_reason(flags: list[str], error: str) -> None:
    args = ["admin", "--http-address=127.0.0.1:0", "--nsqd-http-address=127.0.0.1:1", *flags]
    done = subprocess.run(
        [sys.executable, "-m", "pnsq", *args], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 1
    assert error in done.stderr
