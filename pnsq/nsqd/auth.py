"""AUTH: asking the auth servers about a client's secret, and what the answer allows.

The reply (``AuthState``) and its checks are pure: parsed from bytes, judged against ``now``
(trio's clock, so a test clock runs a TTL out). ``AuthServers.query`` is the only I/O: it runs
in the asking connection's reader task, so a slow or dead auth server holds up that client
only, and every call is bounded by ``--http-client-connect-timeout`` (to connect) and
``--http-client-request-timeout`` (the whole call, as Go's ``http.Client.Timeout``).

It uses httpx rather than pnsq's h11 code: an auth address may be any URL, ``https`` with
``--tls-root-ca-file``, and httpx gives URLs, TLS, connect timeouts and both methods in a
few lines. httpx is imported at the first query, so nsqd without auth does not load it. Like NSQ, each query is a fresh connection and proxies from the
environment are not used.

NSQ's quirks kept (``internal/auth/authorizations.go``): regexes are unanchored (Go's
``MatchString`` is ``re.search``); publishing asks for the ``publish`` permission, a matching
topic *and* a channel regex that matches "" (an authorization without channels never
publishes); ``ttl`` must be > 0, permissions only ``subscribe``/``publish``.
"""

from __future__ import annotations

import json
import random
import re
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import trio

if TYPE_CHECKING:
    import httpx

    from .options import Options

MAX_REPLY = 4 * 1024 * 1024  # an auth reply is a few hundred bytes; more is junk
PERMISSIONS = frozenset({"subscribe", "publish"})


class AuthQueryError(Exception):
    """The auth servers gave no usable answer (logged by nsqd; the client sees E_AUTH_FAILED)."""


@dataclass(frozen=True)
class Authorization:
    topic: re.Pattern[str]
    channels: tuple[re.Pattern[str], ...]
    permissions: frozenset[str]

    def allows(self, topic: str, channel: str) -> bool:
        """NSQ's rule: channel "" means publish, anything else subscribe."""
        if ("subscribe" if channel else "publish") not in self.permissions:
            return False
        if self.topic.search(topic) is None:
            return False
        return any(c.search(channel) is not None for c in self.channels)


@dataclass(frozen=True)
class AuthState:
    identity: str
    identity_url: str
    authorizations: tuple[Authorization, ...]
    expires: float  # on trio's clock

    def allows(self, topic: str, channel: str) -> bool:
        return any(a.allows(topic, channel) for a in self.authorizations)

    def expired(self, now: float) -> bool:
        return self.expires < now


def parse_state(body: bytes, now: float) -> AuthState:
    """The auth server's JSON reply, checked as NSQ checks it; AuthQueryError otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise AuthQueryError(f"invalid JSON: {err}") from None
    reply = _object(data, "reply")
    ttl = _typed(reply, "ttl", int, 0)
    authorizations = tuple(_authorization(a) for a in _typed(reply, "authorizations", list, []))
    if ttl <= 0:
        raise AuthQueryError(f"invalid TTL {ttl} (must be >0)")
    return AuthState(
        identity=_typed(reply, "identity", str, ""),
        identity_url=_typed(reply, "identity_url", str, ""),
        authorizations=authorizations,
        expires=now + ttl,
    )


def _authorization(data: Any) -> Authorization:
    item = _object(data, "authorization")
    permissions = _strings(item, "permissions")
    for permission in permissions:
        if permission not in PERMISSIONS:
            raise AuthQueryError(f"unknown permission {permission}")
    topic = _typed(item, "topic", str, "")
    return Authorization(
        topic=_compile(topic, "topic"),
        channels=tuple(_compile(c, "channel") for c in _strings(item, "channels")),
        permissions=frozenset(permissions),
    )


def _object(data: Any, what: str) -> dict[str, Any]:
    """A JSON object with its keys folded to lower case (Go matches field names so); null is {}."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AuthQueryError(f"{what} is not a JSON object")
    return {key.lower(): value for key, value in data.items()}


