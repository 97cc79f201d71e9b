"""IDENTIFY's feature upgrades (TLS, snappy, deflate): what is agreed, and swapping the stream.

NSQ's order, on one socket: the IDENTIFY response goes out plain; then, if agreed, the TLS
handshake (5 s deadline) and an ``OK`` inside TLS; then, if agreed, snappy or deflate wraps the
stream (on top of TLS) and an ``OK`` goes out compressed. The connection's writer runs this
between two writes, while its reader waits, so nothing else touches the socket meanwhile; the
reader and writer then go on with the stream returned. A connection that agreed on nothing
keeps its plain socket stream: no layer, no cost.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from ..wire.errors import IdentifyFailedError
from ..wire.frames import OK_FRAME
from .compression import CompressedStream
from .tls import HANDSHAKE_TIMEOUT, common_name, describe
from .tls_stream import TLSStream

if TYPE_CHECKING:
    from .client_v2 import ClientV2
    from .options import Options


@dataclass(frozen=True, slots=True)
class Upgrade:
    tls: bool
    snappy: bool
    deflate: bool
    deflate_level: int

    @property
    def any(self) -> bool:
        return self.tls or self.snappy or self.deflate


def negotiate(fields: dict[str, Any], options: Options, tls_enabled: bool) -> Upgrade:
    """NSQ's rules: each feature needs the client's ask and the server's leave; a level above
    --max-deflate-level gets the maximum; snappy and deflate together are refused (fatal)."""
    deflate = options.deflate and fields["deflate"]
    level = fields["deflate_level"] if deflate and fields["deflate_level"] > 0 else 6
    level = min(level, options.max_deflate_level)
    snappy = options.snappy and fields["snappy"]
    if deflate and snappy:
        raise IdentifyFailedError("cannot enable both deflate and snappy compression")
    return Upgrade(tls_enabled and fields["tls_v1"], snappy, deflate, level)


async def perform(
    upgrade: Upgrade,
    stream: trio.abc.Stream,
    client: ClientV2,
    context: ssl.SSLContext | None,
    early: bytes,
) -> trio.abc.Stream:
    """Upgrade ``stream`` (the IDENTIFY response already sent on it); ``early`` is what the
    client sent after IDENTIFY before the upgrade. IdentifyFailedError when it fails."""
    if upgrade.tls:
        assert context is not None
        if early:  # a TLS client waits for the response before its ClientHello
            raise IdentifyFailedError("IDENTIFY failed data before the TLS handshake")
        tls = await _handshake(stream, context)
        client.tls = describe(tls.ssl_object)
        client.tls_common_name = common_name(tls.ssl_object)
        stream = tls
        await stream.send_all(OK_FRAME)
    if upgrade.snappy or upgrade.deflate:
        if upgrade.snappy:
            wrapped = CompressedStream.snappy(stream)
            client.snappy = True
        else:
            wrapped = CompressedStream.deflate(stream, upgrade.deflate_level)
            client.deflate = True
        wrapped.feed(early)
        await wrapped.send_all(OK_FRAME)
        stream = wrapped
    return stream


async def _handshake(stream: trio.abc.Stream, context: ssl.SSLContext) -> TLSStream:
    ssl_stream = TLSStream(stream, context)
    with trio.move_on_after(HANDSHAKE_TIMEOUT) as scope:
        try:
            await ssl_stream.do_handshake()
        except trio.BrokenResourceError as err:
            cause = err.__cause__ or err
            raise IdentifyFailedError(f"IDENTIFY failed {cause}") from None
    if scope.cancelled_caught:
        raise IdentifyFailedError("IDENTIFY failed TLS handshake timeout")
    return ssl_stream
