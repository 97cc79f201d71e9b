"""nsqd's links to its nsqlookupds (reference §2.13, §2.23).

One task per ``--lookupd-tcp-address``: connect, IDENTIFY, REGISTER every topic and channel
(the bare topic when it has none), then send what changes (REGISTER/UNREGISTER on
create/delete) and a PING every 15 s. A lookupd that goes away is dialled again with backoff
(0.1 s doubling to 5 s) and, when it answers, given every registration anew; it removed ours
when the link closed. ``PUT /config/nsqlookupd_tcp_addresses`` calls ``set_addresses``.

Nothing in the broker waits for a lookupd: a change is appended to each connected peer's
bounded queue and the peer's task sends it. A peer whose queue overflows reconnects, which
re-registers everything, so no change is lost. Commands are pipelined; a reader task counts
the replies, and a lookupd that leaves commands unanswered for ``REPLY_TIMEOUT`` is dropped.

A topic new to this nsqd first asks the lookupds for the channels they know for it (HTTP
/channels at each lookupd's broadcast_address:http_port from its IDENTIFY reply); the broker
keeps it hatching (taking and holding messages, but listed nowhere) until ``hatch`` creates
those channels and lists the topic with them at once, so that a node that joins a cluster
misses no message for an existing consumer (NSQ #1508) and nobody sees the topic without its
channels. A lookupd that does not answer within ``CHANNELS_WAIT`` is not waited for.

A lookupd given by host name is resolved on every dial (``trio.open_tcp_stream`` asks the
resolver each time), so nsqd follows a lookupd that moved to a new address (NSQ #1233).
While nsqd drains it stays connected to its lookupds but registers nothing.

The broker calls the hooks (``topic_created`` ...); the links see the broker only as
``LookupHost``: its options, its addresses and its topics.
"""

from __future__ import annotations

import json
import logging
import math
import socket
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

if TYPE_CHECKING:
    import h11
else:
    try:
        import h11_mypyc as h11
    except ImportError:
        import h11
import trio

from .. import NSQ_VERSION
from .._internal.netaddr import split_host_port
from ..wire.lookup import (
    MAGIC_V1,
    ReplyReader,
    encode_lookup_identify,
    encode_lookup_ping,
    encode_register,
    encode_unregister,
)
from ..wire.names import is_ephemeral, is_valid_name

if TYPE_CHECKING:
    from .channel import Channel
    from .options import Options
    from .topic import Topic

log = logging.getLogger("pnsq.nsqd")

PING_INTERVAL = 15.0
DIAL_TIMEOUT = 1.0
REPLY_TIMEOUT = 5.0
BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0
MAX_QUEUED = 10_000
CHANNELS_WAIT = 2.0
MAX_HTTP_BODY = 16 * 1024 * 1024


class LookupHost(Protocol):
    """What the lookupd links need of the broker (``Broker``)."""

    @property
    def options(self) -> Options: ...

    @property
    def tcp_address(self) -> tuple[str, int] | None: ...

    @property
    def http_address(self) -> tuple[str, int] | None: ...

    @property
    def topics(self) -> Mapping[str, Topic]: ...

    @property
    def draining(self) -> bool: ...

    def hatch(self, topic: Topic, channels: list[str]) -> None:
        """Create ``channels`` in the hatching ``topic`` and list it (see module docstring)."""
        ...


class LinkLostError(Exception):
    """The lookupd closed the link, stopped answering, or answered nonsense."""


