"""Asking a cluster for one channel's /stats over HTTP, for ``pnsq stat``.

Every node is asked at once (one task per node per poll, a handful of nodes) through one
``httpx.AsyncClient`` whose connections are kept between polls. With lookupds, the nodes are
found afresh on each poll (``/lookup?topic=``), so nodes that join or leave show up, as in
nsq_stat. A node or lookupd that fails is named on stderr and left out; the poll goes on
with the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TextIO

import anyio
import httpx

from .stat import ChannelTotals, StatOptions, channel_totals, lookup_nodes


class StatsClient:
    def __init__(self, options: StatOptions, err: TextIO) -> None:
        self.options = options
        self.err = err
        timeout = httpx.Timeout(
            options.http_client_request_timeout, connect=options.http_client_connect_timeout
        )
        self._http = httpx.AsyncClient(timeout=timeout, headers={"Accept": "application/json"})

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def poll(self) -> ChannelTotals | None:
        """The channel summed over the nodes that answered; None (said on stderr) if none."""
        topic, channel = self.options.topic, self.options.channel
        nodes = list(self.options.nsqd_http_addresses) or await self.lookup()
        if not nodes:
            self._say(f"no nsqd has topic {topic!r} (lookupd knows none)")
            return None
        query = {"format": "json", "topic": topic, "channel": channel, "include_mem": "false"}
        documents = await self._get_all(nodes, "/stats", query)
        if not documents:
            return None
        totals = channel_totals(documents, topic, channel)
        if totals is None:
            self._say(f"channel {channel!r} of topic {topic!r} not found on any nsqd")
        return totals

    async def lookup(self) -> list[str]:
        """nsqd HTTP addresses of the topic, from every lookupd that answers."""
        answers = await self._get_all(
            self.options.lookupd_http_addresses, "/lookup", {"topic": self.options.topic}
        )
        nodes: dict[str, None] = {}
        for answer in answers:
            try:
                nodes.update(dict.fromkeys(lookup_nodes(answer)))
            except ValueError as exc:
                self._say(str(exc))
        return list(nodes)

    async def _get_all(
        self, addresses: Iterable[str], path: str, query: Mapping[str, str]
    ) -> list[Mapping[str, Any]]:
        answers: list[Mapping[str, Any]] = []

        async def get(address: str) -> None:
            answer = await self._get(address, path, query)
            if answer is not None:
                answers.append(answer)

        async with anyio.create_task_group() as tg:
            for address in addresses:
                tg.start_soon(get, address)
        return answers

    async def _get(
        self, address: str, path: str, query: Mapping[str, str]
    ) -> Mapping[str, Any] | None:
        try:
            response = await self._http.get(f"http://{address}{path}", params=query)
            if response.status_code == 404 and path == "/lookup":
                return {"producers": []}  # TOPIC_NOT_FOUND: no producer yet
            response.raise_for_status()
            document = response.json()
        except httpx.HTTPStatusError as exc:
            self._say(f"{address}: HTTP {exc.response.status_code} for {path}")
        except (httpx.HTTPError, ValueError) as exc:
            self._say(f"{address}: {str(exc) or type(exc).__name__}")
        else:
            if isinstance(document, dict):
                return document
            self._say(f"{address}: {path} did not answer a JSON object")
        return None

    def _say(self, text: str) -> None:
        self.err.write(f"pnsq stat: {text}\n")
        self.err.flush()
