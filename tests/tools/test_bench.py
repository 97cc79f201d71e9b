"""``pnsq bench pub|sub``: NSQ's result line, and counts that match what nsqd saw."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from threaded_nsqd import ThreadedNSQD

from pnsq._internal.duration import parse_duration
from pnsq.nsqd.nsqd import NSQD
from pnsq.tools.bench_result import BenchResult, deadline, log_line, result_text

# bench_writer's and bench_reader's log.Printf("duration: %s - %.03fmb/s - %.03fops/s - %.03fus/op")
# after log.SetPrefix("[bench_writer] ") with Go's standard date and time
RESULT = re.compile(
    r"^\[(?P<program>bench_writer|bench_reader)\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
    r"duration: (?P<duration>[0-9.]+(?:s|ms)) - (?P<mb>[0-9.]+)mb/s - "
    r"(?P<ops>[0-9.]+)ops/s - (?P<us>[0-9.]+)us/op$",
    re.MULTILINE,
)


@pytest.mark.parametrize(
    ("count", "duration_ns", "size", "text"),
    [
        (2_000_000, 10_000_000_000, 200, "duration: 10s - 38.147mb/s - 200000.000ops/s - 5.000us/op"),
        (123_456, 1_000_566_821, 200,
         "duration: 1.000566821s - 23.534mb/s - 123386.062ops/s - 8.105us/op"),
        # us/op divides whole microseconds, as Go's duration/time.Microsecond
        (3, 1_999, 100, "duration: 1.999\u00b5s - 143.123mb/s - 1500750.375ops/s - 0.333us/op"),
        (0, 1_000_000_000, 200, "duration: 1s - 0.000mb/s - 0.000ops/s - +Infus/op"),
        (0, 0, 200, "duration: 0s - NaNmb/s - NaNops/s - NaNus/op"),
    ],
)  # fmt: skip
def test_result_text_is_nsqs_line(count: int, duration_ns: int, size: int, text: str) -> None:
    assert result_text(BenchResult(count, duration_ns), size) == text


def test_the_result_line_has_gos_log_prefix_and_time() -> None:
    line = log_line("bench_writer", "duration: 1s - x", datetime(2026, 1, 2, 3, 4, 5))
    assert line == "[bench_writer] 2026/01/02 03:04:05 duration: 1s - x\n"


def test_deadline_is_gos_layout() -> None:
    assert deadline("2026-12-06 05:00:00") == "2026-12-06 05:00:00"
    assert deadline("") == ""
    with pytest.raises(ValueError, match="YYYY-MM-DD HH:MM:SS"):
        deadline("2026-12-06T05:00:00")


# -- against a real nsqd ---------------------------------------------------------------------------


def pnsq_bench(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pnsq", "bench", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def measured(stderr: str, program: str) -> int:
    """The message count behind the printed figures (ops/s times the duration)."""
    match = RESULT.search(stderr)
    assert match is not None, stderr
    assert match["program"] == program
    assert match.end() == len(stderr.rstrip("\n")), "the result is the last line"
    return round(float(match["ops"]) * parse_duration(match["duration"]))


def channel_stats(address: str, topic: str, channel: str) -> dict[str, Any]:
    query = {"format": "json", "topic": topic, "channel": channel}
    document = httpx.get(f"http://{address}/stats", params=query, timeout=10).json()
    stats: dict[str, Any] = document["topics"][0]
    stats["channel"] = document["topics"][0]["channels"][0]
    return stats


@pytest.mark.timeout(120)
def test_pub_count_is_what_nsqd_took_and_sub_count_is_what_it_saw_finished() -> None:
    nsqd = ThreadedNSQD(http_address="127.0.0.1:0").start()
    try:
        http = nsqd.inspect(lambda d: "{}:{}".format(*d.http_address))
        nsqd.inspect(lambda d: d.get_topic("bench").get_channel("ch", d.now()))
        common = [f"--nsqd-tcp-address={nsqd.address}", "--topic=bench", "--runfor=1s"]
        pub = pnsq_bench("pub", *common, "--size=100", "--batch-size=50", "--connections=3")
        assert pub.returncode == 0, pub.stderr
        published = measured(pub.stderr, "bench_writer")
        assert published > 0
        assert published % 50 == 0  # whole batches
        assert channel_stats(http, "bench", "ch")["message_count"] == published

        sub = pnsq_bench("sub", *common, "--channel=ch", "--rdy=100")
        assert sub.returncode == 0, sub.stderr
        consumed = measured(sub.stderr, "bench_reader")
        c = channel_stats(http, "bench", "ch")["channel"]
        finished = c["message_count"] - c["depth"] - c["in_flight_count"] - c["deferred_count"]
        assert consumed > 0
        assert consumed == finished
        assert c["timeout_count"] == 0
    finally:
        nsqd.stop()


def test_a_past_deadline_starts_at_once_and_says_so() -> None:
    nsqd = ThreadedNSQD().start()
    try:
        done = pnsq_bench("pub", f"--nsqd-tcp-address={nsqd.address}", "--runfor=10ms",
                          "--deadline=2001-02-03 04:05:06")  # fmt: skip
    finally:
        nsqd.stop()
    assert done.returncode == 0, done.stderr
    assert "[bench_writer] " in done.stderr
    assert "sleeping until 2001-02-03 04:05:06 +0000 UTC (-" in done.stderr
    assert measured(done.stderr, "bench_writer") > 0


def start_bench(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pnsq", "bench", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(predicate: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def published(nsqd: NSQD) -> int:
    topic = nsqd.topics.get("sub_bench")
    return 0 if topic is None else topic.message_count


def test_ctrl_c_ends_the_run_early_and_still_prints_the_figures() -> None:
    nsqd = ThreadedNSQD().start()
    try:
        bench = start_bench("pub", f"--nsqd-tcp-address={nsqd.address}", "--runfor=60s")
        try:
            wait_until(lambda: nsqd.inspect(published))
            bench.send_signal(signal.SIGINT)
            _, stderr = bench.communicate(timeout=30)
        finally:
            bench.kill()
            bench.wait(10)
        count = nsqd.inspect(published)
    finally:
        nsqd.stop()
    assert bench.returncode == 0, stderr
    assert measured(stderr, "bench_writer") == count
    match = RESULT.search(stderr)
    assert match is not None
    assert parse_duration(match["duration"]) < 30


def test_sub_connects_before_the_deadline_and_ctrl_c_meanwhile_exits_130() -> None:
    nsqd = ThreadedNSQD().start()
    try:
        bench = start_bench("sub", f"--nsqd-tcp-address={nsqd.address}", "--connections=3",
                            "--deadline=2999-01-01 00:00:00")  # fmt: skip
        try:
            assert bench.stderr is not None
            assert "sleeping until 2999-01-01 00:00:00 +0000 UTC" in bench.stderr.readline()
            clients = nsqd.inspect(lambda d: len(d.topics["sub_bench"].channels["ch"].clients))
            assert clients == 3  # subscribed, waiting with RDY 0, as bench_reader
            bench.send_signal(signal.SIGINT)
            _, stderr = bench.communicate(timeout=30)
        finally:
            bench.kill()
            bench.wait(10)
    finally:
        nsqd.stop()
    assert bench.returncode == 130
    assert "duration:" not in stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["pub", "--nsqd-tcp-address=127.0.0.1:1"],
            "pnsq bench pub: cannot connect to 127.0.0.1:1",
        ),
        (["pub", "--topic=bad topic!"], "invalid topic name 'bad topic!'"),
        (["sub", "--channel=bad channel"], "invalid channel name 'bad channel'"),
        (["sub", "--nsqd-tcp-address=127.0.0.1:1"], "pnsq bench sub: could not subscribe"),
        (["pub", "--size=0"], "invalid value for --size"),
        (["sub", "--deadline=tomorrow"], "invalid value for --deadline"),
        (["pub", "--connections=0"], "invalid value for --connections"),
    ],
)
def test_errors_are_one_line_and_exit_1(args: list[str], error: str) -> None:
    done = pnsq_bench(*args)
    assert done.returncode == 1
    assert error in done.stderr
    assert "Traceback" not in done.stderr
