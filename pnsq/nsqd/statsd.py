"""nsqd's statsd push (reference §2.22): what Go nsqd 1.3's ``statsdLoop`` sends, line for line.

Every ``--statsd-interval`` one task takes the snapshot /stats is made of and turns it into
statsd lines (``statsd_lines``: Go's names and types, counters as deltas), packed into
datagrams of at most ``--statsd-udp-packet-size`` bytes and spread over the interval less one
second (Go's ``SpreadWriter``), so a statsd daemon never gets the whole node in one burst.
Wake-ups are at least ``MIN_STEP`` apart (each sends every datagram due), so a large node at a
1 s interval costs ~100 wake-ups a second, not one per datagram. The socket is a plain
non-blocking UDP socket, sent on directly and waited on (``trio.lowlevel.wait_writable``) only
when the kernel's buffer is full: trio's ``send`` is a scheduler pass per call (~14 us against
~3 us, PERFORMANCE.md), which for a push of 140 datagrams was most of its cost.

Nothing here touches the hot path: the snapshot reads counters the broker keeps anyway, once
per interval. The address is resolved anew for every push, as Go dials it each time; a push
whose address cannot be resolved is skipped and its counters roll into the next one. A statsd
that is down or unresolvable is logged once at WARNING (and once when it answers again); send
errors never reach the broker.
"""

from __future__ import annotations

import logging
import math
import socket
from typing import TYPE_CHECKING

import trio

from .._internal.netaddr import split_host_port
from .stats import memory_stats, topics_stats
from .statsd_lines import (
    Json,
    Metric,
    by_name,
    lines,
    memory_metrics,
    metrics,
    packets,
    statsd_prefix,
)

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger("pnsq.nsqd")

DIAL_TIMEOUT = 1.0  # Go: net.DialTimeout("udp", addr, time.Second)
SPREAD_SLACK = 1.0  # Go spreads a push over the interval less one second
MIN_STEP = 0.01  # at most ~100 wake-ups a second, however many datagrams a push has


def spread_window(interval: float) -> float:
    """How long a push's datagrams are spread over: Go's interval less one second, and half
    the interval when that is shorter (Go's spread panics at an interval of 1 s or less)."""
    return max(interval - SPREAD_SLACK, interval / 2)


class StatsdPusher:
    """The push task of one nsqd (``run``), started by ``NSQD.serve`` with --statsd-address."""

    def __init__(self, nsqd: Broker) -> None:
        self._nsqd = nsqd
        self._options = nsqd.options
        self._last_topics: dict[str, Json] = {}
        self._last_memory: Json = {}
        self._failing = False

    def prefix(self) -> str:
        options, http = self._options, self._nsqd.http_address
        port = options.broadcast_http_port or (http[1] if http else 0)
        return statsd_prefix(options.statsd_prefix, options.broadcast_address, port)

    async def run(self) -> None:
        interval = self._options.statsd_interval
        log.info("STATSD: pushing stats to %s every %gs", self._options.statsd_address, interval)
        next_push = trio.current_time() + interval
        while True:
            await trio.sleep_until(next_push)
            try:
                await self.push(spread_window(interval))
            except Exception:  # a bug here must not take nsqd down: log it, push again later
                log.exception("STATSD: push failed")
            # like Go's ticker, a push that ran late skips the ticks it missed
            next_push += interval * max(1, math.ceil((trio.current_time() - next_push) / interval))

    async def push(self, window: float) -> None:
        """One push: dial (or skip, counters rolling over), snapshot, send spread over ``window``."""
        sock = await self._dial()
        if sock is None:
            return
        with sock:
            datagrams = packets(
                lines(self.prefix(), self.collect()), self._options.statsd_udp_packet_size
            )
            log.debug(
                "STATSD: pushing %d datagrams to %s", len(datagrams), self._options.statsd_address
            )
            failures = await self._spread(sock, datagrams, window)
        if failures == 0 and self._failing:
            self._failing = False
            log.info("STATSD: pushing to %s again", self._options.statsd_address)

    def collect(self) -> list[Metric]:
        """This push's metrics; the next push's counters count from here."""
        topics = topics_stats(self._nsqd, "", "", False, self._nsqd.now()) or []
        options = self._options
        found = list(
            metrics(
                topics,
                self._last_topics,
                options.statsd_exclude_ephemeral,
                options.e2e_processing_latency_percentiles,
            )
        )
        self._last_topics = by_name(topics)
        if self._options.statsd_mem_stats:
            memory = memory_stats()
            found += memory_metrics(memory, self._last_memory)
            self._last_memory = memory
        return found

    async def _dial(self) -> socket.socket | None:
        try:
            host, port = split_host_port(self._options.statsd_address)
            host = host or "127.0.0.1"  # Go dials the local system for an empty host
            with trio.fail_after(DIAL_TIMEOUT):
                infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.connect(address)  # UDP: picks the route, sends nothing, never waits
            except OSError:
                sock.close()
                raise
        except (OSError, ValueError, trio.TooSlowError) as err:
            self._failed(
                f"failed to create UDP socket to statsd({self._options.statsd_address}) - {err}"
            )
            return None
        return sock

    async def _spread(self, sock: socket.socket, datagrams: list[bytes], window: float) -> int:
        """Datagram ``i`` goes at ``i * window / n``; a wake-up sends every datagram due.
        Returns how many sends failed. Cancelled (nsqd stops), it sends the rest at once, as
        Go's ``SpreadWriter`` skips its sleeps on exit but finishes its writes."""
        failures = sent = 0
        start, step = trio.current_time(), window / max(len(datagrams), 1)
        try:
            while sent < len(datagrams):
                elapsed = math.floor((trio.current_time() - start) / step)
                for datagram in datagrams[sent : max(sent + 1, elapsed + 1)]:
                    failures += not await self._send(sock, datagram)
                    sent += 1  # not reached if cancelled: waiting to send, it sent nothing
                if sent < len(datagrams):
                    next_at = max(start + sent * step, trio.current_time() + MIN_STEP)
                    await trio.sleep_until(next_at)
        finally:
            deadline = trio.current_time() + DIAL_TIMEOUT
            with trio.CancelScope(deadline=deadline, shield=True):
                for datagram in datagrams[sent:]:
                    failures += not await self._send(sock, datagram)
        return failures

    async def _send(self, sock: socket.socket, datagram: bytes) -> bool:
        """Send one datagram; False if it failed (e.g. ECONNREFUSED: nothing listens there,
        which a connected UDP socket learns from the previous datagram's ICMP reply)."""
        while True:
            try:
                sock.send(datagram)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
            except OSError as err:
                self._failed(f"failed to send to statsd({self._options.statsd_address}) - {err}")
                return False
            else:
                return True

    def _failed(self, message: str) -> None:
        if not self._failing:
            self._failing = True
            log.warning("STATSD: %s (logged once until it works again)", message)
