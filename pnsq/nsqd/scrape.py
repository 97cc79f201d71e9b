"""nsqd's GET /metrics answer, read and written in slices with a checkpoint between them.

A scrape of 1,000 topics x 3 channels is ~12 ms of CPU, 10,000 topics ~120 ms: in one go, the
event loop would serve nobody meanwhile, and a publisher scraped back to back got one MPUB in
per scrape. So ``Families.slices`` is a generator: it snapshots the topics one by one by name
(each with ``stats.topic_snapshot``, /stats' own per-topic code, so the two cannot disagree),
writes their lines family by family in batches (``metrics.specs``; each family keeps every
topic's lines before every channel's), then joins each family's text, and yields whenever it
has run ``SLICE_SECONDS``. ``scrape`` awaits a checkpoint at each yield. Only the
daemon-wide families and the final join of the body (~1 ms for 3 MB) are done in one go.

A topic is read as of its slice: one deleted before its turn is left out, one created after
the scrape began is not in it, and ``nsq_topic_count`` counts the topics shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from time import perf_counter
from typing import TYPE_CHECKING, Any

import trio
from prometheus_client.metrics_core import Metric

from .._internal.http_server import Response
from .._internal.prometheus import LineFamily
from .metrics import Rows, daemon_families, specs
from .stats import topic_snapshot

if TYPE_CHECKING:
    from .broker import Broker

Json = dict[str, Any]

# nsqd's CPU between two checkpoints of a scrape. A publisher that waits for each answer gets
# about one in per slice (nsqd reads it at the next scheduler pass), so slices are short; a
# checkpoint and its scheduler pass cost a few µs, some 5 % of the scrape at this length.
SLICE_SECONDS = 0.000_05
# Topics, channels and clients snapshotted before their lines are written, family by family:
# enough for the cost of a batch (a call per family) to vanish, few enough for one family's
# lines of a batch to take about a slice (0.1-0.2 ms at most).
_WRITE_WORK = 400


async def scrape(nsqd: Broker, accept: bytes | None) -> Response:
    """GET /metrics' answer, read and written in slices with a checkpoint between them, so
    that clients are served meanwhile (10,000 topics take ~120 ms of CPU)."""
    assert nsqd.exposition is not None
    families = Families(nsqd)
    for _ in families.slices():
        await trio.lowlevel.checkpoint()
    return nsqd.exposition.response(accept, families.daemon(), families.written)


class Families:
    """The nsqd families of one scrape, read from ``nsqd`` topic by topic."""

    def __init__(self, nsqd: Broker) -> None:
        self._nsqd = nsqd
        options = nsqd.options
        self._per_client = options.metrics_per_client
        self._percentiles = options.e2e_processing_latency_percentiles
        self._now = nsqd.now()
        self._specs = specs(bool(self._percentiles), self._per_client)
        self._parts: list[list[list[str]]] = [[[] for _ in spec[3]] for spec in self._specs]
        self._topic_count = 0
        self._deadline = 0.0  # when the slice under way should end (perf_counter)
        self.written: list[bytes] = []  # the per-topic families' text, once ``slices`` is done

    def slices(self) -> Iterator[None]:
        """Snapshot the topics, by name, and write their families, yielding every
        ``SLICE_SECONDS``. Each topic is read as of its slice: one deleted before it is left
        out, as is one created after the scrape began."""
        topics = self._nsqd.topics
        batch: list[Json] = []
        work = 0
        self._resume()
        for name in sorted(topics):
            topic = topics.get(name)
            if topic is None:
                continue
            stats = topic_snapshot(topic, self._per_client, self._percentiles, self._now)
            assert stats is not None  # no channel filter
            batch.append(stats)
            channels = stats["channels"]
            work += 1 + len(channels)
            if self._per_client:
                work += sum(channel["client_count"] for channel in channels)
            if work >= _WRITE_WORK:
                yield from self._write(batch)
                batch, work = [], 0
            elif self._over():
                yield
                self._resume()
        yield from self._write(batch)
        yield from self._encode()

    def _write(self, topics: list[Json]) -> Iterator[None]:
        rows = Rows(topics, self._per_client, bool(self._percentiles))
        for parts, (_, _, _, lines_of) in zip(self._parts, self._specs, strict=True):
            for part, lines in zip(parts, lines_of, strict=True):
                part += lines(rows)
                if self._over():
                    yield
                    self._resume()
        self._topic_count += len(topics)

    def _encode(self) -> Iterator[None]:
        """Each family's text, as ``Exposition.encode`` would write it (the lines in one
        string: some 3 MB for 1,000 topics)."""
        for parts, (name, text, typ, _) in zip(self._parts, self._specs, strict=True):
            family = LineFamily(name, text, typ, _joined(parts))
            self.written.append(family.text().encode())
            parts.clear()
            if self._over():
                yield
                self._resume()

    def _over(self) -> bool:
        return perf_counter() >= self._deadline

    def _resume(self) -> None:
        self._deadline = perf_counter() + SLICE_SECONDS

    def daemon(self) -> list[Metric]:
        """The daemon-wide families, once ``slices`` is done."""
        return daemon_families(self._nsqd, self._topic_count)


def _joined(parts: list[list[str]]) -> list[str]:
    """A family's lines: its topics' part, then its channels' (without a copy of the first)."""
    lines = parts[0]
    for part in parts[1:]:
        lines += part
    return lines
