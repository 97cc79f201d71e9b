"""``pnsq stat``: nsq_stat's columns, summed over nodes, against real nsqds after a known workload."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
import trio
from lookup_helpers import MakeLookupd, until
from threaded_nsqd import ThreadedNSQD
from v2client import V2Client, open_consumer, wait_until

from pnsq.nsqd.nsqd import NSQD
from pnsq.tools.stat import (
    ChannelTotals,
    StatOptions,
    channel_totals,
    format_header,
    format_row,
    lookup_nodes,
    stat_loop,
)
from pnsq.tools.stats_client import StatsClient

MakeNSQD = Callable[..., Awaitable[NSQD]]

# nsq_stat's two header lines, character for character
HEADER = (
    "------rate------+----------------depth----------------+--------------metadata---------------\n"
    "ingress  egress |   total     mem    disk inflt   def |     req     t-o         msgs clients\n"
)


def channel(name: str = "c", **figures: Any) -> dict[str, Any]:
    return {
        "channel_name": name,
        "depth": 0,
        "backend_depth": 0,
        "in_flight_count": 0,
        "deferred_count": 0,
        "message_count": 0,
        "requeue_count": 0,
        "timeout_count": 0,
        "client_count": 0,
        "clients": [],
        **figures,
    }


def stats(*channels: dict[str, Any], topic: str = "t") -> dict[str, Any]:
    return {"version": "1.3.0", "topics": [{"topic_name": topic, "channels": list(channels)}]}


NODE_A = stats(
    channel(depth=5, backend_depth=2, in_flight_count=3, deferred_count=1, message_count=40,
            requeue_count=4, timeout_count=2, client_count=2),
    channel("other", depth=100, message_count=100),
)  # fmt: skip
NODE_B = stats(channel(depth=1, message_count=7, requeue_count=1, client_count=1))
OLD_NSQD = {"status_code": 200, "status_txt": "OK", "data": NODE_B}  # before NSQ 1.0
NO_CLIENT_COUNT = stats({**channel(message_count=3), "clients": [{}, {}]})
del NO_CLIENT_COUNT["topics"][0]["channels"][0]["client_count"]


@pytest.mark.parametrize(
    ("documents", "expected"),
    [
        ([NODE_A], ChannelTotals(5, 3, 2, 3, 1, 4, 2, 40, 2)),
        ([NODE_A, NODE_B], ChannelTotals(6, 4, 2, 3, 1, 5, 2, 47, 3)),
        ([NODE_A, OLD_NSQD], ChannelTotals(6, 4, 2, 3, 1, 5, 2, 47, 3)),
        ([NO_CLIENT_COUNT], ChannelTotals(messages=3, clients=2)),
        ([NODE_A, stats(topic="elsewhere"), {"topics": None}], ChannelTotals(5, 3, 2, 3, 1, 4, 2, 40, 2)),
        ([stats(channel("other"))], None),
        ([{"topics": None}], None),
        ([], None),
    ],
)  # fmt: skip
def test_channel_figures_are_summed_over_the_nodes_that_have_it(
    documents: list[dict[str, Any]], expected: ChannelTotals | None
) -> None:
    assert channel_totals(documents, "t", "c") == expected


@pytest.mark.parametrize("document", [{}, {"topics": [{"topic_name": "t"}]}, {"topics": 5}])
def test_a_document_that_is_not_nsqd_stats_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not an nsqd /stats document"):
        channel_totals([document], "t", "c")


ZERO = ChannelTotals()
BUSY = ChannelTotals(1234, 1000, 234, 50, 3, 17, 2, 98765, 4)


@pytest.mark.parametrize(
    ("previous", "current", "seconds", "line"),
    [
        (ZERO, ZERO, 2.0,
         "      0       0 |       0       0       0     0     0 |       0       0            0       0"),
        # 1000 published in 2 s, depth up by 200: 500/s in, 400/s out
        (ChannelTotals(messages=98765 - 1000, depth=1034), BUSY, 2.0,
         "    500     400 |    1234    1000     234    50     3 |      17       2        98765       4"),
        # rates truncate toward zero, as Go's int64(float)
        (ChannelTotals(messages=98765 - 5, depth=1234 + 2), BUSY, 2.0,
         "      2       3 |    1234    1000     234    50     3 |      17       2        98765       4"),
        (ZERO, ChannelTotals(messages=10**13), 1.0,  # wider than its column: pushes right, as %d
         "10000000000000 10000000000000 |       0       0       0     0     0 |       0       0 10000000000000       0"),
        (ZERO, BUSY, 0.0,  # two polls in the same instant: no rate rather than a crash
         "      0       0 |    1234    1000     234    50     3 |      17       2        98765       4"),
    ],
)  # fmt: skip
def test_rows_have_nsq_stats_columns(
    previous: ChannelTotals, current: ChannelTotals, seconds: float, line: str
) -> None:
    assert format_row(previous, current, seconds) == line + "\n"
    assert format_header() == HEADER


@pytest.mark.parametrize(
    ("answer", "nodes"),
    [
        ({"channels": [], "producers": [
            {"broadcast_address": "10.0.0.1", "tcp_port": 4150, "http_port": 4151},
            {"broadcast_address": "::1", "tcp_port": 5150, "http_port": 5151}]},
         ["10.0.0.1:4151", "[::1]:5151"]),
        ({"status_code": 200, "data": {"producers": [
            {"broadcast_address": "h", "tcp_port": 1, "http_port": 2}]}}, ["h:2"]),
        ({"channels": [], "producers": None}, []),
    ],
)  # fmt: skip
def test_lookupd_answers_name_the_nodes_http_addresses(
    answer: dict[str, Any], nodes: list[str]
) -> None:
    assert lookup_nodes(answer) == nodes


def test_a_lookupd_answer_without_producers_is_refused() -> None:
    with pytest.raises(ValueError, match="not a lookupd /lookup answer"):
        lookup_nodes({"producers": [{"broadcast_address": "h"}]})


# -- the loop, under a mock clock -------------------------------------------------------------------


def scripted(figures: list[int | None], log: list[float]) -> Callable[[], Awaitable[Any]]:
    """A poll answering ``figures`` (message counts; None: no node answered) in turn."""
    answers = iter(figures)

    async def poll() -> ChannelTotals | None:
        log.append(trio.current_time())
        await trio.sleep(0.25)  # the nodes take their time answering
        messages = next(answers)
        return None if messages is None else ChannelTotals(messages=messages)

    return poll


async def test_rows_come_every_interval_with_rates_over_the_measured_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    polled: list[float] = []
    out = io.StringIO()
    options = StatOptions(interval=2.0, count=3)
    code = await stat_loop(scripted([0, 100, 300, 301], polled), options, out)
    assert code == 0
    assert [t - polled[0] for t in polled] == [0.0, 2.0, 4.0, 6.0]  # a fixed period
    ingress = [line.split()[0] for line in out.getvalue().splitlines()[2:]]
    assert ingress == ["50", "100", "0"]


async def test_a_poll_without_figures_costs_its_row_and_the_next_and_exit_code_1(
    autojump_clock: trio.testing.MockClock,
) -> None:
    out = io.StringIO()
    options = StatOptions(interval=1.0, count=5)
    code = await stat_loop(scripted([0, 10, None, 20, 30, 40], []), options, out)
    assert code == 1
    ingress = [line.split()[0] for line in out.getvalue().splitlines()[2:]]
    assert ingress == ["10", "10", "10"]  # 0->10, (no figures), (no baseline), 20->30, 30->40


async def test_the_header_repeats_every_25_polls_as_nsq_stat(
    autojump_clock: trio.testing.MockClock,
) -> None:
    out = io.StringIO()
    code = await stat_loop(scripted([0] * 31, []), StatOptions(count=30), out)
    assert code == 0
    lines = out.getvalue().splitlines(keepends=True)
    assert len(lines) == 2 + 24 + 2 + 6
    assert "".join(lines[26:28]) == HEADER


async def test_stop_ends_the_loop_with_exit_code_0(autojump_clock: trio.testing.MockClock) -> None:
    stop = anyio.Event()
    out = io.StringIO()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stat_loop, scripted([0] * 100, []), StatOptions(interval=1.0), out, stop)
        await trio.sleep(10.5)
        stop.set()
    assert len(out.getvalue().splitlines()) == 2 + 10


# -- against real nsqds --------------------------------------------------------------------------


def http(nsqd: NSQD) -> str:
    assert nsqd.http_address is not None
    return "{}:{}".format(*nsqd.http_address)


async def known_workload(nsqd: NSQD) -> list[V2Client]:
    """10 messages: 4 FINned, 2 REQ'd, 1 deferred by REQ, 3 timed out; two clients stay."""
    assert nsqd.tcp_address is not None
    finisher = await open_consumer(nsqd.tcp_address, "t", "c", rdy=0)
    sleeper = await open_consumer(nsqd.tcp_address, "t", "c", rdy=0, msg_timeout=1000)
    await finisher.mpub("t", [b"%d" % i for i in range(10)])
    await finisher.rdy(7)
    held = await finisher.read_messages(7)
    await finisher.rdy(0)
    await sleeper.rdy(3)
    await sleeper.read_messages(3)
    await sleeper.rdy(0)
    for message in held[:4]:
        await finisher.fin(message.id)
    for message in held[4:6]:
        await finisher.req(message.id)
    await finisher.req(held[6].id, 60_000)
    c = nsqd.topics["t"].channels["c"]
    await wait_until(lambda: c.timeout_count == 3 and not c.in_flight, deadline=15)
    return [finisher, sleeper]


