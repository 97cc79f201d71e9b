"""SyncProducer: a blocking publisher on a plain socket, for scripts and threaded web apps.

One connection, opened on first use and reopened after it broke; a lock makes it safe to share
between threads (publishes are serialised). The protocol (negotiation, AUTH, heartbeats, the
command bytes, compression) is the wire core's ``ClientConnection``, as in the async client; this
module only moves its bytes over a blocking socket, and wraps that socket in TLS when the state
machine says ``UpgradeTLS``. ``http://host:port`` publishes over HTTP instead.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self, Unpack
from urllib.parse import quote

from pnsq import wire

from ._address import parse_address
from .codecs import RAW, Codec
from .config import ConnectionConfig, ConnectionOptions, with_options
from .errors import (
    AuthError,
    NSQConnectionError,
    NSQProtocolError,
    PublishError,
    ServerError,
    server_error,
)

_Proto = wire.ClientConnection[wire.MessageEvent]
_PUBLISH_CODES = ("E_PUB_FAILED", "E_MPUB_FAILED", "E_DPUB_FAILED", "E_BAD_TOPIC", "E_BAD_MESSAGE")


class SyncProducer:
    def __init__(
        self,
        address: str,
        *,
        codec: Codec = RAW,
        config: ConnectionConfig | None = None,
        timeout: float = 5.0,
        **options: Unpack[ConnectionOptions],
    ) -> None:
        self.address = address
        self.codec = codec
        self.config = with_options(config, options)
        self.timeout = timeout
        self.is_http = address.startswith("http://")
        self._host_port = parse_address(address, 4151 if self.is_http else 4150)
        self._tcp_conn: tuple[socket.socket, _Proto] | None = None
        self._http: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def publish(self, topic: str, body: Any) -> None:
        data = self.codec.encode(body)
        if self.is_http:
            self._http_pub(f"/pub?topic={quote(topic)}", data)
        else:
            self._tcp(lambda proto: proto.pub(topic, data))

    def multi_publish(self, topic: str, bodies: Iterable[Any]) -> None:
        encoded = [self.codec.encode(body) for body in bodies]
        if self.is_http:
            body = wire.encode_mpub_body(encoded)
            self._http_pub(f"/mpub?topic={quote(topic)}&binary=true", body)
        else:
            self._tcp(lambda proto: proto.mpub(topic, encoded))

    def deferred_publish(self, topic: str, body: Any, delay: float) -> None:
        data, delay_ms = self.codec.encode(body), int(delay * 1000)
        if self.is_http:
            self._http_pub(f"/pub?topic={quote(topic)}&defer={delay_ms}", data)
        else:
            self._tcp(lambda proto: proto.dpub(topic, delay_ms, data))

    # -- TCP -------------------------------------------------------------------------------

    def _tcp(self, command: Callable[[_Proto], None]) -> None:
        with self._lock:
            sock, proto = self._tcp_conn or self._connect()
            command(proto)
            try:
                reply = _next_reply(sock, proto)
            except OSError as exc:
                self._drop()
                raise NSQConnectionError(f"{self.address}: {exc}") from exc
            except ValueError as exc:
                self._drop()
                raise NSQProtocolError(f"{self.address}: {exc}") from exc
            except ServerError as exc:
                self._drop()  # nsqd closes the connection after a fatal error
                if exc.code in _PUBLISH_CODES:
                    raise PublishError(exc.code, exc.description) from None
                raise
            if not isinstance(reply, wire.Response) or reply.data != wire.OK:
                self._drop()
                raise NSQProtocolError(f"{self.address}: unexpected reply {reply!r}")

    def _connect(self) -> tuple[socket.socket, _Proto]:
        try:
            sock = socket.create_connection(self._host_port, timeout=self.config.connect_timeout)
        except OSError as exc:
            raise NSQConnectionError(f"cannot connect to {self.address}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.timeout)
        config = self.config
        proto = wire.ClientConnection(config.identify(), auth_secret=config.auth_secret)
        try:
            while isinstance(_next_reply(sock, proto), wire.UpgradeTLS):
                sock = self._start_tls(sock)
        except (OSError, ValueError, ServerError, wire.ProtocolError) as exc:
            sock.close()
            if isinstance(exc, AuthError):  # the secret is wrong: reconnecting will not help
                raise
            if isinstance(exc, wire.ProtocolError):  # nsqd wants AUTH and there is no secret
                raise server_error(exc.code, exc.description) from exc
            raise NSQConnectionError(f"{self.address}: negotiation failed: {exc}") from exc
        self._tcp_conn = sock, proto
        return sock, proto

    def _start_tls(self, sock: socket.socket) -> socket.socket:
        context = self.config.tls_context
        if context is None:  # the state machine only upgrades what IDENTIFY asked for
            raise ValueError("nsqd started TLS that was not asked for")
        hostname = self.config.tls_server_hostname or self._host_port[0]
        try:
            return context.wrap_socket(sock, server_hostname=hostname)
        except OSError:
            sock.close()
            raise

    def _drop(self) -> None:
        if self._tcp_conn is not None:
            self._tcp_conn[0].close()
            self._tcp_conn = None
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- HTTP ------------------------------------------------------------------------------

    def _http_pub(self, target: str, body: bytes) -> None:
        with self._lock:
            for attempt in (1, 2):
                reused = self._http is not None
                if self._http is None:
                    self._http = http.client.HTTPConnection(*self._host_port, timeout=self.timeout)
                try:
                    self._http.request("POST", target, body)
                    reply = self._http.getresponse()
                    data = reply.read()
                    break
                except (OSError, http.client.HTTPException) as exc:
                    self._drop()
                    if not reused or attempt == 2:
                        raise NSQConnectionError(f"{self.address}: {exc}") from exc
            if reply.status != 200:
                try:
                    code = str(json.loads(data)["message"])
                except (ValueError, KeyError, TypeError):
                    code = f"HTTP_{reply.status}"
                raise PublishError(code, f"HTTP {reply.status}")


def _next_reply(
    sock: socket.socket, proto: _Proto
) -> wire.Negotiated | wire.Response | wire.UpgradeTLS:
    """Send what the state machine queued, then read until nsqd answers (heartbeats are answered
    on the way); a fatal error frame raises ServerError, garbage ValueError."""
    while True:
        event = proto.next_event()
        if proto.pending_output:
            sock.sendall(proto.data_to_send())
        if isinstance(event, wire.NeedData):
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError("nsqd closed the connection")
            proto.receive_data(data)
        elif isinstance(event, wire.Negotiated | wire.Response | wire.UpgradeTLS):
            return event
        elif isinstance(event, wire.ErrorFrame) and event.fatal:
            raise server_error(event.error.code, event.error.description)
