"""``pnsq tail`` prints what is published, one message per line, and FINs it."""

from __future__ import annotations

import io
from pathlib import Path

import trio

from pnsq import wire
from pnsq.nsqd import NSQD, Options
from pnsq.tools.tail import tail


async def test_tail_prints_published_messages_and_finishes_them(tmp_path: Path) -> None:
    nsqd = NSQD(Options(tcp_address="127.0.0.1:0", http_address="", data_path=str(tmp_path)))
    async with trio.open_nursery() as nursery:
        await nursery.start(nsqd.serve)
        assert nsqd.tcp_address is not None
        address = "{}:{}".format(*nsqd.tcp_address)
        with trio.fail_after(10):
            # The topic keeps these until its first channel (tail's) appears.
            stream = await trio.open_tcp_stream(*nsqd.tcp_address)
            await stream.send_all(wire.MAGIC_V2 + wire.encode_mpub("events", [b"a", b"b", b"c"]))
            assert await stream.receive_some(100) == wire.encode_frame(0, b"OK")
            out = io.BytesIO()
            printed = await trio.to_thread.run_sync(
                lambda: tail("events", address, out, count=3, print_topic=True)
            )
        assert printed == 3
        assert out.getvalue() == b"events | a\nevents | b\nevents | c\n"
        channel = next(iter(nsqd.topics["events"].channels.values()), None)
        assert channel is None or len(channel.in_flight) == 0  # all FINed (or channel gone)
        await stream.aclose()
        nsqd.stop()
