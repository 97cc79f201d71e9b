"""Aggregation and history as pure functions over /stats documents: no sockets, no clock."""

from __future__ import annotations

from typing import Any

import pytest

from pnsq.admin import aggregate
from pnsq.admin.aggregate import Node
from pnsq.admin.history import History, counters


def channel(name: str, **counts: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
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
        "paused": False,
        "e2e_processing_latency": {"count": 0, "percentiles": None},
    }
    doc.update(counts)
    return doc


def topic(name: str, *channels: dict[str, Any], **counts: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "topic_name": name,
        "channels": list(channels),
        "depth": 0,
        "backend_depth": 0,
        "message_count": 0,
        "message_bytes": 0,
        "paused": False,
        "e2e_processing_latency": {"count": 0, "percentiles": None},
    }
    doc.update(counts)
    return doc


def node(name: str, *topics: dict[str, Any], **fields: Any) -> Node:
    stats = {"version": "1.3.0", "health": "OK", "start_time": 0, "topics": list(topics)}
    return Node(node=name, hostname=f"host-{name}", stats=stats, **fields)


def down(name: str, *lookupd_topics: str) -> Node:
    return Node(
        node=name,
        error="connection refused",
        lookupd_topics=tuple((t, False) for t in lookupd_topics),
    )


CLIENT = {
    "client_id": "c1",
    "hostname": "worker",
    "remote_address": "10.0.0.9:5555",
    "user_agent": "pynsq/0.9.1",
    "ready_count": 5,
    "in_flight_count": 2,
    "finish_count": 40,
    "requeue_count": 1,
    "message_count": 43,
    "connect_ts": 1700000000,
}


@pytest.fixture
def cluster() -> list[Node]:
    """Two nodes with topic ``orders`` (channels ship and bill), a third that is down."""
    return [
        node(
            "a:4151",
            topic(
                "orders",
                channel("ship", depth=3, backend_depth=1, in_flight_count=2, message_count=10),
                channel("bill", depth=1, message_count=10, paused=True),
                depth=4,
                backend_depth=2,
                message_count=10,
            ),
            topic("audit", message_count=7, depth=7),
        ),
        node(
            "b:4151",
            topic(
                "orders",
                channel(
                    "ship",
                    depth=5,
                    in_flight_count=1,
                    deferred_count=2,
                    requeue_count=3,
                    timeout_count=4,
                    message_count=20,
                    client_count=1,
                    clients=[CLIENT],
                ),
                depth=1,
                message_count=20,
                paused=True,
            ),
        ),
        down("c:4151", "orders"),
    ]


def test_topic_summaries_add_topic_and_channel_depth_over_nodes(cluster: list[Node]) -> None:
    names = aggregate.topic_names(cluster)
    assert names == ["audit", "orders"]
    rows = {r["topic_name"]: r for r in aggregate.topic_summaries(cluster, names)}
    assert rows["orders"] == {
        "topic_name": "orders",
        "depth": 5,
        "total_depth": 5 + 3 + 1 + 5,
        "in_flight_count": 3,
        "message_count": 30,
        "channel_count": 2,
        "node_count": 2,
        "paused": True,
    }
    assert rows["audit"]["total_depth"] == 7


def test_topic_names_include_lookupd_only_topics(cluster: list[Node]) -> None:
    assert aggregate.topic_names(cluster, ["fresh"]) == ["audit", "fresh", "orders"]


def test_topic_stats_sum_nodes_and_keep_the_down_node_as_a_row(cluster: list[Node]) -> None:
    view = aggregate.topic_stats(cluster, "orders")
    assert view is not None
    data = view.data
    assert (data["node"], data["depth"], data["backend_depth"], data["memory_depth"]) == (
        "*",
        5,
        2,
        3,
    )
    assert data["message_count"] == 30
    assert [(n["node"], n["up"]) for n in data["nodes"]] == [
        ("a:4151", True),
        ("b:4151", True),
        ("c:4151", False),
    ]
    assert data["nodes"][2]["error"] == "connection refused"
    ship = next(c for c in data["channels"] if c["channel_name"] == "ship")
    assert (ship["depth"], ship["in_flight_count"], ship["message_count"]) == (8, 3, 30)
    assert [c["channel_name"] for c in data["channels"]] == ["bill", "ship"]
    assert view.document()["message"].startswith("WARNING: nsqd c:4151 did not answer")