class LookupPeer:
    """The link to one lookupd."""

    def __init__(self, address: str, nsqd: LookupHost) -> None:
        self.address = address
        self.http_address: str | None = None  # known once the lookupd answered IDENTIFY
        self.connected = False
        self._nsqd = nsqd
        self._queue: deque[bytes] = deque()
        self._overflow = False
        self._wake = trio.Event()
        # [sent at, how many] per batch of commands sent and not yet all answered, oldest
        # first: lookupd answers in order, so the head is what the reply timeout measures
        self._unanswered: deque[list[float]] = deque()
        self._backoff = BACKOFF_MIN

    def send(self, command: bytes) -> None:
        """Queue a command for the lookupd; dropped when not connected (a reconnect resyncs)."""
        if not self.connected:
            return
        if len(self._queue) >= MAX_QUEUED:
            self._overflow = True
            self._queue.clear()
        else:
            self._queue.append(command)
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self._session()
            except Exception as exc:  # any failure of the link: log, wait, dial again
                log.warning(
                    "LOOKUPD(%s): %s; reconnecting in %.1fs",
                    self.address,
                    _describe(exc),
                    self._backoff,
                )
            finally:
                self.connected = False
                self.http_address = None
            await trio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    async def _session(self) -> None:
        host, port = split_host_port(self.address)
        with trio.fail_after(DIAL_TIMEOUT):
            stream = await trio.open_tcp_stream(host, port)
        async with stream:
            replies = ReplyReader()
            await stream.send_all(MAGIC_V1 + encode_lookup_identify(self._identity()))
            with trio.fail_after(REPLY_TIMEOUT):
                reply = await _read_reply(stream, replies)
            try:
                info = json.loads(reply)
                self.http_address = f"{info['broadcast_address']}:{int(info['http_port'])}"
            except (ValueError, TypeError, KeyError):
                raise LinkLostError(f"bad IDENTIFY reply {reply[:200]!r}") from None
            log.info("LOOKUPD(%s): peer info %s", self.address, info)
            self._queue.clear()
            self._overflow = False
            self._unanswered.clear()
            self.connected = True
            self._backoff = BACKOFF_MIN
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_replies, stream, replies)
                await self._write(stream)

    def _identity(self) -> dict[str, Any]:
        nsqd, options = self._nsqd, self._nsqd.options
        tcp_port = nsqd.tcp_address[1] if nsqd.tcp_address else 0
        http_port = nsqd.http_address[1] if nsqd.http_address else 0
        return {
            "version": NSQ_VERSION,
            "tcp_port": options.broadcast_tcp_port or tcp_port,
            "http_port": options.broadcast_http_port or http_port,
            "hostname": socket.gethostname(),
            "broadcast_address": options.broadcast_address,
            "topology_zone": options.topology_zone,
            "topology_region": options.topology_region,
        }

    async def _write(self, stream: trio.SocketStream) -> None:
        batch = list(registrations(self._nsqd))
        log.info("LOOKUPD(%s): registering %d topics/channels", self.address, len(batch))
        next_ping = trio.current_time() + PING_INTERVAL
        while True:
            if batch:
                self._unanswered.append([trio.current_time(), len(batch)])
                await stream.send_all(b"".join(batch))
            with trio.move_on_at(min(next_ping, self._reply_deadline())):
                await self._wake.wait()
            self._wake = trio.Event()
            if self._overflow:
                raise LinkLostError("too many changes queued; re-registering")
            now = trio.current_time()
            if now >= self._reply_deadline():
                raise LinkLostError(f"no reply in {REPLY_TIMEOUT:g}s")
            batch = list(self._queue)
            self._queue.clear()
            if now >= next_ping:
                batch.append(encode_lookup_ping())
                next_ping = now + PING_INTERVAL

    def _reply_deadline(self) -> float:
        """When the oldest unanswered command has waited ``REPLY_TIMEOUT`` (inf: none waits)."""
        return self._unanswered[0][0] + REPLY_TIMEOUT if self._unanswered else math.inf

    async def _read_replies(self, stream: trio.SocketStream, replies: ReplyReader) -> None:
        while True:
            reply = await _read_reply(stream, replies)
            if self._unanswered:
                head = self._unanswered[0]
                head[1] -= 1
                if not head[1]:
                    self._unanswered.popleft()
            if reply != b"OK":
                log.error("LOOKUPD(%s): error reply %r", self.address, reply[:200])


async def _read_reply(stream: trio.SocketStream, replies: ReplyReader) -> bytes:
    while (reply := replies.next_reply()) is None:
        data = await stream.receive_some(64 * 1024)
        if not data:
            raise LinkLostError("connection closed")
        replies.receive_data(data)
    return reply


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _describe(exc.exceptions[0])
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    return str(exc) or type(exc).__name__


def registrations(nsqd: LookupHost) -> list[bytes]:
    """REGISTER for every channel, or for the bare topic when it has none (NSQ's order).

    Nothing while nsqd drains, and nothing for a draining topic: they are leaving.
    """
    if nsqd.draining:
        return []
    commands = []
    for topic in list(nsqd.topics.values()):
        if not topic.draining:
            commands += topic_registrations(topic)
    return commands


