"""A child process's output read line by line on a thread, waited on under a deadline.

``read_until(pattern)`` returns the first line from now on that matches (failing at the end of
the output or at the deadline, with everything read so far in the message); ``rest()`` reads to
the end of the output. Used by the tests that run ``pnsq`` as a process.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from typing import TextIO


class ProcessLines:
    def __init__(self, stream: TextIO | None, name: str) -> None:
        assert stream is not None
        self.name = name
        self.output: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: TextIO) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put("")  # the end of the output

    def read_until(self, pattern: str, deadline: float = 20.0) -> re.Match[str]:
        end = time.monotonic() + deadline
        while (left := end - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            assert line, f"{self.name} ended:\n" + "".join(self.output)
            self.output.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no {pattern!r} from {self.name}:\n" + "".join(self.output))

    def rest(self, deadline: float = 10.0) -> list[str]:
        """Every line until the output ends (the process exited); all lines read so far."""
        end = time.monotonic() + deadline
        while (line := self._lines.get(timeout=max(end - time.monotonic(), 0.01))) != "":
            self.output.append(line)
        return self.output