def test_topic_stats_of_an_unknown_topic_is_none(cluster: list[Node]) -> None:
    assert aggregate.topic_stats(cluster, "nope") is None


def test_channel_stats_sum_counts_and_gather_clients_with_their_node(
    cluster: list[Node],
) -> None:
    view = aggregate.channel_stats(cluster, "orders", "ship")
    assert view is not None
    data = view.data
    expected = {
        "depth": 8,
        "backend_depth": 1,
        "memory_depth": 7,
        "in_flight_count": 3,
        "deferred_count": 2,
        "requeue_count": 3,
        "timeout_count": 4,
        "message_count": 30,
        "client_count": 1,
    }
    assert {k: data[k] for k in expected} == expected
    assert data["clients"] == [{**CLIENT, "node": "b:4151"}]
    assert [n["up"] for n in data["nodes"]] == [True, True, False]
    assert data["paused"] is False


def test_channel_paused_on_one_node_is_paused(cluster: list[Node]) -> None:
    view = aggregate.channel_stats(cluster, "orders", "bill")
    assert view is not None
    assert view.data["paused"] is True


def test_all_nodes_down_still_answers_with_rows_and_warnings() -> None:
    nodes = [down("a:1", "orders"), down("b:1", "orders")]
    view = aggregate.topic_stats(nodes, "orders")
    assert view is not None
    assert view.data["depth"] == 0
    assert len(view.data["nodes"]) == 2
    assert len(view.warnings) == 2
    assert aggregate.channel_stats(nodes, "orders", "ship") is not None  # rows of down nodes
    assert aggregate.channel_stats([], "orders", "ship") is None


def test_node_list_marks_down_nodes_and_tombstoned_topics() -> None:
    nodes = [
        node("a:4151", topic("orders"), lookupd_topics=(("orders", True),), version="1.2.1"),
        down("b:4151", "orders"),
    ]
    rows = aggregate.node_list(nodes, "1.3.0").data["nodes"]
    assert rows[0]["topics"] == [{"topic": "orders", "tombstoned": True}]
    assert (rows[0]["up"], rows[0]["out_of_date"]) == (True, True)
    assert (rows[1]["up"], rows[1]["error"]) == (False, "connection refused")


def test_node_stats_totals_and_clients(cluster: list[Node]) -> None:
    view = aggregate.node_stats(cluster, "b:4151")
    assert view is not None
    assert (view.data["total_messages"], view.data["total_clients"]) == (20, 1)
    assert view.data["clients"][0]["channel_name"] == "ship"
    assert aggregate.node_stats(cluster, "zz:1") is None


def test_counter_sums_channel_messages_by_topic_channel_node(cluster: list[Node]) -> None:
    data = aggregate.counter(cluster).data
    assert data["total_messages"] == 40
    assert data["stats"]["orders:ship:b:4151"] == {
        "node": "b:4151",
        "topic_name": "orders",
        "channel_name": "ship",
        "message_count": 20,
    }


def test_e2e_percentiles_merge_min_max_and_average_weighted_by_finished_messages() -> None:
    # as nsqadmin: a node that finished 3 messages weighs three times one that finished 1
    merged = aggregate.merge_e2e(
        [
            {"count": 3, "percentiles": [{"quantile": 0.99, "value": 10.0}]},
            {"count": 1, "percentiles": [{"quantile": 0.99, "value": 30.0}]},
            {"count": 0, "percentiles": None},
        ]
    )
    assert merged == {
        "count": 4,
        "percentiles": [{"quantile": 0.99, "min": 10.0, "max": 30.0, "average": 15.0, "count": 4}],
    }


