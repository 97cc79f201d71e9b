"""GET /metrics in slices: publishers are served while a large scrape is written out, and
topics deleted or created meanwhile are read as of their slice, never a crash.

``SLICE_SECONDS`` is patched to 0, so the scrape yields after every topic and every family:
the interleaving then depends on trio's scheduling only, not on the machine's speed.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from v2client import V2Client

from pnsq.nsqd import metrics, scrape
from pnsq.nsqd.nsqd import NSQD
from pnsq.nsqd.stats import topic_snapshot

TOPICS = 200


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of family ``name``, by their labels (sorted)."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def topic_depths(text: str) -> dict[str, float]:
    """``nsq_message_count`` of each topic a scrape shows."""
    return {
        dict(labels)["topic"]: value
        for labels, value in samples(text, "nsq_message_count").items()
        if ("type", "topic") in labels
    }


@pytest.fixture
def every_step(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A checkpoint after every step of a scrape; returns the topics read so far, in order."""
    read: list[str] = []

    def snapshot(topic: Any, *args: Any) -> Any:
        read.append(topic.name)
        return topic_snapshot(topic, *args)

    monkeypatch.setattr(scrape, "SLICE_SECONDS", 0.0)
    monkeypatch.setattr(scrape, "topic_snapshot", snapshot)
    return read


async def test_a_publish_is_answered_while_a_large_scrape_is_under_way(
    make_nsqd: Any, http: Any, every_step: list[str]
) -> None:
    nsqd: NSQD = await make_nsqd()
    assert nsqd.tcp_address is not None
    names = [f"t{i:03d}" for i in range(TOPICS)]
    for name in names:
        nsqd.get_topic(name)
    scraped: list[str] = []

    async def scrape() -> None:
        response = await http(nsqd.http_address, "GET", "/metrics")
        assert response.status == 200
        scraped.append(response.body.decode())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(scrape)
        await wait_for(lambda: bool(every_step))  # the scrape has begun reading the topics
        async with await V2Client.connect(nsqd.tcp_address) as publisher:
            await publisher.pub(names[-1], b"during the scrape")
        read_by_then = len(every_step)
        assert not scraped  # the PUB's OK came before the scrape's answer

    # Answered while the scrape was still reading: a scrape in one go reads all at once.
    assert 0 < read_by_then < TOPICS
    [text] = scraped
    depths = topic_depths(text)
    assert sorted(depths) == names
    assert depths[names[-1]] == 1  # read as of its slice: after the PUB
    assert samples(text, "nsq_topic_count") == {(): TOPICS}


async def test_topics_deleted_or_created_mid_scrape_are_read_as_of_their_slice(
    make_nsqd: Any, every_step: list[str]
) -> None:
    nsqd: NSQD = await make_nsqd()
    for name in ("a", "b", "c", "d"):
        nsqd.get_topic(name).get_channel("ch", nsqd.now())
    nsqd.exposition = metrics.exposition(nsqd)
    families = scrape.Families(nsqd)
    slices = families.slices()
    next(slices)
    assert every_step == ["a"]
    nsqd.delete_topic("a")  # already read: shown as it was
    nsqd.delete_topic("c")  # not read yet: left out
    nsqd.topics["d"].delete_channel("ch")
    nsqd.get_topic("bb")  # created after the scrape began: not in this one
    for _ in slices:
        pass
    body, _ = nsqd.exposition.encode(None, families.daemon(), families.written)
    text = body.decode()

    assert sorted(topic_depths(text)) == ["a", "b", "d"]
    channels = {
        (dict(labels)["topic"], dict(labels)["channel"])
        for labels in samples(text, "nsq_depth")
        if ("type", "channel") in labels
    }
    assert channels == {("a", "ch"), ("b", "ch")}
    assert samples(text, "nsq_topic_count") == {(): 3}


async def wait_for(condition: Any) -> None:
    """Poll ``condition`` once per scheduler pass (a scrape under way keeps a task runnable,
    so ``wait_all_tasks_blocked`` would wait for its end)."""
    with trio.fail_after(5):
        while not condition():
            await trio.lowlevel.checkpoint()
