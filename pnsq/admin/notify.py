"""Action notifications (``--notification-http-endpoint``): nsqadmin's JSON, POSTed in the background.

An action's answer never waits on the endpoint: ``send`` only puts the notification on a bounded
queue, and one task POSTs them in order. If the endpoint is slow or down, its POSTs fail under
the request timeout and are logged; if the queue is full, the newest notification is dropped
and logged rather than holding actions up or growing without bound.

The fields are nsqadmin 1.3's ``AdminAction``: ``channel``, ``node`` and ``user`` are left out
when empty, ``timestamp`` is Unix seconds, ``remote_ip`` is the peer's ``host:port``, ``user``
is the HTTP basic-auth user name (not the ACL header, as in nsqadmin), ``url`` is the request's
URL (https when the request came over TLS or with ``X-Scheme: https``), and ``via`` is this
host's name.
"""

from __future__ import annotations

import base64
import binascii
import logging
import socket
import time
from typing import Any

import httpx
import trio
from starlette.requests import Request

log = logging.getLogger("pnsq.admin")
QUEUE_SIZE = 256


def admin_action(
    request: Request, action: str, topic: str, channel: str = "", node: str = ""
) -> dict[str, Any]:
    """The notification for ``action`` done by ``request``."""
    scheme = "https" if "https" in (request.url.scheme, request.headers.get("x-scheme")) else "http"
    url = f"{scheme}://{request.headers.get('host', '')}{request.url.path}"
    if request.url.query:
        url += f"?{request.url.query}"
    peer = request.client
    document: dict[str, Any] = {"action": action, "topic": topic}
    if channel:
        document["channel"] = channel
    if node:
        document["node"] = node
    document["timestamp"] = int(time.time())
    user = basic_auth_user(request.headers.get("authorization", ""))
    if user:
        document["user"] = user
    document["remote_ip"] = f"{peer.host}:{peer.port}" if peer else ""
    document["user_agent"] = request.headers.get("user-agent", "")
    document["url"] = url
    document["via"] = socket.gethostname()
    return document


def basic_auth_user(header: str) -> str:
    kind, _, encoded = header.partition(" ")
    if kind != "Basic":
        return ""
    try:
        pair = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    user, sep, _ = pair.partition(":")
    return user if sep else ""


class Notifier:
    """Queues notifications and POSTs them to the endpoint; does nothing without one."""

    def __init__(self, endpoint: str, client: httpx.AsyncClient, timeout: float) -> None:
        self.endpoint = endpoint
        self.client = client
        self.timeout = timeout
        self._send, self._receive = trio.open_memory_channel[dict[str, Any]](QUEUE_SIZE)

    def send(self, document: dict[str, Any]) -> None:
        if not self.endpoint:
            return
        try:
            self._send.send_nowait(document)
        except trio.WouldBlock:
            log.warning("notification dropped (%d waiting): %s", QUEUE_SIZE, document["action"])

    async def run(self) -> None:
        async for document in self._receive:
            await self._post(document)

    async def _post(self, document: dict[str, Any]) -> None:
        try:
            with trio.fail_after(self.timeout):
                response = await self.client.post(self.endpoint, json=document)
        except trio.TooSlowError:
            log.error("notification %s to %s: timed out", document["action"], self.endpoint)
            return
        except httpx.HTTPError as err:
            log.error("notification %s to %s: %s", document["action"], self.endpoint, err)
            return
        if response.status_code >= 300:
            log.error(
                "notification %s to %s: HTTP %d",
                document["action"],
                self.endpoint,
                response.status_code,
            )
