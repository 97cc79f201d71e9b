"""``pnsq to-nsq``: messages reach a destination nsqd before they are FINed at the source, the
JSON filters pass and trim what nsq_to_nsq would, and a stopped relay leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
import trio
from relay_helpers import MakeNSQD, channel, publish, running, settled, tcp, wait_until

from pnsq.client import Consumer, Message
from pnsq.nsqd.nsqd import NSQD
from pnsq.tools.json_filter import JSONFilter
from pnsq.tools.to_nsq import ToNSQOptions, check, to_nsq

TOPIC, CHANNEL = "events", "nsq_to_nsq"
FAST = ("default_requeue_delay,20ms", "max_backoff_duration,50ms", "backoff_multiplier,10ms")


def options(source: NSQD, *destinations: str, **overrides: object) -> ToNSQOptions:
    base = ToNSQOptions(
        topics=(TOPIC,),
        nsqd_tcp_addresses=(tcp(source),),
        destination_nsqd_tcp_addresses=destinations,
        consumer_opts=FAST,
        status_every=0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@asynccontextmanager
async def collecting(nsqd: NSQD, topic: str) -> AsyncIterator[list[bytes]]:
    """Bodies of what arrives on ``topic`` at ``nsqd`` (a consumer on channel "check")."""
    got: list[bytes] = []

    async def keep(message: Message) -> None:
        got.append(message.body)

    consumer = Consumer(topic, "check", keep, nsqd_tcp_addresses=[tcp(nsqd)], max_in_flight=500)
    async with consumer:
        yield got


async def test_messages_are_copied_to_the_destination_topic(make_nsqd: MakeNSQD) -> None:
    source, destination = await make_nsqd(), await make_nsqd()
    bodies = [f"m{i}".encode() for i in range(500)]
    await publish(source, TOPIC, bodies)
    opts = options(source, tcp(destination), destination_topic="copy")
    async with collecting(destination, "copy") as got, running(lambda s: to_nsq(opts, s)):
        await wait_until(lambda: len(got) >= len(bodies))
        await wait_until(lambda: settled(source, TOPIC, CHANNEL, len(bodies)))
    assert sorted(got) == sorted(bodies)
    ch = channel(source, TOPIC, CHANNEL)
    assert ch is not None
    assert ch.requeue_count == 0


async def test_each_consumed_topic_keeps_its_name_without_destination_topic(
    make_nsqd: MakeNSQD,
) -> None:
    source, destination = await make_nsqd(), await make_nsqd()
    await publish(source, "a", [b"a1", b"a2"])
    await publish(source, "b", [b"b1"])
    opts = options(source, tcp(destination), topics=("a", "b"))
    async with (
        collecting(destination, "a") as got_a,
        collecting(destination, "b") as got_b,
        running(lambda s: to_nsq(opts, s)),
    ):
        await wait_until(lambda: len(got_a) + len(got_b) >= 3)
    assert (sorted(got_a), got_b) == ([b"a1", b"a2"], [b"b1"])


async def test_json_filters_pass_matching_messages_and_keep_only_whitelisted_fields(
    make_nsqd: MakeNSQD,
) -> None:
    source, destination = await make_nsqd(), await make_nsqd()
    messages = [
        {"type": "click", "user": "u1", "secret": "x"},
        {"type": "view", "user": "u2"},
        {"user": "u3"},  # no type
        {"type": "click", "n": 2.0, "user": "u4"},
        {"type": "click"},  # passes, keeps nothing
    ]
    raw = [json.dumps(m).encode() for m in messages] + [b"not json", b"[1, 2]", b'"click"']
    await publish(source, TOPIC, raw)
    opts = options(
        source,
        tcp(destination),
        require_json_field="type",
        require_json_value="click",
        whitelist_json_fields=("user", "n"),
    )
    async with collecting(destination, TOPIC) as got, running(lambda s: to_nsq(opts, s)):
        await wait_until(lambda: settled(source, TOPIC, CHANNEL, len(raw)))
        await wait_until(lambda: len(got) >= 3)
    assert sorted(got) == sorted([b"{}", b'{"n":2,"user":"u4"}', b'{"user":"u1"}'])
    ch = channel(source, TOPIC, CHANNEL)
    assert ch is not None
    assert ch.requeue_count == 0  # the rest were FINed without forwarding, not requeued


async def test_a_destination_that_is_down_then_up_loses_nothing(make_nsqd: MakeNSQD) -> None:
    source = await make_nsqd()
    with socket.socket() as probe:  # a port with nothing listening, for now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bodies = [f"m{i}".encode() for i in range(50)]
    await publish(source, TOPIC, bodies)
    opts = options(source, f"127.0.0.1:{port}")
    async with running(lambda s: to_nsq(opts, s)):
        await wait_until(lambda: (ch := channel(source, TOPIC, CHANNEL)) and ch.requeue_count >= 3)
        destination = await make_nsqd(tcp_address=f"127.0.0.1:{port}")
        async with collecting(destination, TOPIC) as got:
            await wait_until(lambda: settled(source, TOPIC, CHANNEL, len(bodies)))
            await wait_until(lambda: set(got) == set(bodies))


async def test_round_robin_uses_every_destination(make_nsqd: MakeNSQD) -> None:
    source, one, two = await make_nsqd(), await make_nsqd(), await make_nsqd()
    bodies = [f"m{i}".encode() for i in range(40)]
    opts = options(source, tcp(one), tcp(two), mode="round-robin", max_in_flight=1)
    async with (
        collecting(one, TOPIC) as got_one,
        collecting(two, TOPIC) as got_two,
        running(lambda s: to_nsq(opts, s)),
    ):
        for body in bodies:  # one at a time, so each is its own batch
            await publish(source, TOPIC, [body])
        await wait_until(lambda: len(got_one) + len(got_two) >= len(bodies))
    assert sorted(got_one + got_two) == sorted(bodies)
    assert got_one
    assert got_two


async def test_sigterm_forwards_what_is_in_flight_and_exits_0(make_nsqd: MakeNSQD) -> None:
    source, destination = await make_nsqd(), await make_nsqd()
    count = 2000
    await publish(source, TOPIC, [f"m{i}".encode() for i in range(count)])
    command = [
        sys.executable, "-m", "pnsq", "to-nsq", f"--topic={TOPIC}",
        f"--nsqd-tcp-address={tcp(source)}", f"--destination-nsqd-tcp-address={tcp(destination)}",
        "--max-in-flight=50",
    ]  # fmt: skip
    proc = await trio.lowlevel.open_process(command, stderr=subprocess.PIPE)
    try:
        await wait_until(lambda: (t := destination.topics.get(TOPIC)) and t.message_count >= 100)
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert code == 0
    ch = channel(source, TOPIC, CHANNEL)
    forwarded = destination.topics[TOPIC].message_count
    assert ch is not None
    assert len(ch.in_flight) == 0
    assert ch.timeout_count == 0
    # every message is either at the destination or still waiting at the source, once
    assert forwarded + ch.depth() == count


def test_require_json_value_compares_strings_as_text_and_numbers_as_numbers() -> None:
    def passes(value: str, body: object) -> bool:
        kept = JSONFilter("f", value).apply(json.dumps({"f": body}).encode())
        return kept is not None

    assert passes("abc", "abc")
    assert not passes("abc", "abd")
    assert passes("1", 1.0)
    assert passes("1e0", 1)
    assert passes("2", "2")  # a JSON string compares as text
    assert not passes("02", "2")
    assert not passes("true", True)  # other JSON types never match
    assert not passes("1", [1])
    assert JSONFilter("f").apply(b'{"f": null}') == b'{"f": null}'  # present is enough


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"destination_nsqd_tcp_addresses": ()}, "--destination-nsqd-tcp-address required"),
        ({"topics": ()}, "--topic and --channel are required"),
        ({"destination_topic": "bad topic"}, "invalid topic name"),
        ({"channel": "bad/channel"}, "invalid channel name"),
        ({"require_json_value": "x"}, "needs --require-json-field"),
        ({"producer_opts": ("max_in_flight,5",)}, "is for consumers"),
    ],
)
def test_bad_flag_combinations_are_refused_before_connecting(
    changes: dict[str, object], error: str
) -> None:
    base = ToNSQOptions(
        topics=(TOPIC,), nsqd_tcp_addresses=("a:1",), destination_nsqd_tcp_addresses=("b:1",)
    )
    with pytest.raises(ValueError, match=error):
        check(replace(base, **changes))  # type: ignore[arg-type]
