"""``pnsq tail``: print a topic's messages as they arrive, like NSQ's nsq_tail.

A plain blocking socket and the sans-I/O wire core: one connection, an ephemeral channel by
default (so nothing is left behind), RDY = --max-in-flight, FIN after printing each message.
"""

from __future__ import annotations

import random
import socket
import sys
from dataclasses import dataclass
from typing import BinaryIO

from .. import __version__, wire
from .._internal import flags
from .._internal.flags import Flag, flag
from .._internal.netaddr import split_host_port


@dataclass(frozen=True)
class TailOptions:
    topic: str = ""
    channel: str = ""
    nsqd_tcp_address: str = "127.0.0.1:4150"
    max_in_flight: int = 200
    n: int = 0
    print_topic: bool = False


# fmt: off
FLAGS: tuple[Flag, ...] = (
    flag("topic", flags.string, "NSQ topic to print"),
    flag("channel", flags.string, "NSQ channel", default_text="tail<random>#ephemeral"),
    flag("nsqd-tcp-address", flags.address, "nsqd TCP address"),
    flag("max-in-flight", flags.natural, "max number of messages to allow in flight"),
    flag("n", flags.natural, "total messages to show (will wait if starved)", short="n"),
    flag("print-topic", flags.boolean, "print topic name where message was received", bare=True),
)
# fmt: on


def run(options: TailOptions) -> int:
    if not options.topic:
        print("pnsq tail: --topic is required", file=sys.stderr)
        return 1
    try:
        tail(
            options.topic,
            options.nsqd_tcp_address,
            sys.stdout.buffer,
            channel=options.channel or None,
            max_in_flight=options.max_in_flight,
            count=options.n,
            print_topic=options.print_topic,
        )
    except KeyboardInterrupt:
        pass
    except (OSError, wire.ProtocolError, ValueError) as err:
        print(f"pnsq tail: {err}", file=sys.stderr)
        return 1
    return 0


def random_channel() -> str:
    return f"tail{random.randrange(1_000_000):06d}#ephemeral"


def tail(
    topic: str,
    nsqd_tcp_address: str,
    out: BinaryIO,
    *,
    channel: str | None = None,
    max_in_flight: int = 200,
    count: int = 0,
    print_topic: bool = False,
) -> int:
    """Print message bodies, one per line, until ``count`` messages (0: forever).

    Returns the number printed; raises ProtocolError for an error frame from nsqd and
    ConnectionError when nsqd goes away.
    """
    host, port = split_host_port(nsqd_tcp_address)
    identify = {"feature_negotiation": True, "user_agent": f"pnsq_tail/{__version__}"}
    frames = wire.FrameReader()
    printed = 0
    with socket.create_connection((host or "127.0.0.1", port)) as sock:
        sock.sendall(
            wire.MAGIC_V2
            + wire.encode_identify(identify)
            + wire.encode_sub(topic, channel or random_channel())
            + wire.encode_rdy(max_in_flight)
        )
        prefix = f"{topic} | ".encode() if print_topic else b""
        while not count or printed < count:
            data = sock.recv(256 * 1024)
            if not data:
                raise ConnectionError("nsqd closed the connection")
            frames.receive_data(data)
            replies = []
            while (frame := frames.next_frame()) is not None:
                frame_type, payload = frame
                if frame_type == wire.FRAME_TYPE_ERROR:
                    raise wire.error_from_bytes(payload)
                if frame_type == wire.FRAME_TYPE_RESPONSE:
                    if payload == wire.HEARTBEAT:
                        replies.append(wire.encode_nop())
                    continue
                _, _, msg_id, body = wire.decode_message(payload)
                if not count or printed < count:
                    out.write(prefix + body + b"\n")
                    printed += 1
                replies.append(wire.encode_fin(msg_id))
            out.flush()
            if replies:
                sock.sendall(b"".join(replies))
    return printed
