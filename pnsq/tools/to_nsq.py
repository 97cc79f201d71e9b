"""``pnsq to-nsq``: copy topics from one set of nsqds to another, like NSQ's nsq_to_nsq.

A message is FINed at the source only after a destination nsqd acknowledged it: the handler
takes the message over (``disable_auto_response``) and queues it; a few publisher tasks each
take everything queued so far and send it as one MPUB per destination topic, then FIN the whole
batch on OK. If no destination takes a batch (each tried in ``--mode`` order, failing over), the
batch is REQed with the consumer's backoff and comes back later; nothing is dropped. A batch a
destination refuses outright (too big, a message over its --max-msg-size) is retried message by
message so one bad message cannot hold the others back.

Batching is what makes a relay fast (one round trip per batch, not per message) and needs no
task per message: the queue is a list, the publishers a fixed handful. On Ctrl-C/SIGTERM the
consumers close (CLS; no new messages) while the publishers forward and FIN what was queued.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

import anyio

from .. import wire
from .._internal import flags
from .._internal.flags import Flag, flag
from .._internal.logging import setup_logging
from ..client import Consumer, Message, NSQError, Producer, PublishError
from . import client_setup
from .hostpool import MODES, HostPool
from .json_filter import JSONFilter
from .runner import EXIT_OK, run_tool
from .timer_metrics import TimerMetrics

log = logging.getLogger("pnsq.tools.to_nsq")

PUBLISHERS = 4  # batches under way at once
MAX_BATCH_BYTES = 1 << 20  # well under nsqd's default --max-body-size (5 MiB)
_FAILOVER_CODES = frozenset({"E_PUB_FAILED", "E_MPUB_FAILED"})  # nothing queued; try elsewhere
OK, FAILED, REFUSED = 0, 1, 2


@dataclass(frozen=True)
class ToNSQOptions:
    topics: tuple[str, ...] = ()
    channel: str = "nsq_to_nsq"
    nsqd_tcp_addresses: tuple[str, ...] = ()
    lookupd_http_addresses: tuple[str, ...] = ()
    destination_nsqd_tcp_addresses: tuple[str, ...] = ()
    destination_topic: str = ""
    max_in_flight: int = 200
    mode: str = "hostpool"
    status_every: int = 250
    require_json_field: str = ""
    require_json_value: str = ""
    whitelist_json_fields: tuple[str, ...] = ()
    consumer_opts: tuple[str, ...] = ()
    producer_opts: tuple[str, ...] = ()


# fmt: off
FLAGS: tuple[Flag, ...] = (
    client_setup.TOPICS,
    client_setup.CHANNEL,
    client_setup.NSQD_TCP_ADDRESSES,
    client_setup.LOOKUPD_HTTP_ADDRESSES,
    flag("destination-nsqd-tcp-address", flags.address_list, "destination nsqd TCP address "
         "(may be given multiple times)", field="destination_nsqd_tcp_addresses",
         repeatable=True),
    flag("destination-topic", flags.string, "use this destination topic for all consumed "
         "topics", default_text="the consumed topic's name"),
    client_setup.MAX_IN_FLIGHT,
    flag("mode", flags.choice(*MODES), "how to pick the destination: hostpool, round-robin, "
         "epsilon-greedy"),
    flag("status-every", flags.natural, "the number of messages between status lines "
         "(per destination), 0 disables"),
    flag("require-json-field", flags.string, "for JSON messages: only pass messages that "
         "contain this field"),
    flag("require-json-value", flags.string, "for JSON messages: only pass messages in which "
         "the required field has this value"),
    flag("whitelist-json-field", flags.string_list, "for JSON messages: pass this field "
         "(may be given multiple times)", field="whitelist_json_fields", repeatable=True),
    client_setup.CONSUMER_OPT,
    client_setup.PRODUCER_OPT,
)
# fmt: on


def check(options: ToNSQOptions) -> ToNSQOptions:
    """NSQ's cross-flag checks (ValueError, one line), run before anything connects."""
    if not options.topics or not options.channel:
        raise ValueError("--topic and --channel are required")
    for topic in (*options.topics, options.destination_topic or options.topics[0]):
        if not wire.is_valid_topic_name(topic):
            raise ValueError(f"invalid topic name {topic!r}")
    if not wire.is_valid_channel_name(options.channel):
        raise ValueError(f"invalid channel name {options.channel!r}")
    if not options.destination_nsqd_tcp_addresses:
        raise ValueError("--destination-nsqd-tcp-address required")
    client_setup.parse_go_nsq_options(options.producer_opts, consumer=False)
    _json_filter(options)
    return options


def _json_filter(options: ToNSQOptions) -> JSONFilter:
    return JSONFilter(
        options.require_json_field, options.require_json_value, options.whitelist_json_fields
    )


def run(options: ToNSQOptions) -> int:
    setup_logging("info", "")
    return run_tool("to-nsq", lambda stop: to_nsq(options, stop))