def _typed(data: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise AuthQueryError(f"{key} is not a {kind.__name__}")
    return value


def _strings(data: dict[str, Any], key: str) -> list[str]:
    values: list[Any] = _typed(data, key, list, [])
    if not all(isinstance(v, str) for v in values):
        raise AuthQueryError(f"{key} holds a value that is not a string")
    return values


def _compile(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as err:
        raise AuthQueryError(f"unable to compile {what} {json.dumps(pattern)} {err}") from None


# -- asking the auth servers ---------------------------------------------------------------


def endpoint(address: str) -> str:
    """``host:port`` is ``http://host:port/auth``; a URL is used as it is."""
    return address if "://" in address else f"http://{address}/auth"


def query_values(remote_ip: str, tls: bool, common_name: str, secret: bytes) -> dict[str, str]:
    """The query NSQ sends (its url.Values: keys sorted when encoded)."""
    return {
        "common_name": common_name,
        "remote_ip": remote_ip,
        "secret": secret.decode("utf-8", "replace"),
        "tls": "true" if tls else "false",
    }


def post_body(values: dict[str, str]) -> bytes:
    """NSQ POSTs its url.Values as JSON: each value a list of one string, HTML-escaped as Go."""
    text = json.dumps({k: [v] for k, v in sorted(values.items())}, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode()


class AuthServers:
    """``--auth-http-address``: tried in a random rotation, the first good answer wins."""

    def __init__(self, options: Options) -> None:
        self.endpoints = [endpoint(a) for a in options.auth_http_addresses]
        self.method = options.auth_http_request_method
        self.connect_timeout = options.http_client_connect_timeout
        self.request_timeout = options.http_client_request_timeout
        self._root_ca_file = options.tls_root_ca_file
        self._tls_min_version = options.tls_min_version
        self._ssl: ssl.SSLContext | None = None

    async def query(self, remote_ip: str, tls: bool, common_name: str, secret: bytes) -> AuthState:
        values = query_values(remote_ip, tls, common_name, secret)
        start = random.randrange(len(self.endpoints))
        errors: list[str] = []
        for i in range(len(self.endpoints)):
            url = self.endpoints[(start + i) % len(self.endpoints)]
            try:
                body = await self._ask(url, values)
                return parse_state(body, trio.current_time())
            except AuthQueryError as err:
                errors.append(f"failed to auth against {url} - {err}")
        raise AuthQueryError("; ".join(errors))

    async def _ask(self, url: str, values: dict[str, str]) -> bytes:
        import httpx

        timeout = httpx.Timeout(self.request_timeout, connect=self.connect_timeout)
        verify: ssl.SSLContext | bool = self._context() if url.startswith("https:") else True
        try:
            with trio.fail_after(self.request_timeout):
                async with httpx.AsyncClient(
                    timeout=timeout, verify=verify, trust_env=False
                ) as client:
                    return await self._send(client, url, values)
        except trio.TooSlowError:
            raise AuthQueryError(f"no answer within {self.request_timeout}s") from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ssl.SSLError) as err:
            raise AuthQueryError(f"{type(err).__name__}: {err}") from None

    async def _send(self, client: httpx.AsyncClient, url: str, values: dict[str, str]) -> bytes:
        headers = {"Accept": "application/vnd.nsq; version=1.0"}
        if self.method == "post":
            headers["Content-Type"] = "application/json"
            request = client.build_request("POST", url, content=post_body(values), headers=headers)
        else:
            request = client.build_request("GET", f"{url}?{urlencode(values)}", headers=headers)
        response = await client.send(request, stream=True)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_REPLY:
                    raise AuthQueryError(f"reply larger than {MAX_REPLY} bytes")
        finally:
            await response.aclose()
        if response.status_code != 200:
            raise AuthQueryError(
                f"got response {response.status_code} {response.reason_phrase} {bytes(body)!r}"
            )
        return bytes(body)

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context(cafile=self._root_ca_file or None)
            if self._tls_min_version == "tls1.3":
                context.minimum_version = ssl.TLSVersion.TLSv1_3
            self._ssl = context
        return self._ssl