def test_e2e_quantiles_come_highest_first_and_without_counts_average_plainly() -> None:
    merged = aggregate.merge_e2e(
        [
            {"percentiles": [{"quantile": 0.5, "value": 2.0}, {"quantile": 1.0, "value": 8.0}]},
            {"percentiles": [{"quantile": 0.5, "value": 4.0}, {"quantile": 1.0, "value": 8.0}]},
        ]
    )
    assert [(p["quantile"], p["average"]) for p in merged["percentiles"]] == [
        (1.0, 8.0),
        (0.5, 3.0),
    ]
    assert aggregate.merge_e2e([None, {"count": 0, "percentiles": None}]) == {
        "count": 0,
        "percentiles": None,
    }


def test_a_channel_on_two_nodes_merges_their_e2e_latency() -> None:
    def e2e(count: int, p99: float) -> dict[str, Any]:
        return {"count": count, "percentiles": [{"quantile": 0.99, "value": p99}]}

    nodes = [
        node("a", topic("t", channel("c", e2e_processing_latency=e2e(1, 100.0)))),
        node("b", topic("t", channel("c", e2e_processing_latency=e2e(3, 200.0)))),
    ]
    view = aggregate.channel_stats(nodes, "t", "c")
    assert view is not None
    (p99,) = view.data["e2e_processing_latency"]["percentiles"]
    assert (p99["min"], p99["max"], p99["average"], p99["count"]) == (100.0, 200.0, 175.0, 4)
    per_node = [
        r["e2e_processing_latency"]["percentiles"][0]["average"] for r in view.data["nodes"]
    ]
    assert per_node == [100.0, 200.0]
    topic_view = aggregate.topic_stats(nodes, "t")
    assert topic_view is not None
    assert topic_view.data["channels"][0]["e2e_processing_latency"]["percentiles"] == [p99]


# -- history ----------------------------------------------------------------------------------


def sample(*pairs: tuple[str, int, int]) -> list[Node]:
    """Nodes with topic ``t`` / channel ``c``: (node, message_count, channel depth)."""
    return [
        node(name, topic("t", channel("c", message_count=count, depth=depth), message_count=count))
        for name, count, depth in pairs
    ]


def test_rates_come_from_message_count_deltas_summed_over_nodes() -> None:
    history = History(10)
    history.record(100.0, counters(sample(("a", 100, 5), ("b", 50, 1))))
    history.record(102.0, counters(sample(("a", 120, 7), ("b", 60, 1))))
    assert history.points("topic:t") == [(100.0, None, 6), (102.0, 15.0, 8)]
    assert history.rate("channel:t:c") == 15.0
    assert history.rate("node:a") == 10.0
    assert history.rate("total") == 15.0  # messages processed: channel counts


def test_a_node_going_down_or_restarting_never_makes_a_negative_rate() -> None:
    history = History(10)
    history.record(0.0, counters(sample(("a", 100, 0), ("b", 1000, 0))))
    history.record(1.0, counters(sample(("a", 110, 0))))  # b is gone
    assert history.rate("topic:t") == 10.0
    history.record(2.0, counters(sample(("a", 5, 0), ("b", 1000, 0))))  # a restarted
    assert history.rate("topic:t") == 5.0


def test_history_is_bounded_and_forgets_series_that_went_away() -> None:
    history = History(3)
    for i in range(5):
        history.record(float(i), counters(sample(("a", i, 0))))
    assert [p[0] for p in history.points("topic:t")] == [2.0, 3.0, 4.0]
    for i in range(5, 8):
        history.record(float(i), counters([]))
    assert history.points("topic:t") == []
    assert "topic:t" not in history.series


def test_history_document_shape() -> None:
    history = History(3)
    history.record(1.0, counters(sample(("a", 1, 2))))
    assert history.document("channel:t:c", 2.0) == {
        "series": "channel:t:c",
        "interval": 2.0,
        "points": [{"t": 1.0, "rate": None, "depth": 2}],
    }
