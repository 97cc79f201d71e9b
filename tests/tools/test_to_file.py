"""``pnsq to-file`` against real pnsq nsqds: what reaches the files, when messages are FINed, how
files are named, rotated and moved, and that kill -9 of the tool loses nothing.

In-process tests run the tool's ``Archiver`` in the test's trio loop beside in-process nsqds;
the crash and signal tests run ``python -m pnsq to-file`` as a real process, stopped by its PID.
Output is read from every file under the output and work dirs; a gzip member cut off by a crash
is dropped (its messages were not FINed, so nsqd delivers them again).
"""

from __future__ import annotations

import collections
import gzip
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio
import trio.testing
from client.client_helpers import lookupd_http, tcp, wait_until

from pnsq.client import Producer
from pnsq.nsqd.nsqd import NSQD
from pnsq.tools import to_file
from pnsq.tools.to_file import Archiver
from pnsq.tools.to_file_files import FileSettings, TopicFiles, filename_template
from pnsq.tools.to_file_logger import TopicLogger
from pnsq.tools.to_file_options import ToFileOptions


def options(nsqd: NSQD, out: Path, **extra: Any) -> ToFileOptions:
    fields: dict[str, Any] = {
        "topics": ("t",),
        "nsqd_tcp_addresses": (tcp(nsqd),),
        "output_dir": str(out),
        "status_interval": 0.0,
        **extra,
    }
    return to_file.finish(ToFileOptions(**fields))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """The output dir (tmp_path also holds the nsqds' data)."""
    return tmp_path / "out"


@asynccontextmanager
async def archiving(opts: ToFileOptions) -> AsyncIterator[Archiver]:
    """The tool running in this loop; stopped as SIGTERM stops it when the block ends."""
    archiver = Archiver(opts)
    stop = anyio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(archiver.main, stop)
            yield archiver
            stop.set()


async def publish(nsqd: NSQD, bodies: list[bytes], topic: str = "t") -> None:
    async with Producer(tcp(nsqd)) as producer:
        for start in range(0, len(bodies), 100):
            await producer.multi_publish(topic, bodies[start : start + 100])


def depth_and_in_flight(nsqd: NSQD, topic: str = "t") -> tuple[int, int]:
    channel = nsqd.topics[topic].channels["nsq_to_file"]
    return channel.depth(), len(channel.in_flight)


def bodies(count: int, prefix: bytes = b"m") -> list[bytes]:
    return [prefix + b"%06d" % n for n in range(count)]


def files(*dirs: Path) -> list[Path]:
    return sorted(p for d in dirs if d.exists() for p in d.rglob("*") if p.is_file())


def gunzip_synced(data: bytes) -> bytes:
    """The complete gzip members of ``data``: what a crash left readable."""
    out = []
    while data:
        member = zlib.decompressobj(31)
        try:
            text = member.decompress(data)
        except zlib.error:
            break
        if not member.eof:
            break
        out.append(text)
        data = member.unused_data
    return b"".join(out)


def lines(*dirs: Path) -> list[bytes]:
    found: list[bytes] = []
    for path in files(*dirs):
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gunzip_synced(data)
        found.extend(data.splitlines())
    return found


# -- in process -----------------------------------------------------------------------------


