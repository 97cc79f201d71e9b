"""Producer: publish to one nsqd over TCP (``host:port``) or HTTP (``http://host:port``).

TCP: one connection, opened on first use and reopened on the next publish after it broke
(go-nsq's behaviour); publishes may run concurrently from many tasks and are answered in order.
A publish whose answer was lost with the connection raises NSQConnectionError and is not
resent here (``ProducerPool`` decides about failover).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self, Unpack
from urllib.parse import quote

import anyio
import anyio.abc

from pnsq import wire

from ._address import parse_address
from ._conn import Connection
from ._http import HTTPConnection
from .codecs import RAW, Codec
from .config import ConnectionConfig, ConnectionOptions, with_options
from .errors import NSQError, NSQProtocolError, PublishError

log = logging.getLogger("pnsq.client")


class Producer:
    """An async publisher to one nsqd; use it as ``async with Producer(addr) as p``."""

    def __init__(
        self,
        address: str,
        *,
        codec: Codec = RAW,
        config: ConnectionConfig | None = None,
        http_timeout: float = 5.0,
        **options: Unpack[ConnectionOptions],
    ) -> None:
        self.address = address
        self.codec = codec
        self.config = with_options(config, options)
        self.is_http = address.startswith("http://")
        self._host_port = parse_address(address, 4151 if self.is_http else 4150)
        self._http = (
            HTTPConnection(*self._host_port, timeout=http_timeout) if self.is_http else None
        )
        self._conn: Connection | None = None
        self._lock = anyio.Lock()
        self._tg: anyio.abc.TaskGroup | None = None

    def __repr__(self) -> str:
        return f"<Producer {self.address}>"

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        await self.aclose()
        tg, self._tg = self._tg, None
        assert tg is not None
        tg.cancel_scope.cancel()
        # As Consumer.__aexit__: an error from the body propagates unwrapped (under trio the
        # task group would put it in an ExceptionGroup).
        await tg.__aexit__(None, None, None)
        return None

    async def aclose(self) -> None:
        """Close the connection (pending publishes fail with NSQConnectionError)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await conn.wait_flushed()
            await conn.aclose()
        if self._http is not None:
            await self._http.aclose()

    async def publish(self, topic: str, body: Any) -> None:
        """PUB one message; returns once nsqd has queued it."""
        data = self.codec.encode(body)
        if self._http is not None:
            await self._http_pub(f"/pub?topic={quote(topic)}", data)
        else:
            conn = await self._connection()
            _expect_ok(conn, await conn.publish(topic, data))

    async def multi_publish(self, topic: str, bodies: Iterable[Any]) -> None:
        """MPUB: all of ``bodies`` are queued, or none."""
        encoded = [self.codec.encode(body) for body in bodies]
        if self._http is not None:
            body = wire.encode_mpub_body(encoded)
            await self._http_pub(f"/mpub?topic={quote(topic)}&binary=true", body)
        else:
            conn = await self._connection()
            _expect_ok(conn, await conn.multi_publish(topic, encoded))

    async def deferred_publish(self, topic: str, body: Any, delay: float) -> None:
        """DPUB: nsqd delivers the message ``delay`` seconds from now."""
        data, delay_ms = self.codec.encode(body), int(delay * 1000)
        if self._http is not None:
            await self._http_pub(f"/pub?topic={quote(topic)}&defer={delay_ms}", data)
        else:
            conn = await self._connection()
            _expect_ok(conn, await conn.deferred_publish(topic, delay_ms, data))

    async def _connection(self) -> Connection:
        conn = self._conn
        if conn is not None and not (conn.closed or conn.failed):
            return conn
        if self._tg is None:
            raise RuntimeError("use the TCP Producer as `async with Producer(...) as p`")
        async with self._lock:
            if self._conn is None or self._conn.closed or self._conn.failed:
                self._conn = await Connection.open(self._host_port, self.config)
                self._tg.start_soon(self._run, self._conn)
            return self._conn

    async def _run(self, conn: Connection) -> None:
        try:
            await conn.run()
        except NSQError as exc:
            log.info("producer %s: %s", self.address, exc)

    async def _http_pub(self, target: str, body: bytes) -> None:
        assert self._http is not None
        status, reply = await self._http.request("POST", target, body)
        if status != 200:
            raise PublishError(_http_error_code(reply, status), f"HTTP {status}")


def _expect_ok(conn: Connection, reply: bytes) -> None:
    if reply != wire.OK:
        raise NSQProtocolError(f"{conn.address_text}: unexpected reply {reply!r}")


def _http_error_code(body: bytes, status: int) -> str:
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip() or f"HTTP_{status}"
