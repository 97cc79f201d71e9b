"""pynsq with ``auth_secret`` against pnsq nsqd and ``pnsq authd``: the AUTH flow NSQ's own
Python client runs (IDENTIFY says auth_required, AUTH, then SUB or PUB), end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nsq
import pytest
from auth_helpers import write_secrets
from test_pynsq import (  # the helpers, and the fixture that fails on pynsq errors
    ReadyWriter,
    close_all,
    pynsq_logs_no_errors,  # noqa: F401
    run_tornado,
)
from threaded_nsqd import ThreadedDaemon, ThreadedNSQD

from pnsq.authd.authd import Authd
from pnsq.authd.options import AuthdOptions

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

SECRETS = [
    {
        "secret": "writer-secret",
        "identity": "writer",
        "authorizations": [{"topic": "^t$", "channels": [".*"], "permissions": ["publish"]}],
    },
    {
        "secret": "reader-secret",
        "identity": "reader",
        "identity_url": "https://example.com/reader",
        "authorizations": [{"topic": "^t$", "channels": ["^c$"], "permissions": ["subscribe"]}],
    },
]


@pytest.fixture
def nsqd_with_authd(tmp_path: Path) -> Iterator[ThreadedNSQD]:
    options = AuthdOptions(
        http_address="127.0.0.1:0",
        secrets_file=str(write_secrets(tmp_path / "secrets.toml", SECRETS)),
    )
    authd = ThreadedDaemon(lambda: Authd(options), "authd").start()
    try:
        assert authd.daemon.http_address is not None
        port = authd.daemon.http_address[1]
        nsqd = ThreadedNSQD(auth_http_addresses=(f"127.0.0.1:{port}",)).start()
        try:
            yield nsqd
        finally:
            nsqd.stop()
    finally:
        authd.stop()


def test_pynsq_writer_and_reader_with_auth_secret_round_trip(
    nsqd_with_authd: ThreadedNSQD,
) -> None:
    received: list[bytes] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        got = loop.create_future()

        def handler(message: nsq.Message) -> bool:
            received.append(message.body)
            if not got.done():
                got.set_result(None)
            return True

        address = nsqd_with_authd.address
        writer = ReadyWriter([address], auth_secret="writer-secret")  # ready once authed
        reader = nsq.Reader(
            topic="t",
            channel="c",
            message_handler=handler,
            nsqd_tcp_addresses=[address],
            auth_secret="reader-secret",
        )
        await writer.ready
        assert await writer.publish("pub", "t", b"secret hello") == b"OK"
        await got
        identities = nsqd_with_authd.inspect(
            lambda nsqd: sorted(
                (c.auth_state.identity, c.auth_state.identity_url)
                for c in nsqd.clients.values()
                if c.auth_state is not None
            )
        )
        assert identities == [("reader", "https://example.com/reader"), ("writer", "")]
        close_all(reader, writer)

    run_tornado(scenario)
    assert received == [b"secret hello"]
