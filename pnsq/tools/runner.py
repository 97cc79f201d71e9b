"""How every long-running tool runs: under trio, stopped cleanly by Ctrl-C or SIGTERM.

A tool is ``async def main(stop: anyio.Event) -> int``. The first SIGINT or SIGTERM sets
``stop``: the tool finishes or requeues what it holds (a consumer's ``close()``: CLS, in-flight
handlers done, FIN/REQ sent), flushes, and returns its exit code. A second signal gives up on
that and cancels everything (exit code 130, as a shell reports an interrupted program).

Exit codes shared by the tools: 0 done, 1 failed (what failed is on stderr), 130 interrupted
twice. A tool that could not do all it was asked (say, ``pnsq pub`` with unacknowledged lines)
returns 1 and says how much was not done.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable

import anyio
import trio

from ..client import NSQError

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130

ToolMain = Callable[[anyio.Event], Awaitable[int]]


def run_tool(name: str, main: ToolMain) -> int:
    """Run ``main`` to its exit code; errors the user can act on become one line on stderr."""
    try:
        return trio.run(_supervise, main)
    except Exception as exc:
        cause = innermost(exc)
        if not isinstance(cause, NSQError | OSError | ValueError):
            raise
        print(f"pnsq {name}: {cause}", file=sys.stderr)
        return EXIT_FAILED


def innermost(exc: BaseException) -> BaseException:
    """The one error inside trio's exception groups: every nursery (ours in ``_supervise``, a
    tool's own task groups) wraps what crosses it, even a lone exception."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def _supervise(main: ToolMain) -> int:
    stop = anyio.Event()
    code = EXIT_INTERRUPTED
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for _ in signals:
                    if stop.is_set():
                        nursery.cancel_scope.cancel()
                        return
                    stop.set()

            async def work() -> None:
                nonlocal code
                code = await main(stop)
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            nursery.start_soon(work)
    return code
