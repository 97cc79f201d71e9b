"""``pnsq to-http``: deliver each message of a topic as an HTTP request, like NSQ's nsq_to_http.

A message is FINed only when an endpoint answered 2xx; a non-2xx status, a timeout or a
connection error REQs it (with the consumer's backoff), so every message reaches an endpoint at
least once. ``--get`` URLs carry the body query-escaped in place of their one ``%s``; ``--post``
sends it as the request body. ``--mode`` picks the endpoint (``pnsq.tools.hostpool``); one
attempt per delivery, as NSQ does: a failed endpoint is avoided when the message comes back.

Concurrency is the consumer's: its handler is async and it runs up to ``-n`` of them at once,
each awaiting its request on a keep-alive connection of its endpoint (``http_clients``).
No task is made per message. On Ctrl-C/SIGTERM the consumer closes: no new messages, requests
under way finish (bounded by the request timeout), their FIN/REQ are sent, exit 0.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote_plus

import anyio
import httpx

from .. import __version__
from .._internal import flags
from .._internal.flags import Flag, flag
from .._internal.logging import setup_logging
from ..client import Consumer, Message
from . import client_setup
from .hostpool import MODES, HostPool
from .http_clients import ClientPool
from .runner import EXIT_OK, run_tool
from .timer_metrics import TimerMetrics

log = logging.getLogger("pnsq.tools.to_http")


@dataclass(frozen=True)
class ToHTTPOptions:
    topic: str = ""
    channel: str = "nsq_to_http"
    nsqd_tcp_addresses: tuple[str, ...] = ()
    lookupd_http_addresses: tuple[str, ...] = ()
    max_in_flight: int = 200
    consumer_opts: tuple[str, ...] = ()
    get: tuple[str, ...] = ()
    post: tuple[str, ...] = ()
    mode: str = "hostpool"
    n: int = 100
    sample: float = 1.0
    content_type: str = "application/octet-stream"
    header: tuple[str, ...] = ()
    http_timeout: float = 0.0  # NSQ's older flag: sets both timeouts below when given
    http_client_connect_timeout: float = 2.0
    http_client_request_timeout: float = 20.0
    status_every: int = 250


# fmt: off
FLAGS: tuple[Flag, ...] = (
    client_setup.TOPIC,
    client_setup.CHANNEL,
    client_setup.NSQD_TCP_ADDRESSES,
    client_setup.LOOKUPD_HTTP_ADDRESSES,
    client_setup.MAX_IN_FLIGHT,
    client_setup.CONSUMER_OPT,
    flag("get", flags.string_list, "HTTP address to make a GET request to; '%s' is replaced "
         "with the query-escaped message (may be given multiple times)", repeatable=True),
    flag("post", flags.string_list, "HTTP address to make a POST request to; the message is the "
         "body (may be given multiple times)", repeatable=True),
    flag("mode", flags.choice(*MODES), "how to pick the endpoint: hostpool, round-robin, "
         "epsilon-greedy"),
    flag("n", flags.at_least(1), "number of concurrent requests", short="n"),
    flag("sample", flags.real, "fraction of messages to deliver (0.0 to 1.0; the rest are FINed)"),
    flag("content-type", flags.string, "the Content-Type of POST requests"),
    flag("header", flags.string_list, "HTTP header to add to each request, key:value "
         "(may be given multiple times)", repeatable=True),
    flag("http-timeout", flags.positive_duration, "timeout for HTTP connect and request "
         "(each); overrides the two flags below", default_text=""),
    flag("http-client-connect-timeout", flags.positive_duration, "timeout for HTTP connect"),
    flag("http-client-request-timeout", flags.positive_duration, "timeout for HTTP request"),
    flag("status-every", flags.natural, "the number of requests between status lines "
         "(per endpoint), 0 disables"),
)
# fmt: on


def check(options: ToHTTPOptions) -> ToHTTPOptions:
    """NSQ's cross-flag checks (ValueError, one line), run before anything connects."""
    if not options.topic or not options.channel:
        raise ValueError("--topic and --channel are required")
    if not options.get and not options.post:
        raise ValueError("--get or --post required")
    if options.get and options.post:
        raise ValueError("use --get or --post not both")
    for url in options.get:
        if url.count("%s") != 1:
            raise ValueError(f"invalid GET address {url!r} - must contain '%s' once")
    for url in (*options.get, *options.post):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"invalid address {url!r} - must start with http:// or https://")
    if options.content_type != ToHTTPOptions.content_type and not options.post:
        raise ValueError("--content-type only used with --post")
    if not options.content_type:
        raise ValueError("--content-type requires a value when used")
    if not 0.0 <= options.sample <= 1.0:
        raise ValueError("--sample must be between 0.0 and 1.0")
    parse_headers(options.header)
    return options