async def test_stat_prints_the_summed_columns_and_names_a_dead_node(make_nsqd: MakeNSQD) -> None:
    busy, quiet = await make_nsqd(), await make_nsqd(mem_queue_size=2)
    clients = await known_workload(busy)
    assert quiet.tcp_address is not None
    idle = await open_consumer(quiet.tcp_address, "t", "c", rdy=0)
    await idle.mpub("t", [b"x"] * 5)  # 2 in memory, 3 on disk
    await wait_until(lambda: quiet.topics["t"].channels["c"].message_count == 5)
    options = StatOptions(
        topic="t",
        channel="c",
        interval=0.05,
        count=2,
        nsqd_http_addresses=(http(busy), http(quiet), "127.0.0.1:1"),
        http_client_connect_timeout=2.0,
    )
    out, err = io.StringIO(), io.StringIO()
    with trio.fail_after(20):
        async with StatsClient(options, err) as client:
            code = await stat_loop(client.poll, options, out)
    row = "      0       0 |      10       7       3     0     1 |       3       3           15       3\n"
    assert code == 0
    assert out.getvalue() == HEADER + row + row
    assert err.getvalue().count("pnsq stat: 127.0.0.1:1:") == 3  # every poll, and no crash
    for client in [*clients, idle]:
        await client.aclose()


