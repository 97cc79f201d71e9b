"""nsqadmin's graphite side: ``/api/graphite`` (a rate read from graphite) and ``/render``.

nsqd pushes its counters to statsd, statsd flushes them to graphite, and nsqadmin reads them
back: ``GET /api/graphite?metric=rate&target=T`` asks graphite's render API for ``T`` over
``from=-2*interval`` ``until=-interval`` and answers ``{"rate": "12.34"}``, the first point
divided by ``--statsd-interval`` in whole seconds (a counter's value per flush is a count per
interval), or ``"N/A"`` when the point is negative (graphite's derivative across a restart,
NSQ #1430) or, here, missing (Go's handler panics on an empty or null answer). With
``--proxy-graphite``, ``GET /render`` is passed through to graphite, so a browser that cannot
reach graphite can still draw its graphs through the admin.

nsqadmin's pages build their graphite targets in the browser from ``--statsd-prefix``,
``--statsd-counter-format`` and ``--statsd-gauge-format``; pnsq's pages draw their own charts
from sampled /stats and need no graphite, so the same rules live here instead (``target``):
``/api/graphite?metric=rate&topic=T[&channel=C][&node=N]`` asks for the rate nsqadmin's
topic and channel pages show, with the target nsqadmin would have built.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlencode

import httpx
import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .options import AdminOptions

log = logging.getLogger("pnsq.admin")

MAX_RENDER_BYTES = 16 * 1024 * 1024  # a graph or a JSON series; more is not graphite's answer
_PASSED_HEADERS = ("content-type", "cache-control", "expires", "last-modified")


def sanitize_key(name: str) -> str:
    """bitly/statsdaemon's key rule, which nsqadmin applies to topic and channel names."""
    return re.sub(r"[^a-zA-Z0-9\-_.]", "", name.replace(" ", "_").replace("/", "-"))


def statsd_prefix(template: str, node: str) -> str:
    """The prefix nsqd (``node`` = its ``host:http_port``, or ``*``) sends under."""
    prefix = template.replace("%s", node.replace(".", "_").replace(":", "_"))
    return prefix if not prefix or prefix.endswith(".") else prefix + "."


def rate_target(options: AdminOptions, topic: str, channel: str = "", node: str = "") -> str:
    """nsqadmin's target for a topic's (or channel's) message rate, summed over nodes."""
    key = f"topic.{sanitize_key(topic)}"
    if channel:
        key += f".channel.{sanitize_key(channel)}"
    key = statsd_prefix(options.statsd_prefix, node or "*") + key + ".message_count"
    if options.statsd_counter_format:
        key = options.statsd_counter_format.replace("%s", key)
    return f"sumSeries({key})"


def render_params(options: AdminOptions, target: str) -> dict[str, str]:
    """Go's query (url.Values sorts its keys): the interval before last, as JSON."""
    seconds = int(options.statsd_interval)
    return {
        "format": "json",
        "from": f"-{seconds * 2}sec",
        "target": target,
        "until": f"-{seconds}sec",
    }


def rate_text(answer: Any, interval: float) -> str:
    """``"12.34"`` per second from graphite's first point, or ``"N/A"``."""
    try:
        value = answer[0]["datapoints"][0][0]
    except (LookupError, TypeError):
        return "N/A"
    if not isinstance(value, int | float) or value < 0:
        return "N/A"
    return f"{value / max(int(interval), 1):.2f}"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status)


class Graphite:
    def __init__(self, options: AdminOptions, client: httpx.AsyncClient) -> None:
        self.options = options
        self.client = client

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [Route("/api/graphite", self.rate)]
        if self.options.proxy_graphite:
            routes.append(Route("/render", self.render))
        return routes

    async def rate(self, request: Request) -> Response:
        query = request.query_params
        if query.get("metric") != "rate":
            return _error(400, "INVALID_ARG_METRIC")
        target = query.get("target") or ""
        if not target and query.get("topic"):
            target = rate_target(
                self.options, query["topic"], query.get("channel", ""), query.get("node", "")
            )
        if not target:
            return _error(400, "INVALID_ARG_TARGET")
        if not self.options.graphite_url:
            return _error(400, "GRAPHITE_NOT_CONFIGURED: start the admin with --graphite-url")
        url = self.options.graphite_url.rstrip("/") + "/render"
        params = render_params(self.options, target)
        log.debug("GRAPHITE: %s?%s", url, urlencode(params))
        try:
            with trio.fail_after(self.options.http_client_request_timeout):
                response = await self.client.get(url, params=params)
            response.raise_for_status()
            answer = response.json()
        except (trio.TooSlowError, httpx.HTTPError, ValueError) as err:
            log.error("graphite request failed - %s", str(err) or type(err).__name__)
            return _error(500, "INTERNAL_ERROR")
        return JSONResponse({"rate": rate_text(answer, self.options.statsd_interval)})

    async def render(self, request: Request) -> Response:
        """``GET /render?...`` passed to graphite as is (nsqadmin's reverse proxy)."""
        url = self.options.graphite_url.rstrip("/") + "/render"
        if request.url.query:
            url += "?" + request.url.query
        try:
            with trio.fail_after(self.options.http_client_request_timeout):
                async with self.client.stream("GET", url) as response:
                    body = await _read_capped(response)
        except (trio.TooSlowError, httpx.HTTPError, ValueError) as err:
            log.error("graphite proxy request failed - %s", str(err) or type(err).__name__)
            return Response(b"Bad Gateway\n", 502, media_type="text/plain")
        headers = {k: v for k, v in response.headers.items() if k.lower() in _PASSED_HEADERS}
        return Response(body, response.status_code, headers=headers)


async def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_RENDER_BYTES:
            raise ValueError(f"graphite answered more than {MAX_RENDER_BYTES} bytes")
    return bytes(body)
