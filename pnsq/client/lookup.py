"""Asking nsqlookupds which nsqds have a topic (GET /lookup?topic=).

The answer is ``{"channels": [...], "producers": [{"broadcast_address", "tcp_port", ...}]}``;
404 ``TOPIC_NOT_FOUND`` means no producer yet. Old lookupds wrap it as
``{"status_code": 200, "data": {...}}``; both shapes are read.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from ._address import parse_address
from ._http import HTTPConnection
from .errors import NSQProtocolError, ServerError


class Lookupd:
    def __init__(self, address: str, timeout: float = 2.0) -> None:
        self.address = address
        self._http = HTTPConnection(*parse_address(address, 4161), timeout=timeout)

    async def producers(self, topic: str) -> set[tuple[str, int]]:
        """``{(broadcast_address, tcp_port)}`` of the topic; errors raise NSQError."""
        status, body = await self._http.request("GET", f"/lookup?topic={quote(topic)}")
        if status == 404:
            return set()
        if status != 200:
            raise ServerError(f"HTTP_{status}", body.decode(errors="replace"))
        try:
            data: Any = json.loads(body)
            if "data" in data and "producers" not in data:
                data = data["data"]
            return {
                (str(p["broadcast_address"]), int(p["tcp_port"])) for p in data["producers"] or ()
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise NSQProtocolError(f"lookupd {self.address}: bad /lookup answer") from exc

    async def aclose(self) -> None:
        await self._http.aclose()
