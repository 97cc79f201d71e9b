"""Certificates for the TLS tests (trustme) and a V2 client that upgrades its socket to TLS.

``Certs`` holds a CA, nsqd's certificate for 127.0.0.1 (files, as --tls-cert/--tls-key take
them), a client certificate from the same CA and one from a stranger CA. ``upgrade_tls`` does a
client's side of IDENTIFY's upgrade on a raw socket: the JSON response read plain, then the
handshake on the same socket, then the ``OK`` read inside TLS. ``https_get`` sends one raw
GET, over HTTPS or plain HTTP, and returns the whole answer.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import trustme
from v2client import V2Client

from pnsq.wire import FrameReader, encode_identify


@dataclass
class Certs:
    ca: trustme.CA
    cert: str
    key: str
    ca_file: str
    client: trustme.LeafCert
    stranger: trustme.LeafCert

    def client_context(
        self,
        *,
        leaf: trustme.LeafCert | None = None,
        maximum: ssl.TLSVersion | None = None,
    ) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if leaf is not None:
            leaf.configure_cert(context)
        if maximum is not None:
            context.maximum_version = maximum
        return context


def make_certs(directory: Path) -> Certs:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    client = ca.issue_cert("client@example.com")
    stranger = trustme.CA().issue_cert("stranger@example.com")
    return Certs(ca, str(cert), str(key), str(ca_file), client, stranger)


def tls_options(certs: Certs, **more: Any) -> dict[str, Any]:
    return {"tls_cert": certs.cert, "tls_key": certs.key, "https_address": "127.0.0.1:0", **more}


async def upgrade_tls(client: V2Client, context: ssl.SSLContext, **identify: Any) -> dict[str, Any]:
    """IDENTIFY with tls_v1 on ``client`` (plain), upgrade it; the JSON response."""
    response = await client.identify_json(tls_v1=True, **identify)
    assert response["tls_v1"] is True
    client.stream = trio.SSLStream(client.stream, context, server_hostname="127.0.0.1")
    await client.stream.do_handshake()
    await client.expect_response(b"OK")
    return response


async def raw_identify(stream: trio.abc.Stream, **fields: Any) -> tuple[dict[str, Any], bytes]:
    """Magic + IDENTIFY on a raw socket; the JSON response and any bytes read past it."""
    await stream.send_all(b"  V2" + encode_identify({"feature_negotiation": True, **fields}))
    frames = FrameReader()
    received = bytearray()
    with trio.fail_after(5):
        while True:
            frame = frames.next_frame()
            if frame is not None:
                break
            data = await stream.receive_some(65536)
            assert data, "closed before the IDENTIFY response"
            received += data
            frames.receive_data(bytes(data))
    # the response frame's own length tells where the upgraded stream begins
    size = int.from_bytes(received[:4], "big") + 4
    return json.loads(frame[1]), bytes(received[size:])


async def https_get(address: tuple[str, int], target: str, context: ssl.SSLContext | None) -> bytes:
    """One GET (HTTPS when ``context`` is given); the whole raw answer."""
    stream: trio.abc.Stream = await trio.open_tcp_stream(*address)
    if context is not None:
        stream = trio.SSLStream(stream, context, server_hostname="127.0.0.1", https_compatible=True)
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    await stream.send_all(request.encode())
    answer = bytearray()
    with trio.fail_after(5):
        while data := await stream.receive_some(65536):
            answer += data
    await stream.aclose()
    return bytes(answer)
