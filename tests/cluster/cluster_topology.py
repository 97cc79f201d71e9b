"""The seed topology on namespaces: 2 lookupd, 3 durable nsqd, producer and consumer hosts.

Every daemon uses NSQ's own ports on its own host address, as in a real deployment. With
``faulty=True`` (scenario 5) each daemon binds 127.0.0.1 inside its namespace instead and a
``relay_proc.py`` owns the host address on the same ports, so every connection between hosts
crosses the delaying relay while every address and port anyone is told stays the same.

nsqd runs with ``--sync-every=1`` (an acknowledged publish is on disk), its own data path that
outlives the process (restarts reuse it), a fixed ``--node-id``, ``--broadcast-address`` = its
host's address and both lookupds.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster_net import Host, Network
from cluster_procs import Proc, Procs, get_json, http, wait_for

LOOKUPDS = ("lookupd1", "lookupd2")
NSQDS = ("nsqd1", "nsqd2", "nsqd3")
CLIENTS = ("producer", "consumer1", "consumer2", "admin")
TOPIC = "load"
START_TIMEOUT = 30.0


class Cluster:
    def __init__(self, net: Network, tmp_path: Path, *, faulty: bool = False) -> None:
        self.net, self.tmp_path, self.faulty = net, tmp_path, faulty
        self.logs = tmp_path / "logs"
        self.logs.mkdir(exist_ok=True)
        self.procs = Procs(self.logs)
        self.daemons: dict[str, Proc] = {}
        self.relays: dict[str, Proc] = {}

    def host(self, name: str) -> Host:
        return self.net.hosts[name]

    # -- addresses -----------------------------------------------------------------------

    def nsqd_tcp(self, name: str) -> str:
        return f"{self.host(name).address}:4150"

    def nsqd_http(self, name: str) -> str:
        return f"{self.host(name).address}:4151"

    def lookupd_http(self, name: str) -> str:
        return f"{self.host(name).address}:4161"

    def all_nsqd_tcp(self) -> list[str]:
        return [self.nsqd_tcp(name) for name in NSQDS]

    def all_lookupd_http(self) -> list[str]:
        return [self.lookupd_http(name) for name in LOOKUPDS]

    # -- daemons -------------------------------------------------------------------------

    def start(self) -> None:
        for name in LOOKUPDS:
            self.start_lookupd(name, wait=False)
        for name in NSQDS:
            self.start_nsqd(name, wait=False)
        for name in (*LOOKUPDS, *NSQDS):
            self.wait_ready(name)

    def _bind(self, name: str) -> str:
        if not self.faulty:
            return self.host(name).address
        if name not in self.relays:
            self._start_relay(name)
        return "127.0.0.1"

    def _start_relay(self, name: str) -> None:
        ports = ("4160", "4161") if name in LOOKUPDS else ("4150", "4151")
        host = self.host(name)
        args = ["--listen", host.address, "--seed", str(sum(map(ord, name)))]
        for port in ports:
            args += ["--port", port]
        relay = self.relays[name] = self.procs.script(f"relay-{name}", host, "relay_proc.py", *args)
        assert relay.popen.stdout is not None
        line = relay.popen.stdout.readline()
        assert line == b"ready\n", f"relay {name} did not start:\n{relay.log_tail()}"

    def start_lookupd(self, name: str, *, wait: bool = True) -> Proc:
        bind, address = self._bind(name), self.host(name).address
        proc = self.procs.pnsq(
            name,
            self.host(name),
            "lookupd",
            f"--tcp-address={bind}:4160",
            f"--http-address={bind}:4161",
            f"--broadcast-address={address}",
        )
        self.daemons[name] = proc
        if wait:
            self.wait_ready(name)
        return proc

    def start_nsqd(self, name: str, *, wait: bool = True) -> Proc:
        bind, address = self._bind(name), self.host(name).address
        data = self.tmp_path / "data" / name
        data.mkdir(parents=True, exist_ok=True)
        lookupds = [f"--lookupd-tcp-address={self.host(n).address}:4160" for n in LOOKUPDS]
        proc = self.procs.pnsq(
            name,
            self.host(name),
            "nsqd",
            f"--tcp-address={bind}:4150",
            f"--http-address={bind}:4151",
            f"--broadcast-address={address}",
            f"--data-path={data}",
            f"--node-id={NSQDS.index(name) + 1}",
            "--sync-every=1",
            *lookupds,
        )
        self.daemons[name] = proc
        if wait:
            self.wait_ready(name)
        return proc

    def wait_ready(self, name: str) -> None:
        port = "4161" if name in LOOKUPDS else "4151"
        proc = self.daemons[name]

        def pinged() -> bool:
            assert proc.running(), f"{name} exited:\n{proc.log_tail()}"
            status, _ = http(
                self.host("producer"), f"{self.host(name).address}:{port}", "GET", "/ping"
            )
            return status == 200

        wait_for(f"{name} /ping", pinged, START_TIMEOUT)

    def daemon_log_lines(self, text: str) -> int:
        """Lines containing ``text`` in the logs of every daemon start so far."""
        logs = [p.log_path for p in self.procs.started if p.name in (*LOOKUPDS, *NSQDS)]
        return sum(line.count(text) for path in logs for line in path.read_text().splitlines())

    def kill9(self, name: str) -> None:
        proc = self.daemons[name]
        proc.signal(signal.SIGKILL)
        proc.wait(10)

    def terminate(self, name: str) -> int:
        """SIGTERM and wait for it to exit on its own; its exit code."""
        proc = self.daemons[name]
        proc.signal(signal.SIGTERM)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} did not exit on SIGTERM:\n{proc.log_tail()}") from None

    def lookup(self, lookupd: str, topic: str = TOPIC) -> set[str]:
        """The nsqd addresses ``lookupd`` gives for ``topic`` (asked from a consumer host)."""
        via, address = self.host("consumer1"), self.lookupd_http(lookupd)
        status, body = http(via, address, "GET", f"/lookup?topic={topic}")
        if status == 404:
            return set()
        assert status == 200, f"{lookupd} /lookup: {status} {body!r}"
        answer = json.loads(body)
        return {f"{p['broadcast_address']}:{p['tcp_port']}" for p in answer["producers"]}

    def nodes(self, lookupd: str) -> list[dict[str, Any]]:
        answer = get_json(self.host("consumer1"), self.lookupd_http(lookupd), "/nodes")
        producers: list[dict[str, Any]] = answer["producers"]
        return producers

    def start_admin(self) -> Proc:
        lookupds = [f"--lookupd-http-address={a}" for a in self.all_lookupd_http()]
        host = self.host("admin")
        proc = self.daemons["admin"] = self.procs.pnsq(
            "admin", host, "admin", f"--http-address={host.address}:4171", *lookupds
        )
        address = f"{host.address}:4171"
        wait_for(
            "admin /ping",
            lambda: http(self.host("consumer1"), address, "GET", "/ping")[0] == 200,
            START_TIMEOUT,
        )
        return proc

    def admin_get(self, target: str) -> Any:
        return get_json(self.host("consumer1"), f"{self.host('admin').address}:4171", target)


MakeCluster = Callable[..., Cluster]
