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
from cluster_procs import wait_for
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
