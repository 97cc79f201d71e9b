"""pynsq, NSQ's official Python client, against our nsqd.

Our nsqd runs in a background thread (its own ``trio.run``); pynsq runs on Tornado's IOLoop (over
asyncio) in the test thread, each scenario under a deadline. pynsq's own deprecation warnings on
current Python and Tornado are ignored; anything pynsq logs at ERROR level fails the test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import nsq
import pytest
from threaded_nsqd import ThreadedNSQD

from pnsq.nsqd.nsqd import NSQD

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

DEADLINE = 15.0
T = TypeVar("T")


@pytest.fixture
def nsqd_thread() -> Iterator[ThreadedNSQD]:
    server = ThreadedNSQD()
    server.start()
    try:
        yield server
    finally:
        server.stop()


_closed_at: list[float] = []  # when the scenario closed its pynsq clients (close_all)


@pytest.fixture(autouse=True)
def pynsq_logs_no_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Anything pynsq logs at ERROR before the scenario closes its clients fails the test.

    After that moment pynsq reports its own close as ``IntegrityError('failed to unpack
    size')`` when a read was pending (its ``_read_size`` sees the closed stream), whatever the
    server did, so what it logs then says nothing about nsqd.
    """
    caplog.set_level(logging.INFO, logger="nsq")
    _closed_at.clear()
    yield
    errors = [
        r
        for r in caplog.get_records("call")
        if r.name.startswith("nsq")
        and r.levelno >= logging.ERROR
        and (not _closed_at or r.created < _closed_at[0])
    ]
    assert not errors, f"pynsq logged an error: {errors[0].getMessage()}"


def close_all(*clients: Any) -> None:
    _closed_at.append(time.time())
    for client in clients:
        client.close()


