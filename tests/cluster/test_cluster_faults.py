"""The seed topology on many hosts, through the faults a deployment meets.

Each host is a network namespace with its own address (cluster_net.py); 2 lookupd and 3 durable
nsqd (``--sync-every=1``) run as real processes, and producers and consumers are processes using
pnsq's client, consumers finding nsqds through lookupd. Every scenario asserts that every
acknowledged message was consumed at least once, and reports duplicates and recovery times
(``CLUSTER <scenario>:`` lines with ``-s``, and a JSON file in the test's tmp dir).
Scenario 6 (drain) waits for drain mode; see /work/notes/readme-cluster.md.
"""

from __future__ import annotations

import time

import pytest
from cluster_ledger import report
from cluster_load import Load, reconnects
from cluster_net import Network, NetnsError, ip
from cluster_procs import http, wait_for
from cluster_topology import Cluster
from conftest import MakeCluster

pytestmark = pytest.mark.timeout(90)


def test_hosts_reach_each_other_and_nothing_else() -> None:
    net = Network(["a", "b"])
    try:
        net.up()
        for host in net.hosts.values():
            assert "default" not in net.routes_out(host.name)
            with pytest.raises(NetnsError, match="unreachable"):
                ip("-n", host.netns, "route", "get", "192.0.2.1")
        route = ip("-n", net.hosts["a"].netns, "route", "get", net.hosts["b"].address)
        assert "dev eth0" in route
    finally:
        net.down()
    assert not [line for line in ip("netns", "list").splitlines() if net.prefix in line]


def test_steady_load_100k_messages(make_cluster: MakeCluster, tmp_path: object) -> None:
    cluster = make_cluster()
    load = Load(cluster, "steady")
    load.prepare()
    began = time.monotonic()
    load.consume("consumer1", max_in_flight=500)
    load.consume("consumer2", max_in_flight=500)
    summary = load.wait_produced(load.produce(100_000, batch=200, tasks=4), timeout=60)
    produced = time.monotonic() - began
    last = load.ledger.wait_all_consumed(timeout=60)
    figures = load.ledger.figures() | {
        "publish_seconds": summary["seconds"],
        "publish_msg_per_s": round(100_000 / summary["seconds"]),
        "all_consumed_after_s": round(last - time.time() + time.monotonic() - began, 2),
        "producer_retries": summary["retries"],
    }
    load.stop_consumers()
    report(cluster.tmp_path, "1-steady", figures)
    assert figures["acknowledged"] == 100_000 and figures["lost"] == 0
    assert produced < 60



def _acked_by(load: Load, cluster: Cluster, nsqd: str) -> int:
    load.ledger.refresh()
    return len(load.ledger.acked_by(cluster.nsqd_tcp(nsqd)))


def test_nsqd_killed_mid_load_delivers_its_backlog_after_restart(
    make_cluster: MakeCluster,
) -> None:
    """Channel "cluster" is consumed live (messages in flight die with nsqd2); channel "late"
    only once nsqd2 is back, so everything nsqd2 acknowledged is backlog on disk by then."""
    cluster = make_cluster()
    live, late = Load(cluster, "crash"), Load(cluster, "crash")
    live.prepare("cluster")
    late.prepare("late")
    live.consume("consumer1", max_in_flight=100)
    producer = live.produce(30_000, batch=100, tasks=2, pause=0.01, deadline=60)
    wait_for("nsqd2 to take messages", lambda: _acked_by(live, cluster, "nsqd2") >= 3000, 30)
    cluster.kill9("nsqd2")
    killed_at = time.time()
    victim_acked = _acked_by(live, cluster, "nsqd2")
    summary = live.wait_produced(producer, timeout=60)
    restarted = time.time()
    cluster.start_nsqd("nsqd2")
    back_at = time.time()
    late.consume("consumer2", channel="late", max_in_flight=500)
    last_live = live.ledger.wait_all_consumed(timeout=60)
    last_late = late.ledger.wait_all_consumed(timeout=60)
    late.ledger.refresh()
    backlog = late.ledger.acked_by(cluster.nsqd_tcp("nsqd2"))
    backlog_done = max(late.ledger.last_consumed_at[body] for body in backlog)
    figures = {
        "live": live.ledger.figures(),
        "late": late.ledger.figures(),
        "acked_by_nsqd2_before_kill": victim_acked,
        "publish_stall_s": round(live.ledger.ack_gaps(), 3),
        "producer_retries": summary["retries"],
        "nsqd2_restart_to_ready_s": round(back_at - restarted, 2),
        "live_all_consumed_after_restart_s": round(last_live - restarted, 2),
        "late_nsqd2_backlog_delivered_after_restart_s": round(backlog_done - restarted, 2),
        "late_all_consumed_after_restart_s": round(last_late - restarted, 2),
        "down_s": round(restarted - killed_at, 2),
    }
    live.stop_consumers()
    late.stop_consumers()
    report(cluster.tmp_path, "2-kill9-nsqd", figures)
    assert figures["live"]["lost"] == 0 and figures["late"]["lost"] == 0
    assert len(backlog) >= victim_acked > 0


