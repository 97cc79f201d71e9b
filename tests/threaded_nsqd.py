"""pnsq daemons in their own thread and trio loop, for tests whose client runs on asyncio or tornado.

``ThreadedNSQD(**options).start()`` serves on 127.0.0.1:0 with a fresh data path (removed by
``stop()``); ``address`` is its TCP address. ``ThreadedLookupd(**options).start()`` serves TCP and
HTTP on 127.0.0.1:0; ``tcp`` (for ``nsqlookupd_tcp_addresses``) and ``http`` (for a consumer's
``lookupd_http_addresses``) are its addresses. On both, ``inspect(fn)`` runs ``fn(daemon)`` in
the daemon's thread.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, Self, TypeVar

import trio

from pnsq.lookupd import Lookupd, LookupdOptions
from pnsq.nsqd.nsqd import NSQD
from pnsq.nsqd.options import Options

DEADLINE = 15.0
T = TypeVar("T")


class Daemon(Protocol):
    async def serve(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...

    def stop(self) -> None: ...


D = TypeVar("D", bound=Daemon)


class ThreadedDaemon(Generic[D]):
    """``make()``'s daemon serving from its own thread and trio loop, between start and stop."""

    def __init__(self, make: Callable[[], D], name: str) -> None:
        self._make = make
        self._started = threading.Event()
        self._daemon: D | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            daemon = self._make()
            self._token = trio.lowlevel.current_trio_token()
            async with trio.open_nursery() as nursery:
                await nursery.start(daemon.serve)
                self._daemon = daemon
                self._started.set()

        try:
            trio.run(main)
        except BaseException as exc:
            self._error = exc
        finally:
            self._started.set()

    def start(self) -> Self:
        self._thread.start()
        assert self._started.wait(DEADLINE), f"{self._thread.name} did not start"
        assert self._error is None, f"{self._thread.name} failed: {self._error!r}"
        return self

    def stop(self) -> None:
        if self._daemon is not None and self._thread.is_alive():
            trio.from_thread.run_sync(self._daemon.stop, trio_token=self._token)
        self._thread.join(DEADLINE)
        assert not self._thread.is_alive(), f"{self._thread.name} did not stop"
        assert self._error is None, f"{self._thread.name} failed: {self._error!r}"

    @property
    def daemon(self) -> D:
        assert self._daemon is not None, "not started"
        return self._daemon

    def inspect(self, fn: Callable[[D], T]) -> T:
        """Run ``fn(daemon)`` in the daemon's thread (its state is not thread-safe)."""
        daemon = self.daemon
        return trio.from_thread.run_sync(lambda: fn(daemon), trio_token=self._token)


def _address(bound: tuple[str, int] | None) -> str:
    assert bound is not None
    return "{}:{}".format(*bound)


class ThreadedNSQD(ThreadedDaemon[NSQD]):
    """An nsqd serving on 127.0.0.1:0 from its own thread and trio loop."""

    def __init__(self, **overrides: Any) -> None:
        self._data_path = tempfile.mkdtemp(prefix="pnsq-nsqd-")
        defaults = {
            "tcp_address": "127.0.0.1:0",
            "http_address": "",
            "broadcast_address": "127.0.0.1",
        }
        self.options = Options(**{**defaults, "data_path": self._data_path, **overrides})
        super().__init__(lambda: NSQD(self.options), "nsqd")

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            shutil.rmtree(self._data_path, ignore_errors=True)

    @property
    def address(self) -> str:
        return _address(self.daemon.tcp_address)


class ThreadedLookupd(ThreadedDaemon[Lookupd]):
    """An nsqlookupd serving TCP and HTTP on 127.0.0.1:0 from its own thread and trio loop."""

    def __init__(self, **overrides: Any) -> None:
        defaults = {"tcp_address": "127.0.0.1:0", "http_address": "127.0.0.1:0"}
        self.options = LookupdOptions(**{**defaults, "broadcast_address": "127.0.0.1", **overrides})
        super().__init__(lambda: Lookupd(self.options), "nsqlookupd")

    @property
    def tcp(self) -> str:
        return _address(self.daemon.tcp_address)

    @property
    def http(self) -> str:
        return _address(self.daemon.http_address)
