"""Serving one TCP client with protocol V2: a reader task and a writer task.

The reader parses every complete command of a socket read, acts on each, and sends what that
produced in one write: itself on a plain socket while the writer is parked (``plain_socket``),
otherwise by waking the writer. The writer sends everything else that accumulates (messages
published by other connections) in one ``send_all``, owns the heartbeat ticker, and closes a
client that sent nothing for two heartbeat intervals (NSQ's read deadline). A fatal error is queued behind the output already there, flushed, and the connection
closed. A bug while serving a client is logged with its traceback and closes that connection
only. A client that stops reading: the reader stops reading from it once its output passes
a high-water mark, and a write stalled for a heartbeat interval closes the connection (NSQ's
write deadline), so memory per connection stays bounded.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from .. import NSQ_VERSION
from .._internal.connection import serve_connection
from ..wire import commands as cmd
from ..wire.errors import (
    AuthDisabledError,
    AuthFailedError,
    AuthFirstError,
    BadBodyError,
    BadMessageError,
    DPubFailedError,
    InvalidError,
    MPubFailedError,
    ProtocolError,
    PubFailedError,
    SubFailedError,
    UnauthorizedError,
)
from ..wire.frames import (
    CLOSE_WAIT,
    FRAME_TYPE_ERROR,
    FRAME_TYPE_RESPONSE,
    HEARTBEAT_FRAME,
    OK,
    OK_FRAME,
)
from ..wire.server import ClientState
from .auth import AuthQueryError
from .client_v2 import ClientV2
from .compression import CompressionError
from .plain_socket import RECEIVE_SIZE, plain_socket
from .topic import PutError
from .upgrade import Upgrade, negotiate, perform

if TYPE_CHECKING:
    from .broker import Broker
    from .disk import Round

log = logging.getLogger("pnsq.nsqd")

HIGH_WATER = 4 * 1024 * 1024  # stop reading a client whose unsent output passes this


class _AskAuthd(Exception):  # noqa: N818 -- control flow, not an error
    """A command waits for the auth server: the reader asks it, then resumes the command."""

    def __init__(self, command: cmd.Command) -> None:
        self.command = command


class ConnectionV2:
    def __init__(self, nsqd: Broker, client: ClientV2, stream: trio.abc.Stream) -> None:
        self.nsqd = nsqd
        self.client = client
        self.stream = stream
        self.closing = False  # flush what is queued, then close
        self._drained = trio.lowlevel.ParkingLot()
        self._dispatch = False
        self._commit: Round | None = None  # durable mode: the disk round this read needs
        self._held: Round | None = None  # ...and the round whose end releases its answers
        self._waiting: cmd.Command | None = None  # held until the auth server answers
        self._resumed: cmd.Command | None = None
        self._auth_on = nsqd.auth is not None  # read on every PUB: one attribute, no call
        self._handlers: dict[type, Callable[[Any, float], None]] = {
            cmd.Fin: self._fin,
            cmd.Rdy: self._rdy,
            cmd.Req: self._req,
            cmd.Pub: self._pub,
            cmd.MPub: self._mpub,
            cmd.DPub: self._dpub,
            cmd.Nop: self._nop,
            cmd.Touch: self._touch,
            cmd.Sub: self._sub,
            cmd.Cls: self._cls,
            cmd.Auth: self._auth,
            cmd.Identify: self._identify,
        }
        self._upgrade: Upgrade | None = None  # agreed in IDENTIFY, done by the writer
        self._upgraded: trio.Event | None = None
        self.read_deadline = math.inf  # while the reader waits for data (kept by the writer)
        self._writer_idle = False  # parked with nothing half sent: the reader may write
        self._sock = plain_socket(stream)  # None: TLS, compression (trio reads those)
        if nsqd.tls_required != "false":
            client.reader.require_tls()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self.client.cancel_scope = nursery.cancel_scope
            nursery.start_soon(self._write_loop)
            await self._read_loop()
            await self._settle()  # answers held for the disk go out before the close
            self.closing = True
            self.client.wake()

    # -- reading --------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        client = self.client
        while True:
            if not await self._receive() or (self._held is not None and not await self._settle()):
                return
            mark = len(client.out)
            ok = self._process()
            while ok and self._waiting is not None:
                if self._commit is not None:
                    self._hold(mark)
                    if not await self._settle():
                        return
                mark = len(client.out)
                ok = await self._ask_authd()
            if self._commit is not None:
                self._hold(mark)
            self._flush()
            if not ok:
                return
            if self._upgraded is not None:
                await self._upgraded.wait()  # the writer swaps the stream
                self._upgraded = None
            while len(client.out) > HIGH_WATER:
                await self._drained.park()

    async def _receive(self) -> bool:
        """Feed the client's next bytes to its command reader; False once it has gone.

        NSQ's read timeout (twice the heartbeat interval) is kept by the writer, which wakes
        at ``read_deadline``; it is set only while this waits for data, so no read needs a
        cancel scope of its own.
        """
        sock, reader = self._sock, self.client.reader
        if sock is not None and sock.more:
            got = sock.read_into(reader)
            if got is not None:
                await trio.lowlevel.checkpoint()  # a client that never pauses yields now and then
                return got
        interval = self.client.heartbeat_interval
        self.read_deadline = trio.current_time() + 2 * interval if interval > 0 else math.inf
        try:
            if sock is None:
                data = await self.stream.receive_some(RECEIVE_SIZE)
                reader.receive_data(data)
                return bool(data)
            while True:
                await trio.lowlevel.wait_readable(sock.fd)  # /debug/tasks shows it here
                got = sock.read_into(reader)
                if got is not None:
                    return got
        except CompressionError as err:
            log.error("[%s] - failed to read command - %s", self.client.remote_address, err)
            return False
        finally:
            self.read_deadline = math.inf

    def _flush(self) -> None:
        """Send what this read produced (answers, messages after FINs) without the writer.

        On a plain socket with the writer parked (so nothing is half sent) and no upgrade
        pending, one direct write; what the socket does not take, and any other case, is the
        writer's. This saves a task switch and trio's ``send_all`` on every read.
        """
        out, sock = self.client.out, self._sock
        if not out:
            return
        if sock is not None and self._writer_idle and self._upgrade is None and not self.closing:
            sent = sock.write(out)
            if sent == len(out):
                out.clear()
                return
            del out[:sent]
        self.client.wake()

    def _hold(self, mark: int) -> None:
        """Durable mode: this read's answers wait for the disk round carrying its records.

        One round (one fsync per file) covers every publish waiting for it, from every
        connection; its end releases the answers (``_release``, in the disk task). The reader
        reads on meanwhile, and settles the round before acting on the next read, so answers
        stay in order.
        """
        client = self.client
        commit, self._commit = self._commit, None
        assert commit is not None
        held = bytes(client.out[mark:])
        del client.out[mark:]
        self._held = commit
        commit.on_done.append(lambda ok: self._release(held, ok))

    async def _settle(self) -> bool:
        """Wait for the round holding the last answers; False if it failed (closing then)."""
        commit, self._held = self._held, None
        if commit is None:
            return True
        if not commit.done.is_set():  # usually it is: the publisher waited for its OK
            await commit.done.wait()
        return commit.ok

    def _release(self, held: bytes, ok: bool) -> None:
        """The disk round ended: the held answers, or E_PUB_FAILED and close if it failed.

        ``_flush`` sends them: one direct write while the writer is parked, else the writer.
        """
        client = self.client
        if not ok:
            self._fatal(PubFailedError(f"PUB failed {self.nsqd.health}"))
            self.closing = True
            client.wake()
            return
        client.out += held
        self._flush()

    def _process(self, resume: cmd.Command | None = None) -> bool:
        """Act on every complete command; False once a fatal error has been queued.

        A command that needs the auth server stops the loop (``_waiting``); the reader asks
        it and calls this again with that command as ``resume``.
        """
        client = self.client
        reader, handlers = client.reader, self._handlers
        now = trio.current_time()
        try:
            if resume is not None:
                self._resume(resume, now)
            while (command := reader.next_command()) is not None:
                try:
                    handlers[type(command)](command, now)
                except ProtocolError as err:
                    if err.fatal:
                        raise
                    self._nonfatal(err)
        except _AskAuthd as ask:
            self._waiting = ask.command
        except ProtocolError as err:
            self._fatal(err)
            return False
        except _UpgradeNow:
            pass  # the rest waits for the new stream
        finally:
            if self._dispatch:
                self._dispatch = False
                if client.channel is not None:
                    client.channel.dispatch(now)
        return True

    def _nonfatal(self, err: ProtocolError) -> None:
        """E_FIN_FAILED and its kind: told to the client, which stays connected."""
        log.error(
            "[%s] - %s", self.client.remote_address, err.to_bytes().decode("utf-8", "replace")
        )
        self.client.send_frame(FRAME_TYPE_ERROR, err.to_bytes())

    def _fatal(self, err: ProtocolError) -> None:
        reader = self.client.reader
        if (
            isinstance(err, BadBodyError | BadMessageError)
            and reader.pending_topic
            and not self.nsqd.draining  # no new topic then
        ):
            self.nsqd.get_topic(reader.pending_topic)  # NSQ creates the topic before the body
        log.error(
            "[%s] - %s", self.client.remote_address, err.to_bytes().decode("utf-8", "replace")
        )
        self.client.send_frame(FRAME_TYPE_ERROR, err.to_bytes())

    # -- writing --------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        client, stream = self.client, self.stream
        interval = client.heartbeat_interval
        next_heartbeat = trio.current_time() + interval if interval > 0 else math.inf
        while True:
            if not client.out and not self.closing:
                self._writer_idle = True
                with trio.move_on_at(min(next_heartbeat, self.read_deadline)):
                    await client.wait_output()
                self._writer_idle = False
            now = trio.current_time()
            if now >= self.read_deadline:
                log.info(
                    "[%s] read timeout: no command in %.1fs", client.remote_address, 2 * interval
                )
                break
            if client.heartbeat_interval != interval:  # IDENTIFY changed it: restart the ticker
                interval = client.heartbeat_interval
                next_heartbeat = now + interval if interval > 0 else math.inf
            elif now >= next_heartbeat:
                client.out += HEARTBEAT_FRAME
                next_heartbeat += interval
            if client.out:
                data, client.out = client.out, bytearray()
                with trio.move_on_after(interval if interval > 0 else math.inf) as scope:
                    await stream.send_all(data)
                if scope.cancelled_caught:
                    log.info("[%s] write timeout: client not reading", client.remote_address)
                    break
                self._drained.unpark_all()
                if self._upgrade is not None:
                    if not await self._do_upgrade():
                        break
                    stream = self.stream
            elif self.closing:
                break
        client.kick()

    async def _do_upgrade(self) -> bool:
        """The writer's part of IDENTIFY's upgrades; False (error queued, sent) if one failed."""
        upgrade, self._upgrade = self._upgrade, None
        assert upgrade is not None
        assert self._upgraded is not None
        client = self.client
        self._sock = None  # from now on the stream wraps the socket
        if client.out:  # the IDENTIFY response, plain
            data, client.out = client.out, bytearray()
            await self.stream.send_all(data)
        try:
            self.stream = await perform(
                upgrade, self.stream, client, self.nsqd.tls_context, client.reader.take_buffered()
            )
        except ProtocolError as err:
            self._fatal(err)
            with trio.move_on_after(1):
                await self.stream.send_all(client.out)
            client.out.clear()
            return False
        if upgrade.tls:
            client.reader.require_tls(False)
        self._upgraded.set()
        return True

    # -- commands -------------------------------------------------------------------------

    def _respond(self, data: bytes) -> None:
        if data is OK:
            self.client.out += OK_FRAME
        else:
            self.client.send_frame(FRAME_TYPE_RESPONSE, data)

    def _identify(self, command: cmd.Identify, now: float) -> None:
        client, options = self.client, self.nsqd.options
        try:
            data = json.loads(command.body)
        except (ValueError, UnicodeDecodeError):
            raise BadBodyError("IDENTIFY failed to decode JSON body") from None
        fields = client.identify(data, options)
        client.wake()  # the writer restarts its heartbeat ticker at the new interval
        if not fields["feature_negotiation"]:
            self._respond(OK)
            return
        upgrade = negotiate(fields, options, self.nsqd.tls_context is not None)
        response = {
            "max_rdy_count": options.max_rdy_count,
            "version": NSQ_VERSION,
            "max_msg_timeout": int(options.max_msg_timeout * 1000),
            "msg_timeout": int(client.msg_timeout * 1000),
            "tls_v1": upgrade.tls,
            "deflate": upgrade.deflate,
            "deflate_level": upgrade.deflate_level,
            "max_deflate_level": options.max_deflate_level,
            "snappy": upgrade.snappy,
            "sample_rate": client.sample_rate,
            "auth_required": bool(options.auth_http_addresses),
            "output_buffer_size": client.output_buffer_size,
            "output_buffer_timeout": int(client.output_buffer_timeout * 1000),
            "topology_zone": options.topology_zone,
            "topology_region": options.topology_region,
        }
        self._respond(json.dumps(response, separators=(",", ":")).encode())
        if upgrade.any:
            self._upgrade, self._upgraded = upgrade, trio.Event()
            raise _UpgradeNow

    # -- AUTH (reference 1.7) ---------------------------------------------------------------

    def _auth(self, command: cmd.Auth, now: float) -> None:
        if self.client.authed:
            raise InvalidError("AUTH already set")
        if self.nsqd.auth is None:
            raise AuthDisabledError("AUTH disabled")
        self.client.auth_secret = command.secret
        raise _AskAuthd(command)

    def _check_auth(
        self, name: str, topic: str, channel: str, now: float, command: cmd.Command
    ) -> None:
        """NSQ's CheckAuth: authed, the answer still fresh (else ask again), and allowed."""
        state = self.client.auth_state
        if command is not self._resumed:  # a resumed command was asked about just now
            if state is None or not state.authorizations:
                raise AuthFirstError(f"AUTH required before {name}")
            if state.expired(now):
                raise _AskAuthd(command)
        if state is None or not state.allows(topic, channel):
            raise UnauthorizedError(f'AUTH failed for {name} on "{topic}" "{channel}"')

    async def _ask_authd(self) -> bool:
        """Ask the auth servers for the waiting command, then carry on with this read."""
        command, self._waiting = self._waiting, None
        assert command is not None
        assert self.nsqd.auth is not None
        client = self.client
        tls, common_name = client.tls is not None, client.tls_common_name
        try:
            client.auth_state = await self.nsqd.auth.query(
                client.remote_address.rpartition(":")[0].strip("[]"),
                tls,
                common_name,
                client.auth_secret,
            )
        except AuthQueryError as err:
            # the auth server's trouble is logged here, never told to an untrusted client
            log.warning("[%s] AUTH failed %s", client.remote_address, err)
            self._fatal(AuthFailedError("AUTH failed"))
            client.wake()
            return False
        return self._process(command)

    def _resume(self, command: cmd.Command, now: float) -> None:
        self._resumed = command
        try:
            if isinstance(command, cmd.Auth):
                self._auth_reply()
            else:
                self._handlers[type(command)](command, now)
        finally:
            self._resumed = None

    def _auth_reply(self) -> None:
        state = self.client.auth_state
        if state is None or not state.authorizations:
            raise UnauthorizedError("AUTH no authorizations found")
        reply = {
            "identity": state.identity,
            "identity_url": state.identity_url,
            "permission_count": len(state.authorizations),
        }
        self._respond(json.dumps(reply, separators=(",", ":")).encode())

    # -- SUB, PUB ---------------------------------------------------------------------------

    def _sub(self, command: cmd.Sub, now: float) -> None:
        client = self.client
        if self._auth_on:
            self._check_auth("SUB", command.topic, command.channel, now, command)
        if self.nsqd.draining:
            raise SubFailedError("SUB failed nsqd draining")
        topic = self.nsqd.get_topic(command.topic)
        channel = topic.get_channel(command.channel, now)
        channel.add_client(client)
        client.reader.state = ClientState.SUBSCRIBED
        client.channel = channel
        self._respond(OK)

    def _publish(self, topic_name: str, bodies: list[bytes], now: float, delay: float) -> None:
        topic = self.nsqd.get_topic(topic_name)
        topic.put(bodies, now, time.time_ns(), delay)
        if self.nsqd.disk.durable and not topic.ephemeral:
            self._commit = self.nsqd.disk.ticket()
        counts = self.client.pub_counts
        counts[topic_name] = counts.get(topic_name, 0) + len(bodies)
        self.client.out += OK_FRAME

    def _pub(self, command: cmd.Pub, now: float) -> None:
        if self._auth_on:
            self._check_auth("PUB", command.topic, "", now, command)
        try:
            self._publish(command.topic, [command.body], now, 0.0)
        except PutError as err:
            raise PubFailedError(f"PUB failed {err}") from None

    def _mpub(self, command: cmd.MPub, now: float) -> None:
        if self._auth_on:
            self._check_auth("MPUB", command.topic, "", now, command)
        try:
            self._publish(command.topic, command.bodies, now, 0.0)
        except PutError as err:
            raise MPubFailedError(f"MPUB failed {err}") from None

    def _dpub(self, command: cmd.DPub, now: float) -> None:
        if self._auth_on:
            self._check_auth("DPUB", command.topic, "", now, command)
        try:
            self._publish(command.topic, [command.body], now, command.delay_ms / 1000)
        except PutError as err:
            raise DPubFailedError(f"DPUB failed {err}") from None

    def _rdy(self, command: cmd.Rdy, now: float) -> None:
        self.client.ready_count = command.count
        self._dispatch = True

    def _fin(self, command: cmd.Fin, now: float) -> None:
        client = self.client
        channel = client.channel
        assert channel is not None  # the reader only lets FIN through once subscribed
        self._dispatch = True
        channel.finish(client, command.id, now)
        # A consumer FINs in runs: the rest of this one at once, without a command each.
        for err in channel.finish_many(client, client.reader.take_fins(), now):
            self._nonfatal(err)

    def _req(self, command: cmd.Req, now: float) -> None:
        channel = self.client.channel
        assert channel is not None
        channel.requeue(self.client, command.id, command.timeout_ms / 1000, now)
        self._dispatch = True

    def _touch(self, command: cmd.Touch, now: float) -> None:
        channel = self.client.channel
        assert channel is not None
        channel.touch(self.client, command.id, now)

    def _cls(self, command: cmd.Cls, now: float) -> None:
        self.client.ready_count = 0
        self._respond(CLOSE_WAIT)

    def _nop(self, command: cmd.Nop, now: float) -> None:
        pass


class _UpgradeNow(Exception):  # noqa: N818 -- a signal, not an error
    """Raised by IDENTIFY to stop reading commands until the stream is upgraded."""


async def handle_connection(nsqd: Broker, stream: trio.SocketStream) -> None:
    """Serve one TCP client until it goes away; never raises."""
    try:
        address = stream.socket.getpeername()
    except OSError:
        return
    client = nsqd.add_client(address)
    try:
        await serve_connection(
            stream, ConnectionV2(nsqd, client, stream).run, log, client.remote_address
        )
    finally:
        nsqd.remove_client(client)
