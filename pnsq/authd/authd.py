"""The ``pnsq authd`` daemon: answers nsqd's ``/auth`` from the secrets file.

nsqd asks ``GET /auth?common_name=&remote_ip=&secret=&tls=`` or, with
``--auth-http-request-method=post``, POSTs those values as a JSON object of one-string arrays.
A known secret gets 200 and NSQ's reply (``ttl``, ``identity``, ``identity_url``,
``authorizations``). An unknown one gets 403 with a plain-text body: NSQ's HTTP client reads a
403 with a JSON body from an ``http://`` address as its "use HTTPS" redirect and retries at the
body's ``https_port``; plain text makes it give up at once. Either way that client's AUTH fails
with ``E_AUTH_FAILED``. Secrets are never logged.

SIGHUP (when ``serve`` is asked to watch it) reloads the file; a bad file is refused with its
reason logged and the table in use stays.
"""

from __future__ import annotations

import json
import logging
import signal
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from .._internal import http_server
from .._internal.daemon import bound_address, listen
from .._internal.http_server import OK, HTTPError, Request, Response, first, json_response, text
from .options import AuthdOptions
from .secrets import Grant, load_secrets

if TYPE_CHECKING:
    Route = http_server.Route["Authd"]
else:
    Route = http_server.Route

log = logging.getLogger("pnsq.authd")

MAX_BODY = 64 * 1024  # nsqd's POST is a few hundred bytes


class Authd:
    def __init__(self, options: AuthdOptions, *, watch_sighup: bool = False) -> None:
        """Reads the secrets file now: ValueError if it is bad (the daemon then cannot start)."""
        self.options = options
        self.secrets: dict[str, Grant] = (
            load_secrets(options.secrets_file) if options.secrets_file else {}
        )
        self.http_address: tuple[str, int] | None = None
        self._watch_sighup = watch_sighup
        self._stop = trio.Event()

    def reload(self) -> bool:
        """Read the secrets file again; on a bad file keep the current table (logged)."""
        try:
            secrets = load_secrets(self.options.secrets_file)
        except ValueError as err:
            log.error("reload refused, keeping %d secrets: %s", len(self.secrets), err)
            return False
        self.secrets = secrets
        log.info("reloaded %s: %d secrets", self.options.secrets_file, len(secrets))
        return True

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        http = await listen(self.options.http_address)
        self.http_address = bound_address(http)
        log.info("HTTP: listening on %s:%d (%d secrets)", *self.http_address, len(self.secrets))
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as listeners:
                handler = partial(http_server.serve_http_connection, self, _ROUTER)
                listeners.start_soon(
                    partial(trio.serve_listeners, handler, http, handler_nursery=connections)
                )
                if self._watch_sighup:
                    await listeners.start(self._reload_on_sighup)
                task_status.started()
                await self._stop.wait()
                listeners.cancel_scope.cancel()
            connections.cancel_scope.cancel()
        for listener in http:
            await listener.aclose()
        log.info("stopped")

    async def _reload_on_sighup(self, task_status: trio.TaskStatus[None]) -> None:
        with trio.open_signal_receiver(signal.SIGHUP) as signals:
            task_status.started()
            async for _ in signals:
                self.reload()

    def stop(self) -> None:
        self._stop.set()


def _values(request: Request) -> dict[str, list[str]]:
    """GET's query, or POST's JSON object of string arrays (plain strings taken too)."""
    if request.method != "POST" or not request.body.strip():
        return request.params()
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(400, "INVALID_REQUEST") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "INVALID_REQUEST")
    values: dict[str, list[str]] = {}
    for key, value in data.items():
        items: list[Any] = value if isinstance(value, list) else [value]
        values[key] = [v for v in items if isinstance(v, str)]
    return values


def _auth(authd: Authd, request: Request) -> Response:
    values = _values(request)
    remote_ip = first(values, "remote_ip") or ""
    grant = authd.secrets.get(first(values, "secret") or "")
    if grant is None:
        log.info("AUTH refused: unknown secret from %s", remote_ip or "?")
        return text("NOT_AUTHORIZED", 403)
    log.info("AUTH %s from %s (tls=%s)", grant.identity, remote_ip, first(values, "tls"))
    return json_response(grant.reply)


def _ping(authd: Authd, request: Request) -> Response:
    return OK


_ROUTER: http_server.Router[Authd] = http_server.Router(
    {
        "/ping": {"GET": Route(_ping, logged=False)},
        "/auth": {"GET": Route(_auth), "POST": Route(_auth)},
    },
    lambda _authd: MAX_BODY,
    log,
)
