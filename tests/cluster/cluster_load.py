"""Producer and consumer processes of a scenario, and the ledger that checks them.

``Load(cluster, tag)`` names one stream of bodies (``<tag>-<seq>``) on one topic; ``produce``
starts a producer process on the producer host publishing to every nsqd, ``consume`` a consumer
process on a consumer host that finds the nsqds through both lookupds. The channel is created on
every nsqd first (``prepare``), so messages published before a consumer connects wait in it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from cluster_ledger import Ledger
from cluster_procs import Proc, http
from cluster_topology import NSQDS, TOPIC, Cluster


class Load:
    def __init__(self, cluster: Cluster, tag: str, *, topic: str = TOPIC) -> None:
        self.cluster, self.tag, self.topic = cluster, tag, topic
        self.acked_path = cluster.tmp_path / f"acked-{tag}.txt"
        self.ledger = Ledger(tag, self.acked_path, [])
        self.consumers: list[Proc] = []

    def prepare(self, channel: str = "cluster", nsqds: tuple[str, ...] = NSQDS) -> None:
        via = self.cluster.host("producer")
        for name in nsqds:
            for target in (
                f"/topic/create?topic={self.topic}",
                f"/channel/create?topic={self.topic}&channel={channel}",
            ):
                status, body = http(via, self.cluster.nsqd_http(name), "POST", target)
                assert status == 200, f"{name} {target}: {status} {body!r}"

    def produce(
        self,
        count: int,
        *,
        batch: int = 100,
        tasks: int = 4,
        pause: float = 0.0,
        deadline: float = 60.0,
        nsqds: list[str] | None = None,
    ) -> Proc:
        args = ["--topic", self.topic, "--tag", self.tag, "--count", str(count)]
        args += ["--batch", str(batch), "--tasks", str(tasks), "--pause", str(pause)]
        args += ["--deadline", str(deadline), "--out", str(self.acked_path)]
        for address in nsqds or self.cluster.all_nsqd_tcp():
            args += ["--nsqd", address]
        host = self.cluster.host("producer")
        return self.cluster.procs.script(f"producer-{self.tag}", host, "producer_proc.py", *args)

    def consume(
        self,
        host: str,
        *,
        channel: str = "cluster",
        lookupds: list[str] | None = None,
        **opts: object,
    ) -> Proc:
        out = self.cluster.tmp_path / f"consumed-{self.tag}-{host}-{len(self.consumers)}.txt"
        args = ["--topic", self.topic, "--channel", channel, "--out", str(out)]
        for address in lookupds or self.cluster.all_lookupd_http():
            args += ["--lookupd", address]
        for key, value in opts.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        name = f"consumer-{self.tag}-{host}"
        proc = self.cluster.procs.script(name, self.cluster.host(host), "consumer_proc.py", *args)
        self.consumers.append(proc)
        self.ledger.add_consumer(out)
        return proc

    def wait_produced(self, producer: Proc, timeout: float) -> dict[str, Any]:
        """The producer's summary once it exited 0."""
        try:
            code = producer.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"producer still running:\n{producer.log_tail()}") from None
        assert code == 0, f"producer exited {code}:\n{producer.log_tail()}"
        summary: dict[str, Any] = json.loads(producer.output())
        return summary

    def stop_consumers(self) -> list[dict[str, Any]]:
        """SIGTERM every consumer (they close gracefully); their summaries."""
        summaries = []
        for proc in self.consumers:
            code = proc.stop(grace=15)
            assert code == 0, f"{proc.name} exited {code}:\n{proc.log_tail()}"
            summaries.append(json.loads(proc.output()))
        return summaries


def reconnects(proc: Proc) -> int:
    """How often a consumer lost an nsqd connection (its log's warnings about it)."""
    text = Path(proc.log_path).read_text(errors="replace")
    return sum(1 for line in text.splitlines() if "consumer load/" in line)
