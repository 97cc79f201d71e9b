"""Throughput of the relays, ``pnsq to-nsq`` and ``pnsq to-http``, on 127.0.0.1.

    .venv/bin/python bench/relays.py [--messages 50000] [--http-messages 5000] [--size 100] [-n 100]

Everything runs in this one process and trio loop, the way the tools' tests run them: two
pnsq nsqds, the relay itself (``to_nsq()`` / ``to_http()``, exactly what the commands run), and
for to-http a minimal keep-alive HTTP/1.1 endpoint (h11) answering 200. The figures are the
time from starting the relay until every message is FINed at the source (and, for to-nsq,
queued at the destination): messages per second. Sharing one CPU with the nsqds and the
endpoint makes them a floor, not what the relay does against remote daemons. Each phase is
capped at 60 s; nothing outlives the process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from functools import partial

import anyio
import h11
import trio

from pnsq.client import Producer
from pnsq.nsqd import NSQD, Options
from pnsq.tools.to_http import ToHTTPOptions, to_http
from pnsq.tools.to_nsq import ToNSQOptions, to_nsq

PHASE_CAP = 60.0


def address(nsqd: NSQD) -> str:
    assert nsqd.tcp_address is not None
    return "{}:{}".format(*nsqd.tcp_address)


async def start_nsqd(nursery: trio.Nursery, data_path: str) -> NSQD:
    options = Options(
        tcp_address="127.0.0.1:0",
        http_address="",
        data_path=data_path,
        mem_queue_size=10_000_000,
    )
    nsqd = NSQD(options)
    await nursery.start(nsqd.serve)
    return nsqd


def finished(nsqd: NSQD, topic: str, channel: str, count: int) -> bool:
    found = nsqd.topics.get(topic)
    ch = None if found is None else found.channels.get(channel)
    return ch is not None and ch.message_count >= count and not ch.depth() and not ch.in_flight


async def publish(nsqd: NSQD, topic: str, count: int, size: int) -> None:
    body = b"x" * size
    async with Producer(address(nsqd)) as producer:
        for start in range(0, count, 1000):
            await producer.multi_publish(topic, [body] * min(1000, count - start))


async def timed(condition: Callable[[], bool]) -> float:
    started = time.perf_counter()
    with trio.fail_after(PHASE_CAP):
        while not condition():  # noqa: ASYNC110 - polling daemon state, bounded by the cap
            await trio.sleep(0.005)
    return time.perf_counter() - started


async def endpoint(stream: trio.SocketStream) -> None:
    """HTTP/1.1 keep-alive, every request answered 200."""
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return
                conn.receive_data(data)
            elif isinstance(event, h11.EndOfMessage):
                reply = conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                reply = (reply or b"") + (conn.send(h11.EndOfMessage()) or b"")
                await stream.send_all(reply)
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                return
    except (trio.BrokenResourceError, h11.ProtocolError):
        return
    finally:
        await stream.aclose()


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        async with trio.open_nursery() as nursery:
            source, destination = await start_nsqd(nursery, one), await start_nsqd(nursery, two)
            await publish(source, "relay", args.messages, args.size)
            stop = anyio.Event()
            relay = ToNSQOptions(
                topics=("relay",),
                nsqd_tcp_addresses=(address(source),),
                destination_nsqd_tcp_addresses=(address(destination),),
                status_every=0,
            )
            nursery.start_soon(to_nsq, relay, stop)
            seconds = await timed(partial(finished, source, "relay", "nsq_to_nsq", args.messages))
            print(f"to-nsq : {args.messages} x {args.size} B in {seconds:.2f} s = "
                  f"{args.messages / seconds:,.0f} msgs/s")  # fmt: skip
            stop.set()

            listeners = await nursery.start(partial(trio.serve_tcp, endpoint, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            await publish(source, "http", args.http_messages, args.size)
            stop_http = anyio.Event()
            deliver = ToHTTPOptions(
                topic="http",
                nsqd_tcp_addresses=(address(source),),
                post=(f"http://127.0.0.1:{port}/",),
                n=args.n,
                status_every=0,
            )
            nursery.start_soon(to_http, deliver, stop_http)
            count = args.http_messages
            seconds = await timed(partial(finished, source, "http", "nsq_to_http", count))
            print(f"to-http: {count} x {args.size} B in {seconds:.2f} s = "
                  f"{count / seconds:,.0f} requests/s (-n {args.n})")  # fmt: skip
            stop_http.set()
            await trio.sleep(0.5)  # the relays close their connections
            source.stop()
            destination.stop()
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50_000, help="for to-nsq")
    parser.add_argument("--http-messages", type=int, default=5_000, help="for to-http")
    parser.add_argument("--size", type=int, default=100, help="message body bytes")
    parser.add_argument("-n", type=int, default=100, help="to-http's concurrent requests")
    trio.run(bench, parser.parse_args())


if __name__ == "__main__":
    main()
