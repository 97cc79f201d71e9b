"""Two cluster behaviours of nsqd's lookupd links (real sockets, in-process daemons).

- A topic new to an nsqd appears with the channels lookupd knows for it, all at once: no
  /stats answer, nsqd.dat or lookupd registration ever shows it without them, and what was
  published meanwhile reaches every one of them (NSQ #1508, done atomically).
- A lookupd given by host name is resolved again on every reconnect (NSQ #1233): the test
  installs trio's hostname-resolver seam and "moves" the lookupd to another loopback address.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import trio
import trio.lowlevel
from lookup_helpers import knows, tcp, until

from pnsq.lookupd import Lookupd
from pnsq.nsqd.nsqd import NSQD
from pnsq.nsqd.stats import stats_document
from pnsq.nsqd.topic import Topic


def registered(lookupd: Lookupd, nsqd: NSQD, topic: str) -> bool:
    assert nsqd.tcp_address is not None
    producers = lookupd.db.topics.get(topic, {})
    return any(p.peer.info["tcp_port"] == nsqd.tcp_address[1] for p in producers.values())


async def test_a_new_topic_appears_in_stats_only_with_the_channels_lookupd_knows(
    lookupd: Lookupd, make_nsqd: Any, http: Any
) -> None:
    a = await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),))
    for name in ("c1", "c2", "tail#ephemeral"):
        a.get_topic("t").get_channel(name, trio.current_time())
    await until(lambda: knows(lookupd, a))
    b = await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),))
    await until(lambda: b.lookup.peers and all(p.http_address for p, _ in b.lookup.peers.values()))

    seen: list[list[str]] = []

    async def poll_stats() -> None:  # every scheduler pass, racing the creation
        while True:
            topics = stats_document(b, include_mem=False)["topics"] or []
            seen.extend([c["channel_name"] for c in topic["channels"]] for topic in topics)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll_stats)
        b.get_topic("t").put([b"m1", b"m2"], trio.current_time(), time.time_ns())
        assert "t" not in b.topics  # lookupd has not answered yet: taken, not listed
        assert (await http(b.http_address, "POST", "/pub?topic=t", b"m3")).status == 200
        await until(lambda: "t" in b.topics)
        await until(lambda: len(seen) > 10)
        nursery.cancel_scope.cancel()

    assert seen
    assert all(channels == ["c1", "c2"] for channels in seen)
    topic = b.topics["t"]
    assert set(topic.channels) == {"c1", "c2"}  # ephemeral channels are not pre-created
    for name in ("c1", "c2"):
        assert [m.body for m in topic.channels[name].peek(10)] == [b"m1", b"m2", b"m3"]
    assert topic.depth() == 0
    await until(lambda: knows(lookupd, b))
    await until(lambda: _metadata_channels(b) == {"t": ["c1", "c2"]})


def _metadata_channels(nsqd: NSQD) -> dict[str, list[str]]:
    try:
        document = json.loads((Path(nsqd.options.data_path) / "nsqd.dat").read_bytes())
    except (FileNotFoundError, ValueError):
        return {}
    return {t["name"]: sorted(c["name"] for c in t["channels"]) for t in document["topics"]}


async def test_a_silent_lookupd_holds_a_new_topic_back_for_2s_at_most(make_nsqd: Any) -> None:
    """A lookupd that accepts and never answers HTTP: the topic appears after CHANNELS_WAIT."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nsqd = await make_nsqd()
    topic = Topic("t", nsqd)
    topic.awaiting_channels = True  # what get_topic and fetch_channels do with lookupds
    nsqd.hatching["t"] = topic
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(nsqd.lookup._create_known_channels, topic, [f"127.0.0.1:{port}"])
        assert nsqd.get_topic("t") is topic
        topic.put([b"m"], trio.current_time(), 0)
        topic.get_channel("c", trio.current_time())  # a consumer's SUB meanwhile
        assert topic.depth() == 1
        assert "t" not in nsqd.topics
    assert 1.5 < trio.current_time() - started < 3
    assert nsqd.topics["t"] is topic
    assert not topic.awaiting_channels
    assert [m.body for m in topic.channels["c"].peek(10)] == [b"m"]
    for listener in listeners:
        await listener.aclose()


class MovableName(trio.abc.HostnameResolver):
    """Resolves ``lookupd.test`` to ``self.address``; counts how often it was asked."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked = 0

    async def getaddrinfo(
        self,
        host: bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,  # noqa: A002 - trio.abc.HostnameResolver names it so
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        if host != b"lookupd.test" or port is None:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        self.asked += 1
        port_number = int(port.decode() if isinstance(port, bytes) else port)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.address, port_number))]

    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int
    ) -> tuple[str, str]:
        raise NotImplementedError


async def test_nsqd_follows_a_lookupd_name_to_its_new_address(
    make_lookupd: Any, make_nsqd: Any
) -> None:
    resolver = MovableName("127.0.0.1")
    trio.socket.set_custom_hostname_resolver(resolver)
    try:
        old = await make_lookupd()
        port = old.tcp_address[1]
        new = await make_lookupd(
            tcp_address=f"127.0.0.2:{port}", http_address="127.0.0.2:0", broadcast_address="x"
        )
        nsqd = await make_nsqd(nsqlookupd_tcp_addresses=(f"lookupd.test:{port}",))
        nsqd.get_topic("t")
        await until(lambda: registered(old, nsqd, "t"))
        assert not registered(new, nsqd, "t")

        resolver.address = "127.0.0.2"  # the name now points to where the lookupd moved
        asked = resolver.asked
        old.stop()
        await until(lambda: registered(new, nsqd, "t"))
        assert resolver.asked > asked
    finally:
        trio.socket.set_custom_hostname_resolver(None)
