"""The seed topology on many hosts: steady load, an nsqd killed, every nsqd restarted in turn.

Each host is a network namespace with its own address (cluster_net.py); 2 lookupd and 3 durable
nsqd (``--sync-every=1``) run as real processes, and producers and consumers are processes using
pnsq's client, consumers finding nsqds through lookupd. Every scenario asserts that every
acknowledged message was consumed at least once, and reports duplicates and recovery times
(``CLUSTER <scenario>:`` lines with ``-s``, and a JSON file in the test's tmp dir).
test_cluster_faults.py has the network faults (partition, lookupd loss, delay and loss),
test_cluster_drain.py the drain of one nsqd under load.
"""

from __future__ import annotations

import time

import pytest
from cluster_ledger import report
from cluster_load import Load, reconnects
from cluster_net import NetnsError, Network, ip
from cluster_procs import wait_for
from cluster_topology import NSQDS, Cluster, MakeCluster

pytestmark = pytest.mark.timeout(90)


def test_hosts_reach_each_other_and_nothing_else() -> None:
    net = Network(["a", "b"])
    try:
        net.up()
        for host in net.hosts.values():
            assert "default" not in net.routes_out(host.name)
            with pytest.raises(NetnsError, match="unreachable"):
                ip("-n", host.netns, "route", "get", "192.0.2.1")
        assert "dev eth0" in ip("-n", net.hosts["a"].netns, "route", "get", net.hosts["b"].address)
    finally:
        net.down()
    assert net.prefix not in ip("netns", "list")


def test_steady_load_100k_messages(make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    load = Load(cluster, "steady")
    load.prepare()
    began = time.time()
    load.consume("consumer1", max_in_flight=500)
    load.consume("consumer2", max_in_flight=500)
    summary = load.wait_produced(load.produce(100_000, batch=200, tasks=4), timeout=60)
    last = load.ledger.wait_all_consumed(timeout=60)
    figures = load.ledger.figures() | {
        "publish_seconds": summary["seconds"],
        "publish_msg_per_s": round(100_000 / summary["seconds"]),
        "all_consumed_after_s": round(last - began, 2),
        "producer_retries": summary["retries"],
    }
    load.stop_consumers()
    report(cluster, "1-steady", figures)
    assert figures["acknowledged"] == 100_000
    assert figures["lost"] == 0


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
    acked_before_kill = _acked_by(live, cluster, "nsqd2")
    summary = live.wait_produced(producer, timeout=60)
    restarted = time.time()
    cluster.start_nsqd("nsqd2")
    ready = time.time()
    late.consume("consumer2", channel="late", max_in_flight=500)
    live.ledger.wait_all_consumed(timeout=60)
    last_late = late.ledger.wait_all_consumed(timeout=60)
    backlog = late.ledger.acked_by(cluster.nsqd_tcp("nsqd2"))
    backlog_done = max(late.ledger.last_consumed_at[body] for body in backlog)
    figures = {
        "live": live.ledger.figures(),
        "late": late.ledger.figures(),
        "acked_by_nsqd2_before_kill": acked_before_kill,
        "nsqd2_down_s": round(restarted - killed_at, 2),
        "nsqd2_restart_to_ready_s": round(ready - restarted, 2),
        "publish_stall_s": round(live.ledger.ack_gaps(), 3),
        "producer_retries": summary["retries"],
        "late_nsqd2_backlog_delivered_after_restart_s": round(backlog_done - restarted, 2),
        "late_all_consumed_after_restart_s": round(last_late - restarted, 2),
    }
    live.stop_consumers()
    late.stop_consumers()
    report(cluster, "2-kill9-nsqd", figures)
    assert figures["live"]["lost"] == 0
    assert figures["late"]["lost"] == 0
    assert len(backlog) >= acked_before_kill > 0


def test_rolling_restart_of_every_nsqd(make_cluster: MakeCluster) -> None:
    """SIGTERM one nsqd, wait for its exit, restart it on its data, wait until lookupd lists
    it again, then the next -- under load, with the producer and consumers running."""
    cluster = make_cluster()
    load = Load(cluster, "roll")
    load.prepare()
    load.consume("consumer1", max_in_flight=200)
    load.consume("consumer2", max_in_flight=200)
    # at least 6 s of publishing however fast the machine: it must outlast three restarts
    producer = load.produce(40_000, batch=100, tasks=2, pause=0.03, deadline=90)
    restarts = {name: _restart(cluster, load, name) for name in NSQDS}
    assert producer.running(), "the load ended before the last restart: nothing was tested"
    summary = load.wait_produced(producer, timeout=90)
    load.ledger.wait_all_consumed(timeout=60)
    figures = load.ledger.figures() | {
        "restart_to_listed_again_s": restarts,
        "publish_stall_s": round(load.ledger.ack_gaps(), 3),
        "producer_retries": summary["retries"],
        "consumer_reconnect_log_lines": sum(reconnects(p) for p in load.consumers),
    }
    load.stop_consumers()
    report(cluster, "7-rolling-restart", figures)
    assert figures["lost"] == 0
    assert figures["acknowledged"] == 40_000


def _restart(cluster: Cluster, load: Load, name: str) -> float:
    count = _acked_by(load, cluster, name)
    wait_for(f"{name} to take messages", lambda: _acked_by(load, cluster, name) > count + 500, 30)
    began = time.time()
    assert cluster.terminate(name) == 0
    cluster.start_nsqd(name)
    listed = cluster.nsqd_tcp(name)
    wait_for(f"{name} in lookupd2", lambda: listed in cluster.lookup("lookupd2"), 20)
    return round(time.time() - began, 2)
