"""Which upstream gets the next request: NSQ's ``--mode`` for nsq_to_http and nsq_to_nsq.

NSQ's relays pick a destination with bitly's go-hostpool, and so does this, in the same three
modes, as pure code (time is an argument) so the choice is testable without sockets:

- ``round-robin``: the next address in turn, whatever happened before.
- ``hostpool``: the next address in turn that is not marked down. A failure marks an address
  down for 30 s; each retry that fails again doubles that (up to 15 min); one success brings it
  back. When every address is down they are all tried again rather than none.
- ``epsilon-greedy``: mostly the live address with the lowest recent response time; with
  probability ``epsilon`` the next live address in turn instead, so a slow host that recovered
  gets noticed. (go-hostpool weights by response time and decays epsilon; this keeps the idea.)

``order(now)`` gives the pick first and the rest as a failover order; ``mark(index, ok, ...)``
reports the outcome. A pool lives in one event loop and is never shared between threads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MODES = ("hostpool", "round-robin", "epsilon-greedy")
RETRY_DELAY, MAX_RETRY_DELAY = 30.0, 900.0
EPSILON = 0.1
_SMOOTHING = 0.2  # weight of the newest response time in a host's moving average


@dataclass
class _Host:
    dead: bool = False
    retry_at: float = 0.0  # when a dead host may be tried again
    retry_delay: float = RETRY_DELAY
    average: float = 0.0  # moving average of response times; 0: not measured yet


class HostPool:
    def __init__(
        self, count: int, mode: str = "hostpool", *, rng: random.Random | None = None
    ) -> None:
        if count < 1:
            raise ValueError("a host pool needs at least one host")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        self.mode = mode
        self.hosts = [_Host() for _ in range(count)]
        self.rng = rng or random.Random()
        self._next = 0

    def order(self, now: float) -> list[int]:
        """Every host index, the one to use first; later ones are where to fail over."""
        n, start = len(self.hosts), self._next
        self._next = (start + 1) % n
        turn = [(start + i) % n for i in range(n)]
        if self.mode == "round-robin":
            return turn
        hosts = self.hosts
        usable = [i for i in turn if not hosts[i].dead or hosts[i].retry_at <= now]
        if not usable:  # all down and waiting: go-hostpool gives them all another chance
            for host in hosts:
                host.dead = False
            usable = turn
        if self.mode == "epsilon-greedy" and self.rng.random() >= EPSILON:
            usable.sort(key=lambda i: hosts[i].average)  # stable: ties keep their turn
        first = hosts[usable[0]]
        if first.dead:  # this is its retry; if it fails again the next one waits longer
            first.retry_delay = min(first.retry_delay * 2, MAX_RETRY_DELAY)
            first.retry_at = now + first.retry_delay
        return usable + [i for i in turn if i not in usable]

    def mark(self, index: int, ok: bool, now: float, elapsed: float = 0.0) -> None:
        """Report how a request to ``hosts[index]`` went (``elapsed``: its response time)."""
        host = self.hosts[index]
        if ok:
            host.dead = False
            host.average = elapsed if not host.average else _mix(host.average, elapsed)
        elif not host.dead and self.mode != "round-robin":
            host.dead, host.retry_delay, host.retry_at = True, RETRY_DELAY, now + RETRY_DELAY

    def is_dead(self, index: int) -> bool:
        return self.hosts[index].dead


def _mix(average: float, sample: float) -> float:
    return _SMOOTHING * sample + (1 - _SMOOTHING) * average
