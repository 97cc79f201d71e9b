"""A delaying TCP relay: the cluster tests' stand-in for ``tc netem delay 50ms loss 2%``.

This kernel has no netem qdisc (and nothing may load it), so the bad network is made one level
up. In scenario 5 every daemon listens on 127.0.0.1 inside its own namespace and this relay, in
the same namespace, owns the host's address on the daemon's ports: every connection any other
host makes to that daemon (client, nsqd -> lookupd, nsqd -> lookupd HTTP) crosses it, so every
link between hosts gets the fault, in both directions.

- Delay: each chunk read is written out ``--delay`` seconds after it arrived, in order.
- "2% loss": TCP never shows a lost packet to the application; the loss turns into a
  retransmission, i.e. that data and everything queued behind it arrives a retransmission
  timeout later (200 ms is Linux's minimum RTO). So ``--stall-rate`` of the chunks are held an
  extra ``--stall-min``..``--stall-max`` seconds, and every later chunk of that direction waits
  behind them (head-of-line blocking), which is the effect loss has on a TCP stream.
Closing is passed on as a half-close so that a request/close exchange still ends cleanly.
"""

from __future__ import annotations

import argparse
import random
import sys
from functools import partial

import trio

QUEUE_CHUNKS = 256  # back-pressure: a slow reader side slows the sender side


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True, help="the host address to own")
    parser.add_argument("--target", default="127.0.0.1")
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--stall-rate", type=float, default=0.02)
    parser.add_argument("--stall-min", type=float, default=0.2)
    parser.add_argument("--stall-max", type=float, default=0.4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=300.0, help="exit after this long")
    return parser.parse_args()


class Relay:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)

    def due(self, last_due: float) -> float:
        args = self.args
        due = max(trio.current_time() + float(args.delay), last_due)
        if self.rng.random() < args.stall_rate:
            due += self.rng.uniform(float(args.stall_min), float(args.stall_max))
        return due

    async def handle(self, port: int, inbound: trio.SocketStream) -> None:
        try:
            outbound = await trio.open_tcp_stream(self.args.target, port)
        except OSError:
            await inbound.aclose()
            return
        async with inbound, outbound, trio.open_nursery() as nursery:
            nursery.start_soon(self.direction, inbound, outbound, nursery.cancel_scope)
            nursery.start_soon(self.direction, outbound, inbound, nursery.cancel_scope)

    async def direction(
        self, source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope
    ) -> None:
        send, receive = trio.open_memory_channel[tuple[float, bytes]](QUEUE_CHUNKS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.writer, receive, sink, scope)
            last_due = 0.0
            try:
                while data := await source.receive_some(65536):
                    last_due = self.due(last_due)
                    await send.send((last_due, data))
            except trio.BrokenResourceError:
                scope.cancel()
            await send.aclose()

    async def writer(
        self,
        receive: trio.MemoryReceiveChannel[tuple[float, bytes]],
        sink: trio.SocketStream,
        scope: trio.CancelScope,
    ) -> None:
        try:
            async for due, data in receive:
                await trio.sleep_until(due)
                await sink.send_all(data)
            await sink.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            scope.cancel()


async def main() -> None:
    args = parse()
    relay = Relay(args)
    async with trio.open_nursery() as nursery:
        nursery.cancel_scope.deadline = trio.current_time() + args.deadline
        for port in args.port:
            listeners = await trio.open_tcp_listeners(port, host=args.listen)
            nursery.start_soon(trio.serve_listeners, partial(relay.handle, port), listeners)
        print("ready", flush=True)
        print(f"relay {args.listen} {args.port} -> {args.target}", file=sys.stderr)


if __name__ == "__main__":
    trio.run(main)
