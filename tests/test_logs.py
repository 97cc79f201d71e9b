"""``--log-format=json`` and what the daemons say at INFO.

The JSON lines are parsed as a log shipper would; the process tests run real ``pnsq``
daemons on 127.0.0.1:0 and read their stderr, because what an operator sees is the process's
output, not the records inside it.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from process_lines import ProcessLines

from pnsq import cli
from pnsq._internal.logging import setup_logging

pytestmark = pytest.mark.timeout(60)

# An HTTP access line as http_server writes it: "200 GET /stats?format=json (127.0.0.1:5555)".
ACCESS_LINE = re.compile(r"^\d{3} [A-Z]+ /")


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root")
def test_json_lines_carry_time_level_component_message_and_fields() -> None:
    stream = io.StringIO()
    setup_logging("info", "[nsqd] ", stream=stream, log_format="json", component="nsqd")
    logging.getLogger("pnsq.nsqd.broker").info("TOPIC(%s): created", "orders", extra={"n": 3})
    logging.getLogger("pnsq.lookupd.lookupd").warning("careful")
    logging.getLogger("hypercorn.error").critical("boom")
    logging.getLogger("pnsq.nsqd").debug("hidden at info")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "TOPIC(orders): created"
    assert first["level"] == "INFO"
    assert first["component"] == "nsqd"
    assert first["fields"] == {"n": 3}
    stamp = datetime.fromisoformat(first["time"])
    assert stamp.utcoffset() == timedelta(0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first["time"])
    assert abs(stamp.timestamp() - time.time()) < 60
    assert (second["level"], second["component"], second["fields"]) == ("WARNING", "lookupd", {})
    # a record from a library logger names the process's own component
    assert (third["level"], third["component"]) == ("FATAL", "nsqd")
    assert "exc" not in first


@pytest.mark.usefixtures("root")
def test_json_line_carries_the_traceback_of_an_exception() -> None:
    stream = io.StringIO()
    setup_logging("info", "[authd] ", stream=stream, log_format="json")
    try:
        raise RuntimeError("disk on fire")
    except RuntimeError:
        logging.getLogger("pnsq.other").exception("write failed", extra={"path": Path("/x")})
    (line,) = stream.getvalue().splitlines()
    document = json.loads(line)
    assert document["level"] == "ERROR"
    assert document["component"] == "authd"  # from the prefix when no component is given
    assert document["message"] == "write failed"
    assert document["fields"] == {"path": "/x"}  # not JSON-encodable: logged as text
    assert document["exc"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: disk on fire" in document["exc"]


@pytest.mark.usefixtures("root")
def test_text_format_is_unchanged_and_a_bad_format_is_refused() -> None:
    stream = io.StringIO()
    setup_logging("info", "[nsqd] ", stream=stream, log_format="TEXT")
    logging.getLogger("pnsq.nsqd").info("hello")
    assert re.fullmatch(r"\[nsqd\] \S+ \S+ INFO: hello\n", stream.getvalue())
    with pytest.raises(ValueError, match="invalid log format 'xml'"):
        setup_logging("info", "", log_format="xml")


@pytest.mark.parametrize("command", ["nsqd", "lookupd", "admin", "authd"])
def test_log_format_flag_is_in_help_and_a_bad_value_is_one_line_and_exit_1(command: str) -> None:
    runner = CliRunner()
    shown = runner.invoke(cli.main, [command, "--help"])
    assert shown.exit_code == 0
    assert "--log-format" in shown.output
    assert "[default: text]" in " ".join(shown.output.split())
    result = runner.invoke(cli.main, [command, "--log-format=xml"])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "invalid value for --log-format" in result.stderr
    assert "(text, json)" in result.stderr


class Daemon:
    """A ``pnsq`` daemon process; its stderr read line by line on a thread."""

    def __init__(self, *args: str) -> None:
        command = [sys.executable, "-m", "pnsq", *args]
        self.proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        self.lines = ProcessLines(self.proc.stderr, f"pnsq {args[0]}")

    def read_until(self, pattern: str, deadline: float = 20.0) -> re.Match[str]:
        return self.lines.read_until(pattern, deadline)

    def stop(self) -> list[str]:
        """Stop it (SIGTERM by its own pid) and return every line it wrote."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        return self.lines.rest()


def fetch(address: str, target: str, method: str = "GET") -> Any:
    request = urllib.request.Request(f"http://{address}{target}", method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"null")


def test_nsqd_json_stderr_parses_and_admin_polling_logs_nothing_per_request_at_info(
    tmp_path: Path,
) -> None:
    nsqd = Daemon(
        "nsqd",
        "--log-format=json",
        f"--data-path={tmp_path}",
        "--tcp-address=127.0.0.1:0",
        "--http-address=127.0.0.1:0",
    )
    admin: Daemon | None = None
    admin_lines: list[str] = []
    try:
        nsqd_http = nsqd.read_until(r'"HTTP: listening on (\S+?)"')[1]
        fetch(nsqd_http, "/topic/create?topic=orders", "POST")
        admin = Daemon(
            "admin",
            "--log-format=json",
            "--http-address=127.0.0.1:0",
            f"--nsqd-http-address={nsqd_http}",
            "--sample-interval=50ms",
        )
        admin_http = admin.read_until(r'"HTTP: listening on (\S+?)"')[1]
        end = time.monotonic() + 20
        while len(fetch(admin_http, "/api/history?series=topic:orders")["points"]) < 4:
            assert time.monotonic() < end, "the admin took no samples"
            time.sleep(0.05)
    finally:
        if admin is not None:
            admin_lines = admin.stop()
        nsqd_lines = nsqd.stop()
    documents = [json.loads(line) for line in nsqd_lines + admin_lines]
    assert {d["component"] for d in documents} >= {"nsqd", "admin"}
    assert any(d["message"] == "TOPIC(orders): created" for d in documents)
    info = [d["message"] for d in documents if d["level"] == "INFO"]
    assert not [m for m in info if ACCESS_LINE.match(m) or "HTTP Request" in m], info
