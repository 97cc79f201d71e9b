"""The seed topology through network faults: a partition, a lost lookupd, a slow lossy network.

Same hosts, daemons and ledger as test_cluster_load.py; every scenario asserts that every
acknowledged message was consumed at least once and reports its figures (``CLUSTER ...``).
"""

from __future__ import annotations

import time

import pytest
from cluster_ledger import report
from cluster_load import Load, reconnects
from cluster_procs import http, wait_for
from cluster_topology import NSQDS, Cluster, MakeCluster

pytestmark = pytest.mark.timeout(90)


def _link_drops(cluster: Cluster, lookupd_address: str) -> int:
    """How often nsqd3 logged giving up its link to that lookupd."""
    text = cluster.daemons["nsqd3"].log_path.read_text(errors="replace")
    peer = f"LOOKUPD({lookupd_address}:4160)"
    return sum(1 for line in text.splitlines() if peer in line and "reconnecting" in line)


def test_partition_nsqd_from_one_lookupd_then_heal(make_cluster: MakeCluster) -> None:
    """nsqd3 and lookupd1 cannot reach each other: consumption goes on, a topic nsqd3 creates
    meanwhile is found through lookupd2 alone, and after the heal nsqd3 registers everything
    with lookupd1 again (not tombstoned; a tombstone set then applies to that topic there)."""
    cluster = make_cluster()
    nsqd3, lookupd1 = cluster.host("nsqd3"), cluster.host("lookupd1")
    steady = Load(cluster, "part")
    steady.prepare()
    steady.consume("consumer1", max_in_flight=200)
    # a slow stream (about 25 s) that outlasts the partition
    producer = steady.produce(15_000, batch=50, tasks=1, pause=0.08, deadline=60)
    wait_for("load to flow", lambda: steady.ledger.consumed_count() > 500, 30)
    drops_before = _link_drops(cluster, lookupd1.address)  # at start, lookupd may not listen yet
    nsqd3.block(lookupd1.address)
    lookupd1.block(nsqd3.address)
    cut_at, consumed_at_cut = time.time(), steady.ledger.consumed_count()
    fresh = _new_topic_found_through_lookupd2_only(cluster)
    # the partition lasts until nsqd3 gave the link up (no reply in time), so that the heal
    # is a reconnection and a full re-registration, not a TCP retransmission
    wait_for(
        "nsqd3 to drop its lookupd1 link",
        lambda: _link_drops(cluster, lookupd1.address) > drops_before,
        25,
    )
    nsqd3.unblock(lookupd1.address)
    lookupd1.unblock(nsqd3.address)
    healed_at, consumed_at_heal = time.time(), steady.ledger.consumed_count()
    wait_for("lookupd1 to learn the topic", lambda: cluster.lookup("lookupd1", "fresh"), 20)
    reregistered = time.time() - healed_at
    entries = [n for n in cluster.nodes("lookupd1") if n["broadcast_address"] == nsqd3.address]
    summary = steady.wait_produced(producer, timeout=60)
    steady.ledger.wait_all_consumed(timeout=60)
    figures = {
        "steady": steady.ledger.figures(),
        "fresh": fresh.ledger.figures(),
        "partition_s": round(healed_at - cut_at, 2),
        "consumed_during_partition": consumed_at_heal - consumed_at_cut,
        "reregistered_after_heal_s": round(reregistered, 2),
        "lookupd1_nodes_entries_for_nsqd3_after_heal": len(entries),
        "producer_retries": summary["retries"],
    }
    steady.stop_consumers()
    fresh.stop_consumers()
    report(cluster, "3-partition", figures)
    assert figures["steady"]["lost"] == 0
    assert figures["fresh"]["lost"] == 0
    assert figures["consumed_during_partition"] > 1000
    assert cluster.lookup("lookupd1", "fresh") == {cluster.nsqd_tcp("nsqd3")}
    # the link nsqd3 gave up may still be listed (NSQ's lookupd behaves alike: nothing tells
    # it) until its TCP close gets through or --inactive-producer-timeout; the new one holds
    # every topic, and nothing is tombstoned
    assert any(sorted(n["topics"]) == ["fresh", "load"] for n in entries), entries
    assert not any(any(n["tombstones"]) for n in entries), entries
    _tombstone_on_lookupd1_only(cluster)


def _tombstone_on_lookupd1_only(cluster: Cluster) -> None:
    """An operator tombstones nsqd3 for "fresh" on the healed lookupd1: lookupd1 stops giving it
    out for that topic alone and says so in /nodes; lookupd2 is not affected."""
    nsqd3 = cluster.host("nsqd3")
    target = f"/topic/tombstone?topic=fresh&node={nsqd3.address}:4151"
    status, body = http(cluster.host("consumer1"), cluster.lookupd_http("lookupd1"), "POST", target)
    assert status == 200, body
    assert cluster.lookup("lookupd1", "fresh") == set()
    assert cluster.nsqd_tcp("nsqd3") in cluster.lookup("lookupd1", "load")
    assert cluster.lookup("lookupd2", "fresh") == {cluster.nsqd_tcp("nsqd3")}
    entries = [n for n in cluster.nodes("lookupd1") if "fresh" in n["topics"]]
    assert [dict(zip(n["topics"], n["tombstones"], strict=True)) for n in entries] == [
        {"fresh": True, "load": False}
    ], entries