async def test_stat_finds_the_nodes_through_lookupd(
    make_nsqd: MakeNSQD, make_lookupd: MakeLookupd
) -> None:
    lookupd = await make_lookupd()
    assert lookupd.tcp_address is not None
    assert lookupd.http_address is not None
    nsqd = await make_nsqd(nsqlookupd_tcp_addresses=("{}:{}".format(*lookupd.tcp_address),))
    clients = await known_workload(nsqd)
    await until(lambda: "t" in lookupd.db.topics and lookupd.db.topics["t"])
    lookupd_http = "{}:{}".format(*lookupd.http_address)
    options = StatOptions(topic="t", channel="c", lookupd_http_addresses=(lookupd_http,))
    err = io.StringIO()
    with trio.fail_after(20):
        async with StatsClient(options, err) as client:
            assert await client.poll() == ChannelTotals(5, 5, 0, 0, 1, 3, 3, 10, 2)
            unknown = StatOptions(topic="nope", channel="c", lookupd_http_addresses=(lookupd_http,))
            async with StatsClient(unknown, err) as nothing:
                assert await nothing.poll() is None
    assert "no nsqd has topic 'nope'" in err.getvalue()
    for v2 in clients:
        await v2.aclose()


# -- the command ---------------------------------------------------------------------------------


def pnsq_stat(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pnsq", "stat", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_the_command_prints_count_rows_and_exits_0() -> None:
    nsqd = ThreadedNSQD(http_address="127.0.0.1:0").start()
    try:
        address = nsqd.inspect(http)
        nsqd.inspect(lambda d: d.get_topic("t").get_channel("c", d.now()))
        done = pnsq_stat("-topic=t", "--channel=c", f"--nsqd-http-address={address}",
                         "--interval=50ms", "--count=3")  # fmt: skip
    finally:
        nsqd.stop()
    assert done.returncode == 0, done.stderr
    zero = "      0       0 |       0       0       0     0     0 |       0       0            0       0\n"
    assert done.stdout == HEADER + zero * 3


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    nsqd = ThreadedNSQD(http_address="127.0.0.1:0").start()
    try:
        address = nsqd.inspect(http)
        nsqd.inspect(lambda d: d.get_topic("t").get_channel("c", d.now()))
        command = [sys.executable, "-m", "pnsq", "stat", "--topic=t", "--channel=c",
                   f"--nsqd-http-address={address}", "--interval=20ms"]  # fmt: skip
        stat = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert stat.stdout is not None
            assert stat.stdout.readline().startswith(b"------rate------")  # like `| head -1`
            stat.stdout.close()
            _, stderr = stat.communicate(timeout=30)
        finally:
            stat.kill()
            stat.wait(10)
    finally:
        nsqd.stop()
    assert stat.returncode == 0
    assert stderr == b""


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--channel=c", "--nsqd-http-address=127.0.0.1:4151"], "--topic and --channel are required"),
        (["--topic=t", "--channel=c"], "--nsqd-http-address or --lookupd-http-address required"),
        (["--topic=t", "--channel=c", "--nsqd-http-address=a:1", "--lookupd-http-address=b:2"],
         "not both"),
        (["--topic=t", "--channel=c", "--nsqd-http-address=a:1", "--count=0"], "at least 1"),
        (["--topic=t", "--channel=c", "--nsqd-http-address=http://a:1"], "nsqd-http-address"),
        # nothing answers: said on stderr, and exit code 1 after --count polls
        (["--topic=t", "--channel=c", "--nsqd-http-address=127.0.0.1:1", "--count=1",
          "--interval=10ms"], "pnsq stat: 127.0.0.1:1:"),
    ],
)  # fmt: skip
def test_bad_flags_and_dead_clusters_exit_1_saying_why(args: list[str], error: str) -> None:
    done = pnsq_stat(*args)
    assert done.returncode == 1
    assert error in done.stderr
    assert "Traceback" not in done.stderr
