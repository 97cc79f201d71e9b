"""A consumer process for the cluster tests: pnsq's Consumer, nsqds found through lookupd.

Each handled message appends ``<unix time> <body>`` to ``--out``; a task flushes the file every
50 ms and SIGTERM closes the consumer gracefully and flushes, so the file is what this consumer
finished (the test reads it while the consumer runs). ``--requeue-every N`` requeues bodies whose
sequence is a multiple of N on their first attempt; ``--timeout-every N`` leaves such a message
unanswered on its first attempt so that nsqd's message timeout must give it back: both check that
requeues and timeouts still deliver everything under the fault being tested; ``--handle-delay``
makes a slow consumer, so that a backlog builds up on the nsqds.
The summary (a JSON line on stdout) gives the consumer's own counts.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import time
from dataclasses import asdict
from typing import IO

import anyio

from pnsq.client import ConnectionConfig, Consumer, Message


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookupd", action="append", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--channel", default="cluster")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-in-flight", type=int, default=200)
    parser.add_argument("--heartbeat", type=float, default=2.0)
    parser.add_argument("--requeue-every", type=int, default=0)
    parser.add_argument("--timeout-every", type=int, default=0)
    parser.add_argument("--msg-timeout", type=float, default=3.0)
    parser.add_argument("--handle-delay", type=float, default=0.0, help="seconds per message")
    parser.add_argument("--deadline", type=float, default=120.0)
    return parser.parse_args()


def _every(body: bytes, n: int) -> bool:
    return n > 0 and int(body.rsplit(b"-", 1)[1]) % n == 0


class Recorder:
    def __init__(self, args: argparse.Namespace, out: IO[str]) -> None:
        self.args, self.out = args, out
        self.timed_out = self.requeued = 0

    async def handle(self, message: Message) -> None:
        body = message.body
        if message.attempts == 1 and _every(body, self.args.timeout_every):
            # answered only after nsqd timed it out: nsqd redelivers it, our late FIN is
            # refused (E_FIN_FAILED) and frees this consumer's in-flight slot
            message.disable_auto_response()
            self.timed_out += 1
            await anyio.sleep(self.args.msg_timeout + 0.5)
            message.finish()
            return
        if message.attempts == 1 and _every(body, self.args.requeue_every):
            self.requeued += 1
            message.requeue(0.05, backoff=False)
            return
        if self.args.handle_delay:
            await anyio.sleep(self.args.handle_delay)
        self.out.write(f"{time.time():.3f} {body.decode()}\n")

    async def flusher(self) -> None:
        while True:
            self.out.flush()
            await anyio.sleep(0.05)


async def main(args: argparse.Namespace, out: IO[str]) -> None:
    recorder = Recorder(args, out)
    consumer = Consumer(
        args.topic,
        args.channel,
        recorder.handle,
        lookupd_http_addresses=args.lookupd,
        max_in_flight=args.max_in_flight,
        lookupd_poll_interval=1.0,
        lookupd_poll_jitter=0.1,
        reconnect_delay=0.2,
        max_reconnect_delay=1.0,
        close_timeout=5.0,
        config=ConnectionConfig(
            heartbeat_interval=args.heartbeat, msg_timeout=args.msg_timeout, connect_timeout=0.5
        ),
    )
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as tg:
            tg.start_soon(recorder.flusher)
            async with consumer:
                with anyio.move_on_after(args.deadline):
                    async for _ in signals:
                        break
            tg.cancel_scope.cancel()
    out.flush()
    stats = asdict(consumer.stats())
    stats |= {"timed_out": recorder.timed_out, "requeued_by_test": recorder.requeued}
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    arguments = parse()
    with open(arguments.out, "a") as out_file:
        anyio.run(main, arguments, out_file, backend="trio")
