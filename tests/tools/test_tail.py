"""``pnsq tail`` as a process: what it prints, how it stops, what it leaves on nsqd."""

from __future__ import annotations

import collections
import signal
import subprocess

import pytest
import trio
from lookup_helpers import MakeLookupd
from lookup_helpers import until as wait_until
from tail_pub_helpers import DEADLINE, MakeNSQD, address, pnsq, publish, run, stderr_lines


def bodies(prefix: str, count: int) -> list[bytes]:
    return [b"%s-%d" % (prefix.encode(), i) for i in range(count)]


async def test_n_prints_exactly_n_messages_and_requeues_the_rest(make_nsqd: MakeNSQD) -> None:
    nsqd = await make_nsqd()
    sent = bodies("m", 700)
    await publish(nsqd, "events", sent)
    result = await run(
        [
            "tail",
            "--topic=events",
            "--channel=archive",
            "-n",
            "500",
            "--nsqd-tcp-address",
            address(nsqd),
        ]
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    assert len(printed) == 500
    assert len(set(printed)) == 500
    assert set(printed) <= set(sent)
    channel = nsqd.topics["events"].channels["archive"]
    # the messages beyond -n that were already delivered went back, none stays in flight
    await wait_until(lambda: len(channel.in_flight) == 0 and channel.depth() == 200)


async def test_ephemeral_channel_prints_every_body_once(make_nsqd: MakeNSQD) -> None:
    nsqd = await make_nsqd()
    sent = [b"line with spaces", b'{"json": true}', *bodies("x", 998)]
    await publish(nsqd, "events", sent)
    result = await run(
        ["tail", "--topic=events", f"--nsqd-tcp-address={address(nsqd)}", "--n=1000"]
    )
    assert result.returncode == 0, result.stderr
    assert collections.Counter(result.stdout.splitlines()) == collections.Counter(sent)
    await wait_until(lambda: not nsqd.topics["events"].channels)  # ephemeral: gone with tail


async def test_two_topics_with_print_topic(make_nsqd: MakeNSQD) -> None:
    nsqd = await make_nsqd()
    await publish(nsqd, "a", [b"1", b"2", b"3"])
    await publish(nsqd, "b", [b"4", b"5"])
    result = await run(
        [
            "tail",
            "--topic=a",
            "-topic=b",
            "--print-topic",
            "-n=5",
            "--nsqd-tcp-address",
            address(nsqd),
        ]
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [b"a | 1", b"a | 2", b"a | 3", b"b | 4", b"b | 5"]


async def test_finds_nsqds_through_lookupd(make_nsqd: MakeNSQD, make_lookupd: MakeLookupd) -> None:
    lookupd = await make_lookupd()
    assert lookupd.tcp_address is not None
    lookupd_tcp = "{}:{}".format(*lookupd.tcp_address)
    nsqds = [await make_nsqd(nsqlookupd_tcp_addresses=(lookupd_tcp,)) for _ in range(2)]
    await publish(nsqds[0], "orders", bodies("one", 50))
    await publish(nsqds[1], "orders", bodies("two", 50))
    assert lookupd.http_address is not None
    http = "{}:{}".format(*lookupd.http_address)
    await wait_until(lambda: len(lookupd.db.topics.get("orders", {})) == 2)
    result = await run(["tail", "--topic=orders", f"--lookupd-http-address={http}", "-n", "100"])
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(bodies("one", 50) + bodies("two", 50))


async def test_sigterm_mid_stream_exits_0_and_leaves_nothing_in_flight(
    make_nsqd: MakeNSQD,
) -> None:
    nsqd = await make_nsqd()
    published = 0
    stop_publishing = trio.Event()

    async def keep_publishing() -> None:
        nonlocal published
        while not stop_publishing.is_set():
            await publish(nsqd, "stream", bodies(f"b{published}", 20))
            published += 20
            await trio.sleep(0.005)  # pacing the stream, not waiting for a condition

    args = ["tail", "--topic=stream", "--channel=watch", "--max-in-flight=50"]
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_publishing)
            process = await trio.lowlevel.open_process(
                pnsq(*args, f"--nsqd-tcp-address={address(nsqd)}"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert process.stdout is not None
            output = bytearray()
            while output.count(b"\n") < 100:
                output += await process.stdout.receive_some()
            process.send_signal(signal.SIGTERM)
            async for data in process.stdout:
                output += data
            assert await process.wait() == 0
            stop_publishing.set()
    printed = bytes(output).splitlines()
    channel = nsqd.topics["stream"].channels["watch"]
    await wait_until(lambda: len(channel.in_flight) == 0)
    assert len(set(printed)) == len(printed)
    assert len(printed) + channel.depth() == published  # printed, or still queued: none lost


async def test_a_closed_stdout_requeues_what_was_not_written(make_nsqd: MakeNSQD) -> None:
    nsqd = await make_nsqd()
    await publish(nsqd, "events", bodies("m", 300))
    with trio.fail_after(DEADLINE):
        process = await trio.lowlevel.open_process(
            pnsq("tail", "--topic=events", "--channel=c", f"--nsqd-tcp-address={address(nsqd)}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        await process.stdout.aclose()  # as ``| head`` does once it has its lines
        stderr = b"".join([data async for data in process.stderr])
        assert await process.wait() == 0
    assert stderr == b""
    channel = nsqd.topics["events"].channels["c"]
    await wait_until(lambda: len(channel.in_flight) == 0)
    assert channel.depth() == 300  # nothing was printed, so nothing was finished


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--nsqd-tcp-address=127.0.0.1:4150"], "--topic required"),
        (["--topic=t"], "--nsqd-tcp-address or --lookupd-http-address required"),
        (
            ["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--lookupd-http-address=127.0.0.1:1"],
            "not both",
        ),
        (
            ["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--max-in-flight=lots"],
            "--max-in-flight",
        ),
        (["--topic=t", "--nsqd-tcp-address=nowhere"], "--nsqd-tcp-address"),
        (["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--consumer-opt=bogus,1"], "bogus"),
        (["--topic=not valid!", "--nsqd-tcp-address=127.0.0.1:1"], "invalid topic"),
        (["--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--no-such-flag"], "no-such-flag"),
    ],
)
def test_bad_flags_exit_1_with_one_line(args: list[str], why: str) -> None:
    result = subprocess.run(pnsq("tail", *args), capture_output=True, timeout=DEADLINE)
    assert result.returncode == 1
    lines = stderr_lines(result)
    assert len(lines) == 1, lines
    assert why in lines[0]
    assert result.stdout == b""