def _link_drops(cluster: Cluster, lookupd_address: str) -> int:
    text = cluster.daemons["nsqd3"].log_path.read_text(errors="replace")
    peer = f"LOOKUPD({lookupd_address}:4160)"
    return sum(1 for line in text.splitlines() if peer in line and "reconnecting" in line)


def test_partition_nsqd_from_one_lookupd_then_heal(make_cluster: MakeCluster) -> None:
    """nsqd3 cannot reach lookupd1 (both directions): a topic it creates meanwhile is found
    through lookupd2 only; after the heal nsqd3 registers it with lookupd1 again."""
    cluster = make_cluster()
    nsqd3, lookupd1 = cluster.host("nsqd3"), cluster.host("lookupd1")
    steady = Load(cluster, "part")
    steady.prepare()
    steady.consume("consumer1", max_in_flight=200)
    producer = steady.produce(20_000, batch=100, tasks=2, pause=0.02, deadline=60)
    wait_for("load to flow", lambda: steady.ledger.refresh() or len(steady.ledger.consumed) > 1000, 30)
    nsqd3.block(lookupd1.address)
    lookupd1.block(nsqd3.address)
    cut_at = time.time()
    fresh = Load(cluster, "fresh", topic="fresh")
    fresh.prepare(nsqds=("nsqd3",))
    found = wait_for("lookupd2 to list nsqd3 for the new topic",
                     lambda: cluster.lookup("lookupd2", "fresh") == {cluster.nsqd_tcp("nsqd3")}, 10)
    assert found and cluster.lookup("lookupd1", "fresh") == set()
    fresh.consume("consumer2")
    fresh_producer = fresh.produce(2_000, batch=50, tasks=1, nsqds=[cluster.nsqd_tcp("nsqd3")])
    fresh.wait_produced(fresh_producer, timeout=30)
    fresh.ledger.wait_all_consumed(timeout=30)
    # the partition lasts until nsqd3 gave the link up (unanswered for its reply timeout),
    # so that the heal is a reconnection and a full re-registration, not a TCP retransmission
    wait_for("nsqd3 to drop its link to lookupd1", lambda: _link_drops(cluster, lookupd1.address), 20)
    consumed_during_cut = len(steady.ledger.consumed)
    wait_for("the load to keep flowing", lambda: steady.ledger.refresh() or len(steady.ledger.consumed) > consumed_during_cut + 500, 20)
    nsqd3.unblock(lookupd1.address)
    lookupd1.unblock(nsqd3.address)
    healed_at = time.time()
    wait_for("lookupd1 to learn nsqd3's new topic",
             lambda: cluster.lookup("lookupd1", "fresh") == {cluster.nsqd_tcp("nsqd3")}, 20)
    reregistered = time.time() - healed_at
    nodes = [n for n in cluster.nodes("lookupd1") if n["broadcast_address"] == nsqd3.address]
    summary = steady.wait_produced(producer, timeout=60)
    steady.ledger.wait_all_consumed(timeout=60)
    figures = {
        "steady": steady.ledger.figures(),
        "fresh": fresh.ledger.figures(),
        "partition_s": round(healed_at - cut_at, 2),
        "consumed_during_partition": consumed_during_cut,
        "reregistered_after_heal_s": round(reregistered, 2),
        "lookupd1_nodes_entries_for_nsqd3_after_heal": len(nodes),
        "nsqd3_link_drops_logged": _link_drops(cluster, lookupd1.address),
        "producer_retries": summary["retries"],
    }
    steady.stop_consumers()
    fresh.stop_consumers()
    report(cluster.tmp_path, "3-partition", figures)
    assert figures["steady"]["lost"] == 0 and figures["fresh"]["lost"] == 0
    # the link nsqd3 gave up may still be listed (as by NSQ's lookupd: it is never told) until
    # its TCP close arrives or --inactive-producer-timeout; the new one holds every topic
    assert any(sorted(n["topics"]) == ["fresh", "load"] for n in nodes), nodes
    assert not any(any(n["tombstones"]) for n in nodes), nodes


