"""Scenario 6: one nsqd of the seed topology drained under load (``PUT /state/drain``).

Same hosts, daemons and ledger as test_cluster_load.py. The drained node must refuse new
publishes (the producers' ProducerPool moves them to the other nodes without an error reaching
the caller), keep feeding its consumers until it is empty, then exit 0 -- and nothing that any
node acknowledged may be lost.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from cluster_ledger import report
from cluster_load import Load
from cluster_procs import http, wait_for
from cluster_topology import Cluster, MakeCluster

pytestmark = pytest.mark.timeout(90)


def test_drain_one_nsqd_under_load(make_cluster: MakeCluster) -> None:
    """A slow consumer lets a backlog build on every nsqd; nsqd1 is drained while the producer
    runs; a fast consumer started after the drain began finishes the other nodes' work (the
    draining node refuses its SUB), so nsqd1's backlog can only leave through the consumer it
    already had."""
    cluster = make_cluster()
    load = Load(cluster, "drain")
    load.prepare()
    load.consume("consumer1", max_in_flight=30, handle_delay=0.02)
    producer = load.produce(20_000, batch=50, tasks=2, pause=0.01, deadline=60)
    nsqd1 = cluster.nsqd_tcp("nsqd1")
    wait_for("nsqd1 to take messages", lambda: _acked_by(load, nsqd1) >= 3000, 30)
    status, body = http(cluster.host("producer"), cluster.nsqd_http("nsqd1"), "PUT", "/state/drain")
    assert status == 200, body
    drain_at = time.time()
    backlog = len(load.ledger.acked_by(nsqd1) - set(load.ledger.consumed))
    load.consume("consumer2", max_in_flight=400)
    code = _wait_exit(cluster, "nsqd1", timeout=60)
    exited_at = time.time()
    summary = load.wait_produced(producer, timeout=60)
    last = load.ledger.wait_all_consumed(timeout=60)
    late_acks = load.ledger.acked_by(nsqd1) - load.ledger.acked_by(nsqd1, before=drain_at + 0.5)
    figures = load.ledger.figures() | {
        "nsqd1_backlog_at_drain": backlog,
        "drain_to_exit_s": round(exited_at - drain_at, 2),
        "all_consumed_after_drain_s": round(last - drain_at, 2),
        "acked_by_nsqd1_after_drain": len(late_acks),
        "publish_stall_s": round(load.ledger.ack_gaps(), 3),
        "producer_retries": summary["retries"],
    }
    load.stop_consumers()
    report(cluster, "6-drain", figures)
    assert code == 0, cluster.daemons["nsqd1"].log_tail()
    drain_log = [
        line for line in cluster.daemons["nsqd1"].log_tail(50).splitlines() if "DRAIN" in line
    ]
    assert drain_log[-1].endswith("DRAIN: done"), drain_log  # emptied: nothing kept on disk
    assert figures["lost"] == 0
    assert figures["acknowledged"] == 20_000
    assert backlog > 0
    # the pool moved publishes to the other nodes without the caller seeing an error
    assert figures["producer_retries"] == 0
    assert not late_acks


def _acked_by(load: Load, address: str) -> int:
    load.ledger.refresh()
    return len(load.ledger.acked_by(address))


def _wait_exit(cluster: Cluster, name: str, timeout: float) -> int:
    proc = cluster.daemons[name]
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{name} did not finish draining:\n{proc.log_tail()}") from None
