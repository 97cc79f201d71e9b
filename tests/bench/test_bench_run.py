"""bench/run.py, the one-command benchmark: its figures are counts nsqd agrees with.

Each run is short (a fraction of a second per phase) against a real ``pnsq nsqd`` subprocess;
the phases themselves read nsqd's ``/stats`` after each load, and these tests hold them to it.
They check the benchmark's bookkeeping, never a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
# bench/ is a directory of scripts importing each other by plain names; it is on sys.path only
# while these imports run, so that bench/client.py cannot shadow the tests' own ``client``
sys.path.insert(0, str(BENCH))
try:
    from latency import Samples, merged, percentile
    from run import exit_status, parse_phases
finally:
    sys.path.remove(str(BENCH))


def bench_run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(BENCH / "run.py"), "--no-pin", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def bench_json(*args: str) -> dict[str, Any]:
    done = bench_run("--json", *args)
    assert done.returncode == 0, done.stderr + done.stdout
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_samples_keep_an_even_spread_once_full() -> None:
    samples = Samples(capacity=8)
    for value in range(100):
        samples.add(float(value))
    kept = merged([samples.to_bytes()])
    assert 4 <= len(kept) <= 8
    assert kept[0] < 20
    assert kept[-1] > 80


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.99) == 0.0


def test_consume_brings_publish_and_unknown_phases_are_refused() -> None:
    assert parse_phases("consume") == ["publish", "consume"]
    assert parse_phases("memory,pub") == ["pub", "memory"]
    done = bench_run("--phases", "publish,warp")
    assert done.returncode == 2
    assert "unknown phase(s) warp" in done.stderr


def test_strict_exit_status_is_3_only_for_a_missed_target() -> None:
    ok = {"pnsq": {"failures": [], "verdicts": {"idle_rss": {"passed": True}}}}
    missed = {"pnsq": {"failures": [], "verdicts": {"idle_rss": {"passed": False}}}}
    failed = {"pnsq": {"failures": ["pub: boom"], "verdicts": {}}}
    slow = {"pub": {"passed": False}}
    assert exit_status(ok, {}, strict=True) == 0
    assert exit_status(missed, {}, strict=False) == 0
    assert exit_status(missed, {}, strict=True) == 3
    assert exit_status(ok, slow, strict=True) == 3
    assert exit_status(failed, {}, strict=True) == 1


@pytest.mark.timeout(90)
def test_throughput_phases_count_what_nsqd_took() -> None:
    phases = "publish,consume,pub,http-pub,http-pub-close,http-mpub,http-mpub-close"
    report = bench_json("--phases", phases, "--runfor", "0.4s", "--http-connections", "4")
    result = report["results"]["pnsq"]
    assert result["failures"] == []
    assert result["warnings"] == []
    details = {name: phase["detail"] for name, phase in result["phases"].items()}
    for name in ("publish", "pub", "http-pub", "http-pub-close"):
        assert details[name]["count"] > 0, name
        assert details[name]["count"] == details[name]["nsqd_count"], name
    for name in ("http-mpub", "http-mpub-close"):
        assert details[name]["count"] * 200 == details[name]["nsqd_count"], name
    assert details["consume"]["count"] == details["consume"]["nsqd_count"]  # FINs nsqd saw
    assert set(result["figures"]) >= {"publish", "consume", "pub", "http_pub", "idle_rss"}
    assert result["latency_ms"]["pub"][1] >= result["latency_ms"]["pub"][0] > 0


@pytest.mark.timeout(90)
def test_durable_acks_survive_kill_9_and_memory_phases_report_rss() -> None:
    args = ("--phases", "durable,backlog,memory", "--runfor", "0.4s")
    report = bench_json(*args, "--backlog", "20000", "--held", "20000")
    result = report["results"]["pnsq"]
    assert result["failures"] == []
    assert result["warnings"] == []
    durable = result["phases"]["durable"]["detail"]
    assert durable["count"] > 0
    assert durable["held_after_kill9"] == durable["count"] == durable["nsqd_count"]
    assert result["figures"]["durable_lost"] == 0
    backlog = result["phases"]["backlog"]["detail"]
    assert backlog["published"] == backlog["depth"] == 20000
    assert backlog["backend_depth"] > 0  # beyond the memory queue, on disk
    assert 0 < result["figures"]["backlog_rss"] < 1024
    assert result["phases"]["memory"]["detail"]["payload_mib"] == pytest.approx(20000 * 200 / 2**20)
    assert result["figures"]["memory_ratio"] > 0


@pytest.mark.timeout(60)
def test_go_bin_runs_go_nsqd_beside_pnsq_and_prints_ratios(tmp_path: Path) -> None:
    stand_in = tmp_path / "nsqd"  # Go's nsqd is not installable here: pnsq under its name
    stand_in.write_text(f'#!/bin/sh\nexec {sys.executable} -m pnsq nsqd "$@"\n')
    stand_in.chmod(0o755)
    done = bench_run("--go-bin", str(tmp_path), "--phases", "pub", "--runfor", "0.3s")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "[Go] pub: pub: " in done.stdout
    assert "[pnsq] pub: pub: " in done.stdout
    table = done.stdout.split("Go nsqd beside pnsq")[1]
    row = next(line for line in table.splitlines() if "single PUB over TCP" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1].endswith("msg/s")
    assert cells[2].endswith("msg/s")
    assert cells[3].endswith("x")
    assert float(cells[3][:-1]) > 0
    assert cells[4] == ">= 0.5x"


def test_go_bin_without_nsqd_is_a_usage_error(tmp_path: Path) -> None:
    done = bench_run("--go-bin", str(tmp_path), "--phases", "pub")
    assert done.returncode == 2
    assert "no executable nsqd in" in done.stderr


@pytest.mark.timeout(60)
def test_generator_ceiling_runs_generators_against_the_fake_nsqd() -> None:
    only = "writer-2,reader-1,pub-8,http-pub-4,http-mpub-close-16"
    command = [sys.executable, str(BENCH / "generator_ceiling.py"), "--no-pin", "--json"]
    command += ["--only", only, "--runfor", "0.2s", "--fake-workers", "17"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=50, check=False)
    assert done.returncode == 0, done.stderr
    rows = {row["generator"]: row for row in json.loads(done.stdout)}
    assert list(rows) == only.split(",")
    for name, row in rows.items():
        assert row["failures"] == [], name
        assert row["errors"] == 0, name
        assert row["count"] > 0, name
    assert rows["http-mpub-close-16"]["batch"] == 200
    assert rows["pub-8"]["p99"] >= rows["pub-8"]["p50"] > 0