def test_lookupd_killed_discovery_continues_through_the_other(make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    load = Load(cluster, "lkill")
    load.prepare()
    load.wait_produced(load.produce(6_000, batch=100, tasks=2), timeout=30)
    cluster.kill9("lookupd1")
    assert cluster.lookup("lookupd2") == set(cluster.all_nsqd_tcp())
    started = time.time()
    load.consume("consumer1", max_in_flight=300)
    last = load.ledger.wait_all_consumed(timeout=30)
    figures = load.ledger.figures() | {
        "consumer_start_to_all_consumed_s": round(last - started, 2),
        "first_consumed_after_start_s": round(min(load.ledger.last_consumed_at.values()) - started, 2),
    }
    load.stop_consumers()
    report(cluster.tmp_path, "4-kill-lookupd", figures)
    # every nsqd held a third of the messages: all consumed means all three were found
    assert figures["lost"] == 0 and len(figures["by_nsqd"]) == 3


def test_rolling_restart_of_every_nsqd(make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    load = Load(cluster, "roll")
    load.prepare()
    load.consume("consumer1", max_in_flight=200)
    load.consume("consumer2", max_in_flight=200)
    producer = load.produce(40_000, batch=100, tasks=2, pause=0.01, deadline=90)
    restarts = {}
    for name in ("nsqd1", "nsqd2", "nsqd3"):
        count = _acked_by(load, cluster, name)
        wait_for(f"{name} to take messages", lambda: _acked_by(load, cluster, name) > count + 500, 30)
        began = time.time()
        assert cluster.terminate(name) == 0
        cluster.start_nsqd(name)
        wait_for(f"{name} back in lookupd2", lambda: cluster.nsqd_tcp(name) in cluster.lookup("lookupd2"), 20)
        restarts[name] = round(time.time() - began, 2)
    summary = load.wait_produced(producer, timeout=90)
    load.ledger.wait_all_consumed(timeout=60)
    figures = load.ledger.figures() | {
        "restart_seconds": restarts,
        "publish_stall_s": round(load.ledger.ack_gaps(), 3),
        "producer_retries": summary["retries"],
        "consumer_reconnect_log_lines": sum(reconnects(p) for p in load.consumers),
    }
    load.stop_consumers()
    report(cluster.tmp_path, "7-rolling-restart", figures)
    assert figures["lost"] == 0 and figures["acknowledged"] == 40_000


def test_delay_and_stalls_on_every_link(make_cluster: MakeCluster) -> None:
    """50 ms each way on every link and 2% of chunks stalled 200-400 ms (relay_proc.py), with
    1 s heartbeats, a 2 s message timeout, and consumers that requeue 2% and let 0.5% time out."""
    cluster = make_cluster(faulty=True)
    load = Load(cluster, "slow")
    load.prepare()
    options = {"max_in_flight": 400, "heartbeat": 1.0, "msg_timeout": 2.0}
    for host in ("consumer1", "consumer2"):
        load.consume(host, requeue_every=50, timeout_every=200, **options)
    began = time.time()
    http(cluster.host("consumer1"), cluster.nsqd_http("nsqd1"), "GET", "/ping")
    ping_rtt = time.time() - began
    began = time.time()
    summary = load.wait_produced(load.produce(8_000, batch=50, tasks=6), timeout=60)
    last = load.ledger.wait_all_consumed(timeout=60)
    stats = load.stop_consumers()
    figures = load.ledger.figures() | {
        "publish_seconds": summary["seconds"],
        "all_consumed_after_s": round(last - began, 2),
        "producer_retries": summary["retries"],
        "timed_out_by_test": sum(s["timed_out"] for s in stats),
        "requeued_by_test": sum(s["requeued_by_test"] for s in stats),
        "consumer_reconnect_log_lines": sum(reconnects(p) for p in load.consumers),
        "http_ping_through_relay_s": round(ping_rtt, 3),
    }
    report(cluster.tmp_path, "5-delay-and-loss", figures)
    assert figures["lost"] == 0 and figures["acknowledged"] == 8_000
    assert ping_rtt >= 0.1  # the fault is in place: 50 ms each way
    assert figures["timed_out_by_test"] == 40 and figures["requeued_by_test"] > 0
    # heartbeats held: no consumer connection was lost
    assert figures["consumer_reconnect_log_lines"] == 0
