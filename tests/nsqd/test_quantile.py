"""E2E processing latency percentiles over a rolling window."""

from __future__ import annotations

from pnsq.nsqd.quantile import MAX_SAMPLES, Quantile, e2e_stats


def test_percentiles_of_inserted_latencies() -> None:
    q = Quantile(window=600.0, percentiles=(0.5, 0.99), now=0.0)
    for value in range(1, 1001):
        q.insert(value, now=1.0)
    stats = e2e_stats([q], (0.5, 0.99), now=2.0)
    assert stats["count"] == 1000
    values = {p["quantile"]: p["value"] for p in stats["percentiles"]}
    assert 495 <= values[0.5] <= 505
    assert 985 <= values[0.99] <= 1000


def test_old_samples_leave_the_window() -> None:
    q = Quantile(window=10.0, percentiles=(0.5,), now=0.0)
    q.insert(1_000_000, now=1.0)
    assert e2e_stats([q], (0.5,), now=6.0)["count"] == 1  # still in the previous half
    q.insert(5, now=6.0)
    assert e2e_stats([q], (0.5,), now=11.0)["count"] == 1  # the first half rotated out
    # an empty stream answers 0 for each percentile, as Go's does; a topic with no channel
    # (no stream at all) answers null
    assert e2e_stats([q], (0.5,), now=30.0) == {
        "count": 0,
        "percentiles": [{"quantile": 0.5, "value": 0.0}],
    }
    assert e2e_stats([], (0.5,), now=30.0) == {"count": 0, "percentiles": None}


def test_memory_stays_bounded_and_topic_merges_channels() -> None:
    a = Quantile(window=600.0, percentiles=(0.5,), now=0.0)
    b = Quantile(window=600.0, percentiles=(0.5,), now=0.0)
    for value in range(3 * MAX_SAMPLES):
        a.insert(value, now=1.0)
    b.insert(7, now=1.0)
    samples, seen = a.samples(now=1.0)
    assert len(samples) == MAX_SAMPLES
    assert seen == 3 * MAX_SAMPLES
    assert e2e_stats([a, b], (0.5,), now=1.0)["count"] == 3 * MAX_SAMPLES + 1


def test_disabled_reports_nulls_like_nsq() -> None:
    assert e2e_stats([], (), now=0.0) == {"count": 0, "percentiles": None}
