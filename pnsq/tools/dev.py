"""``pnsq dev``: a local cluster in one command (what ``make run`` starts).

Each daemon is a child process (``python -m pnsq <daemon> ...``) whose log lines are printed
with its name in front. They start one after the other: each once the one before logs that it
is listening (``TCP: listening on HOST:PORT``), so nsqd finds lookupd at its first try and the
admin starts against a lookupd that answers. An address with port 0 works too: a later
daemon's argv names an earlier one's bound address as ``{lookupd:TCP}``.

SIGINT (Ctrl-C) or SIGTERM stops every child by its PID (SIGTERM, then SIGKILL after a grace
period) in reverse start order and exits 0; a child that exits by itself, or does not start
listening in time, stops the others, and the exit code is then 1.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

import trio

from .._internal import flags
from .._internal.flags import Flag, flag
from .._internal.netaddr import split_host_port

STOP_GRACE = 10.0
START_TIMEOUT = 30.0
LISTENING = re.compile(r"\b(TCP|HTTP): listening on (\S+)")
PLACEHOLDER = re.compile(r"\{(\w+):(TCP|HTTP)\}")


@dataclass(frozen=True)
class Addresses:
    """Where the cluster listens (``pnsq dev``'s flags); port 0 picks a free port."""

    lookupd_tcp: str = "127.0.0.1:4160"
    lookupd_http: str = "127.0.0.1:4161"
    nsqd_tcp: str = "127.0.0.1:4150"
    nsqd_http: str = "127.0.0.1:4151"
    admin_http: str = "127.0.0.1:4171"
    data_path: str = "./data"


# fmt: off
FLAGS: tuple[Flag, ...] = (
    flag("data-path", flags.string, "where the daemons keep their data"),
    flag("lookupd-tcp-address", flags.address, "lookupd's TCP address", field="lookupd_tcp"),
    flag("lookupd-http-address", flags.address, "lookupd's HTTP address", field="lookupd_http"),
    flag("nsqd-tcp-address", flags.address, "nsqd's TCP address", field="nsqd_tcp"),
    flag("nsqd-http-address", flags.address, "nsqd's HTTP address", field="nsqd_http"),
    flag("admin-http-address", flags.address, "the admin's HTTP address", field="admin_http"),
)
# fmt: on


@dataclass(frozen=True)
class Daemon:
    name: str
    argv: list[str]  # "{NAME:TCP}" / "{NAME:HTTP}": an earlier daemon's bound address
    listeners: tuple[str, ...]  # the "<KIND>: listening on" lines that mean it is ready


def cluster_commands(addresses: Addresses) -> list[Daemon]:
    """The daemons of the local cluster, in start order."""
    data_path = addresses.data_path
    pnsq = [sys.executable, "-m", "pnsq"]
    return [
        Daemon(
            "lookupd",
            [
                *pnsq,
                "lookupd",
                f"--tcp-address={addresses.lookupd_tcp}",
                f"--http-address={addresses.lookupd_http}",
                f"--broadcast-address={split_host_port(addresses.lookupd_tcp)[0]}",
            ],
            ("TCP", "HTTP"),
        ),
        Daemon(
            "nsqd",
            [
                *pnsq,
                "nsqd",
                f"--tcp-address={addresses.nsqd_tcp}",
                f"--http-address={addresses.nsqd_http}",
                f"--broadcast-address={split_host_port(addresses.nsqd_tcp)[0]}",
                "--lookupd-tcp-address={lookupd:TCP}",
                f"--data-path={os.path.join(data_path, 'nsqd')}",
            ],
            ("TCP", "HTTP"),
        ),
        Daemon(
            "admin",
            [
                *pnsq,
                "admin",
                f"--http-address={addresses.admin_http}",
                "--lookupd-http-address={lookupd:HTTP}",
            ],
            ("HTTP",),
        ),
    ]


def _resolve(arg: str, bound: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: bound[f"{m[1]}:{m[2]}"], arg)


async def _relay(
    daemon: Daemon,
    stream: trio.abc.ReceiveStream,
    out: TextIO,
    bound: dict[str, str],
    ready: trio.Event,
) -> None:
    """Copy a child's output to ``out`` line by line, each line prefixed with its name;
    note its bound addresses in ``bound`` and set ``ready`` once all of them are known."""
    pending = b""
    prefix = f"{daemon.name:<8}| "
    async for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace")
            out.write(prefix + line + "\n")
            if not ready.is_set() and (found := LISTENING.search(line)):
                bound.setdefault(f"{daemon.name}:{found[1]}", found[2])
                if all(f"{daemon.name}:{kind}" in bound for kind in daemon.listeners):
                    ready.set()
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


def _summary(daemons: Sequence[Daemon], bound: dict[str, str]) -> str:
    lines = []
    for daemon in daemons:
        where = ", ".join(
            f"http://{bound[f'{daemon.name}:{kind}']}/"
            if kind == "HTTP"
            else f"tcp {bound[f'{daemon.name}:{kind}']}"
            for kind in daemon.listeners
        )
        lines.append(f"{'dev':<8}| {daemon.name} ready: {where}\n")
    return "".join(lines)


async def run_cluster(daemons: Sequence[Daemon], out: TextIO = sys.stdout) -> int:
    """Run the daemons until a signal (exit code 0) or until one of them exits (1)."""
    processes: list[trio.Process] = []
    bound: dict[str, str] = {}
    status = 0
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            done = trio.Event()

            def fail(name: str, why: str) -> None:
                nonlocal status
                if not done.is_set():
                    out.write(f"{name:<8}| {why}; stopping\n")
                    out.flush()
                    status = 1
                    done.set()

            async def watch(name: str, process: trio.Process) -> None:
                await process.wait()
                fail(name, f"exited with code {process.returncode}")

            async def wait_signal() -> None:
                async for _ in signals:
                    done.set()
                    return

            async def start_all() -> None:
                for daemon in daemons:
                    argv = [_resolve(arg, bound) for arg in daemon.argv]
                    ready = trio.Event()
                    # shielded: a process we started is always in ``processes``, to be stopped
                    with trio.CancelScope(shield=True):
                        # A new session: Ctrl-C reaches only us, and we stop the children.
                        process = await trio.lowlevel.open_process(
                            argv,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                        processes.append(process)
                    out.write(f"{'dev':<8}| started {daemon.name}: pid {process.pid}\n")
                    assert process.stdout is not None
                    nursery.start_soon(_relay, daemon, process.stdout, out, bound, ready)
                    nursery.start_soon(watch, daemon.name, process)
                    with trio.move_on_after(START_TIMEOUT):
                        await ready.wait()
                    if not ready.is_set():
                        fail(daemon.name, f"not listening after {START_TIMEOUT:g} s")
                        return
                out.write(_summary(daemons, bound))
                out.flush()

            background = trio.CancelScope()

            async def in_background() -> None:
                with background:
                    async with trio.open_nursery() as tasks:
                        tasks.start_soon(wait_signal)
                        tasks.start_soon(start_all)

            nursery.start_soon(in_background)
            await done.wait()
            background.cancel()
            for process in reversed(processes):
                await _stop(process)
            # the relays and watchers end with their children
    return status


def run(addresses: Addresses) -> int:
    os.makedirs(os.path.join(addresses.data_path, "nsqd"), exist_ok=True)
    return trio.run(run_cluster, cluster_commands(addresses))
