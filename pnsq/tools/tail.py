"""``pnsq tail``: print a topic's messages as they arrive, like NSQ's nsq_tail.

A plain blocking socket and the sans-I/O wire core: one connection, an ephemeral channel by
default (so nothing is left behind), RDY = --max-in-flight, FIN after printing each message.
"""

from __future__ import annotations

import random
import socket
from typing import BinaryIO

from .. import __version__, wire
from .._internal.netaddr import split_host_port


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
