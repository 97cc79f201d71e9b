"""``host:port`` strings to tuples, with NSQ's default ports."""

from __future__ import annotations

from pnsq._internal.netaddr import split_host_port


def parse_address(address: str, default_port: int) -> tuple[str, int]:
    """``"host:port"``, ``"[::1]:4150"``, ``"host"`` or ``"http://host:port"`` -> ``(host, port)``."""
    text = address.removeprefix("http://").rstrip("/")
    try:
        return split_host_port(text)
    except ValueError:
        if text.rpartition(":")[2].isdigit() and not text.endswith("]"):
            raise
        return text.strip("[]"), default_port