def parse_headers(values: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for text in values:
        key, colon, value = text.partition(":")
        if not colon or not key.strip() or not value.strip():
            raise ValueError(f"invalid --header {text!r} - expected key:value")
        headers[key.strip()] = value.strip()
    return headers


def run(options: ToHTTPOptions) -> int:
    setup_logging("info", "")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every request at INFO
    return run_tool("to-http", lambda stop: to_http(options, stop))


async def to_http(options: ToHTTPOptions, stop: anyio.Event) -> int:
    """Deliver messages until ``stop`` is set; then finish the requests under way."""
    check(options)
    kwargs = client_setup.consumer_arguments("to_http", options, relay=True)
    connect, request = _timeouts(options)
    kwargs.setdefault("close_timeout", connect + request + 1.0)  # requests under way finish
    clients = ClientPool(
        len(options.post or options.get),
        timeout=httpx.Timeout(request, connect=connect),
        headers={"User-Agent": f"pnsq_to_http/{__version__}", **parse_headers(options.header)},
    )
    try:
        handler = Deliverer(clients, options)
        consumer = Consumer(
            options.topic, options.channel, handler, concurrency=options.n, **kwargs
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer.run)
            await stop.wait()
            await consumer.close()
    finally:
        await clients.aclose()
    return EXIT_OK


def _timeouts(options: ToHTTPOptions) -> tuple[float, float]:
    if options.http_timeout:
        return options.http_timeout, options.http_timeout
    return options.http_client_connect_timeout, options.http_client_request_timeout


class Deliverer:
    """The consumer's handler: one HTTP request per message, FIN on 2xx, REQ otherwise."""

    def __init__(self, clients: ClientPool, options: ToHTTPOptions) -> None:
        self.clients = clients
        self.urls = options.post or options.get
        self.method = "POST" if options.post else "GET"
        self.post_headers = {"Content-Type": options.content_type} if options.post else {}
        self.sample = options.sample
        self.request_timeout = _timeouts(options)[1]
        self.pool = HostPool(len(self.urls), options.mode)
        self.aggregate = TimerMetrics(options.status_every, "[aggregate]:")
        many = len(self.urls) > 1  # one endpoint: the aggregate says it all
        self.per_url = [
            TimerMetrics(options.status_every if many else 0, f"[{url}]:") for url in self.urls
        ]

    async def __call__(self, message: Message) -> None:
        if self.sample < 1.0 and random.random() > self.sample:
            return  # sampled out: FINed, as NSQ does
        started = anyio.current_time()
        index = self.pool.order(started)[0]
        client = self.clients.acquire(index)
        try:
            error = await self._send(client, self.urls[index], message.body)
        finally:
            self.clients.release(index, client)
        now = anyio.current_time()
        self.pool.mark(index, error is None, now, now - started)
        if error is not None:
            log.warning("message %s to %s: %s", message.id.decode(), self.urls[index], error)
            message.requeue()
            return
        message.finish()
        self.per_url[index].record(now - started)
        self.aggregate.record(now - started)

    async def _send(self, client: httpx.AsyncClient, url: str, body: bytes) -> str | None:
        """None when the endpoint answered 2xx, else what went wrong."""
        try:
            with anyio.fail_after(self.request_timeout):
                if self.method == "POST":
                    response = await client.post(url, content=body, headers=self.post_headers)
                else:
                    escaped = quote_plus(body, safe="")  # Go's url.QueryEscape
                    response = await client.get(url.replace("%s", escaped))
        except TimeoutError:
            return f"timed out after {self.request_timeout:g}s"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if not 200 <= response.status_code < 300:
            return f"got status code {response.status_code}"
        return None