async def test_messages_reach_the_file_in_order_and_are_fined_only_after_fsync(
    make_nsqd: Any, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd = await make_nsqd()
    release, holding = threading.Event(), threading.Event()

    def held_fsync(fd: int) -> None:
        holding.set()
        release.wait(20)
        os.fsync(fd)

    monkeypatch.setattr(TopicFiles, "fsync", staticmethod(held_fsync))
    sent = bodies(300)
    await publish(nsqd, sent)
    async with archiving(options(nsqd, out)) as archiver:
        await wait_until(holding.is_set)
        # written, not yet fsynced: nsqd must still count every message as its own
        assert sum(depth_and_in_flight(nsqd)) == 300
        assert archiver.written() == 0
        release.set()
        await wait_until(lambda: depth_and_in_flight(nsqd) == (0, 0))
    assert lines(out) == sent
    [path] = files(out)
    assert path.name.startswith("t.")
    assert path.name.endswith(".log")


async def test_rotate_size_starts_a_new_file_once_one_grows_past_the_size(
    make_nsqd: Any, out: Path
) -> None:
    nsqd = await make_nsqd()
    sent = bodies(400)  # 8 bytes a line
    async with archiving(options(nsqd, out, rotate_size=1000, max_in_flight=50)):
        await publish(nsqd, sent)
        await wait_until(lambda: depth_and_in_flight(nsqd) == (0, 0))
    written = files(out)
    assert len(written) >= 3
    assert all(p.stat().st_size > 1000 for p in written[:-1])
    assert [p.name.split(".")[1][-7:] for p in written[:2]] == ["-000000", "-000001"]
    assert lines(out) == sent


async def test_rotate_interval_moves_finished_files_from_the_work_dir_to_the_output_dir(
    make_nsqd: Any, tmp_path: Path
) -> None:
    nsqd = await make_nsqd()
    out, work = tmp_path / "out", tmp_path / "work"
    opts = options(nsqd, out, work_dir=str(work), rotate_interval=0.3)
    async with archiving(opts):
        await publish(nsqd, bodies(10, b"a"))
        await wait_until(lambda: len(files(out)) >= 1)
        await publish(nsqd, bodies(10, b"b"))
        await wait_until(lambda: len(files(out)) >= 2)
    assert files(work) == []
    assert sorted(lines(out)) == bodies(10, b"a") + bodies(10, b"b")


async def test_gzip_output_decompresses_to_exactly_what_was_published_after_every_sync(
    make_nsqd: Any, out: Path
) -> None:
    nsqd = await make_nsqd()
    sent = bodies(2000)
    async with archiving(options(nsqd, out, gzip=True, max_in_flight=100)):
        await publish(nsqd, sent)
        await wait_until(lambda: depth_and_in_flight(nsqd) == (0, 0))
        [path] = files(out)  # still open: every synced batch is a complete gzip member
        assert gzip.decompress(path.read_bytes()).splitlines() == sent
    assert path.name.endswith(".log.gz")
    assert gzip.decompress(path.read_bytes()).splitlines() == sent


async def test_filename_format_placeholders_are_filled(make_nsqd: Any, out: Path) -> None:
    nsqd = await make_nsqd()
    opts = options(
        nsqd,
        out,
        filename_format="<TOPIC>/<HOST>-<PID>-<DATETIME><REV>.txt",
        host_identifier="box-<SHORT_HOST>",
        datetime_format="%Y",
        rotate_size=10_000,
    )
    async with archiving(opts):
        await publish(nsqd, bodies(5))
        await wait_until(lambda: depth_and_in_flight(nsqd) == (0, 0))
    short = os.uname().nodename.split(".")[0]
    year = time.strftime("%Y")
    [path] = files(out)
    assert path.relative_to(out).as_posix() == f"t/box-{short}-{os.getpid()}-{year}-000000.txt"


def test_filename_template_drops_rev_only_when_nothing_needs_it() -> None:
    plain = FileSettings(output_dir="/o", work_dir="/o")
    assert filename_template("<TOPIC>.<HOST><REV>.log", "t", plain, hostname="a.b") == "t.a.log"
    zipped = FileSettings(output_dir="/o", work_dir="/o", gzip_level=6)
    assert filename_template("<TOPIC><REV>", "t", zipped, hostname="a") == "t<REV>.gz"
    with pytest.raises(ValueError, match="missing <REV>"):
        filename_template("<TOPIC>.log", "t", zipped)


def test_a_restart_never_appends_to_a_gzip_file_a_crash_left_behind(tmp_path: Path) -> None:
    settings = FileSettings(output_dir=str(tmp_path), work_dir=str(tmp_path), gzip_level=6)
    template = filename_template("<TOPIC><REV>.log", "t", settings)
    crashed = TopicFiles(template, settings)
    crashed.sync(b"one\n")
    assert crashed.fd is not None
    os.write(crashed.fd, b"\x1f\x8b\x08")  # the start of a member the crash cut off
    restarted = TopicFiles(template, settings)
    restarted.sync(b"two\n", close=True)
    assert [p.name for p in files(tmp_path)] == ["t-000000.log.gz", "t-000001.log.gz"]
    assert gunzip_synced((tmp_path / "t-000000.log.gz").read_bytes()) == b"one\n"
    assert gzip.decompress((tmp_path / "t-000001.log.gz").read_bytes()) == b"two\n"
    os.close(crashed.fd)


async def test_topic_pattern_picks_up_a_matching_topic_created_later(
    make_nsqd: Any, make_lookupd: Any, out: Path
) -> None:
    lookupd = await make_lookupd()
    nsqd = await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),))
    opts = options(
        nsqd,
        out,
        topics=(),
        nsqd_tcp_addresses=(),
        lookupd_http_addresses=(lookupd_http(lookupd),),
        topic_pattern="^keep",
        topic_refresh=0.1,
    )
    async with archiving(opts) as archiver:
        await publish(nsqd, [b"skipped"], topic="other")
        await publish(nsqd, [b"kept"], topic="keep_later")
        await wait_until(lambda: lines(out) == [b"kept"])
        assert set(archiver.loggers) == {"keep_later"}
    assert [p.name.split(".")[0] for p in files(out)] == ["keep_later"]


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"gzip_level": 10}, "invalid --gzip-level value (10), should be 1-9"),
        ({"topics": ()}, "--topic or --topic-pattern required"),
        ({"topics": (), "topic_pattern": "x"}, "--lookupd-http-address must be specified"),
        ({"gzip": True, "filename_format": "<TOPIC>.log"}, "missing <REV> in --filename-format"),
        ({"topic_pattern": "("}, "invalid --topic-pattern"),
        ({"topics": ("no spaces",)}, "invalid --topic name 'no spaces'"),
        ({"channel": "a/b"}, "invalid --channel name 'a/b'"),
        ({"nsqd_tcp_addresses": ()}, "--nsqd-tcp-address or --lookupd-http-address required"),
    ],
)
def test_bad_flags_are_one_line_and_exit_1(
    extra: dict[str, Any], why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = {"topics": ("t",), "nsqd_tcp_addresses": ("127.0.0.1:1",), **extra}
    assert to_file.run(ToFileOptions(**fields)) == 1
    assert why in capsys.readouterr().err


# -- as a process ---------------------------------------------------------------------------


def start_tool(
    nsqd: NSQD, out: Path, work: Path, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "pnsq", "to-file", "--topic=t", f"--nsqd-tcp-address={tcp(nsqd)}",
        f"--output-dir={out}", f"--work-dir={work}", "--status-interval=0s", "--max-in-flight=500",
        *extra,
    ]  # fmt: skip
    with log.open("ab") as err:
        return subprocess.Popen(argv, stderr=err)


async def stop_tool(proc: subprocess.Popen[bytes], signum: int) -> int:
    if proc.poll() is None:
        os.kill(proc.pid, signum)
    with trio.fail_after(30):
        return await trio.to_thread.run_sync(proc.wait)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("extra", [(), ("--gzip",)], ids=["plain", "gzip"])
async def test_kill_9_mid_stream_and_restart_loses_no_message(
    make_nsqd: Any, tmp_path: Path, extra: tuple[str, ...]
) -> None:
    nsqd = await make_nsqd(msg_timeout=2.0)
    out, work, log = tmp_path / "out", tmp_path / "work", tmp_path / "tool.log"
    sent = bodies(20_000)
    first = start_tool(nsqd, out, work, log, *extra)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(publish, nsqd, sent)
            with trio.fail_after(60):
                while len(lines(out, work)) < 5000:
                    assert first.poll() is None, log.read_text()
                    await trio.sleep(0.01)  # another process's files, polled under a deadline
            os.kill(first.pid, signal.SIGKILL)
            await trio.to_thread.run_sync(first.wait)
        second = start_tool(nsqd, out, work, log, *extra)
        try:
            await wait_until(lambda: depth_and_in_flight(nsqd) == (0, 0), 120)
        finally:
            assert await stop_tool(second, signal.SIGTERM) == 0, log.read_text()
    finally:
        await stop_tool(first, signal.SIGKILL)
    seen = collections.Counter(lines(out, work))
    missing = [body for body in sent if body not in seen]
    duplicates = sum(seen[body] - 1 for body in sent if seen[body] > 1)
    assert not missing, f"{len(missing)} missing (first {missing[:3]}), {duplicates} duplicates"


async def test_sigterm_finishes_every_batch_moves_files_and_exits_0(
    make_nsqd: Any, tmp_path: Path
) -> None:
    nsqd = await make_nsqd()
    out, work, log = tmp_path / "out", tmp_path / "work", tmp_path / "tool.log"
    sent = bodies(3000)
    tool = start_tool(nsqd, out, work, log, "--sync-interval=1h")
    try:
        await publish(nsqd, sent)
        await wait_until(lambda: len(lines(work)) == len(sent))
    finally:
        assert await stop_tool(tool, signal.SIGTERM) == 0, log.read_text()
    assert files(work) == []
    assert lines(out) == sent
    assert depth_and_in_flight(nsqd) == (0, 0)


async def test_sighup_closes_the_current_file_into_the_output_dir_and_keeps_going(
    make_nsqd: Any, tmp_path: Path
) -> None:
    nsqd = await make_nsqd()
    out, work, log = tmp_path / "out", tmp_path / "work", tmp_path / "tool.log"
    tool = start_tool(nsqd, out, work, log)
    try:
        await publish(nsqd, bodies(10, b"a"))
        await wait_until(lambda: len(lines(work)) == 10)
        os.kill(tool.pid, signal.SIGHUP)
        await wait_until(lambda: files(work) == [] and len(lines(out)) == 10)
        await publish(nsqd, bodies(10, b"b"))
        await wait_until(lambda: len(lines(work)) == 10)
    finally:
        assert await stop_tool(tool, signal.SIGTERM) == 0, log.read_text()
    first, second = files(out)
    assert first.read_bytes().splitlines() == bodies(10, b"a")
    assert second.read_bytes().splitlines() == bodies(10, b"b")


async def test_an_unwritable_output_dir_is_one_line_exit_1_and_nothing_is_fined(
    make_nsqd: Any, tmp_path: Path
) -> None:
    nsqd = await make_nsqd()
    not_a_dir, log = tmp_path / "file", tmp_path / "tool.log"
    not_a_dir.write_text("")
    tool = start_tool(nsqd, not_a_dir / "out", not_a_dir / "out", log)
    try:
        await publish(nsqd, [b"kept"])
        with trio.fail_after(30):
            code = await trio.to_thread.run_sync(tool.wait)
    finally:
        await stop_tool(tool, signal.SIGKILL)
    assert code == 1
    assert log.read_text().startswith("pnsq to-file: [Errno 20] Not a directory")
    assert sum(depth_and_in_flight(nsqd)) == 1


@pytest.mark.parametrize(("skip_empty", "expected"), [(False, 1), (True, 0)])
async def test_a_sync_tick_without_messages_opens_an_empty_file_unless_skip_empty_files(
    autojump_clock: trio.testing.MockClock, out: Path, skip_empty: bool, expected: int
) -> None:
    settings = FileSettings(output_dir=str(out), work_dir=str(out), skip_empty_files=skip_empty)
    files_ = TopicFiles(filename_template("<TOPIC>.log", "t", settings), settings)
    logger = TopicLogger(files_, max_in_flight=10, sync_interval=30.0, clock=trio.current_time)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(logger.run)
        await trio.sleep(29)
        assert files(out) == []
        await trio.sleep(2)  # past NSQ's ticker: rotation "due" for a file never opened
        nursery.cancel_scope.cancel()
    assert len(files(out)) == expected
    await logger.aclose()


class FakeMessage:
    def __init__(self, body: bytes) -> None:
        self.body, self.finished = body, False

    def disable_auto_response(self) -> None:
        pass

    def finish(self) -> None:
        self.finished = True


async def test_the_tail_of_a_burst_is_synced_when_the_topic_goes_quiet_not_at_the_tick(
    out: Path,
) -> None:
    settings = FileSettings(output_dir=str(out), work_dir=str(out))
    files_ = TopicFiles(filename_template("<TOPIC>.log", "t", settings), settings)
    logger = TopicLogger(files_, max_in_flight=200, sync_interval=30.0, clock=trio.current_time)
    burst = [FakeMessage(b) for b in bodies(3)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(logger.run)
        started = trio.current_time()
        for message in burst:
            await logger.handle(message)  # type: ignore[arg-type]
        await trio.sleep(0.02)
        assert not any(m.finished for m in burst)  # the burst may go on: no fsync yet
        await wait_until(lambda: all(m.finished for m in burst), 5)
        assert trio.current_time() - started < 5  # the 30 s tick did not do it
        assert lines(out) == bodies(3)
        nursery.cancel_scope.cancel()
    await logger.aclose()


@pytest.mark.parametrize("max_in_flight", [1, 3, 200])
async def test_two_topics_from_two_nsqds_each_get_their_file_whatever_max_in_flight(
    make_nsqd: Any, out: Path, max_in_flight: int
) -> None:
    nsqds = [await make_nsqd(), await make_nsqd()]
    opts = options(
        nsqds[0],
        out,
        topics=("a", "b"),
        nsqd_tcp_addresses=tuple(tcp(n) for n in nsqds),
        max_in_flight=max_in_flight,
        sync_interval=3600.0,
        # with RDY below the connection count, RDY moves to an idle nsqd's neighbour sooner
        consumer_opts=("low_rdy_idle_timeout,200ms", "rdy_redistribute_interval,100ms"),
    )
    async with archiving(opts):
        for n, nsqd in enumerate(nsqds):
            await publish(nsqd, bodies(200, b"a%d-" % n), topic="a")
            await publish(nsqd, bodies(200, b"b%d-" % n), topic="b")
        await wait_until(
            lambda: all(depth_and_in_flight(n, t) == (0, 0) for n in nsqds for t in "ab"), 30
        )
    a, b = files(out)
    assert sorted(a.read_bytes().splitlines()) == bodies(200, b"a0-") + bodies(200, b"a1-")
    assert sorted(b.read_bytes().splitlines()) == bodies(200, b"b0-") + bodies(200, b"b1-")


def test_appending_after_a_cut_off_line_starts_on_a_new_line(tmp_path: Path) -> None:
    settings = FileSettings(output_dir=str(tmp_path), work_dir=str(tmp_path))
    (tmp_path / "t.log").write_bytes(b"m000001\nm0000")  # a write a kill -9 cut short
    TopicFiles(filename_template("<TOPIC>.log", "t", settings), settings).sync(b"m000002\n")
    assert (tmp_path / "t.log").read_bytes().splitlines() == [b"m000001", b"m0000", b"m000002"]
