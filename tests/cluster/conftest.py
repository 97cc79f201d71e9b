"""Fixtures of the multi-host tests: a fresh namespace network and topology per scenario.

``make_cluster(faulty=False)`` builds the hosts, starts 2 lookupd and 3 nsqd and returns the
``Cluster``. Teardown runs even when the test failed: every process it started is stopped by
its PID, then every namespace is deleted (with its links and routes). A machine that cannot
make namespaces fails here with the ``ip`` error -- these tests never skip. Namespaces left by
a run that was killed before its teardown are deleted first (``sweep_stale``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_net import Network, sweep_stale
from cluster_topology import CLIENTS, LOOKUPDS, NSQDS, Cluster, MakeCluster


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[MakeCluster]:
    sweep_stale()
    made: list[tuple[Network, Cluster]] = []

    def make(*, faulty: bool = False) -> Cluster:
        net = Network([*LOOKUPDS, *NSQDS, *CLIENTS])
        cluster = Cluster(net, tmp_path, faulty=faulty)
        made.append((net, cluster))
        net.up()
        cluster.start()
        return cluster

    yield make
    for net, cluster in made:
        try:
            cluster.procs.stop_all()
        finally:
            net.down()
