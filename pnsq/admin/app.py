"""The admin's HTTP side: nsqadmin's pages and JSON API, live updates, and guarded actions.

Starlette routes requests (served by hypercorn's trio worker, see ``server.py``). The pages are
one static single-page app (``static/``): the server answers ``index.html`` for every page
path, and the page renders itself from ``/api/...``, which scripts can use the same way. Every
GET asks the cluster afresh (all nodes at once, each bounded by the request timeout), so what a
page shows right after an action is the action's result. ``/api/events`` is a server-sent
event stream with one event per sample; pages refresh their data and charts on it.
``/metrics`` is the admin's own Prometheus endpoint (``metrics.py``): how its polls fare.

Actions are POST (or DELETE, as nsqadmin's API) with a JSON body, and are refused with 403
unless the request is same-origin: the body must be ``application/json`` (an HTML form on
another site cannot send that, and a script on another site needs a CORS preflight that is never
granted), and ``Origin`` and ``Sec-Fetch-Site``, when the browser sends them, must say this
site. Pages are also served with ``X-Frame-Options: DENY`` so no other site can frame the
buttons.

Access control is nsqadmin's: with ``--admin-user`` given, an action is refused with 403
``FORBIDDEN`` unless the ``--acl-http-header`` (set by the proxy in front, which authenticates)
names one of them; without admin users everyone may act, as in nsqadmin. The page learns which
from ``data-admin`` on its ``<body>`` (nsqadmin's ``isAdmin`` in its index template) and shows
no action buttons to others. Each action that reached the cluster is announced to
``--notification-http-endpoint`` (``notify.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .. import NSQ_VERSION, __version__
from ..wire.names import is_valid_name
from . import aggregate
from .aggregate import Node, View
from .cluster import ActionResult, Cluster, FetchError
from .graphite import Graphite
from .history import History, counters
from .metrics import encode
from .notify import Notifier, admin_action
from .options import AdminOptions

log = logging.getLogger("pnsq.admin")
STATIC = Path(__file__).parent / "static"
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
}
_TOPIC_ACTIONS = {"pause", "unpause", "empty", "delete"}
PEEK_DEFAULT, PEEK_MAX = 10, 100


class APIError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status)


class Admin:
    """The state behind the app: the cluster client, the sampled history, the sample event."""

    def __init__(
        self, options: AdminOptions, cluster: Cluster, notifier: Notifier | None = None
    ) -> None:
        self.options = options
        self.cluster = cluster
        self.notifier = notifier
        self._index = (STATIC / "index.html").read_text()
        self.history = History(options.history_size)
        self.last_sample: dict[str, Any] = {}
        self._sampled = trio.Event()

    # -- sampling ---------------------------------------------------------------------------

    async def sample(self, now: float) -> None:
        nodes, _ = await self.cluster.nodes()
        self.history.record(now, counters(nodes))
        total = aggregate.counter(nodes).data["total_messages"]
        self.last_sample = {
            "time": now,
            "total_messages": total,
            "rate": self.history.rate("total"),
        }
        self._sampled.set()
        self._sampled = trio.Event()

    async def wait_sample(self) -> None:
        await self._sampled.wait()

    # -- the app ----------------------------------------------------------------------------

    def app(self) -> Starlette:
        def api(handler: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
            async def endpoint(request: Request) -> Response:
                try:
                    if request.method not in ("GET", "HEAD"):
                        _check_same_origin(request)
                        if not self.is_admin(request):
                            raise APIError(403, "FORBIDDEN")
                    return await handler(request)
                except APIError as err:
                    return _error(err.status, err.message)

            return endpoint

        page = api(self.page)
        routes: list[BaseRoute] = [
            Route(path, page)
            for path in (
                "/",
                "/topics/{topic}",
                "/topics/{topic}/{channel}",
                "/nodes",
                "/nodes/{node}",
                "/lookup",
                "/counter",
            )
        ]
        routes += [
            Route("/ping", api(self.ping)),
            Route("/metrics", api(self.metrics)),
            Route("/api/topics", api(self.topics), methods=["GET", "POST"]),
            Route("/api/topics/{topic}", api(self.topic), methods=["GET", "POST", "DELETE"]),
            Route("/api/topics/{topic}/{channel}/peek", api(self.peek)),
            Route(
                "/api/topics/{topic}/{channel}",
                api(self.channel),
                methods=["GET", "POST", "DELETE"],
            ),
            Route("/api/nodes", api(self.nodes)),
            Route("/api/nodes/{node}", api(self.node), methods=["GET", "POST", "DELETE"]),
            Route("/api/lookup", api(self.lookup)),
            Route("/api/counter", api(self.counter)),
            Route("/api/history", api(self.series)),
            Route("/api/events", api(self.events)),
            *Graphite(self.options, self.cluster.client).routes(),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
        return Starlette(routes=routes)

    def is_admin(self, request: Request) -> bool:
        """nsqadmin's rule: everyone without admin users, else the users the header names."""
        users = self.options.admin_users
        return not users or request.headers.get(self.options.acl_http_header, "") in users

    async def page(self, request: Request) -> Response:
        admin = "true" if self.is_admin(request) else "false"
        html = self._index.replace("<body>", f'<body data-admin="{admin}">', 1)
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    async def ping(self, request: Request) -> Response:
        return PlainTextResponse("OK")

    async def metrics(self, request: Request) -> Response:
        """The admin's own metrics (``metrics.py``): polls that failed, nodes up, poll time."""
        body, content_type = encode(self.cluster.metrics.registry, request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    # -- reading ------------------------------------------------------------------------------

    async def _nodes(self) -> tuple[list[Node], list[str]]:
        """Every node, and warnings about every lookupd and node that did not answer."""
        nodes, warnings = await self.cluster.nodes()
        return nodes, warnings + aggregate.node_warnings(nodes)

    def _answer(self, view: View | None, warnings: list[str], not_found: str) -> Response:
        if view is None:
            raise APIError(404, not_found)
        view.warnings = list(dict.fromkeys(warnings + view.warnings))
        return JSONResponse(view.document())

    async def topics(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.create(request)
        nodes, warnings = await self._nodes()
        lookupd: dict[str, set[str]] = {}
        if self.cluster.uses_lookupd:
            lookupd, more = await self.cluster.lookupd_topics()
            warnings += more
        if request.query_params.get("inactive") in ("true", "1"):
            produced = set(aggregate.topic_names(nodes))
            inactive = {t: sorted(c) for t, c in sorted(lookupd.items()) if t not in produced}
            return JSONResponse(View({"topics": inactive}, warnings).document())
        names = aggregate.topic_names(nodes, lookupd)
        rows = aggregate.topic_summaries(nodes, names)
        for row in rows:
            row["rate"] = self.history.rate(f"topic:{row['topic_name']}")
        return JSONResponse(View({"topics": names, "topic_stats": rows}, warnings).document())

    async def topic(self, request: Request) -> Response:
        topic = _name(request.path_params["topic"], "TOPIC")
        if request.method != "GET":
            return await self.topic_action(request, topic)
        nodes, warnings = await self._nodes()
        view = aggregate.topic_stats(nodes, topic)
        if view is not None:
            view.data["rate"] = self.history.rate(f"topic:{topic}")
            for channel in view.data["channels"]:
                channel["rate"] = self.history.rate(f"channel:{topic}:{channel['channel_name']}")
        return self._answer(view, warnings, "TOPIC_NOT_FOUND")

    async def channel(self, request: Request) -> Response:
        topic = _name(request.path_params["topic"], "TOPIC")
        channel = _name(request.path_params["channel"], "CHANNEL")
        if request.method != "GET":
            return await self.channel_action(request, topic, channel)
        nodes, warnings = await self._nodes()
        view = aggregate.channel_stats(nodes, topic, channel)
        if view is not None:
            view.data["rate"] = self.history.rate(f"channel:{topic}:{channel}")
        return self._answer(view, warnings, "CHANNEL_NOT_FOUND")

    async def peek(self, request: Request) -> Response:
        topic = _name(request.path_params["topic"], "TOPIC")
        channel = _name(request.path_params["channel"], "CHANNEL")
        text = request.query_params.get("n", str(PEEK_DEFAULT))
        if not (text.isascii() and text.isdigit() and 0 < int(text) <= PEEK_MAX):
            raise APIError(400, "INVALID_ARG_N")
        nodes, warnings = await self._nodes()
        holders = [n for n in nodes if aggregate.channel_stats([n], topic, channel)]
        holders = [n for n in holders if n.up]
        messages: list[dict[str, Any]] = []
        for node, answer in zip(
            holders, await self.cluster.peek(holders, topic, channel, int(text)), strict=True
        ):
            if isinstance(answer, dict):
                messages += [{**m, "node": node.node} for m in answer.get("messages") or []]
            else:
                warnings.append(f"peek on {node.node} failed: {answer}")
        return JSONResponse(View({"messages": messages}, warnings).document())

    async def nodes(self, request: Request) -> Response:
        nodes, warnings = await self._nodes()
        view = aggregate.node_list(nodes, NSQ_VERSION)
        for row in view.data["nodes"]:
            row["rate"] = self.history.rate(f"node:{row['node']}")
            row["metrics_url"] = self.cluster.url(row["node"], "/metrics")
        return self._answer(view, warnings, "")

    async def node(self, request: Request) -> Response:
        name = request.path_params["node"]
        if request.method == "POST" and (await self._action_body(request)).get("action") == "drain":
            return await self.drain(request, name)
        if request.method != "GET":
            return await self.tombstone(request, name)
        nodes, warnings = await self._nodes()
        view = aggregate.node_stats(nodes, name)
        if view is not None:
            view.data["rate"] = self.history.rate(f"node:{name}")
            view.data["metrics_url"] = self.cluster.url(name, "/metrics")
        return self._answer(view, warnings, "NODE_NOT_FOUND")

    async def lookup(self, request: Request) -> Response:
        nodes, warnings = await self._nodes()
        topics, more = await self.cluster.lookupd_topics()
        rows = []
        for topic, channels in sorted(topics.items()):
            producers = [n.node for n in nodes if any(t == topic for t, _ in n.lookupd_topics)]
            rows.append(
                {
                    "topic": topic,
                    "channels": sorted(channels),
                    "producers": producers,
                    "inactive": not producers,
                }
            )
        data = {"lookupd_http_addresses": list(self.options.lookupd_http_addresses), "topics": rows}
        return JSONResponse(View(data, warnings + more).document())

    async def counter(self, request: Request) -> Response:
        nodes, warnings = await self._nodes()
        return self._answer(aggregate.counter(nodes), warnings, "")

    async def series(self, request: Request) -> Response:
        series = request.query_params.get("series", "total")
        return JSONResponse(self.history.document(series, self.options.sample_interval))

    async def events(self, request: Request) -> Response:
        return StreamingResponse(
            self._event_stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )

    async def _event_stream(self) -> AsyncIterator[str]:
        yield f"retry: 2000\nevent: hello\ndata: {json.dumps(self._hello())}\n\n"
        while True:
            with trio.move_on_after(15):
                await self.wait_sample()
                yield f"event: sample\ndata: {json.dumps(self.last_sample)}\n\n"
                continue
            yield ": keep-alive\n\n"

    def _hello(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "nsq_version": NSQ_VERSION,
            "sample_interval": self.options.sample_interval,
            "lookupd": self.cluster.uses_lookupd,
        }

    # -- actions ------------------------------------------------------------------------------

    async def _action_body(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json() if await request.body() else {}
        except ValueError:
            raise APIError(400, "INVALID_BODY") from None
        if not isinstance(body, dict):
            raise APIError(400, "INVALID_BODY")
        return body

    def _done(
        self, request: Request, what: str, result: ActionResult, *notices: tuple[str, ...]
    ) -> Response:
        """The action's answer; ``notices`` (``action, topic, channel?, node?``) are sent to the
        notification endpoint unless every request of the action failed."""
        document = result.document()
        user = request.headers.get(self.options.acl_http_header, "")
        by = f" by {user}" if user else ""  # the audit trail in the log, as the proxy named them
        log.info("action %s%s: %s", what, by, document["message"] or "OK")
        failed_all = bool(result.results) and len(result.failed) == len(result.results)
        if not failed_all and self.notifier is not None:
            for notice in notices:
                self.notifier.send(admin_action(request, *notice))
        return JSONResponse(document, 502 if failed_all else 200)

    async def create(self, request: Request) -> Response:
        """POST /api/topics ``{"topic": T, "channel": C?}``."""
        body = await self._action_body(request)
        topic = _name(body.get("topic"), "TOPIC")
        channel = _name(body["channel"], "CHANNEL") if body.get("channel") else None
        lookupds = self.options.lookupd_http_addresses
        requests = [(a, "/topic/create", {"topic": topic}) for a in lookupds]
        if channel is not None:
            params = {"topic": topic, "channel": channel}
            requests += [(a, "/channel/create", params) for a in lookupds]
        if self.cluster.uses_lookupd:
            nsqds = [n.node for n in await self._producers(topic)] if channel else []
        else:
            nsqds = self.cluster.nsqd_addresses
            requests += [(a, "/topic/create", {"topic": topic}) for a in nsqds]
        if channel is not None:
            requests += [(a, "/channel/create", params) for a in nsqds]
        what = f"create {topic}" + (f":{channel}" if channel else "")
        notices: list[tuple[str, ...]] = [("create_topic", topic)]
        if channel is not None:
            notices.append(("create_channel", topic, channel))
        return self._done(request, what, await self.cluster.fan_out(requests), *notices)

    async def _producers(self, topic: str, channel: str | None = None) -> list[Node]:
        nodes, _ = await self._nodes()
        if channel is None:
            return [n for n in nodes if n.topic(topic) is not None]
        return [n for n in nodes if aggregate.channel_stats([n], topic, channel) and n.up]

    async def _action(self, request: Request) -> str:
        if request.method == "DELETE":
            return "delete"
        action = (await self._action_body(request)).get("action")
        if action not in _TOPIC_ACTIONS:
            raise APIError(400, "INVALID_ACTION")
        return str(action)

    async def topic_action(self, request: Request, topic: str) -> Response:
        action = await self._action(request)
        producers = await self._producers(topic)
        requests = []
        if action == "delete":
            lookupds = self.options.lookupd_http_addresses
            requests += [(a, "/topic/delete", {"topic": topic}) for a in lookupds]
        elif not producers:
            raise APIError(404, "TOPIC_NOT_FOUND")
        requests += [(n.node, f"/topic/{action}", {"topic": topic}) for n in producers]
        result = await self.cluster.fan_out(requests)
        return self._done(request, f"{action} topic {topic}", result, (f"{action}_topic", topic))

    async def channel_action(self, request: Request, topic: str, channel: str) -> Response:
        action = await self._action(request)
        producers = await self._producers(topic, channel)
        params = {"topic": topic, "channel": channel}
        requests = []
        if action == "delete":
            requests += [
                (a, "/channel/delete", params) for a in self.options.lookupd_http_addresses
            ]
        elif not producers:
            raise APIError(404, "CHANNEL_NOT_FOUND")
        requests += [(n.node, f"/channel/{action}", params) for n in producers]
        what = f"{action} channel {topic}:{channel}"
        notice = (f"{action}_channel", topic, channel)
        return self._done(request, what, await self.cluster.fan_out(requests), notice)

    async def tombstone(self, request: Request, node: str) -> Response:
        """DELETE /api/nodes/:node ``{"topic": T}`` (or POST with ``"action": "tombstone"``)."""
        body = await self._action_body(request)
        if request.method == "POST" and body.get("action") != "tombstone":
            raise APIError(400, "INVALID_ACTION")
        topic = _name(body.get("topic"), "TOPIC")
        nodes, _ = await self._nodes()
        if not any(n.node == node for n in nodes):
            raise APIError(404, "NODE_NOT_FOUND")
        lookupds = self.options.lookupd_http_addresses
        requests = [(a, "/topic/tombstone", {"topic": topic, "node": node}) for a in lookupds]
        requests.append((node, "/topic/delete", {"topic": topic}))
        result = await self.cluster.fan_out(requests)
        notice = ("tombstone_topic_producer", topic, "", node)
        return self._done(request, f"tombstone {topic} on {node}", result, notice)

    async def drain(self, request: Request, node: str) -> Response:
        """POST /api/nodes/:node ``{"action": "drain"}``: the nsqd's ``PUT /state/drain``
        (not in nsqadmin; its notification is ``drain_node``)."""
        nodes, _ = await self._nodes()
        if not any(n.node == node for n in nodes):
            raise APIError(404, "NODE_NOT_FOUND")
        result = ActionResult()
        try:
            result.add(f"{node}/state/drain", await self.cluster.put(node, "/state/drain"))
        except FetchError as err:
            result.add(f"{node}/state/drain", err)
        return self._done(request, f"drain {node}", result, ("drain_node", "", "", node))


def _name(value: object, kind: str) -> str:
    if value is None or value == "":
        raise APIError(400, f"MISSING_ARG_{kind}")
    if not isinstance(value, str) or not is_valid_name(value):
        raise APIError(400, f"INVALID_ARG_{kind}")
    return value


def _check_same_origin(request: Request) -> None:
    """Refuse a state-changing request that a page of another site could have sent."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and request.method != "DELETE":
        raise APIError(403, "FORBIDDEN: actions take a JSON body (Content-Type: application/json)")
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise APIError(403, "FORBIDDEN: cross-site request")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise APIError(403, "FORBIDDEN: cross-site request")
