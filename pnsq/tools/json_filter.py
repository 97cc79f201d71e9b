"""nsq_to_nsq's JSON filters: which messages to forward, and which of their fields.

``--require-json-field F`` forwards only JSON objects that have a top-level ``F``;
``--require-json-value V`` further requires ``F`` to equal ``V``: a JSON string compares as
text, a JSON number as a number when ``V`` parses as one (``1``, ``1.0`` and ``1e0`` match
``1``); other types never match. ``--whitelist-json-field`` (repeatable) forwards a new object
with only those fields, compact and with sorted keys, whole numbers written as integers (what
nsq_to_nsq's re-encoding produces).

A message a filter is on for that is not JSON, or not an object, is dropped (FINed, logged),
as nsq_to_nsq drops non-JSON. Where nsq_to_nsq REQs instead (a missing field when a value is
required; a whitelist applied to a non-object) the message could never pass however often it
came back, so it is dropped too, and said so.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("pnsq.tools.to_nsq")


class JSONFilter:
    def __init__(self, require_field: str = "", require_value: str = "",
                 whitelist: Sequence[str] = ()) -> None:  # fmt: skip
        if require_value and not require_field:
            raise ValueError("--require-json-value needs --require-json-field")
        self.require_field, self.require_value = require_field, require_value
        self.whitelist = tuple(whitelist)
        self.number = _as_number(require_value)

    @property
    def active(self) -> bool:
        return bool(self.require_field or self.whitelist)

    def apply(self, body: bytes) -> bytes | None:
        """The body to forward, or None to drop the message."""
        if not self.active:
            return body
        try:
            document = json.loads(body)
        except ValueError:
            log.warning("dropped a message that is not JSON: %.200r", body)
            return None
        if not isinstance(document, dict):
            log.warning("dropped a message that is not a JSON object: %.200r", body)
            return None
        if self.require_field and not self._passes(document):
            return None
        if not self.whitelist:
            return body
        kept = {key: _whole(document[key]) for key in self.whitelist if key in document}
        return json.dumps(kept, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()

    def _passes(self, document: dict[str, Any]) -> bool:
        if self.require_field not in document:
            if self.require_value:
                log.warning("dropped a message without the field %r", self.require_field)
            return False
        if not self.require_value:
            return True
        value = document[self.require_field]
        if isinstance(value, str):
            return value == self.require_value
        if (
            self.number is not None
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            return float(value) == self.number
        return False


def _as_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value
