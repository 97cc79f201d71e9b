"""Network namespaces as hosts: one per host, joined by a bridge in a "switch" namespace.

Why a switch namespace: the bridge and every host-side veth end live inside namespaces the test
made, so the machine's own namespace gains no interface, no address and no route, and deleting
the namespaces removes every link with them (teardown cannot leave a stray interface behind).
Each host gets one address on a private /24 and no default route, so nothing it sends can leave
the test's namespaces: a destination outside the subnet is simply unreachable.

A partition is a ``prohibit`` route inside one host (``block``/``unblock``): its packets to that
address fail at once with "permission denied" instead of timing out, which is how an operator's
firewall rule behaves and keeps the scenario short.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.200.7"


PREFIX = "pnsq"


class NetnsError(RuntimeError):
    """An ``ip`` command failed: this machine cannot build the test's network."""


def ip(*args: str) -> str:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except FileNotFoundError as exc:
        raise NetnsError("the `ip` command (iproute2) is missing") from exc
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Host:
    name: str
    netns: str
    address: str

    def exec_prefix(self) -> list[str]:
        """What runs a command inside this host: ``ip netns exec <ns>``."""
        return ["ip", "netns", "exec", self.netns]

    def block(self, address: str) -> None:
        ip("-n", self.netns, "route", "add", "prohibit", f"{address}/32")

    def unblock(self, address: str) -> None:
        ip("-n", self.netns, "route", "del", "prohibit", f"{address}/32")


@dataclass
class Network:
    """``Network(["lookupd1", ...])`` builds nothing until ``up()``; ``down()`` always cleans."""

    names: Sequence[str]
    prefix: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}")
    hosts: dict[str, Host] = field(default_factory=dict)
    _made: list[str] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"{self.prefix}-sw"

    def up(self) -> None:
        self._add_netns(self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")
        for number, name in enumerate(self.names, start=11):
            self.hosts[name] = self._add_host(name, f"{SUBNET}.{number}")

    def _add_netns(self, netns: str) -> None:
        ip("netns", "add", netns)
        self._made.append(netns)

    def _add_host(self, name: str, address: str) -> Host:
        netns = f"{self.prefix}-{name}"
        self._add_netns(netns)
        port = f"p{len(self.hosts)}"
        ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "eth0", "netns", netns)
        ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "link", "set", "lo", "up")
        return Host(name, netns, address)

    def down(self) -> None:
        """Delete every namespace made (their links go with them); errors are collected."""
        errors = []
        while self._made:
            netns = self._made.pop()
            try:
                ip("netns", "del", netns)
            except NetnsError as exc:
                errors.append(str(exc))
        if errors:
            raise NetnsError("; ".join(errors))

    def routes_out(self, host: str) -> str:
        return ip("-n", self.hosts[host].netns, "route", "show")


def sweep_stale() -> list[str]:
    """Delete namespaces an earlier run left behind (its pytest was killed before teardown):
    ours are named ``pnsq<pid>-...``, and that pid no longer runs."""
    removed = []
    for line in ip("netns", "list").splitlines():
        found = re.match(rf"({PREFIX}(\d+)-\S+)", line)
        if found and not Path(f"/proc/{found[2]}").exists():
            ip("netns", "del", found[1])
            removed.append(found[1])
    return removed
