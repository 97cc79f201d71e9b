"""gnsq (a gevent NSQ client nobody here wrote) round trips through pnsq's nsqd: plain, TLS,
snappy, deflate and TLS with snappy; every body arrives, is FINed, and /stats shows the feature.

gnsq does its I/O on ``gevent.socket`` directly, so it needs no monkey-patching: it runs in
this thread's gevent hub while nsqd serves from its own thread (a ``ThreadedNSQD``), and
nothing in the pytest process is patched. Every wait is a gevent wait under ``DEADLINE``.

gnsq 1.0.2's Producer cannot negotiate a feature against any nsqd as shipped: the ``OK`` nsqd
sends after an upgrade (TLS, snappy, deflate) reaches ``Producer.handle_response`` during
IDENTIFY, before the connection's response queue exists, and ``start()`` dies with a KeyError.
``UpgradingProducer`` drops that one response; everything else is gnsq's own code.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.event
import gnsq
import pytest
from test_pynsq import channel_state
from test_pynsq_transports import cert_files  # noqa: F401 - the module's certificates
from threaded_nsqd import ThreadedNSQD

from pnsq.nsqd.stats import client_stats

DEADLINE = 15.0
N = 40
BODIES = [b"gnsq-%03d-" % i + b"x" * 200 for i in range(N)]  # compressible, distinct

pytestmark = [
    pytest.mark.timeout(45),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # gnsq asks for PROTOCOL_TLSv1_2
]


class UpgradingProducer(gnsq.Producer):  # type: ignore[misc]
    """gnsq's Producer, minus its KeyError on the ``OK`` that follows a feature upgrade."""

    def handle_response(self, conn: gnsq.NsqdTCPClient, response: bytes) -> None:
        if conn in self._response_queues:  # absent only while IDENTIFY negotiates
            super().handle_response(conn, response)


class Warnings(logging.Handler):
    """What gnsq warns about (a failed or lost connection, a handler's exception) until closed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def tls_nsqd(cert_files: tuple[str, str, str]) -> Iterator[ThreadedNSQD]:  # noqa: F811
    cert, key, _ = cert_files
    server = ThreadedNSQD(tls_cert=cert, tls_key=key, https_address="", tls_required="tcp-https")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def plain_nsqd() -> Iterator[ThreadedNSQD]:
    server = ThreadedNSQD().start()
    try:
        yield server
    finally:
        server.stop()


def until(predicate: Callable[[], object]) -> None:
    """Wait, yielding to gnsq's greenlets, for nsqd-side state no gnsq signal announces."""
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        gevent.sleep(0.01)


def round_trip(server: ThreadedNSQD, **features: Any) -> list[dict[str, Any]]:
    """PUB half of BODIES and MPUB the rest with a gnsq Producer, consume them with a gnsq
    Consumer, both with ``features``; return both clients' /stats while still connected."""
    received: list[bytes] = []
    all_received = gevent.event.Event()
    consumer = gnsq.Consumer(
        "t", "c", nsqd_tcp_addresses=[server.address], max_in_flight=N, **features
    )

    @consumer.on_message.connect
    def handler(_consumer: gnsq.Consumer, message: gnsq.Message) -> None:
        received.append(message.body)  # gnsq FINs on return
        if len(received) == N:
            all_received.set()

    producer = UpgradingProducer([server.address], **features)
    warnings = Warnings()
    logging.getLogger("gnsq").addHandler(warnings)
    try:
        with gevent.Timeout(DEADLINE):  # a publish waits for its response without a bound
            producer.start()
            assert all(producer.publish("t", body) == b"OK" for body in BODIES[: N // 2])
            assert producer.multipublish("t", BODIES[N // 2 :]) == b"OK"
        consumer.start(block=False)
        assert all_received.wait(DEADLINE), f"{len(received)} of {N} bodies received"
        until(lambda: server.inspect(channel_state("t", "c")) == (0, 0, 0))  # all FINed
        stats: list[dict[str, Any]] = server.inspect(
            lambda n: [client_stats(c) for c in n.clients.values()]
        )
    finally:
        # gnsq warns "connection lost" for its own close, which says nothing about nsqd
        logging.getLogger("gnsq").removeHandler(warnings)
        consumer.close()
        producer.close()
        consumer.join(DEADLINE)
        producer.join(DEADLINE)
    assert sorted(received) == BODIES
    assert warnings.messages == []
    assert len(stats) == 2
    assert all(s["user_agent"].startswith("gnsq/") for s in stats)
    return stats


def tls_features(ca_file: str) -> dict[str, Any]:
    # gnsq wraps with ssl_version=PROTOCOL_TLSv1_2 and no hostname check; it verifies the chain
    options = {"ca_certs": ca_file, "cert_reqs": ssl.CERT_REQUIRED}
    return {"tls_v1": True, "tls_options": options}


def test_gnsq_plain(plain_nsqd: ThreadedNSQD) -> None:
    stats = round_trip(plain_nsqd)
    assert not any(s["tls"] or s["snappy"] or s["deflate"] for s in stats)


def test_gnsq_over_tls(tls_nsqd: ThreadedNSQD, cert_files: tuple[str, str, str]) -> None:  # noqa: F811
    stats = round_trip(tls_nsqd, **tls_features(cert_files[2]))
    assert all(s["tls"] and s["tls_version"] == "TLS1.2" for s in stats)
    assert not any(s["snappy"] or s["deflate"] for s in stats)


def test_gnsq_over_tls_and_snappy(
    tls_nsqd: ThreadedNSQD,
    cert_files: tuple[str, str, str],  # noqa: F811
) -> None:
    stats = round_trip(tls_nsqd, snappy=True, **tls_features(cert_files[2]))
    assert all(s["tls"] and s["snappy"] and not s["deflate"] for s in stats)


@pytest.mark.parametrize("feature", ["snappy", "deflate"])
def test_gnsq_over_compression(plain_nsqd: ThreadedNSQD, feature: str) -> None:
    stats = round_trip(plain_nsqd, **{feature: True})
    other = "deflate" if feature == "snappy" else "snappy"
    assert all(s[feature] and not s[other] and not s["tls"] for s in stats)
