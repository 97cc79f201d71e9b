"""pnsq: NSQ, the realtime distributed message platform, in Python.

Two versions live here: ``__version__`` is pnsq's own release, ``NSQ_VERSION`` is the NSQ release
whose behaviour pnsq reproduces. The daemons report ``NSQ_VERSION`` wherever NSQ reports its
version (``--version``, ``/info``, ``/stats``) because clients and tools parse it.
"""

from __future__ import annotations

__version__ = "0.1.0"
NSQ_VERSION = "1.3.0"

__all__ = ["NSQ_VERSION", "__version__"]
