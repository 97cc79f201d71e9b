"""``Consumer.close()`` answers every message nsqd sent before it stopped, not only those that had
arrived when the in-flight count first reached zero: it waits for CLS's CLOSE_WAIT, which nsqd
sends after its last message. A scripted nsqd makes the late message deterministic."""

from __future__ import annotations

import struct
from functools import partial

import trio

from pnsq import wire
from pnsq.client import Consumer, Message

LATE_ID = b"0000000000000002"


class ScriptedNSQD:
    """Plain-OK negotiation; one message on RDY; on CLS, another message, then CLOSE_WAIT."""

    def __init__(self) -> None:
        self.fins: list[bytes] = []
        self.port = 0

    async def start(self, nursery: trio.Nursery) -> None:
        listeners = await nursery.start(partial(trio.serve_tcp, self.serve, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]

    async def serve(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        sent_first = False

        async def line() -> bytes:
            while b"\n" not in buffer:
                data = await stream.receive_some(4096)
                if not data:
                    raise EOFError
                buffer.extend(data)
            cut = buffer.index(b"\n")
            text = bytes(buffer[:cut])
            del buffer[: cut + 1]
            return text

        async def sized() -> None:  # IDENTIFY's body
            while len(buffer) < 4 or len(buffer) < 4 + struct.unpack(">i", buffer[:4])[0]:
                buffer.extend(await stream.receive_some(4096))
            del buffer[: 4 + struct.unpack(">i", buffer[:4])[0]]

        try:
            while len(buffer) < 4:
                buffer.extend(await stream.receive_some(4096))
            del buffer[:4]  # magic
            while True:
                command = await line()
                if command.startswith((b"IDENTIFY", b"SUB")):
                    if command.startswith(b"IDENTIFY"):
                        await sized()
                    await stream.send_all(wire.encode_response(wire.OK))
                elif command.startswith(b"RDY") and not sent_first:
                    sent_first = True
                    await stream.send_all(self.message(b"0000000000000001"))
                elif command.startswith(b"FIN"):
                    self.fins.append(command.split()[1])
                elif command == b"CLS":
                    await trio.sleep(0.3)  # the client has answered everything it holds by now
                    await stream.send_all(self.message(LATE_ID) + wire.CLOSE_WAIT_FRAME)
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    @staticmethod
    def message(msg_id: bytes) -> bytes:
        return wire.encode_message_frame(0, 1, msg_id, b"body")


async def test_close_answers_a_message_that_arrives_after_cls(nursery: trio.Nursery) -> None:
    nsqd = ScriptedNSQD()
    await nsqd.start(nursery)
    handled: list[bytes] = []
    first = trio.Event()

    async def handle(message: Message) -> None:
        handled.append(message.id)
        first.set()

    consumer = Consumer(
        "t", "c", handle, nsqd_tcp_addresses=[f"127.0.0.1:{nsqd.port}"], max_in_flight=10
    )
    with trio.fail_after(10):
        async with consumer:
            await first.wait()
        # close() returned: the late message was handled and its FIN sent before the socket closed
        assert handled == [b"0000000000000001", LATE_ID]
        while len(nsqd.fins) < 2:  # noqa: ASYNC110 - the FIN is on its way over loopback
            await trio.sleep(0.01)
    assert nsqd.fins == [b"0000000000000001", LATE_ID]
