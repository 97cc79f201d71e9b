"""nsqd's lookupd link times out a lookupd that stops answering, and only that one.

A scripted lookupd on a real socket answers each command after a delay the test sets (or not at
all); time is trio's MockClock, so the 15 s PING and the 5 s reply timeout pass at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import trio
import trio.testing

from pnsq.nsqd.lookup import PING_INTERVAL, REPLY_TIMEOUT
from pnsq.wire.lookup import LookupCommandReader, LookupIdentify, encode_reply


class ScriptedLookupd:
    """Answers IDENTIFY at once and every later command after ``delay`` seconds (None: never)."""

    def __init__(self) -> None:
        self.delay: float | None = 0.0
        self.connections = 0
        self.commands: list[tuple[float, str]] = []

    async def serve(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        reader = LookupCommandReader()
        async with stream, trio.open_nursery() as nursery:
            async for data in stream:
                reader.receive_data(data)
                while (command := reader.next_command()) is not None:
                    self.commands.append((trio.current_time(), type(command).__name__))
                    if isinstance(command, LookupIdentify):
                        info = {"broadcast_address": "127.0.0.1", "http_port": 1, "tcp_port": 1}
                        await stream.send_all(encode_reply(json.dumps(info).encode()))
                    elif self.delay is not None:
                        nursery.start_soon(self._answer_later, stream, self.delay)
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _answer_later(stream: trio.SocketStream, delay: float) -> None:
        await trio.sleep(delay)
        await stream.send_all(encode_reply(b"OK"))


async def _run(
    nursery: trio.Nursery, make_nsqd: Callable[..., Any], script: ScriptedLookupd
) -> Any:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, script.serve, listeners)
    return await make_nsqd(nsqlookupd_tcp_addresses=(f"127.0.0.1:{port}",))


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():  # noqa: ASYNC110 - state another task changes; the clock jumps
        await trio.sleep(0.05)


async def test_a_slow_but_answering_lookupd_keeps_its_link_across_pings(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, make_nsqd: Callable[..., Any]
) -> None:
    script = ScriptedLookupd()
    script.delay = REPLY_TIMEOUT * 0.6  # every reply late, none later than the timeout
    nsqd = await _run(nursery, make_nsqd, script)
    await _until(lambda: script.connections == 1)
    started = trio.current_time()
    # a REGISTER just before each PING: unanswered at PING time, answered within the timeout
    for n in range(4):
        await trio.sleep_until(started + (n + 1) * PING_INTERVAL - 1.0)
        nsqd.get_topic(f"t{n}")
    await trio.sleep(PING_INTERVAL)
    assert script.connections == 1  # never dropped and re-dialled
    assert sum(name == "LookupPing" for _, name in script.commands) >= 4


async def test_a_lookupd_that_stops_answering_is_dropped_after_the_reply_timeout(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, make_nsqd: Callable[..., Any]
) -> None:
    script = ScriptedLookupd()
    nsqd = await _run(nursery, make_nsqd, script)
    await _until(lambda: script.connections == 1)
    await trio.sleep(1.0)
    script.delay = None  # silent from now on
    sent = trio.current_time()
    nsqd.get_topic("unanswered")
    await _until(lambda: script.connections == 2)  # dropped and dialled again
    waited = trio.current_time() - sent
    assert REPLY_TIMEOUT <= waited < REPLY_TIMEOUT + 1.0  # not at the next PING, 15 s on
