"""pynsq (NSQ's official Python client) over pnsq's TLS, snappy and deflate connections: a
Writer publishes, a Reader consumes, both with the feature negotiated; /stats says so."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nsq
import pytest
from test_pynsq import (  # the helpers, and the fixture that fails on pynsq errors
    ReadyWriter,
    channel_state,
    close_all,
    pynsq_logs_no_errors,  # noqa: F401
    run_tornado,
    until,
)
from threaded_nsqd import ThreadedNSQD

from pnsq.nsqd.stats import client_stats

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    import trustme

    directory: Path = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    paths = [directory / name for name in ("cert.pem", "key.pem", "ca.pem")]
    server.cert_chain_pems[0].write_to_path(str(paths[0]))
    server.private_key_pem.write_to_path(str(paths[1]))
    ca.cert_pem.write_to_path(str(paths[2]))
    return str(paths[0]), str(paths[1]), str(paths[2])


@pytest.fixture
def tls_nsqd(cert_files: tuple[str, str, str]) -> Iterator[ThreadedNSQD]:
    cert, key, _ = cert_files
    server = ThreadedNSQD(tls_cert=cert, tls_key=key, https_address="", tls_required="tcp-https")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def round_trip(server: ThreadedNSQD, **features: Any) -> list[dict[str, Any]]:
    """Publish 3 bodies (PUB, MPUB) and consume them with ``features``; the clients' /stats."""
    bodies: list[bytes] = []
    stats: list[dict[str, Any]] = []

    async def scenario() -> None:
        received = asyncio.get_running_loop().create_future()

        def handler(message: nsq.Message) -> bool:
            bodies.append(message.body)
            if len(bodies) == 3 and not received.done():
                received.set_result(None)
            return True

        reader = nsq.Reader(
            topic="t",
            channel="c",
            message_handler=handler,
            nsqd_tcp_addresses=[server.address],
            max_in_flight=10,
            **features,
        )
        writer = ReadyWriter([server.address], **features)
        await writer.ready
        assert await writer.publish("pub", "t", b"one" * 100) == b"OK"
        assert await writer.publish("mpub", "t", [b"two" * 100, b"three" * 100]) == b"OK"
        await received
        await until(lambda: server.inspect(channel_state("t", "c")) == (0, 0, 0))  # all FINed
        stats.extend(server.inspect(lambda n: [client_stats(c) for c in n.clients.values()]))
        close_all(reader, writer)

    run_tornado(scenario)
    assert sorted(bodies) == sorted([b"one" * 100, b"two" * 100, b"three" * 100])
    return stats


def test_pynsq_over_tls(tls_nsqd: ThreadedNSQD, cert_files: tuple[str, str, str]) -> None:
    options = {"ca_certs": cert_files[2], "cert_reqs": ssl.CERT_REQUIRED}
    stats = round_trip(tls_nsqd, tls_v1=True, tls_options=options)
    assert len(stats) == 2
    assert all(s["tls"] and s["tls_version"] in ("TLS1.2", "TLS1.3") for s in stats)


def test_pynsq_over_tls_and_snappy(
    tls_nsqd: ThreadedNSQD, cert_files: tuple[str, str, str]
) -> None:
    options = {"ca_certs": cert_files[2], "cert_reqs": ssl.CERT_REQUIRED}
    stats = round_trip(tls_nsqd, tls_v1=True, tls_options=options, snappy=True)
    assert all(s["tls"] and s["snappy"] for s in stats)


@pytest.mark.parametrize("feature", ["snappy", "deflate"])
def test_pynsq_over_compression(feature: str) -> None:
    server = ThreadedNSQD().start()
    try:
        stats = round_trip(server, **{feature: True})
    finally:
        server.stop()
    assert len(stats) == 2
    assert all(s[feature] and not s["tls"] for s in stats)