def run_tornado(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run ``scenario`` on a fresh asyncio loop (Tornado's IOLoop wraps it) under a deadline."""
    asyncio.run(asyncio.wait_for(scenario(), DEADLINE))


async def until(predicate: Callable[[], object]) -> None:
    """Wait for pynsq-side state that no callback announces (e.g. a reader's FINs sent)."""
    while not predicate():  # noqa: ASYNC110 - no event reaches this thread from nsqd's
        await asyncio.sleep(0.01)


class ReadyWriter(nsq.Writer):  # type: ignore[misc]
    """A Writer whose ``ready`` future resolves once its connection has negotiated."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        super().__init__(*args, **kwargs)

    def _on_connection_ready(self, conn: Any, **kwargs: Any) -> None:
        super()._on_connection_ready(conn, **kwargs)
        if not self.ready.done():
            self.ready.set_result(None)

    async def publish(self, method: str, *args: Any) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        getattr(self, method)(*args, callback=lambda conn, data: done.set_result(data))
        return await done

    def close(self) -> None:
        for conn in list(self.conns.values()):
            conn.close()


class RecordingReader(nsq.Reader):  # type: ignore[misc]
    """A Reader that keeps what nsqd answered to its IDENTIFY."""

    identify_responses: list[dict[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.identify_responses = []
        super().__init__(*args, **kwargs)

    def _on_connection_identify_response(self, conn: Any, data: Any, **kwargs: Any) -> None:
        self.identify_responses.append(data)
        super()._on_connection_identify_response(conn, data, **kwargs)


def channel_state(topic: str, channel: str) -> Callable[[NSQD], tuple[int, int, int]]:
    def state(nsqd: NSQD) -> tuple[int, int, int]:
        ch = nsqd.topics[topic].channels[channel]
        return ch.depth(), len(ch.in_flight), ch.timeout_count

    return state


def test_pynsq_writer_pub_mpub_and_dpub_reach_a_pynsq_reader(nsqd_thread: ThreadedNSQD) -> None:
    bodies: list[bytes] = []

    async def scenario() -> None:
        all_received = asyncio.get_running_loop().create_future()

        def handler(message: nsq.Message) -> bool:
            bodies.append(message.body)
            if len(bodies) == 5 and not all_received.done():
                all_received.set_result(None)
            return True

        reader = RecordingReader(
            topic="t",
            channel="c",
            message_handler=handler,
            nsqd_tcp_addresses=[nsqd_thread.address],
            max_in_flight=10,
        )
        writer = ReadyWriter([nsqd_thread.address])
        await writer.ready
        assert await writer.publish("pub", "t", b"one") == b"OK"
        assert await writer.publish("mpub", "t", [b"two", b"three", b"four"]) == b"OK"
        assert await writer.publish("dpub", "t", 50, b"five") == b"OK"
        await all_received
        await until(lambda: nsqd_thread.inspect(channel_state("t", "c")) == (0, 0, 0))
        close_all(reader, writer)

    run_tornado(scenario)
    assert sorted(bodies) == sorted([b"one", b"two", b"three", b"four", b"five"])


def test_pynsq_reader_identify_and_feature_negotiation_are_accepted(
    nsqd_thread: ThreadedNSQD,
) -> None:
    async def scenario() -> None:
        reader = RecordingReader(
            topic="t",
            channel="c",
            message_handler=lambda message: True,
            nsqd_tcp_addresses=[nsqd_thread.address],
            max_in_flight=5,
            heartbeat_interval=10,
            msg_timeout=30,  # pynsq takes seconds
            output_buffer_size=8192,
            output_buffer_timeout=100,
            user_agent="interop-test",
        )
        await until(lambda: reader.identify_responses and reader.conns)
        (response,) = reader.identify_responses
        assert response["max_rdy_count"] == 2500
        assert response["version"] == "1.3.0"
        assert response["msg_timeout"] == 30000
        assert response["output_buffer_size"] == 8192
        assert response["output_buffer_timeout"] == 100
        assert response["auth_required"] is False
        clients = nsqd_thread.inspect(lambda nsqd: list(nsqd.clients.values()))
        assert [(c.user_agent, c.heartbeat_interval) for c in clients] == [("interop-test", 10.0)]
        close_all(reader)

    run_tornado(scenario)


def test_a_failing_pynsq_handler_sees_the_message_again_with_attempts_2(
    nsqd_thread: ThreadedNSQD,
) -> None:
    seen: list[tuple[bytes, int, bytes]] = []

    async def scenario() -> None:
        finished = asyncio.get_running_loop().create_future()

        def handler(message: nsq.Message) -> bool:
            seen.append((message.id, message.attempts, message.body))
            if message.attempts == 1:
                return False  # pynsq answers REQ
            finished.set_result(None)
            return True

        reader = nsq.Reader(
            topic="t",
            channel="c",
            message_handler=handler,
            nsqd_tcp_addresses=[nsqd_thread.address],
            max_in_flight=1,
            requeue_delay=0,  # REQ <id> 0, not pynsq's 90 s per attempt
            max_backoff_duration=0.5,  # keep pynsq's backoff after a failure short
        )
        writer = ReadyWriter([nsqd_thread.address])
        await writer.ready
        assert await writer.publish("pub", "t", b"flaky") == b"OK"
        await finished
        await until(lambda: nsqd_thread.inspect(channel_state("t", "c")) == (0, 0, 0))
        close_all(reader, writer)

    run_tornado(scenario)
    (first_id, first_attempts, body), (second_id, second_attempts, _) = seen
    assert (first_attempts, second_attempts) == (1, 2)
    assert first_id == second_id
    assert body == b"flaky"
    requeues = nsqd_thread.inspect(lambda nsqd: nsqd.topics["t"].channels["c"].requeue_count)
    assert requeues == 1


def test_pynsq_message_touch_keeps_a_slow_message_in_flight(nsqd_thread: ThreadedNSQD) -> None:
    deliveries: list[int] = []

    async def scenario() -> None:
        done = asyncio.get_running_loop().create_future()

        async def work(message: nsq.Message) -> None:
            # Hold the message for 1.5 msg_timeouts, touching it well within each.
            for _ in range(5):
                await asyncio.sleep(0.3)
                message.touch()
            message.finish()
            done.set_result(None)

        workers: list[asyncio.Task[None]] = []

        def handler(message: nsq.Message) -> None:
            deliveries.append(message.attempts)
            message.enable_async()
            workers.append(asyncio.ensure_future(work(message)))

        reader = nsq.Reader(
            topic="t",
            channel="c",
            message_handler=handler,
            nsqd_tcp_addresses=[nsqd_thread.address],
            max_in_flight=1,
            msg_timeout=1,  # seconds: the shortest nsqd allows
        )
        writer = ReadyWriter([nsqd_thread.address])
        await writer.ready
        assert await writer.publish("pub", "t", b"slow") == b"OK"
        await done
        await until(lambda: nsqd_thread.inspect(channel_state("t", "c"))[:2] == (0, 0))
        close_all(reader, writer)

    run_tornado(scenario)
    assert deliveries == [1], "touched in time, the message was never redelivered"
    assert nsqd_thread.inspect(channel_state("t", "c")) == (0, 0, 0)
