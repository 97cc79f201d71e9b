"""Consumer: reads a topic's channel from every nsqd that has it, with go-nsq's flow control.

Shape: one task per wanted nsqd address (connect with backoff, SUB, run the connection, repeat
while the address is wanted), an optional lookupd poller that changes the wanted set, a ticker
for RDY rotation and backoff windows, and a small pool of handler workers. The connection's
reader appends each read's messages to one deque; workers pop and handle them. A worker is added
only when a message is taken while no other worker is idle, so a trivial handler runs on one or
two workers and slow handlers grow the pool up to ``concurrency`` -- never a task per message.
Plain ``def`` handlers run in worker threads (bounded by ``concurrency``).
"""

from __future__ import annotations

import inspect
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, Unpack

import anyio
import anyio.abc
import anyio.to_thread

from pnsq import wire

from ._address import parse_address
from ._conn import Connection
from .codecs import RAW, Codec
from .config import ConnectionConfig, ConnectionOptions, with_options
from .errors import NSQError
from .lookup import Lookupd
from .message import FINISHED, REQUEUED, Message
from .middleware import AsyncHandler, Middleware, compose
from .rdy import ReadyPlanner

log = logging.getLogger("pnsq.client")

Handler = Callable[[Message], Awaitable[None]] | Callable[[Message], None]
GiveUpHook = Callable[[Message], Awaitable[None]] | Callable[[Message], None]


@dataclass(frozen=True)
class ConsumerStats:
    received: int
    finished: int
    requeued: int
    connections: int
    backoff_level: int


