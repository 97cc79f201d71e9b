"""nsqd's /debug pages over real sockets: the task tree names the daemon's own tasks (and a
connection's while a client is connected), the index and /debug/gc answer, and any other
/debug path is NSQ's 404."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from v2client import open_consumer

from pnsq.nsqd.nsqd import NSQD

TEXT = "text/plain; charset=utf-8"


@pytest.fixture
async def nsqd(make_nsqd: Any) -> NSQD:
    started: NSQD = await make_nsqd()  # with HTTP, unlike tests/nsqd/conftest.py's
    return started


async def task_lines(nsqd: NSQD, http: Any) -> list[str]:
    response = await http(nsqd.http_address, "GET", "/debug/tasks")
    assert (response.status, response.headers["content-type"]) == (200, TEXT)
    lines: list[str] = response.body.decode().splitlines()
    return lines


def count_of(lines: list[str], name: str) -> int:
    """How many tasks the tree's lines give ``name`` (the part after ``<count> ``), summed."""
    return sum(int(line.split()[0]) for line in lines if name in line)


async def test_tasks_shows_the_daemons_tasks_and_a_connections_while_it_lasts(
    nsqd: NSQD, http: Any
) -> None:
    assert nsqd.tcp_address is not None
    idle = await task_lines(nsqd, http)
    async with await open_consumer(nsqd.tcp_address, "t", "c"):
        busy = await task_lines(nsqd, http)
    after = await task_lines(nsqd, http)
    for lines in (idle, busy, after):
        total = int(lines[0].removeprefix("task tree: total "))
        assert total == sum(int(line.split()[0]) for line in lines[1:])
        assert count_of(lines, "<init>") == 1
        for task in ("Broker.run_timers", "Disk.run", "Drain.run", "LookupPeers.run"):
            assert count_of(lines, task) == 1, task
    for lines in (idle, after):
        assert count_of(lines, "ConnectionV2._receive") == 0
        assert count_of(lines, "ConnectionV2._write_loop") == 0
    [reader] = [line for line in busy if "ConnectionV2._receive" in line]
    [writer] = [line for line in busy if "ConnectionV2._write_loop" in line]
    # the writer is a child of the connection's task, one level deeper than the reader
    indent = len(reader) - len(reader.lstrip())
    assert len(writer) - len(writer.lstrip()) == indent + 2
    assert busy.index(writer) == busy.index(reader) + 1
    # one line per kind of task, however many there are: a second client folds into a count
    async with (
        await open_consumer(nsqd.tcp_address, "t", "c"),
        await open_consumer(nsqd.tcp_address, "t", "d"),
    ):
        # (polled: a writer caught mid-write waits elsewhere for a moment, a line of its own)
        with trio.fail_after(10):
            while True:
                two = await task_lines(nsqd, http)
                writers = [line for line in two if "ConnectionV2._write_loop" in line]
                if len(writers) == 1:
                    break
                await trio.sleep(0.01)
    assert writers[0].split()[0] == "2"


async def test_pprof_indexes_the_debug_pages_and_gc_reports_the_collector(
    nsqd: NSQD, http: Any
) -> None:
    index = await http(nsqd.http_address, "GET", "/debug/pprof")
    assert (index.status, index.headers["content-type"]) == (200, TEXT)
    for path in ("/debug/tasks", "/debug/gc", "/debug/freememory"):
        assert path in index.body.decode()
        response = await http(nsqd.http_address, "POST" if "free" in path else "GET", path)
        assert response.status == 200, path
    stats = (await http(nsqd.http_address, "GET", "/debug/gc")).json()
    assert len(stats["counts"]) == len(stats["thresholds"]) == len(stats["stats"]) == 3
    assert {"collections", "collected", "uncollectable"} <= set(stats["stats"][0])
    assert stats["rss_bytes"] > 1 << 20  # a Python process is never under a megabyte


@pytest.mark.parametrize(
    ("method", "target", "status", "message"),
    [
        ("GET", "/debug/nope", 404, "NOT_FOUND"),
        ("GET", "/debug/pprof/goroutine", 404, "NOT_FOUND"),
        ("GET", "/debug", 404, "NOT_FOUND"),
        ("POST", "/debug/tasks", 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_other_debug_paths_get_nsqs_errors(
    nsqd: NSQD, http: Any, method: str, target: str, status: int, message: str
) -> None:
    response = await http(nsqd.http_address, method, target)
    assert (response.status, response.json()) == (status, {"message": message})
