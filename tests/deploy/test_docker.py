"""deploy/docker/Dockerfile: lint-clean (hadolint), a build context that holds what it copies,
and a HEALTHCHECK that works in a slim image (no curl) against a real daemon's /ping."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
TEXT = DOCKERFILE.read_text()
# instructions with their continuation lines joined
INSTRUCTIONS = re.sub(
    r"\\\n\s*",
    "",
    "\n".join(line for line in TEXT.splitlines() if not line.lstrip().startswith("#")),
).splitlines()


def _instruction(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in INSTRUCTIONS if line.startswith(keyword + " ")]


def test_hadolint_finds_nothing() -> None:
    """Anything hadolint should let pass carries an inline ``# hadolint ignore=`` with a reason."""
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--format", "json", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(result.stdout) == [], result.stdout
    assert result.returncode == 0, result.stderr


def test_docker_run_reads_like_nsqs_image() -> None:
    """``docker run pnsq nsqd --lookupd-tcp-address=...``: the entry point is the pnsq command."""
    assert _instruction("ENTRYPOINT") == ['["pnsq"]']
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "pnsq" in scripts
    ports = {int(port) for line in _instruction("EXPOSE") for port in line.split()}
    assert ports == {4150, 4151, 4152, 4160, 4161, 4171}
    assert _instruction("VOLUME") == ["/data"]
    assert _instruction("WORKDIR")[-1] == "/data"  # nsqd's default --data-path is its cwd


def test_it_runs_as_a_numeric_non_root_user() -> None:
    user = _instruction("USER")[-1]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), user  # runAsNonRoot can check a number


def test_the_build_context_holds_what_the_build_copies() -> None:
    """.dockerignore lets in only what the Dockerfile copies (not .venv, .git)."""
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = {
        source.rstrip("/")
        for line in _instruction("COPY")
        if not line.startswith("--from")
        for source in line.split()[:-1]
    }
    assert copied == allowed
    assert "*" in ignore


def _healthcheck() -> list[str]:
    line = _instruction("HEALTHCHECK")[0]
    return json.loads(line[line.index("CMD") + 3 :])


@pytest.fixture
def lookupd() -> Iterator[int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pnsq",
            "lookupd",
            "--tcp-address=127.0.0.1:0",
            "--http-address=127.0.0.1:0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        while not (found := re.search(r"HTTP: listening on [\d.]+:(\d+)", proc.stderr.readline())):
            assert proc.poll() is None, "lookupd exited"
        yield int(found[1])
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(30)
def test_the_healthcheck_asks_ping_on_the_port_of_its_env_var(lookupd: int) -> None:
    command = _healthcheck()
    assert command[0] == "python"  # the slim image's interpreter; no curl there
    argv = [sys.executable, *command[1:]]

    def check(port: int) -> int:
        env = {**os.environ, "PNSQ_HEALTHCHECK_PORT": str(port)}
        return subprocess.run(argv, env=env, capture_output=True, timeout=10).returncode

    assert check(lookupd) == 0
    assert check(_closed_port()) != 0
    assert "'4151'" in shlex.join(command)  # nsqd's HTTP port when the variable is unset
