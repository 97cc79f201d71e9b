"""ProducerPool: publish through several nsqds with a load-balancing strategy and failover.

A strategy only orders node indexes (pure, testable without sockets): the first is where the
publish goes, the rest the failover order. The pool walks that order until a node takes it.

Failover rule: a publish moves to the next nsqd only when it was not acknowledged -- the
connection failed (before or after sending; NSQ is at-least-once, so a publish whose OK was lost
may in rare cases be queued on both) or nsqd answered ``E_*PUB_FAILED`` (nothing was queued).
An acknowledged publish is never sent again. Other refusals (bad topic, message too big) would
fail everywhere and are raised at once.

A draining nsqd (``E_PUB_FAILED PUB failed nsqd draining``, or HTTP 503 ``DRAINING``) is
being taken out of service: the publish moves on without an error, and the pool tries that node
last for ``DRAINING_AVOID`` seconds, so it does not pay a refused round trip per publish.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, Unpack

import anyio

from .codecs import RAW, Codec
from .config import ConnectionConfig, ConnectionOptions, with_options
from .errors import NSQConnectionError, PublishError
from .producer import Producer

_FAILOVER_CODES = {"E_PUB_FAILED", "E_MPUB_FAILED", "E_DPUB_FAILED", "DRAINING"}
DRAINING_AVOID = 30.0


def _node_draining(exc: PublishError) -> bool:
    return exc.code == "DRAINING" or exc.description.endswith("nsqd draining")


class Strategy(Protocol):
    def order(self, key: bytes | None) -> list[int]:
        """Node indexes: first choice, then the failover order."""
        ...


def _rotate(first: int, n: int) -> list[int]:
    return [(first + i) % n for i in range(n)]


class RandomStrategy:
    def __init__(self, n: int, rng: random.Random | None = None) -> None:
        self.n, self.rng = n, rng or random.Random()

    def order(self, key: bytes | None) -> list[int]:
        return _rotate(self.rng.randrange(self.n), self.n)


class RoundRobinStrategy:
    def __init__(self, n: int) -> None:
        self.n, self._next = n, itertools.count()

    def order(self, key: bytes | None) -> list[int]:
        return _rotate(next(self._next) % self.n, self.n)


class WeightedStrategy:
    """Smooth weighted round-robin (nginx): each pick adds every weight to its node's current
    value, takes the largest, and subtracts the total from it -- weights 5,1,1 give a a b a c a a,
    never five a's in a row."""

    def __init__(self, weights: Sequence[int]) -> None:
        if not weights or any(w <= 0 for w in weights):
            raise ValueError("weights must be positive")
        self.weights = list(weights)
        self._current = [0] * len(weights)
        self._total = sum(weights)

    def order(self, key: bytes | None) -> list[int]:
        current = self._current
        for i, weight in enumerate(self.weights):
            current[i] += weight
        best = max(range(len(current)), key=current.__getitem__)
        current[best] -= self._total
        return [
            best,
            *sorted((i for i in range(len(current)) if i != best), key=lambda i: -current[i]),
        ]


class ConsistentHashStrategy:
    """A hash ring with ``replicas`` virtual points per node: a key goes to the first point
    clockwise of its hash; removing a node moves only the keys that were on it."""

    def __init__(self, nodes: Sequence[str], replicas: int = 160) -> None:
        points = [
            (_hash(f"{node}#{r}".encode()), index)
            for index, node in enumerate(nodes)
            for r in range(replicas)
        ]
        points.sort()
        self._hashes = [h for h, _ in points]
        self._nodes = [i for _, i in points]
        self.n = len(nodes)

    def order(self, key: bytes | None) -> list[int]:
        if key is None:
            raise ValueError("the consistent_hash strategy needs publish(..., key=...)")
        start = bisect.bisect(self._hashes, _hash(key))
        seen: list[int] = []
        for j in range(len(self._nodes)):
            node = self._nodes[(start + j) % len(self._nodes)]
            if node not in seen:
                seen.append(node)
                if len(seen) == self.n:
                    break
        return seen


def _hash(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


STRATEGIES = ("random", "round_robin", "weighted", "consistent_hash")


class ProducerPool:
    """``async with ProducerPool(["a:4150", "b:4150"], strategy="round_robin") as pool``."""

    def __init__(
        self,
        addresses: Iterable[str],
        *,
        strategy: str = "round_robin",
        weights: Sequence[int] | None = None,
        codec: Codec = RAW,
        config: ConnectionConfig | None = None,
        **options: Unpack[ConnectionOptions],
    ) -> None:
        self.addresses = list(addresses)
        if not self.addresses:
            raise ValueError("a ProducerPool needs at least one address")
        config = with_options(config, options)
        self.producers = [Producer(a, codec=codec, config=config) for a in self.addresses]
        self.strategy = _make_strategy(strategy, self.addresses, weights)
        self._stack: list[Producer] = []
        self._avoid_until = [-float("inf")] * len(self.addresses)  # draining nodes: tried last

    async def __aenter__(self) -> Self:
        for producer in self.producers:
            await producer.__aenter__()
            self._stack.append(producer)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        while self._stack:
            await self._stack.pop().__aexit__(et, e, tb)

    async def publish(self, topic: str, body: Any, *, key: bytes | str | None = None) -> str:
        """Publish to one nsqd; returns the address that took it."""
        return await self._send("publish", key, topic, body)

    async def multi_publish(
        self, topic: str, bodies: Iterable[Any], *, key: bytes | str | None = None
    ) -> str:
        return await self._send("multi_publish", key, topic, list(bodies))

    async def deferred_publish(
        self, topic: str, body: Any, delay: float, *, key: bytes | str | None = None
    ) -> str:
        return await self._send("deferred_publish", key, topic, body, delay)

    async def _send(self, method: str, key: bytes | str | None, *args: Any) -> str:
        raw_key = key.encode() if isinstance(key, str) else key
        error: Exception | None = None
        for index in self._order(raw_key):
            producer = self.producers[index]
            try:
                await getattr(producer, method)(*args)
            except NSQConnectionError as exc:
                error = exc
            except PublishError as exc:
                if exc.code not in _FAILOVER_CODES:
                    raise
                if _node_draining(exc):
                    self._avoid_until[index] = anyio.current_time() + DRAINING_AVOID
                error = exc
            else:
                return producer.address
            await anyio.lowlevel.checkpoint()
        assert error is not None
        raise error

    def _order(self, key: bytes | None) -> list[int]:
        """The strategy's order, with the nodes known to be draining moved to the end."""
        order = self.strategy.order(key)
        now = anyio.current_time()
        avoid = self._avoid_until
        if all(avoid[i] <= now for i in order):
            return order
        return [i for i in order if avoid[i] <= now] + [i for i in order if avoid[i] > now]


def _make_strategy(name: str, addresses: list[str], weights: Sequence[int] | None) -> Strategy:
    n = len(addresses)
    if name == "random":
        return RandomStrategy(n)
    if name == "round_robin":
        return RoundRobinStrategy(n)
    if name == "weighted":
        if weights is None or len(weights) != n:
            raise ValueError("the weighted strategy needs one weight per address")
        return WeightedStrategy(weights)
    if name == "consistent_hash":
        return ConsistentHashStrategy(addresses)
    raise ValueError(f"unknown strategy {name!r}; one of {', '.join(STRATEGIES)}")
