"""``pnsq pub``: lines in, messages out -- as a process against in-process nsqds, plus its
line splitting, batching and throttle on their own."""

from __future__ import annotations

import collections
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import trio
import trio.testing
from lookup_helpers import until
from tail_pub_helpers import DEADLINE, MakeNSQD, address, depth, pnsq, run, stderr_lines

from pnsq.client import ProducerPool
from pnsq.tools.pub import BATCH_MESSAGES, Publisher, PubOptions, Splitter, Throttle, batches


def lines(count: int, prefix: str = "line") -> list[bytes]:
    return [b"%s %d %s" % (prefix.encode(), i, b"x" * (i % 50)) for i in range(count)]


async def tail_back(nsqd_address: str, topic: str, count: int) -> list[bytes]:
    """What ``pnsq tail -n count`` reads back: on a named channel, as an ephemeral one drops
    what is beyond --mem-queue-size (NSQ's behaviour)."""
    result = await run(
        [
            "tail",
            f"--topic={topic}",
            "--channel=check",
            f"--nsqd-tcp-address={nsqd_address}",
            f"-n={count}",
        ]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


async def test_pub_a_file_then_tail_it_back(make_nsqd: MakeNSQD, tmp_path: Path) -> None:
    nsqd = await make_nsqd()
    sent = lines(12_000)
    path = tmp_path / "input.txt"
    path.write_bytes(b"\n".join(sent[:6000]) + b"\n\n\n" + b"\n".join(sent[6000:]) + b"\n")
    result = await run(["pub", "--topic=events", f"--nsqd-tcp-address={address(nsqd)}", str(path)])
    assert result.returncode == 0, result.stderr
    assert "published 12,000 lines" in stderr_lines(result)[-1]
    assert depth(nsqd, "events") == 12_000  # the empty lines were skipped, nothing sent twice
    received = await tail_back(address(nsqd), "events", 12_000)
    assert collections.Counter(received) == collections.Counter(sent)


async def test_delimiter_splits_and_a_last_unterminated_line_is_sent(make_nsqd: MakeNSQD) -> None:
    nsqd = await make_nsqd()
    result = await run(
        ["pub", "--topic=t", "--delimiter=,", f"--nsqd-tcp-address={address(nsqd)}"],
        stdin=b"a,b b,,c\nd,e",
    )
    assert result.returncode == 0, result.stderr
    assert depth(nsqd, "t") == 4  # "a", "b b", "c\nd", "e": the empty one skipped
    assert sorted(await tail_back(address(nsqd), "t", 4)) == [b"a", b"b b", b"c", b"d", b"e"]


async def test_stdin_is_the_default_input(make_nsqd: MakeNSQD) -> None:
    nsqd = await make_nsqd()
    sent = lines(500)
    result = await run(
        ["pub", "--topic=t", f"--nsqd-tcp-address={address(nsqd)}"], stdin=b"\n".join(sent) + b"\n"
    )
    assert result.returncode == 0, result.stderr
    assert depth(nsqd, "t") == 500
    assert collections.Counter(await tail_back(address(nsqd), "t", 500)) == collections.Counter(
        sent
    )


async def test_lines_are_spread_over_several_nsqds(make_nsqd: MakeNSQD) -> None:
    nsqds = [await make_nsqd() for _ in range(3)]
    sent = lines(30_000)
    result = await run(
        ["pub", "--topic=t", *(f"--nsqd-tcp-address={address(n)}" for n in nsqds)],
        stdin=b"\n".join(sent),
    )
    assert result.returncode == 0, result.stderr
    depths = [depth(n, "t") for n in nsqds]
    assert sum(depths) == 30_000
    assert all(d > 0 for d in depths), depths


async def test_a_dead_nsqd_is_failed_over(make_nsqd: MakeNSQD) -> None:
    alive, dead = await make_nsqd(), await make_nsqd()
    dead_address = address(dead)
    dead.stop()
    await until(lambda: not _accepts(dead_address))
    result = await run(
        [
            "pub",
            "--topic=t",
            f"--nsqd-tcp-address={dead_address}",
            f"--nsqd-tcp-address={address(alive)}",
        ],
        stdin=b"\n".join(lines(20_000)),
    )
    assert result.returncode == 0, result.stderr
    assert depth(alive, "t") == 20_000


async def test_no_nsqd_answering_exits_1_with_the_count() -> None:
    nowhere = f"127.0.0.1:{_free_port()}"
    result = await run(
        ["pub", "--topic=t", f"--nsqd-tcp-address={nowhere}"], stdin=b"\n".join(lines(1000))
    )
    assert result.returncode == 1
    assert "1,000 of 1,000 lines were not acknowledged" in stderr_lines(result)[-1]


async def test_sigint_waits_for_batches_in_flight_and_says_how_many_were_sent(
    make_nsqd: MakeNSQD,
) -> None:
    """Lines typed slowly go out as they come; Ctrl-C before the end of the input: exit 1."""
    nsqd = await make_nsqd()
    with trio.fail_after(DEADLINE):
        process = await trio.lowlevel.open_process(
            pnsq("pub", "--topic=t", f"--nsqd-tcp-address={address(nsqd)}"),
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdin is not None
        assert process.stderr is not None
        await process.stdin.send_all(b"one\ntwo\nthree\n")
        await until(lambda: depth(nsqd, "t") == 3, DEADLINE)
        process.send_signal(signal.SIGINT)
        stderr = b"".join([data async for data in process.stderr])
        assert await process.wait() == 1
        await process.stdin.aclose()
    assert "interrupted before the end of the input: published 3 lines" in stderr.decode()


async def test_rate_throttles_a_real_run(make_nsqd: MakeNSQD) -> None:
    """An upper bound only: a slow machine may publish fewer, never more."""
    nsqd = await make_nsqd()
    with trio.fail_after(DEADLINE):
        started = trio.current_time()
        process = await trio.lowlevel.open_process(
            pnsq("pub", "--topic=t", "--rate=20", f"--nsqd-tcp-address={address(nsqd)}"),
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdin is not None
        assert process.stderr is not None
        await process.stdin.send_all(b"\n".join(lines(1000)) + b"\n")
        await until(lambda: depth(nsqd, "t") >= 10, DEADLINE)
        process.send_signal(signal.SIGINT)
        stderr = b"".join([data async for data in process.stderr]).decode()
        assert await process.wait() == 1
        elapsed = trio.current_time() - started
        await process.stdin.aclose()
    sent = int(re.search(r"published ([\d,]+) lines", stderr).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert sent == depth(nsqd, "t")
    assert 10 <= sent <= 20 * elapsed + 2  # one batch is 20 // 10 = 2 lines


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--nsqd-tcp-address=127.0.0.1:4150"], "--topic required"),
        (["--topic=t"], "--nsqd-tcp-address required"),
        (["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--delimiter=ab"], "single byte"),
        (["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--rate=-1"], "--rate"),
        (
            ["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--producer-opt=max_in_flight,5"],
            "consumers",
        ),
        (["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--input=/no/such/file"], "/no/such/file"),
        (["--topic=bad topic", "--nsqd-tcp-address=127.0.0.1:1"], "invalid topic"),
        (["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--input=a", "b"], "not both"),
    ],
)
def test_bad_flags_exit_1_with_one_line(args: list[str], why: str) -> None:
    result = subprocess.run(pnsq("pub", *args), capture_output=True, timeout=DEADLINE, input=b"")
    assert result.returncode == 1
    assert len(stderr_lines(result)) == 1, result.stderr
    assert why in stderr_lines(result)[0]


# -- the pieces ------------------------------------------------------------------------------


def test_splitter_keeps_a_line_cut_between_reads_and_skips_empty_lines() -> None:
    splitter = Splitter(b"\n")
    assert splitter.feed(b"one\ntw") == [b"one"]
    assert splitter.feed(b"o\n\n\nthr") == [b"two"]
    assert splitter.feed(b"ee") == []
    assert splitter.end() == [b"three"]
    assert splitter.end() == []


def test_batches_are_bounded_by_count_and_by_bytes() -> None:
    small = [b"x"] * 25
    assert [len(b) for b in batches(small, 10, 25, 1 << 20)] == [10, 10, 5]
    big = [b"y" * 400] * 10
    cut = list(batches(big, 100, 4000, 1000))  # 2 lines of 404 encoded bytes fit in 1000
    assert [len(b) for b in cut] == [2, 2, 2, 2, 2]
    assert [line for b in cut for line in b] == big


async def test_batches_are_full_size_unless_a_rate_asks_for_a_tenth_of_a_second() -> None:
    def batch(rate: int) -> int:
        return Publisher(ProducerPool(["127.0.0.1:1"]), PubOptions(topic="t", rate=rate)).batch

    assert batch(0) == BATCH_MESSAGES
    assert (batch(5), batch(20), batch(1000), batch(10**9)) == (1, 2, 100, BATCH_MESSAGES)


async def test_throttle_spaces_batches_by_the_rate(autojump_clock: trio.testing.MockClock) -> None:
    throttle, times = Throttle(10), []
    for _ in range(5):
        await throttle.wait(5)  # half a second's worth each
        times.append(trio.current_time())
    assert [round(t - times[0], 6) for t in times] == [0.0, 0.5, 1.0, 1.5, 2.0]
    unlimited = Throttle(0)
    before = trio.current_time()
    for _ in range(1000):
        await unlimited.wait(1000)
    assert trio.current_time() == before


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _accepts(address_text: str) -> bool:
    host, port = address_text.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True
