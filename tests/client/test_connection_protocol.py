"""Both clients (async Producer and blocking SyncProducer) against a scripted nsqd on a socket.

The scripted server answers each command with the frames a test chooses, which a real nsqd
cannot be made to send at will (AUTH required, a heartbeat in the middle of a publish, garbage).
It records every command it read, so a test can see what the client sent back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio

from pnsq.client import (
    ConnectionConfig,
    NSQConnectionError,
    NSQProtocolError,
    Producer,
    ServerError,
    SyncProducer,
)
from pnsq.wire import (
    HEARTBEAT_FRAME,
    OK_FRAME,
    Auth,
    Command,
    CommandReader,
    Identify,
    MPub,
    Nop,
    Pub,
    encode_response,
)

Script = Callable[[Command], bytes]
AUTH_REPLY = b'{"identity":"alice","identity_url":"","permission_count":1}'


class ScriptedNSQD:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.commands: list[Command] = []
        self._new_command = trio.Event()

    async def handle(self, stream: trio.SocketStream) -> None:
        reader = CommandReader()
        async with stream:
            while data := await stream.receive_some(65536):
                reader.receive_data(data)
                while (command := reader.next_command()) is not None:
                    self.commands.append(command)
                    self._new_command.set()
                    self._new_command = trio.Event()
                    if reply := self.script(command):
                        await stream.send_all(reply)

    def saw(self, kind: type) -> int:
        return sum(isinstance(c, kind) for c in self.commands)

    async def wait_for(self, kind: type) -> None:
        while not self.saw(kind):
            await self._new_command.wait()


@asynccontextmanager
async def scripted_nsqd(script: Script) -> AsyncIterator[tuple[ScriptedNSQD, str]]:
    server = ScriptedNSQD(script)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield server, f"127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


def auth_required(command: Command) -> bytes:
    match command:
        case Identify():
            return encode_response(b'{"auth_required":true,"max_rdy_count":2500}')
        case Auth(secret):
            return encode_response(AUTH_REPLY) if secret == b"s3cret" else b""
        case Pub() | MPub():
            return OK_FRAME
    return b""


SECRET = ConnectionConfig(auth_secret=b"s3cret")


async def test_async_producer_sends_auth_when_nsqd_requires_it() -> None:
    async with scripted_nsqd(auth_required) as (server, address):
        with trio.fail_after(10):
            async with Producer(address, config=SECRET) as p:
                await p.publish("t", b"x")
                await p.multi_publish("t", [b"a", b"b"])
    assert [type(c) for c in server.commands] == [Identify, Auth, Pub, MPub]
    assert server.commands[1] == Auth(b"s3cret")


async def test_sync_producer_sends_auth_when_nsqd_requires_it() -> None:
    async with scripted_nsqd(auth_required) as (server, address):

        def work() -> None:
            with SyncProducer(address, config=SECRET) as p:
                p.publish("t", b"x")

        with trio.fail_after(10):
            await trio.to_thread.run_sync(work)
    assert server.commands[1:] == [Auth(b"s3cret"), Pub("t", b"x")]


async def test_producer_without_a_secret_to_an_auth_nsqd_is_told_to_auth_first() -> None:
    async with scripted_nsqd(auth_required) as (server, address):
        with trio.fail_after(10):
            async with Producer(address) as p:
                with pytest.raises(ServerError) as info:
                    await p.publish("t", b"x")
    assert info.value.code == "E_AUTH_FIRST"
    assert server.saw(Pub) == 0


def heartbeat_before_ok(command: Command) -> bytes:
    if isinstance(command, Identify):
        return OK_FRAME
    return HEARTBEAT_FRAME + OK_FRAME if isinstance(command, Pub) else b""


async def test_async_producer_answers_a_heartbeat_with_nop() -> None:
    async with scripted_nsqd(heartbeat_before_ok) as (server, address):
        with trio.fail_after(10):
            async with Producer(address) as p:
                await p.publish("t", b"x")
                await server.wait_for(Nop)  # the NOP goes out with the writer's next send
    assert [type(c) for c in server.commands] == [Identify, Pub, Nop]


async def test_sync_producer_answers_a_heartbeat_with_nop() -> None:
    async with scripted_nsqd(heartbeat_before_ok) as (server, address):

        def work() -> None:
            with SyncProducer(address) as p:
                p.publish("t", b"x")
                p.publish("t", b"y")

        with trio.fail_after(10):
            await trio.to_thread.run_sync(work)
    assert [type(c) for c in server.commands] == [Identify, Pub, Nop, Pub, Nop]


def garbage_after_pub(command: Command) -> bytes:
    if isinstance(command, Identify):
        return OK_FRAME
    return b"\x00\x00\x00\x00\x00\x00\x00\x00" if isinstance(command, Pub) else b""


async def test_garbage_frames_fail_the_publish_of_either_client() -> None:
    async with scripted_nsqd(garbage_after_pub) as (_, address):
        with trio.fail_after(10):
            async with Producer(address) as p:
                with pytest.raises(NSQConnectionError):
                    await p.publish("t", b"x")

        def work() -> None:
            with SyncProducer(address) as p, pytest.raises(NSQProtocolError, match="frame size"):
                p.publish("t", b"x")

        with trio.fail_after(10):
            await trio.to_thread.run_sync(work)
