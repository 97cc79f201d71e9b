"""Talking to the cluster over HTTP: discovery, /stats, and actions fanned out to every node.

The admin is an HTTP client of the daemons like any other (STYLE: it imports nothing of
nsqd or lookupd). Every fan-out runs all requests at once, each under its own deadline
(``--http-client-request-timeout``), so a node that does not answer delays a page by that much
at most and shows up as an error, never as a failed page. Nodes are named ``host:http_port``:
the lookupds' ``broadcast_address:http_port``, or the ``--nsqd-http-address`` without its
scheme; an address given as ``https://`` is reached over TLS under every name it goes by.

Every poll is also counted in ``metrics`` (the admin's own ``/metrics``): each node or lookupd
that failed to answer, the nodes up and down, and how long the whole poll took.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import httpx
import trio

from .aggregate import Node
from .metrics import ClusterMetrics
from .options import AdminOptions, split_scheme

log = logging.getLogger("pnsq.admin")
T = TypeVar("T")


class FetchError(Exception):
    """A request to a node or lookupd that failed; the text says how."""


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def gather(calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T | FetchError]:
    """Run every call at once; each result, or the FetchError it failed with, in order."""
    calls = list(calls)
    results: list[T | FetchError] = [FetchError("not run")] * len(calls)

    async def run(i: int, call: Callable[[], Awaitable[T]]) -> None:
        try:
            results[i] = await call()
        except FetchError as err:
            results[i] = err

    async with trio.open_nursery() as nursery:
        for i, call in enumerate(calls):
            nursery.start_soon(run, i, call)
    return results


@dataclass
class ActionResult:
    """What a fanned-out action did: one entry per request, and whether any failed."""

    results: list[dict[str, str]] = field(default_factory=list)

    def add(self, target: str, outcome: object) -> None:
        error = str(outcome) if isinstance(outcome, FetchError) else ""
        self.results.append({"target": target, "error": error})

    @property
    def failed(self) -> list[dict[str, str]]:
        return [r for r in self.results if r["error"]]

    def document(self) -> dict[str, Any]:
        failed = self.failed
        message = "; ".join(f"{r['target']}: {r['error']}" for r in failed)
        if failed and len(failed) == len(self.results):
            message = "UPSTREAM_ERROR: " + message
        elif failed:
            message = "WARNING: " + message
        return {"results": self.results, "message": message}


class Cluster:
    def __init__(self, options: AdminOptions, client: httpx.AsyncClient) -> None:
        self.options = options
        self.client = client
        self._info: dict[str, dict[str, Any]] = {}  # --nsqd-http-address -> its /info
        given = options.lookupd_http_addresses + options.nsqd_http_addresses
        self._schemes = {bare: scheme for scheme, bare in map(split_scheme, given)}
        self.nsqd_addresses = [split_scheme(a)[1] for a in options.nsqd_http_addresses]
        self.metrics = ClusterMetrics()
        self.metrics.polled(split_scheme(a)[1] for a in given)

    def url(self, address: str, path: str) -> str:
        scheme, bare = split_scheme(address)
        return f"{self._schemes.get(bare, scheme)}://{bare}{path}"

    # -- plain requests ---------------------------------------------------------------------

    async def _request(self, method: str, address: str, path: str, params: dict[str, Any]) -> Any:
        """One request under the per-request deadline; the JSON answer, or None if empty."""
        url = self.url(address, path)
        try:
            with trio.fail_after(self.options.http_client_request_timeout):
                response = await self.client.request(method, url, params=params)
        except trio.TooSlowError:
            raise FetchError(f"{method} {url}: timed out") from None
        except httpx.HTTPError as err:
            raise FetchError(f"{method} {url}: {_describe(err)}") from None
        if response.status_code != 200:
            raise FetchError(f"{method} {url}: {response.status_code} {_nsq_message(response)}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise FetchError(f"{method} {url}: answer is not JSON") from None

    async def get(self, address: str, path: str, **params: Any) -> Any:
        return await self._request("GET", address, path, params)

    async def post(self, address: str, path: str, **params: Any) -> Any:
        return await self._request("POST", address, path, params)

    async def put(self, address: str, path: str, **params: Any) -> Any:
        return await self._request("PUT", address, path, params)

    # -- discovery and stats ----------------------------------------------------------------

    @property
    def uses_lookupd(self) -> bool:
        return bool(self.options.lookupd_http_addresses)

    async def nodes(self) -> tuple[list[Node], list[str]]:
        """Every nsqd with its /stats (or error), and warnings about lookupds that failed."""
        started = time.perf_counter()
        if not self.uses_lookupd:
            nodes, warnings = await self._listed_nodes(), list[str]()
        else:
            nodes, warnings = await self._lookupd_nodes()
            calls = (partial(self.get, n.node, "/stats", format="json") for n in nodes)
            results = await gather(calls)
            nodes = [_with_stats(n, r) for n, r in zip(nodes, results, strict=True)]
        self._count_poll(nodes, time.perf_counter() - started)
        return nodes, warnings

    def _count_poll(self, nodes: list[Node], seconds: float) -> None:
        self.metrics.polled(n.node for n in nodes)
        down = [n.node for n in nodes if not n.up]
        for node in down:
            self.metrics.failed(node)
        self.metrics.nodes_seen(up=len(nodes) - len(down), down=len(down))
        self.metrics.scrape_duration.observe(seconds)

    def _lookupd_failed(self, address: str, error: FetchError) -> str:
        self.metrics.failed(split_scheme(address)[1])
        return f"lookupd {address} did not answer: {error}"

    async def _lookupd_nodes(self) -> tuple[list[Node], list[str]]:
        addresses = self.options.lookupd_http_addresses
        answers = await gather(partial(self.get, a, "/nodes") for a in addresses)
        merged: dict[str, Node] = {}
        warnings = []
        for address, answer in zip(addresses, answers, strict=True):
            if isinstance(answer, FetchError):
                warnings.append(self._lookupd_failed(address, answer))
                continue
            for peer in (answer or {}).get("producers") or []:
                node = _peer_node(peer)
                old = merged.get(node.node)
                merged[node.node] = node if old is None else _merge_peer(old, node)
        return sorted(merged.values(), key=lambda n: n.node), warnings

    async def _listed_nodes(self) -> list[Node]:
        """The --nsqd-http-address nodes: /stats, and /info until it has answered once, at once
        (one round trip, so a silent node costs one request timeout, not two)."""
        addresses = self.nsqd_addresses
        missing = [a for a in addresses if a not in self._info]
        calls = [partial(self.get, a, "/info") for a in missing]
        calls += [partial(self.get, a, "/stats", format="json") for a in addresses]
        answers = await gather(calls)
        for address, info in zip(missing, answers, strict=False):
            if isinstance(info, dict):
                self._info[address] = info
        nodes = []
        for address, stats in zip(addresses, answers[len(missing) :], strict=True):
            info = self._info.get(address, {})
            node = Node(
                node=address,
                hostname=str(info.get("hostname", "")),
                broadcast_address=str(info.get("broadcast_address", "")),
                tcp_port=int(info.get("tcp_port", 0)),
                http_port=int(info.get("http_port", 0)),
                version=str(info.get("version", "")),
            )
            nodes.append(_with_stats(node, stats))
        return nodes

    async def lookupd_topics(self) -> tuple[dict[str, set[str]], list[str]]:
        """Topics and their channels as the lookupds see them (union), and warnings."""
        addresses = self.options.lookupd_http_addresses
        answers = await gather(partial(self.get, a, "/topics") for a in addresses)
        topics: dict[str, set[str]] = {}
        warnings = []
        asks: list[tuple[str, str]] = []
        for address, answer in zip(addresses, answers, strict=True):
            if isinstance(answer, FetchError):
                warnings.append(self._lookupd_failed(address, answer))
                continue
            for topic in (answer or {}).get("topics") or []:
                topics.setdefault(topic, set())
                asks.append((address, topic))
        channels = await gather(partial(self.get, a, "/channels", topic=t) for a, t in asks)
        for (address, topic), answer in zip(asks, channels, strict=True):
            if isinstance(answer, FetchError):
                warnings.append(self._lookupd_failed(address, answer))
                continue
            topics[topic].update((answer or {}).get("channels") or [])
        return topics, warnings

    # -- actions ----------------------------------------------------------------------------

    async def fan_out(self, requests: list[tuple[str, str, dict[str, str]]]) -> ActionResult:
        """POST every ``(address, path, params)``: one path after another, in the order given
        (``/topic/create`` before ``/channel/create``, a tombstone before the delete), and all
        requests of one path at once.
        """
        result = ActionResult()
        for stage in dict.fromkeys(path for _, path, _ in requests):
            batch = [r for r in requests if r[1] == stage]
            answers = await gather(partial(self.post, a, p, **params) for a, p, params in batch)
            for (address, path, params), answer in zip(batch, answers, strict=True):
                query = "&".join(f"{k}={v}" for k, v in params.items())
                result.add(f"{address}{path}?{query}", answer)
        return result

    async def peek(self, nodes: list[Node], topic: str, channel: str, n: int) -> list[Any]:
        get = partial(self.get, path="/channel/peek", topic=topic, channel=channel, n=n)
        return await gather(partial(get, node.node) for node in nodes)


def _describe(err: BaseException) -> str:
    """The first cause with something to say: httpx's TLS errors are often empty themselves,
    while the ssl error underneath names the reason (e.g. CERTIFICATE_VERIFY_FAILED)."""
    cause: BaseException | None = err
    while cause is not None:
        if str(cause):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    return type(err).__name__


def _nsq_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _peer_node(peer: dict[str, Any]) -> Node:
    topics = list(peer.get("topics") or [])
    tombstones = list(peer.get("tombstones") or [])
    tombstones += [False] * (len(topics) - len(tombstones))
    address = str(peer.get("broadcast_address", ""))
    http_port = int(peer.get("http_port", 0))
    return Node(
        node=join_host_port(address, http_port),
        hostname=str(peer.get("hostname", "")),
        broadcast_address=address,
        tcp_port=int(peer.get("tcp_port", 0)),
        http_port=http_port,
        version=str(peer.get("version", "")),
        remote_addresses=(str(peer.get("remote_address", "")),),
        lookupd_topics=tuple(zip(topics, map(bool, tombstones), strict=False)),
    )


def _merge_peer(old: Node, new: Node) -> Node:
    """One nsqd registered with several lookupds: all its addresses, topics and tombstones."""
    topics = dict(old.lookupd_topics)
    for topic, tombstoned in new.lookupd_topics:
        topics[topic] = topics.get(topic, False) or tombstoned
    return Node(
        node=old.node,
        hostname=old.hostname,
        broadcast_address=old.broadcast_address,
        tcp_port=old.tcp_port,
        http_port=old.http_port,
        version=old.version,
        remote_addresses=old.remote_addresses + new.remote_addresses,
        lookupd_topics=tuple(sorted(topics.items())),
    )


def _with_stats(node: Node, answer: Any) -> Node:
    if isinstance(answer, FetchError):
        return dataclasses.replace(node, error=str(answer))
    if not isinstance(answer, dict):
        return dataclasses.replace(node, error="/stats answer is not an object")
    return dataclasses.replace(node, stats=answer)