class Consumer:
    """Consume ``topic``/``channel`` with ``handler``: return -> FIN, raise -> REQ + backoff.

    Run with ``await consumer.run()`` (until cancelled or ``await consumer.close()``) or as
    ``async with consumer:`` (runs in the background, closes gracefully on exit).
    """

    def __init__(
        self,
        topic: str,
        channel: str,
        handler: Handler,
        *,
        lookupd_http_addresses: Iterable[str] = (),
        nsqd_tcp_addresses: Iterable[str] = (),
        max_in_flight: int = 1,
        max_attempts: int = 5,
        on_give_up: GiveUpHook | None = None,
        requeue_delay: float = 90.0,
        max_requeue_delay: float = 900.0,
        backoff_multiplier: float = 1.0,
        max_backoff_duration: float = 120.0,
        lookupd_poll_interval: float = 60.0,
        lookupd_poll_jitter: float = 0.3,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 15.0,
        low_rdy_idle_timeout: float = 10.0,
        low_rdy_timeout: float = 30.0,
        rdy_redistribute_interval: float = 5.0,
        auto_touch: bool = False,
        close_timeout: float = 30.0,
        concurrency: int | None = None,
        codec: Codec = RAW,
        middleware: Sequence[Middleware] = (),
        config: ConnectionConfig | None = None,
        **options: Unpack[ConnectionOptions],
    ) -> None:
        if not wire.is_valid_topic_name(topic) or not wire.is_valid_channel_name(channel):
            raise ValueError(f"invalid topic/channel name {topic!r}/{channel!r}")
        self.lookupd_http_addresses = list(lookupd_http_addresses)
        self.nsqd_tcp_addresses = list(nsqd_tcp_addresses)
        if not self.lookupd_http_addresses and not self.nsqd_tcp_addresses:
            raise ValueError("give lookupd_http_addresses and/or nsqd_tcp_addresses")
        self.topic, self.channel = topic, channel
        self.max_attempts, self.on_give_up = max_attempts, on_give_up
        self.requeue_delay, self.max_requeue_delay = requeue_delay, max_requeue_delay
        self.lookupd_poll_interval, self.lookupd_poll_jitter = (
            lookupd_poll_interval,
            lookupd_poll_jitter,
        )
        self.reconnect_delay, self.max_reconnect_delay = reconnect_delay, max_reconnect_delay
        self.rdy_redistribute_interval = rdy_redistribute_interval
        self.auto_touch, self.close_timeout, self.codec = auto_touch, close_timeout, codec
        self.config = with_options(config, options)
        self.concurrency = concurrency or max(1, min(max_in_flight, 2500))
        self.planner: ReadyPlanner[Connection] = ReadyPlanner(
            max_in_flight,
            backoff_multiplier=backoff_multiplier,
            max_backoff_duration=max_backoff_duration,
            low_rdy_idle_timeout=low_rdy_idle_timeout,
            low_rdy_timeout=low_rdy_timeout,
        )
        self._call = compose(self._wrap(handler), middleware)
        self.connections: set[Connection] = set()
        self._pending: deque[Message] = deque()
        self._workers = self._idle = 0
        self._work = anyio.Event()
        self._ticker_wake = anyio.Event()
        self._repoll = anyio.Event()
        self._closing = anyio.Event()
        self._drained = anyio.Event()
        self._stopped = anyio.Event()
        self._connectors: dict[tuple[str, int], anyio.CancelScope] = {}
        self._serving: dict[tuple[str, int], anyio.CancelScope] = {}  # connected now
        self._tg: anyio.abc.TaskGroup | None = None
        self._outer: anyio.abc.TaskGroup | None = None
        self._touching: dict[bytes, tuple[Message, float]] = {}
        self._received = self._finished = self._requeued = 0

    def _wrap(self, handler: Handler) -> AsyncHandler:
        if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
        ):
            return handler  # type: ignore[return-value]
        self._limiter = anyio.CapacityLimiter(self.concurrency)

        async def in_thread(message: Message) -> None:
            await anyio.to_thread.run_sync(handler, message, limiter=self._limiter)

        return in_thread

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._outer = anyio.create_task_group()
        await self._outer.__aenter__()
        self._outer.start_soon(self.run)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._outer is not None
        if et is None:
            await self.close()
        else:
            self._outer.cancel_scope.cancel()
        # The body's own exception is not handed to the task group: under trio it would come
        # out wrapped in an ExceptionGroup, and `except PublishError` around `async with`
        # would miss it. It propagates as raised; the group's own failures still do.
        await self._outer.__aexit__(None, None, None)
        return None

    async def run(self) -> None:
        """Consume until cancelled or closed."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for address in self.nsqd_tcp_addresses:
                    self._want(parse_address(address, 4150))
                if self.lookupd_http_addresses:
                    tg.start_soon(self._discover)
                tg.start_soon(self._ticker)
                if self.auto_touch:
                    tg.start_soon(self._toucher)
                await self._closing.wait()
                await self._drain()
                tg.cancel_scope.cancel()
        finally:
            self._stopped.set()

    async def close(self) -> None:
        """Graceful stop: CLS to every nsqd, wait for in-flight handlers (``close_timeout``),
        send their FIN/REQ, then close the connections."""
        self._closing.set()
        if self._tg is not None:
            await self._stopped.wait()

    def set_max_in_flight(self, max_in_flight: int) -> None:
        """Change the total RDY (0 pauses the consumer)."""
        self._apply(self.planner.set_max_in_flight(max_in_flight, anyio.current_time()))

    def is_starved(self) -> bool:
        return self.planner.is_starved()

    def stats(self) -> ConsumerStats:
        return ConsumerStats(
            self._received,
            self._finished,
            self._requeued,
            len(self.connections),
            self.planner.backoff_level,
        )

    async def _drain(self) -> None:
        with anyio.move_on_after(self.close_timeout):
            # nsqd answers CLS after the last message it sent: only then is in-flight final
            # (go-nsq waits for CLOSE_WAIT too); messages still on the wire would be left to
            # time out at nsqd if we stopped counting at the first moment in-flight hit zero.
            async with anyio.create_task_group() as tg:
                for conn in list(self.connections):
                    tg.start_soon(self._close_wait, conn)
            while self._in_flight():
                self._drained = anyio.Event()
                await self._drained.wait()
        for conn in list(self.connections):
            with anyio.move_on_after(1.0):
                await conn.wait_flushed()

    @staticmethod
    async def _close_wait(conn: Connection) -> None:
        try:
            await conn.close_wait()
        except NSQError:
            pass  # the connection is gone: nothing more can arrive on it

    def _in_flight(self) -> int:
        return sum(conn.in_flight for conn in self.connections)

    # -- connections -------------------------------------------------------------------------

    def _want(self, address: tuple[str, int]) -> None:
        if address in self._serving:  # listed again while still connected: keep that one
            self._connectors[address] = self._serving[address]
        elif address not in self._connectors and self._tg is not None:
            scope = self._connectors[address] = anyio.CancelScope()
            self._tg.start_soon(self._connector, address, scope)

    def _unwant(self, address: tuple[str, int]) -> None:
        """lookupd no longer lists it: stop dialling it, but a live connection is served until
        nsqd closes it (go-nsq never drops one either): a draining nsqd unregisters first and
        still hands its backlog to the consumers it has."""
        scope = self._connectors.pop(address, None)
        if scope is not None and address not in self._serving:
            scope.cancel()

    async def _connector(self, address: tuple[str, int], scope: anyio.CancelScope) -> None:
        delay = self.reconnect_delay
        with scope:
            while not self._closing.is_set():
                try:
                    conn = await Connection.open(address, self.config)
                    await conn.subscribe(self.topic, self.channel)
                except NSQError as exc:
                    log.warning("consumer %s/%s: %s", self.topic, self.channel, exc)
                else:
                    delay = self.reconnect_delay
                    self._serving[address] = scope
                    try:
                        await self._serve(conn)
                    finally:
                        del self._serving[address]
                if self._closing.is_set() or self._connectors.get(address) is not scope:
                    return
                if self.lookupd_http_addresses:
                    self._repoll.set()
                await anyio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.max_reconnect_delay)

    async def _serve(self, conn: Connection) -> None:
        conn.delegate = self
        conn.codec = self.codec
        conn.default_requeue_delay = self._default_requeue_delay
        self.connections.add(conn)
        self._apply(self.planner.add(conn, conn.max_rdy_count, anyio.current_time()))
        try:
            await conn.run()
        except NSQError as exc:
            log.info("consumer %s/%s: %s", self.topic, self.channel, exc)
        finally:
            self.connections.discard(conn)
            self._apply(self.planner.remove(conn, anyio.current_time()))
            self._check_drained()

    def _apply(self, changes: dict[Connection, int]) -> None:
        for conn, rdy in changes.items():
            if not self._closing.is_set() or rdy == 0:
                conn.set_rdy(rdy)

    def _default_requeue_delay(self, attempts: int) -> float:
        return min(self.requeue_delay * attempts, self.max_requeue_delay)

    async def _discover(self) -> None:
        lookupds = [Lookupd(address) for address in self.lookupd_http_addresses]
        found: set[tuple[str, int]] = set()
        direct = {parse_address(a, 4150) for a in self.nsqd_tcp_addresses}
        try:
            while True:
                answers = []
                for lookupd in lookupds:
                    try:
                        answers.append(await lookupd.producers(self.topic))
                    except NSQError as exc:
                        log.warning("lookupd %s: %s", lookupd.address, exc)
                if answers:
                    merged = set().union(*answers)
                    for address in found - merged - direct:
                        self._unwant(address)
                    for address in merged:
                        self._want(address)
                    found = merged
                jitter = random.uniform(-self.lookupd_poll_jitter, self.lookupd_poll_jitter)
                with anyio.move_on_after(self.lookupd_poll_interval * (1 + jitter)):
                    await self._repoll.wait()
                self._repoll = anyio.Event()
        finally:
            for lookupd in lookupds:
                await lookupd.aclose()

    # -- RDY ticker and auto-touch -----------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            now = anyio.current_time()
            until = self.planner.backoff_until
            wait = self.rdy_redistribute_interval if until is None else max(0.0, until - now)
            with anyio.move_on_after(min(wait, self.rdy_redistribute_interval)):
                await self._ticker_wake.wait()
            if self._ticker_wake.is_set():
                self._ticker_wake = anyio.Event()
            if not self._closing.is_set():
                self._apply(self.planner.tick(anyio.current_time()))

    async def _toucher(self) -> None:
        while True:
            timeouts = [conn.msg_timeout for conn in self.connections]
            await anyio.sleep(min(timeouts, default=1.0) / 4)
            now = anyio.current_time()
            for key, (message, touched) in list(self._touching.items()):
                if not message.responded and now - touched >= message._conn.msg_timeout / 2:
                    message.touch()
                    self._touching[key] = (message, now)

    # -- messages ----------------------------------------------------------------------------

    def on_messages(self, conn: Connection, messages: list[Message]) -> None:
        self._received += len(messages)
        self.planner.on_messages(conn, len(messages), anyio.current_time())
        self._pending.extend(messages)
        if self._idle:
            self._work.set()
            self._work = anyio.Event()
        else:
            self._spawn_worker()

    def on_message_done(self, conn: Connection, message: Message, outcome: int) -> None:
        self.planner.on_done(conn)
        if self.auto_touch:
            self._touching.pop(message.id, None)
        if outcome == FINISHED:
            self._finished += 1
            if self.planner.backoff_level:
                self._apply(self.planner.on_success(anyio.current_time()))
        else:
            self._requeued += 1
            if outcome == REQUEUED:
                self._apply(self.planner.on_failure(anyio.current_time()))
                self._ticker_wake.set()
        if self._closing.is_set():
            self._check_drained()

    def _check_drained(self) -> None:
        if self._closing.is_set() and not self._in_flight():
            self._drained.set()

    def _spawn_worker(self) -> None:
        if self._tg is not None and self._workers < self.concurrency:
            self._workers += 1
            self._idle += 1
            self._tg.start_soon(self._worker)

    async def _worker(self) -> None:
        pending = self._pending
        while True:
            while pending:
                self._idle -= 1
                message = pending.popleft()
                if pending and not self._idle:
                    self._spawn_worker()
                await self._process(message)
                self._idle += 1
            await self._work.wait()

    async def _process(self, message: Message) -> None:
        if message._conn.closed:
            return  # nsqd gives it to another consumer after its timeout
        if self.max_attempts and message.attempts > self.max_attempts:
            await self._give_up(message)
            return
        if self.auto_touch:
            self._touching[message.id] = (message, anyio.current_time())
        try:
            await self._call(message)
        except Exception:
            log.warning("handler failed on message %s", message.id.decode(), exc_info=True)
            if message.auto_response:
                message.requeue()
        else:
            if message.auto_response:
                message.finish()

    async def _give_up(self, message: Message) -> None:
        log.warning(
            "giving up on message %s after %d attempts", message.id.decode(), message.attempts
        )
        hook = self.on_give_up
        try:
            if hook is not None:
                result: Any = hook(message)
                if inspect.isawaitable(result):
                    await result
        except Exception:
            log.exception("on_give_up failed for message %s; requeued", message.id.decode())
            message.requeue(backoff=False)
        else:
            message.finish()
