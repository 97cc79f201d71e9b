"""``pnsq authd`` for tests: a secrets file written from Python, the daemon in the test's nursery,
and fake auth servers that misbehave (silent, junk) on 127.0.0.1:0.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from pnsq.authd.authd import Authd
from pnsq.authd.options import AuthdOptions

StartAuthd = Callable[..., Awaitable[Authd]]


def toml_secrets(secrets: list[dict[str, Any]]) -> str:
    """[[secrets]] tables; JSON values are valid TOML values for strings, ints and arrays."""
    out = []
    for entry in secrets:
        out.append("[[secrets]]")
        for key, value in entry.items():
            if key == "authorizations":
                items = ", ".join(
                    "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in a.items()) + " }"
                    for a in value
                )
                out.append(f"authorizations = [{items}]")
            else:
                out.append(f"{key} = {json.dumps(value)}")
    return "\n".join(out) + "\n"


def write_secrets(path: Path, secrets: list[dict[str, Any]]) -> Path:
    path.write_text(toml_secrets(secrets))
    return path


async def start_authd(nursery: trio.Nursery, secrets_file: Path) -> Authd:
    authd = Authd(AuthdOptions(http_address="127.0.0.1:0", secrets_file=str(secrets_file)))
    await nursery.start(authd.serve)
    return authd


def authd_address(authd: Authd) -> str:
    assert authd.http_address is not None
    return f"127.0.0.1:{authd.http_address[1]}"


async def fake_auth_server(
    nursery: trio.Nursery, reply: bytes | None, requests: list[bytes] | None = None
) -> str:
    """An HTTP server that answers every request with ``reply`` (raw bytes), or never (None);
    each request's first read is appended to ``requests``."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            request = await stream.receive_some(65536)
            if b"\r\n\r\n" in request and b"Content-Length" in request:
                head, _, body = request.partition(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += await stream.receive_some(65536)
                request = head + b"\r\n\r\n" + body
            if requests is not None:
                requests.append(request)
            if reply is None:
                await trio.sleep_forever()
            await stream.send_all(reply)

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return f"127.0.0.1:{listeners[0].socket.getsockname()[1]}"


def closed_port() -> str:
    """An address nobody listens on (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


async def https_auth_server(nursery: trio.Nursery, reply: bytes, context: ssl.SSLContext) -> str:
    """``fake_auth_server`` over TLS with the server ``context``: answers ``reply`` to anyone."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(raw: trio.SocketStream) -> None:
        stream = trio.SSLStream(raw, context, server_side=True)
        try:
            await stream.receive_some(65536)
            await stream.send_all(reply)
            await stream.aclose()
        except trio.BrokenResourceError:
            pass  # the client refused our certificate: that is the point of some tests

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return f"https://127.0.0.1:{listeners[0].socket.getsockname()[1]}/auth"