def topic_registrations(topic: Topic) -> list[bytes]:
    if topic.channels:
        return [encode_register(topic.name, name) for name in topic.channels]
    return [encode_register(topic.name)]


class LookupPeers:
    """Every lookupd link of one nsqd, following ``options.nsqlookupd_tcp_addresses``."""

    def __init__(self, nsqd: LookupHost) -> None:
        self._nsqd = nsqd
        self.peers: dict[str, tuple[LookupPeer, trio.CancelScope]] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self) -> None:
        """Keep the links until cancelled (``NSQD.serve`` runs it)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.set_addresses(self._nsqd.options.nsqlookupd_tcp_addresses)
            await trio.sleep_forever()

    def set_addresses(self, addresses: tuple[str, ...]) -> None:
        nursery = self._nursery
        if nursery is None:
            return
        for address in set(self.peers) - set(addresses):
            log.info("LOOKUP(%s): removing peer", address)
            self.peers.pop(address)[1].cancel()
        for address in addresses:
            if address not in self.peers:
                log.info("LOOKUP(%s): adding peer", address)
                peer, scope = LookupPeer(address, self._nsqd), trio.CancelScope()
                self.peers[address] = (peer, scope)
                nursery.start_soon(_run_in, peer, scope)

    def _send(self, command: bytes) -> None:
        for peer, _ in self.peers.values():
            peer.send(command)

    # -- the broker's hooks ---------------------------------------------------------------

    def fetch_channels(self, topic: Topic) -> bool:
        """Ask the lookupds for ``topic``'s channels, then ``hatch`` it; False if none to ask."""
        http = [peer.http_address for peer, _ in self.peers.values() if peer.http_address]
        if not http or self._nursery is None:
            return False
        topic.awaiting_channels = True
        self._nursery.start_soon(self._create_known_channels, topic, http)
        return True

    def topic_created(self, topic: Topic) -> None:
        for command in topic_registrations(topic):
            self._send(command)

    def topic_deleted(self, name: str) -> None:
        self._send(encode_unregister(name))

    def channel_created(self, topic: Topic, channel: Channel) -> None:
        self._send(encode_register(topic.name, channel.name))

    def channel_deleted(self, topic: Topic, channel: Channel) -> None:
        self._send(encode_unregister(topic.name, channel.name))

    async def _create_known_channels(self, topic: Topic, http: list[str]) -> None:
        names: set[str] = set()
        with trio.move_on_after(CHANNELS_WAIT):
            async with trio.open_nursery() as nursery:
                for address in http:
                    nursery.start_soon(_fetch_channels, address, topic.name, names)
        valid = [name for name in names if is_valid_name(name) and not is_ephemeral(name)]
        self._nsqd.hatch(topic, sorted(valid))


async def _run_in(peer: LookupPeer, scope: trio.CancelScope) -> None:
    with scope:
        await peer.run()


async def _fetch_channels(address: str, topic: str, names: set[str]) -> None:
    try:
        document = await http_get_json(address, f"/channels?topic={quote(topic)}")
        channels = document.get("channels") or []
        names.update(name for name in channels if isinstance(name, str))
    except Exception as exc:
        log.warning("LOOKUPD(%s): /channels?topic=%s failed - %s", address, topic, exc)


async def http_get_json(address: str, target: str) -> Any:
    """GET ``target`` from ``host:port`` and decode its JSON; ValueError unless 200."""
    host, port = split_host_port(address)
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        conn = h11.Connection(h11.CLIENT)
        headers = [("Host", address), ("Accept", "application/vnd.nsq; version=1.0")]
        request = conn.send(h11.Request(method="GET", target=target, headers=headers))
        await stream.send_all((request or b"") + (conn.send(h11.EndOfMessage()) or b""))
        status, body = 0, bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(64 * 1024))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_HTTP_BODY:
                    raise ValueError("response too big")
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise ValueError(f"unexpected HTTP event {event!r}")
    if status != 200:
        raise ValueError(f"HTTP status {status}")
    return json.loads(body)
