"""The nsqlookupd daemon: nsqd peers register over TCP, consumers look topics up over HTTP.

One task per TCP peer. A peer that closes its link has every registration removed at once; a
hung one (its link open, its PINGs stopped) is only hidden from /lookup and /nodes once it has
been silent for ``--inactive-producer-timeout`` (B.10). Every error on the TCP port is fatal
for that connection alone: lookupd sends it and closes. Lookupds never talk to each other.
"""

from __future__ import annotations

import json
import logging
import socket
from functools import partial
from typing import TYPE_CHECKING

import trio

from .. import NSQ_VERSION
from .._internal.connection import serve_connection
from .._internal.daemon import bound_address, listen
from ..wire.errors import InvalidError, ProtocolError
from ..wire.lookup import (
    LookupCommandReader,
    LookupIdentify,
    LookupPing,
    Register,
    Unregister,
    encode_reply,
)
from .http_api import handle_http_connection
from .options import LookupdOptions
from .registration_db import Peer, RegistrationDB

if TYPE_CHECKING:
    from .._internal.prometheus import Exposition

log = logging.getLogger("pnsq.lookupd")

RECEIVE_SIZE = 16 * 1024
LINGER_TIME = 0.5
LINGER_BYTES = 256 * 1024


class Lookupd:
    def __init__(self, options: LookupdOptions) -> None:
        self.options = options
        self.db = RegistrationDB()
        self.tcp_address: tuple[str, int] | None = None
        self.http_address: tuple[str, int] | None = None
        self._stop = trio.Event()
        self._identify_reply = b""  # known once the listeners are bound
        self.exposition: Exposition | None = None  # GET /metrics: made by the first scrape

    @staticmethod
    def now() -> float:
        """The clock of last-seen times and tombstones (trio's; virtual under a test clock)."""
        return trio.current_time()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on the TCP and HTTP addresses until ``stop()``."""
        tcp = await listen(self.options.tcp_address)
        http = await listen(self.options.http_address)
        self.tcp_address, self.http_address = bound_address(tcp), bound_address(http)
        self._identify_reply = json.dumps(
            {
                "tcp_port": self.tcp_address[1],
                "http_port": self.http_address[1],
                "version": NSQ_VERSION,
                "broadcast_address": self.options.broadcast_address,
                "hostname": socket.gethostname(),
            },
            separators=(",", ":"),
        ).encode()
        log.info("TCP: listening on %s:%d", *self.tcp_address)
        log.info("HTTP: listening on %s:%d", *self.http_address)
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as listeners:
                listeners.start_soon(
                    partial(
                        trio.serve_listeners,
                        self._handle_tcp,
                        tcp,
                        handler_nursery=connections,
                    )
                )
                listeners.start_soon(
                    partial(
                        trio.serve_listeners,
                        partial(handle_http_connection, self),
                        http,
                        handler_nursery=connections,
                    )
                )
                task_status.started()
                await self._stop.wait()
                listeners.cancel_scope.cancel()
            connections.cancel_scope.cancel()
        for listener in tcp + http:
            await listener.aclose()
        log.info("stopped")

    def stop(self) -> None:
        self._stop.set()

    # -- one nsqd peer --------------------------------------------------------------------------

    async def _handle_tcp(self, stream: trio.SocketStream) -> None:
        try:
            host, port = stream.socket.getpeername()[:2]
        except OSError:
            return
        remote = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        log.info("TCP: new client(%s)", remote)
        peer_box: list[Peer] = []
        try:
            await serve_connection(
                stream, partial(self._serve_peer, stream, remote, peer_box), log, remote
            )
        finally:
            if peer_box:
                log.info("DB: client(%s) UNREGISTER all", remote)
                self.db.remove_peer(peer_box[0])
            log.info("TCP: client(%s) closed", remote)

    async def _serve_peer(self, stream: trio.SocketStream, remote: str, box: list[Peer]) -> None:
        reader = LookupCommandReader()
        while True:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                return
            reader.receive_data(data)
            out = bytearray()
            try:
                while (command := reader.next_command()) is not None:
                    out += encode_reply(self._execute(command, remote, box))
            except ProtocolError as err:
                log.error(
                    "LOOKUP: client(%s) - %s", remote, err.to_bytes().decode(errors="replace")
                )
                out += encode_reply(err.to_bytes())
                await stream.send_all(out)
                await _linger(stream)
                return
            if out:
                await stream.send_all(out)

    def _execute(
        self,
        command: LookupIdentify | Register | Unregister | LookupPing,
        remote: str,
        box: list[Peer],
    ) -> bytes:
        now = self.now()
        peer = box[0] if box else None
        if isinstance(command, LookupPing):
            if peer is not None:
                peer.last_update = now
            return b"OK"
        if isinstance(command, LookupIdentify):
            info = {"remote_address": remote, **command.peer}
            peer = Peer(remote, info, now)
            box.append(peer)
            self.db.add_peer(peer)
            log.info("CLIENT(%s): IDENTIFY %s", remote, command.peer)
            return self._identify_reply
        if peer is None:  # the reader refuses this already
            raise InvalidError("client must IDENTIFY")
        channel = command.channel
        what = f"topic:{command.topic}" + (f" channel:{channel}" if channel else "")
        if isinstance(command, Register):
            self.db.register(peer, command.topic, channel)
            log.info("DB: client(%s) REGISTER %s", remote, what)
        else:
            self.db.unregister(peer, command.topic, channel)
            log.info("DB: client(%s) UNREGISTER %s", remote, what)
        return b"OK"


async def _linger(stream: trio.SocketStream) -> None:
    """Half-close and drop input for a moment: closing with unread input would reset the
    connection and could destroy the error reply before the peer reads it."""
    await stream.send_eof()
    with trio.move_on_after(LINGER_TIME):
        received = 0
        while received < LINGER_BYTES:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                break
            received += len(data)
