"""``pnsq dev``: a local cluster in one command (what ``make run`` starts).

Each daemon is a child process (``python -m pnsq <daemon> ...``) whose log lines are printed
with its name in front. SIGINT (Ctrl-C) or SIGTERM stops every child by its PID (SIGTERM, then
SIGKILL after a grace period) in reverse start order and exits 0; a child that exits by itself
stops the others, and the exit code is then 1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import TextIO

import trio

STOP_GRACE = 10.0


def cluster_commands(data_path: str, host: str = "127.0.0.1") -> list[tuple[str, list[str]]]:
    """(name, argv) of each daemon of the local cluster, in start order."""
    pnsq = [sys.executable, "-m", "pnsq"]
    return [
        (
            "lookupd",
            [
                *pnsq,
                "lookupd",
                f"--tcp-address={host}:4160",
                f"--http-address={host}:4161",
                f"--broadcast-address={host}",
            ],
        ),
        (
            "nsqd",
            [
                *pnsq,
                "nsqd",
                f"--tcp-address={host}:4150",
                f"--http-address={host}:4151",
                f"--broadcast-address={host}",
                f"--lookupd-tcp-address={host}:4160",
                f"--data-path={os.path.join(data_path, 'nsqd')}",
            ],
        ),
        # nsqadmin goes here once pnsq has it, e.g.
        # ("admin", [*pnsq, "admin", f"--http-address={host}:4171",
        #            f"--lookupd-http-address={host}:4161"]),
    ]


async def _relay(name: str, stream: trio.abc.ReceiveStream, out: TextIO) -> None:
    """Copy a child's output to ``out`` line by line, each line prefixed with its name."""
    pending = b""
    prefix = f"{name:<8}| "
    async for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            out.write(prefix + line.decode(errors="replace") + "\n")
        out.flush()
    if pending:
        out.write(prefix + pending.decode(errors="replace") + "\n")
        out.flush()


async def _stop(process: trio.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    with trio.move_on_after(STOP_GRACE):
        await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()


async def run_cluster(commands: Sequence[tuple[str, list[str]]], out: TextIO = sys.stdout) -> int:
    """Run the daemons until a signal (exit code 0) or until one of them exits (1)."""
    processes: list[trio.Process] = []
    status = 0
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            done = trio.Event()

            async def watch(name: str, process: trio.Process) -> None:
                nonlocal status
                await process.wait()
                if not done.is_set():
                    out.write(f"{name:<8}| exited with code {process.returncode}; stopping\n")
                    status = 1
                    done.set()

            signal_scope = trio.CancelScope()

            async def wait_signal() -> None:
                with signal_scope:
                    async for _ in signals:
                        done.set()
                        return

            nursery.start_soon(wait_signal)
            for name, argv in commands:
                # A new session: Ctrl-C reaches only us, and we stop the children in order.
                process = await trio.lowlevel.open_process(
                    argv,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                processes.append(process)
                assert process.stdout is not None
                nursery.start_soon(_relay, name, process.stdout, out)
                nursery.start_soon(watch, name, process)
            await done.wait()
            for process in reversed(processes):
                await _stop(process)
            signal_scope.cancel()  # the relays end with their children's output
    return status


def run(data_path: str) -> int:
    os.makedirs(os.path.join(data_path, "nsqd"), exist_ok=True)
    return trio.run(run_cluster, cluster_commands(data_path))
