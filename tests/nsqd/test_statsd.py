"""nsqd's statsd push: the datagrams a statsd daemon receives, captured on a real UDP socket.

The push runs in virtual time (trio's MockClock) beside an nsqd without listeners
(``memory_nsqd``), sending to a UDP socket at 127.0.0.1:0 that the test drains once a push's
spread is over. A loopback datagram is in the receiver's buffer when ``send`` returns, so what
the test reads after sleeping past a push is exactly that push. ``GO_NAMES`` is Go nsqd 1.3's
list (nsqd/statsd.go), written out here from its source: Go cannot run here, so the names pnsq
sends are checked against it side by side, both ways.
"""

from __future__ import annotations

import itertools
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
import trio
import trio.testing
from memory_nsqd import MemoryNSQD, memory_nsqd
from v2client import V2Client

from pnsq.nsqd import options as nsqd_options
from pnsq.nsqd.options import Options
from pnsq.nsqd.statsd import StatsdPusher
from pnsq.nsqd.statsd_lines import packets, percentile_suffix, statsd_prefix

INTERVAL = 10.0
WINDOW = 9.0  # Go spreads a push over the interval less one second
PREFIX = "nsq.10_0_0_1_4151."
E2E = "e2e_processing_latency"

# Go nsqd 1.3's statsd names and types, from nsqd/statsd.go (T = topic, C = channel, P = the
# percentile as Go's "%.0f" of quantile*100).
GO_NAMES = {
    "topic.T.message_count": "c",
    "topic.T.message_bytes": "c",
    "topic.T.depth": "g",
    "topic.T.backend_depth": "g",
    "topic.T.e2e_processing_latency_P": "g",
    "topic.T.channel.C.message_count": "c",
    "topic.T.channel.C.depth": "g",
    "topic.T.channel.C.backend_depth": "g",
    "topic.T.channel.C.in_flight_count": "g",
    "topic.T.channel.C.deferred_count": "g",
    "topic.T.channel.C.requeue_count": "c",
    "topic.T.channel.C.timeout_count": "c",
    "topic.T.channel.C.clients": "g",
    "topic.T.channel.C.e2e_processing_latency_P": "g",
    "mem.heap_objects": "g",
    "mem.heap_idle_bytes": "g",
    "mem.heap_in_use_bytes": "g",
    "mem.heap_released_bytes": "g",
    "mem.gc_pause_usec_100": "g",
    "mem.gc_pause_usec_99": "g",
    "mem.gc_pause_usec_95": "g",
    "mem.next_gc_bytes": "g",
    "mem.gc_runs": "c",
}
MEM_NAMES = [name for name in GO_NAMES if name.startswith("mem.")]
LINE = re.compile(r"^(?P<name>[^:]+):(?P<value>-?\d+)\|(?P<kind>[cg])$")

Metric = tuple[str, int, str]


def go_template(name: str) -> str:
    """A sent name as its entry in GO_NAMES: topic, channel and percentile made generic."""
    name = re.sub(r"^topic\.[^.]+(?=\.)", "topic.T", name)
    name = re.sub(r"\.channel\.[^.]+(?=\.)", ".channel.C", name)
    return re.sub(r"e2e_processing_latency_\d+$", "e2e_processing_latency_P", name)


