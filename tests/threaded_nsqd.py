"""An nsqd in its own thread and trio loop, for tests whose client runs on asyncio or tornado.

``ThreadedNSQD(**options).start()`` serves on 127.0.0.1:0 with a fresh data path (removed by
``stop()``); ``address`` is its TCP address; ``inspect(fn)`` runs ``fn(nsqd)`` in its thread.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from pnsq.nsqd.nsqd import NSQD
from pnsq.nsqd.options import Options

DEADLINE = 15.0
T = TypeVar("T")


class ThreadedNSQD:
    """An nsqd serving on 127.0.0.1:0 from its own thread and trio loop."""

    def __init__(self, **overrides: Any) -> None:
        self._data_path = tempfile.mkdtemp(prefix="pnsq-nsqd-")
        self.options = Options(
            tcp_address="127.0.0.1:0",
            http_address="",
            broadcast_address="127.0.0.1",
            data_path=self._data_path,
            **overrides,
        )
        self._started = threading.Event()
        self._nsqd: NSQD | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="nsqd", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            nsqd = NSQD(self.options)
            self._token = trio.lowlevel.current_trio_token()
            async with trio.open_nursery() as nursery:
                await nursery.start(nsqd.serve)
                self._nsqd = nsqd
                self._started.set()

        try:
            trio.run(main)
        except BaseException as exc:
            self._error = exc
        finally:
            self._started.set()

    def start(self) -> ThreadedNSQD:
        self._thread.start()
        assert self._started.wait(DEADLINE), "nsqd did not start"
        assert self._error is None, f"nsqd failed: {self._error!r}"
        return self

    def stop(self) -> None:
        if self._nsqd is not None and self._thread.is_alive():
            trio.from_thread.run_sync(self._nsqd.stop, trio_token=self._token)
        self._thread.join(DEADLINE)
        assert not self._thread.is_alive(), "nsqd did not stop"
        shutil.rmtree(self._data_path, ignore_errors=True)
        assert self._error is None, f"nsqd failed: {self._error!r}"

    @property
    def address(self) -> str:
        assert self._nsqd is not None
        assert self._nsqd.tcp_address is not None
        host, port = self._nsqd.tcp_address
        return f"{host}:{port}"

    def inspect(self, fn: Callable[[NSQD], T]) -> T:
        """Run ``fn(nsqd)`` in the daemon's thread (its state is not thread-safe)."""
        nsqd = self._nsqd
        assert nsqd is not None
        return trio.from_thread.run_sync(lambda: fn(nsqd), trio_token=self._token)