async def to_nsq(options: ToNSQOptions, stop: anyio.Event) -> int:
    """Forward messages until ``stop`` is set; then forward and FIN what is in flight."""
    check(options)
    kwargs = client_setup.consumer_arguments("to_nsq", options, relay=True)
    _, settings = client_setup.parse_go_nsq_options(options.producer_opts, consumer=False)
    config = client_setup.connection_config("to_nsq", settings)
    async with AsyncExitStack() as stack:
        producers = [
            await stack.enter_async_context(Producer(address, config=config))
            for address in options.destination_nsqd_tcp_addresses
        ]
        relay = Relay(producers, options.mode, _json_filter(options), options.status_every)
        handlers = {t: relay.handler(options.destination_topic or t) for t in options.topics}
        consumers = [Consumer(t, options.channel, h, **kwargs) for t, h in handlers.items()]
        async with anyio.create_task_group() as tg:
            for _ in range(PUBLISHERS):
                tg.start_soon(relay.publish_forever)
            for consumer in consumers:
                tg.start_soon(consumer.run)
            await stop.wait()
            async with anyio.create_task_group() as closing:
                for consumer in consumers:
                    closing.start_soon(consumer.close)
            tg.cancel_scope.cancel()
    return EXIT_OK


Queued = tuple[str, bytes, Message]  # destination topic, body to publish, source message


class Relay:
    """Queues filtered messages and publishes them in batches; FIN after OK, REQ on failure."""

    def __init__(
        self, producers: Sequence[Producer], mode: str, json_filter: JSONFilter, status_every: int
    ) -> None:
        self.producers = list(producers)
        self.pool = HostPool(len(self.producers), mode)
        self.filter = json_filter
        self.aggregate = TimerMetrics(status_every, "[aggregate]:")
        many = len(self.producers) > 1
        self.per_destination = [
            TimerMetrics(status_every if many else 0, f"[{p.address}]:") for p in self.producers
        ]
        self.queue: list[Queued] = []
        self._wake = anyio.Event()

    def handler(self, destination_topic: str) -> Callable[[Message], Awaitable[None]]:
        async def handle(message: Message) -> None:
            body = self.filter.apply(message.body)
            if body is None:
                return  # filtered out: FINed by the consumer
            message.disable_auto_response()
            self.queue.append((destination_topic, body, message))
            self._wake.set()

        return handle

    async def publish_forever(self) -> None:
        while True:
            while not self.queue:
                await self._wake.wait()
                if self._wake.is_set():
                    self._wake = anyio.Event()
            queued, self.queue = self.queue, []
            for topic, batch in _batches(queued):
                await self.forward(topic, batch)

    async def forward(self, topic: str, batch: list[tuple[bytes, Message]]) -> None:
        started = anyio.current_time()
        outcome, index = await self._publish(topic, [body for body, _ in batch])
        if outcome == REFUSED and len(batch) > 1:
            for item in batch:  # find the message the destination will not take
                await self.forward(topic, [item])
            return
        if outcome != OK:
            for _, message in batch:
                message.requeue()
            return
        for _, message in batch:
            message.finish()
        elapsed = anyio.current_time() - started
        self.aggregate.record(elapsed, len(batch))
        self.per_destination[index].record(elapsed, len(batch))

    async def _publish(self, topic: str, bodies: list[bytes]) -> tuple[int, int]:
        """(OK, index of the destination that took them), or (FAILED or REFUSED, -1)."""
        for index in self.pool.order(anyio.current_time()):
            producer, started = self.producers[index], anyio.current_time()
            try:
                if len(bodies) == 1:
                    await producer.publish(topic, bodies[0])
                else:
                    await producer.multi_publish(topic, bodies)
            except PublishError as exc:
                if exc.code not in _FAILOVER_CODES:
                    log.warning("%s refused %d message(s): %s", producer.address, len(bodies), exc)
                    return REFUSED, -1
                self._failed(index, exc)
            except (NSQError, OSError) as exc:
                self._failed(index, exc)
            else:
                now = anyio.current_time()
                self.pool.mark(index, True, now, now - started)
                return OK, index
        return FAILED, -1

    def _failed(self, index: int, exc: Exception) -> None:
        log.warning("publish to %s failed: %s", self.producers[index].address, exc)
        self.pool.mark(index, False, anyio.current_time())


def _batches(queued: list[Queued]) -> list[tuple[str, list[tuple[bytes, Message]]]]:
    """Consecutive runs for one topic, each under MAX_BATCH_BYTES (or a single message)."""
    batches: list[tuple[str, list[tuple[bytes, Message]]]] = []
    size = 0
    for topic, body, message in queued:
        if not batches or batches[-1][0] != topic or size + len(body) > MAX_BATCH_BYTES:
            batches.append((topic, []))
            size = 0
        batches[-1][1].append((body, message))
        size += len(body)
    return batches
