"""SyncProducer: a blocking publisher on a plain socket, for scripts and threaded web apps.

One connection, opened on first use and reopened after it broke; a lock makes it safe to share
between threads (publishes are serialised). ``http://host:port`` publishes over HTTP instead.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from pnsq import wire

from ._address import parse_address
from ._conn import ConnectionConfig
from .codecs import RAW, Codec
from .errors import NSQConnectionError, NSQProtocolError, PublishError, ServerError

_PUBLISH_CODES = ("E_PUB_FAILED", "E_MPUB_FAILED", "E_DPUB_FAILED", "E_BAD_TOPIC", "E_BAD_MESSAGE")
_COUNT = struct.Struct(">I")


class SyncProducer:
    def __init__(
        self,
        address: str,
        *,
        codec: Codec = RAW,
        config: ConnectionConfig | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.address = address
        self.codec = codec
        self.config = config or ConnectionConfig()
        self.timeout = timeout
        self.is_http = address.startswith("http://")
        self._host_port = parse_address(address, 4151 if self.is_http else 4150)
        self._sock: socket.socket | None = None
        self._http: http.client.HTTPConnection | None = None
        self._frames = wire.FrameReader()
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
            self._tcp(wire.encode_pub(topic, data))

    def multi_publish(self, topic: str, bodies: Iterable[Any]) -> None:
        encoded = [self.codec.encode(body) for body in bodies]
        if self.is_http:
            parts = [_COUNT.pack(len(encoded))]
            for data in encoded:
                parts += (_COUNT.pack(len(data)), data)
            self._http_pub(f"/mpub?topic={quote(topic)}&binary=true", b"".join(parts))
        else:
            self._tcp(wire.encode_mpub(topic, encoded))

    def deferred_publish(self, topic: str, body: Any, delay: float) -> None:
        data, delay_ms = self.codec.encode(body), int(delay * 1000)
        if self.is_http:
            self._http_pub(f"/pub?topic={quote(topic)}&defer={delay_ms}", data)
        else:
            self._tcp(wire.encode_dpub(topic, delay_ms, data))

    # -- TCP -------------------------------------------------------------------------------

    def _tcp(self, command: bytes) -> None:
        with self._lock:
            sock = self._sock or self._connect()
            try:
                sock.sendall(command)
                reply = self._response(sock)
            except OSError as exc:
                self._drop()
                raise NSQConnectionError(f"{self.address}: {exc}") from exc
            except ServerError as exc:
                self._drop()  # nsqd closes the connection after a fatal error
                if exc.code in _PUBLISH_CODES:
                    raise PublishError(exc.code, exc.description) from None
                raise
            if reply != wire.OK:
                self._drop()
                raise NSQProtocolError(f"{self.address}: unexpected reply {reply!r}")

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection(self._host_port, timeout=self.config.connect_timeout)
        except OSError as exc:
            raise NSQConnectionError(f"cannot connect to {self.address}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.timeout)
        self._frames = wire.FrameReader()
        try:
            sock.sendall(wire.MAGIC_V2 + wire.encode_identify(self.config.identify()))
            self._response(sock)
        except (OSError, ServerError) as exc:
            sock.close()
            raise NSQConnectionError(f"{self.address}: negotiation failed: {exc}") from exc
        self._sock = sock
        return sock

    def _response(self, sock: socket.socket) -> bytes:
        """The next response frame, answering heartbeats on the way; an error frame raises."""
        frames = self._frames
        while True:
            try:
                frame = frames.next_frame()
            except ValueError as exc:
                raise NSQProtocolError(f"{self.address}: {exc}") from exc
            if frame is None:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionResetError("nsqd closed the connection")
                frames.receive_data(data)
                continue
            frame_type, data = frame
            if frame_type == wire.FRAME_TYPE_ERROR:
                error = wire.error_from_bytes(data)
                if error.fatal:
                    raise ServerError(error.code, error.description)
            elif data == wire.HEARTBEAT:
                sock.sendall(wire.encode_nop())
            elif frame_type == wire.FRAME_TYPE_RESPONSE:
                return data

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
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
