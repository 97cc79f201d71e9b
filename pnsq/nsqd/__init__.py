"""nsqd: the broker. ``NSQD`` holds the state; ``daemon.run`` runs it as a process."""

from __future__ import annotations

from .nsqd import NSQD
from .options import Options

__all__ = ["NSQD", "Options"]