def _new_topic_found_through_lookupd2_only(cluster: Cluster) -> Load:
    """During the cut: topic "fresh" made on nsqd3 is listed by lookupd2, not lookupd1, and a
    consumer told both lookupds gets all of it."""
    fresh = Load(cluster, "fresh", topic="fresh")
    fresh.prepare(nsqds=("nsqd3",))
    only_nsqd3 = {cluster.nsqd_tcp("nsqd3")}
    wait_for(
        "lookupd2 to list nsqd3 for the new topic",
        lambda: cluster.lookup("lookupd2", "fresh") == only_nsqd3,
        10,
    )
    assert cluster.lookup("lookupd1", "fresh") == set()
    fresh.consume("consumer2")
    fresh.wait_produced(fresh.produce(2_000, batch=50, tasks=1, nsqds=[*only_nsqd3]), timeout=30)
    fresh.ledger.wait_all_consumed(timeout=30)
    return fresh


def test_lookupd_killed_discovery_continues_through_the_other(make_cluster: MakeCluster) -> None:
    """Messages wait on all three nsqd; lookupd1 is killed; a consumer started afterwards
    (told both lookupds) must find all three, and so must the admin."""
    cluster = make_cluster()
    load = Load(cluster, "lkill")
    load.prepare()
    load.wait_produced(load.produce(6_000, batch=100, tasks=2), timeout=30)
    cluster.start_admin()
    cluster.kill9("lookupd1")
    assert cluster.lookup("lookupd2") == set(cluster.all_nsqd_tcp())
    started = time.time()
    load.consume("consumer1", max_in_flight=300)
    last = load.ledger.wait_all_consumed(timeout=30)
    first = min(load.ledger.last_consumed_at.values())
    admin_nodes = cluster.admin_get("/api/nodes")
    figures = load.ledger.figures() | {
        "first_consumed_after_consumer_start_s": round(first - started, 2),
        "all_consumed_after_consumer_start_s": round(last - started, 2),
    }
    load.stop_consumers()
    report(cluster, "4-kill-lookupd", figures)
    assert figures["lost"] == 0
    # each nsqd held a third of the messages: all consumed means all three were found
    assert len(figures["by_nsqd"]) == 3
    listed = {cluster.host(name).address for name in NSQDS}
    assert listed <= {n["broadcast_address"] for n in admin_nodes["nodes"]}, admin_nodes


def test_delay_and_loss_on_every_link(make_cluster: MakeCluster) -> None:
    """50 ms each way on every link and 2% of chunks stalled 200-400 ms (relay_proc.py), with
    1 s heartbeats, a 2 s message timeout, and consumers that requeue 2% and let 0.5% time out:
    nothing is lost, every timed-out message comes back, and no connection dies."""
    cluster = make_cluster(faulty=True)
    load = Load(cluster, "slow")
    load.prepare()
    for host in ("consumer1", "consumer2"):
        load.consume(
            host,
            max_in_flight=400,
            heartbeat=1.0,
            msg_timeout=2.0,
            requeue_every=50,
            timeout_every=200,
        )
    began = time.time()
    http(cluster.host("consumer1"), cluster.nsqd_http("nsqd1"), "GET", "/ping")
    ping_s = time.time() - began
    summary = load.wait_produced(load.produce(8_000, batch=50, tasks=6), timeout=60)
    last = load.ledger.wait_all_consumed(timeout=60)
    stats = load.stop_consumers()
    nsqd_logs = "".join(cluster.daemons[n].log_path.read_text() for n in NSQDS)
    figures = load.ledger.figures() | {
        "http_ping_across_one_link_s": round(ping_s, 3),
        "publish_seconds": summary["seconds"],
        "all_consumed_after_s": round(last - began, 2),
        "producer_retries": summary["retries"],
        "timed_out_by_test": sum(s["timed_out"] for s in stats),
        "requeued_by_test": sum(s["requeued_by_test"] for s in stats),
        "consumer_reconnect_log_lines": sum(reconnects(p) for p in load.consumers),
        "nsqd_read_timeouts": nsqd_logs.count("read timeout"),
    }
    report(cluster, "5-delay-and-loss", figures)
    assert ping_s >= 0.1  # the fault is in place: 50 ms each way
    assert figures["lost"] == 0
    assert figures["acknowledged"] == 8_000
    assert figures["timed_out_by_test"] == 8_000 // 200
    assert figures["requeued_by_test"] > 0
    # heartbeats held both ways: no consumer lost a connection, no nsqd timed a client out
    assert figures["consumer_reconnect_log_lines"] == 0
    assert figures["nsqd_read_timeouts"] == 0