class Capture:
    """A statsd daemon: a UDP socket on 127.0.0.1:0 whose datagrams the test reads."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        host, port = self.sock.getsockname()
        self.address = f"{host}:{port}"

    def datagrams(self) -> list[bytes]:
        """Everything received since the last call."""
        out = []
        while True:
            try:
                out.append(self.sock.recv(65536))
            except BlockingIOError:
                return out

    def metrics(self, prefix: str = PREFIX) -> list[Metric]:
        return parse(self.datagrams(), prefix)


def parse(datagrams: list[bytes], prefix: str = PREFIX) -> list[Metric]:
    """The metrics in ``datagrams``, checking that each is whole lines under ``prefix``."""
    found = []
    for datagram in datagrams:
        assert datagram.endswith(b"\n")
        for line in datagram.decode().splitlines():
            match = LINE.match(line)
            assert match is not None, line
            assert match["name"].startswith(prefix), line
            name = match["name"].removeprefix(prefix)
            found.append((name, int(match["value"]), match["kind"]))
    return found


@contextmanager
def capture() -> Iterator[Capture]:
    receiver = Capture()
    with receiver.sock:
        yield receiver


@asynccontextmanager
async def pushing(receiver: Capture, **overrides: Any) -> AsyncIterator[MemoryNSQD]:
    """An nsqd pushing to ``receiver`` every INTERVAL from virtual time 0 (first push at 10)."""
    options = {
        "statsd_address": receiver.address,
        "statsd_interval": INTERVAL,
        "broadcast_address": "10.0.0.1",
        "broadcast_http_port": 4151,
        "msg_timeout": 15.0,
        **overrides,
    }
    async with memory_nsqd(**options) as server, trio.open_nursery() as nursery:
        nursery.start_soon(StatsdPusher(server.nsqd).run)
        yield server
        nursery.cancel_scope.cancel()


async def after_push(n: int, started: float = 0.0) -> None:
    """Sleep (in virtual time) until push ``n``'s spread is over, for a pusher started at
    ``started``."""
    await trio.sleep_until(started + n * INTERVAL + WINDOW + 0.5)


async def first_workload(server: MemoryNSQD) -> V2Client:
    """orders (work: 2 FIN, 1 REQ, 1 in flight; audit and tail#ephemeral: untouched) and an
    ephemeral topic with one message."""
    producer = await server.connect()
    worker = await server.consumer("orders", "work", rdy=1)
    await server.consumer("orders", "audit", rdy=0)
    await server.consumer("orders", "tail#ephemeral", rdy=0)
    await server.consumer("tmp#ephemeral", "c", rdy=0)
    await producer.mpub("orders", [b"a", b"bb", b"ccc"])
    await producer.pub("tmp#ephemeral", b"zz")
    await worker.fin((await worker.read_message()).id)
    await worker.req((await worker.read_message()).id)
    await worker.fin((await worker.read_message()).id)
    await worker.read_message()  # stays in flight until msg_timeout (15 s)
    return producer


def channel(
    name: str, count: int, depth: int, in_flight: int, requeue: int, timeout: int
) -> list[Metric]:
    path = f"topic.orders.channel.{name}"
    return [
        (f"{path}.message_count", count, "c"),
        (f"{path}.depth", depth, "g"),
        (f"{path}.backend_depth", 0, "g"),
        (f"{path}.in_flight_count", in_flight, "g"),
        (f"{path}.deferred_count", 0, "g"),
        (f"{path}.requeue_count", requeue, "c"),
        (f"{path}.timeout_count", timeout, "c"),
        (f"{path}.clients", 1, "g"),
    ]


def topic(name: str, count: int, size: int) -> list[Metric]:
    return [
        (f"topic.{name}.message_count", count, "c"),
        (f"topic.{name}.message_bytes", size, "c"),
        (f"topic.{name}.depth", 0, "g"),
        (f"topic.{name}.backend_depth", 0, "g"),
    ]


FIRST_PUSH = [
    *topic("orders", 3, 6),
    *channel("audit", 3, 3, 0, 0, 0),
    *channel("tail#ephemeral", 3, 3, 0, 0, 0),
    *channel("work", 3, 0, 1, 1, 0),
    *topic("tmp#ephemeral", 1, 2),
    ("topic.tmp#ephemeral.channel.c.message_count", 1, "c"),
    ("topic.tmp#ephemeral.channel.c.depth", 1, "g"),
    ("topic.tmp#ephemeral.channel.c.backend_depth", 0, "g"),
    ("topic.tmp#ephemeral.channel.c.in_flight_count", 0, "g"),
    ("topic.tmp#ephemeral.channel.c.deferred_count", 0, "g"),
    ("topic.tmp#ephemeral.channel.c.requeue_count", 0, "c"),
    ("topic.tmp#ephemeral.channel.c.timeout_count", 0, "c"),
    ("topic.tmp#ephemeral.channel.c.clients", 1, "g"),
]
# the first push's numbers, sent at 20 s: work's in-flight message timed out at 15 s and went out
# to its consumer again
FIRST_PUSH_AND_A_TIMEOUT = [
    (n, 1 if n == "topic.orders.channel.work.timeout_count" else v, k) for n, v, k in FIRST_PUSH
]
# one more message to orders; work's in-flight message timed out at 15 s and went out again
SECOND_PUSH = [
    *topic("orders", 1, 4),
    *channel("audit", 1, 4, 0, 0, 0),
    *channel("tail#ephemeral", 1, 4, 0, 0, 0),
    *channel("work", 1, 1, 1, 0, 1),
    *topic("tmp#ephemeral", 0, 0),
    *[(n, 0 if k == "c" else v, k) for n, v, k in FIRST_PUSH[-8:]],
]


def without(metrics: list[Metric], *patterns: str) -> list[Metric]:
    return [m for m in metrics if not any(re.search(p, m[0]) for p in patterns)]


# -- a known workload, two pushes --------------------------------------------------------------


async def test_two_pushes_send_counter_deltas_and_gauges_as_go_nsqd(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with capture() as receiver:
        async with pushing(receiver, statsd_mem_stats=False) as server:
            producer = await first_workload(server)
            await after_push(1)
            assert receiver.metrics() == FIRST_PUSH
            await producer.pub("orders", b"dddd")
            await after_push(2)
            assert receiver.metrics() == SECOND_PUSH


async def test_nothing_is_sent_before_the_first_interval_has_passed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with capture() as receiver:
        async with pushing(receiver) as server:
            await first_workload(server)
            await trio.sleep_until(INTERVAL - 0.01)
            assert receiver.datagrams() == []
            await after_push(1)
            assert receiver.datagrams() != []


async def test_e2e_percentiles_are_gauges_named_as_go_formats_the_quantile(
    autojump_clock: trio.testing.MockClock,
) -> None:
    percentiles = (0.5, 0.99, 0.999)
    with capture() as receiver:
        async with pushing(receiver, e2e_processing_latency_percentiles=percentiles) as server:
            producer = await first_workload(server)
            await producer.pub("lonely", b"no channel")
            await after_push(1)
            sent = receiver.metrics()
    e2e = [(name, value) for name, value, kind in sent if E2E in name and kind == "g"]
    measured = ("topic.orders", "topic.orders.channel.work")  # work FINed two messages
    # Go's empty quantile stream answers 0: every channel, and every topic with a channel
    # (topic "lonely" has none), sends each percentile
    paths = [
        "topic.orders",
        "topic.orders.channel.audit",
        "topic.orders.channel.tail#ephemeral",
        "topic.orders.channel.work",
        "topic.tmp#ephemeral",
        "topic.tmp#ephemeral.channel.c",
    ]
    assert [name for name, _ in e2e] == [
        f"{p}.{E2E}_{q}" for p in paths for q in ("50", "99", "100")
    ]
    for name, value in e2e:
        assert value > 0 if name.rpartition(".")[0] in measured else value == 0, name
    assert without(sent, E2E, r"^mem\.", "lonely") == FIRST_PUSH


def test_percentile_suffix_is_gos_rounding_of_quantile_times_100() -> None:
    # Go's "%.0f" rounds an exact half to even, as Python's does: 98.5 -> 98, 99.5 -> 100
    quantiles = (0.5, 0.95, 0.99, 0.999, 0.985, 0.995, 0.125, 1.0)
    suffixes = ["50", "95", "99", "100", "98", "100", "12", "100"]
    assert [percentile_suffix(q) for q in quantiles] == suffixes


# -- Go's names, side by side ----------------------------------------------------------------


async def test_every_name_sent_is_go_nsqds_with_its_type_and_every_go_name_is_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with capture() as receiver:
        async with pushing(receiver, e2e_processing_latency_percentiles=(0.99,)) as server:
            await first_workload(server)
            await after_push(1)
            sent = receiver.metrics()
    kinds = {go_template(name): kind for name, _, kind in sent}
    assert kinds == GO_NAMES


# -- options ---------------------------------------------------------------------------------


async def test_exclude_ephemeral_drops_ephemeral_topics_and_channels(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with capture() as receiver:
        async with pushing(receiver, statsd_exclude_ephemeral=True) as server:
            await first_workload(server)
            await after_push(1)
            sent = receiver.metrics()
    assert without(sent, r"^mem\.") == without(FIRST_PUSH, "#ephemeral")


async def test_mem_stats_are_sent_by_default_and_not_with_mem_stats_false(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with capture() as receiver:
        async with pushing(receiver) as server:
            await first_workload(server)
            await after_push(1)
            sent = receiver.metrics()
        started = trio.current_time()
        async with pushing(receiver, statsd_mem_stats=False) as server:
            await first_workload(server)
            await after_push(1, started)
            quiet = receiver.metrics()
    mem = [m for m in sent if m[0].startswith("mem.")]
    assert [(name, kind) for name, _, kind in mem] == [(n, GO_NAMES[n]) for n in MEM_NAMES]
    assert {n: v for n, v, _ in mem}["mem.heap_in_use_bytes"] > 0
    assert not [m for m in quiet if m[0].startswith("mem.")]
    assert quiet == FIRST_PUSH


@pytest.mark.parametrize(
    ("template", "address", "port", "prefix"),
    [
        ("nsq.%s", "10.0.0.1", 4151, "nsq.10_0_0_1_4151."),
        ("nsq.%s", "::1", 4151, "nsq.[__1]_4151."),
        ("stats.%s.nsqd", "host.example.com", 80, "stats.host_example_com_80.nsqd."),
        ("%s.%s", "h", 1, "h_1.h_1."),
        ("fixed.", "h", 1, "fixed."),
        ("", "h", 1, ""),
    ],
)
def test_prefix_substitutes_the_broadcast_host_and_http_port_as_go(
    template: str, address: str, port: int, prefix: str
) -> None:
    assert statsd_prefix(template, address, port) == prefix


async def test_custom_prefix_is_on_every_line(autojump_clock: trio.testing.MockClock) -> None:
    with capture() as receiver:
        async with pushing(
            receiver, statsd_prefix="prod.%s.nsqd", statsd_mem_stats=False
        ) as server:
            await first_workload(server)
            await after_push(1)
            assert receiver.metrics("prod.10_0_0_1_4151.nsqd.") == FIRST_PUSH


# -- datagrams -------------------------------------------------------------------------------


async def test_datagrams_hold_whole_lines_and_never_exceed_the_packet_size(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with capture() as receiver:
        async with pushing(receiver, statsd_udp_packet_size=200) as server:
            await first_workload(server)
            await after_push(1)
            datagrams = receiver.datagrams()
    assert len(datagrams) > 5
    assert all(len(d) <= 200 for d in datagrams)
    lines = b"".join(datagrams).splitlines(keepends=True)
    # packed greedily: a datagram ends only where the next line would not fit
    for datagram, following in itertools.pairwise(datagrams):
        assert len(datagram) + len(following.split(b"\n")[0]) + 1 > 200
    assert all(LINE.match(line.decode().strip()) for line in lines)


def test_a_line_longer_than_the_packet_size_goes_alone_as_in_go() -> None:
    lines = [b"a" * 30 + b"\n", b"b" * 80 + b"\n", b"c" * 10 + b"\n", b"d" * 10 + b"\n"]
    assert packets(lines, 50) == [lines[0], lines[1], lines[2] + lines[3]]
    assert packets(lines, 0) == [b"".join(lines)]  # Go's bufio: size <= 0 means 4096


async def test_datagrams_are_spread_over_the_interval_less_one_second(
    autojump_clock: trio.testing.MockClock,
) -> None:
    arrivals: list[float] = []
    with capture() as receiver:
        async with pushing(receiver, statsd_udp_packet_size=120) as server:

            async def receive() -> None:
                sock = trio.socket.from_stdlib_socket(receiver.sock)
                while True:
                    await sock.recv(65536)
                    arrivals.append(trio.current_time())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive)
                await first_workload(server)
                await after_push(1)
                nursery.cancel_scope.cancel()
    n = len(arrivals)
    assert n > 10
    step = WINDOW / n
    for i, at in enumerate(arrivals):
        assert INTERVAL + i * step - 1e-6 <= at <= INTERVAL + i * step + 0.02, (i, at)


async def test_a_push_cut_short_by_shutdown_sends_its_rest_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with capture() as receiver:
        async with pushing(receiver, statsd_mem_stats=False, statsd_udp_packet_size=120) as server:
            await first_workload(server)
            await trio.sleep_until(INTERVAL + 2.0)
            early = receiver.datagrams()
        rest = receiver.datagrams()  # the pusher was cancelled as ``pushing`` ended
    assert early
    assert rest
    assert parse(early + rest) == FIRST_PUSH


# -- a statsd that is not there --------------------------------------------------------------


async def test_a_statsd_that_is_down_is_logged_once_and_pushes_go_on(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    with capture() as receiver:
        address = receiver.address
    # nothing listens on ``address`` now: each send after the first is refused
    with capture() as receiver:
        async with pushing(receiver, statsd_address=address, statsd_udp_packet_size=100) as server:
            await first_workload(server)
            await after_push(3)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "STATSD" in r.message]
    assert len(warnings) == 1, [r.message for r in warnings]
    assert address in warnings[0].message


async def test_an_unresolvable_statsd_skips_the_push_and_counts_roll_into_the_next(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_getaddrinfo = trio.socket.getaddrinfo
    failing = True

    async def getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        if failing:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return await real_getaddrinfo(*args, **kwargs)

    monkeypatch.setattr(trio.socket, "getaddrinfo", getaddrinfo)
    with capture() as receiver:
        async with pushing(receiver, statsd_mem_stats=False) as server:
            await first_workload(server)
            await after_push(1)
            assert receiver.datagrams() == []
            failing = False
            await after_push(2)
            # the counters of the push that was skipped are in this one's
            assert receiver.metrics() == FIRST_PUSH_AND_A_TIMEOUT
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert ["Name or service not known" in r.message for r in warnings] == [True]


async def test_a_bug_in_a_push_is_logged_and_the_next_push_goes_out(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collect = StatsdPusher.collect
    calls = 0

    def broken_once(self: StatsdPusher) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("a bug")
        return collect(self)

    monkeypatch.setattr(StatsdPusher, "collect", broken_once)
    with capture() as receiver:
        async with pushing(receiver, statsd_mem_stats=False) as server:
            await first_workload(server)
            await after_push(1)
            assert receiver.datagrams() == []
            await after_push(2)
            assert receiver.metrics() == FIRST_PUSH_AND_A_TIMEOUT
    assert [r.message for r in caplog.records if r.exc_info] == ["STATSD: push failed"]


def test_a_statsd_address_without_a_port_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="--statsd-address 'localhost': want <addr>:<port>"):
        nsqd_options.finish(Options(statsd_address="localhost", broadcast_address="h"))


# -- the daemon ------------------------------------------------------------------------------


async def test_nsqd_pushes_with_its_broadcast_address_and_http_port_in_the_prefix(
    make_nsqd: Any,
) -> None:
    with capture() as receiver:
        nsqd = await make_nsqd(
            statsd_address=receiver.address, statsd_interval=0.05, statsd_mem_stats=False
        )
        nsqd.get_topic("busy")
        prefix = f"nsq.127_0_0_1_{nsqd.http_address[1]}."
        sock = trio.socket.from_stdlib_socket(receiver.sock)
        with trio.fail_after(5):
            datagram = await sock.recv(65536)
    assert datagram.startswith(prefix.encode() + b"topic.busy.message_count:0|c\n")
