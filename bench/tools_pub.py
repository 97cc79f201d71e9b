"""How fast ``pnsq pub`` (to_nsq) gets a file into an nsqd: the real CLI, end to end.

Writes a file of ``--lines`` lines of ``--size`` bytes in a temporary directory, starts an nsqd
(``<this python> -m pnsq nsqd`` unless ``--nsqd-cmd`` names another, e.g. Go's nsqd) on two free
127.0.0.1 ports with a memory queue big enough to hold the whole file, times ``pnsq pub
--input=FILE`` as a child process (start-up included), checks through ``/stats`` that nsqd holds
every line, and stops nsqd by its PID (SIGTERM, then SIGKILL after 5 s). Issue 14's target:
>= 200,000 msg/s for 1,000,000 lines.

    .venv/bin/python bench/tools_pub.py [--lines 1000000] [--size 200] [--nsqd-cmd PATH]
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TARGET = 200_000
TOPIC = "pub_bench"
PUB_TIMEOUT = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_input(path: Path, lines: int, size: int) -> None:
    """``lines`` distinct lines of exactly ``size`` bytes (number, then padding)."""
    with path.open("wb") as file:
        for start in range(0, lines, 10_000):
            rows = (b"%d " % i for i in range(start, min(start + 10_000, lines)))
            file.write(b"".join(row.ljust(size, b"x") + b"\n" for row in rows))


def start_nsqd(cmd: list[str], data: Path, lines: int) -> tuple[subprocess.Popen[bytes], str, str]:
    tcp, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    argv = [
        *cmd,
        f"--tcp-address={tcp}",
        f"--http-address={http}",
        f"--data-path={data}",
        f"--mem-queue-size={lines + 1}",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{http}/ping", timeout=1):
                return process, tcp, http
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    stop(process)
    raise SystemExit(f"nsqd did not start: {shlex.join(argv)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def message_count(http: str) -> int:
    with urllib.request.urlopen(f"http://{http}/stats?format=json&topic={TOPIC}", timeout=10) as r:
        stats = json.load(r)
    return sum(t["message_count"] for t in stats.get("topics") or [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=200, help="bytes per line, newline excluded")
    parser.add_argument("--nsqd-cmd", default=f"{shlex.quote(sys.executable)} -m pnsq nsqd")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pnsq-bench-pub-") as tmp:
        path = Path(tmp) / "input.txt"
        write_input(path, args.lines, args.size)
        (Path(tmp) / "data").mkdir()
        nsqd, tcp, http = start_nsqd(shlex.split(args.nsqd_cmd), Path(tmp) / "data", args.lines)
        try:
            pub = [sys.executable, "-m", "pnsq", "pub", f"--topic={TOPIC}"]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            result = subprocess.run(
                [*pub, f"--nsqd-tcp-address={tcp}", f"--input={path}"],
                capture_output=True,
                timeout=PUB_TIMEOUT,
                check=False,
            )
            elapsed = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            held = message_count(http)
        finally:
            stop(nsqd)
    summary = result.stderr.decode().strip().splitlines()[-1:] or ["(no output)"]
    rate = args.lines / elapsed
    print(f"pnsq pub: {args.lines:,} lines of {args.size} B in {elapsed:.2f} s = {rate:,.0f} msg/s")
    print(f"  (process start-up included; target {TARGET:,} msg/s; nsqd holds {held:,} messages)")
    print(f"  its own summary: {summary[0]}")
    print(f"  pnsq pub's CPU: {cpu:.2f} s = {cpu / args.lines * 1e6:.2f} us per line")
    if result.returncode != 0 or held != args.lines:
        print(f"FAILED: exit code {result.returncode}, {held:,} of {args.lines:,} messages held")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
