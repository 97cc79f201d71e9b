"""A disk that fails: replaces the disk queue's segment writes (``disk_files._os_write``)."""

from __future__ import annotations

import errno
import os


def failing_write(fd: int, data: memoryview) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
