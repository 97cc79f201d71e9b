"""A TLS stream for nsqd's TCP clients: ``ssl.SSLObject`` over memory BIOs, reads coalesced.

trio's ``SSLStream`` hands back one TLS record (at most 16 KiB) per ``receive_some``, so a
publisher's 256 KiB read became 16 turns of the connection's read loop; this stream decrypts
every record that arrived in one socket read and returns them together, so TLS costs the
reader a decryption, not extra turns. The connection's reader and writer use it at once, so
the two share the socket's sending side under a lock (a read may have TLS's own messages to
send, a key update's answer). SSL failures surface as ``trio.BrokenResourceError`` with the
``ssl.SSLError`` as the cause, as trio's streams do.
"""

from __future__ import annotations

import ssl

import trio

CHUNK = 256 * 1024


class TLSStream(trio.abc.Stream):
    def __init__(self, transport: trio.abc.Stream, context: ssl.SSLContext) -> None:
        self.transport = transport
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._send_lock = trio.Lock()

    async def do_handshake(self) -> None:
        obj = self.ssl_object
        while True:
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except ssl.SSLError as err:
                await self._flush()  # the alert tells the client why
                raise trio.BrokenResourceError(str(err)) from err
            else:
                await self._flush()
                return

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        limit = max_bytes or CHUNK
        obj = self.ssl_object
        while True:
            out = bytearray()
            try:
                while len(out) < limit:
                    chunk = obj.read(limit - len(out))
                    if not chunk:  # a record with no application data (a ticket, a key update)
                        break
                    out += chunk
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:  # the client's close_notify
                return bytes(out)
            except ssl.SSLError as err:
                raise trio.BrokenResourceError(str(err)) from err
            if self._outgoing.pending:
                await self._flush()
            if out:
                return bytes(out)
            if not await self._fill():
                return b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self.ssl_object.write(data)
        except ssl.SSLError as err:
            raise trio.BrokenResourceError(str(err)) from err
        await self._flush()

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def _fill(self) -> bool:
        """Feed one socket read to the TLS object; False at the end of the stream."""
        data = await self.transport.receive_some(CHUNK)
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    async def _flush(self) -> None:
        async with self._send_lock:
            if self._outgoing.pending:
                await self.transport.send_all(self._outgoing.read())
