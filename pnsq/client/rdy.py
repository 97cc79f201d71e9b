"""How much RDY each connection gets: a pure state machine (time is an argument, no I/O).

RDY is a per-connection cap on messages in flight (nsqd 1.x). ``max_in_flight`` is shared by all
connections: each gets ``max_in_flight // n`` (the remainder to the first ones), never more than
that nsqd's ``max_rdy_count``. With more connections than ``max_in_flight`` only
``max_in_flight`` of them hold RDY 1 at a time, and ``tick`` moves RDY from holders that sat idle
(``low_rdy_idle_timeout``) or held it too long (``low_rdy_timeout``) to others, so none starves.

Backoff, as go-nsq: a failure outside a backoff window raises the level and sets RDY 0 on every
connection for ``multiplier * 2**(level-1)`` seconds (capped, with jitter); when the window ends
one random connection gets RDY 1 to test the water; its success lowers the level (back to full
RDY at level 0), its failure raises it again. Results inside a window are not counted.

Every method returns the RDY changes as ``{connection: rdy}``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")


@dataclass(slots=True)
class _State:
    max_rdy: int
    rdy: int = 0
    in_flight: int = 0
    last_message: float = 0.0
    rdy_since: float = 0.0


class ReadyPlanner(Generic[K]):
    def __init__(
        self,
        max_in_flight: int,
        *,
        backoff_multiplier: float = 1.0,
        max_backoff_duration: float = 120.0,
        low_rdy_idle_timeout: float = 10.0,
        low_rdy_timeout: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.backoff_multiplier = backoff_multiplier
        self.max_backoff_duration = max_backoff_duration
        self.low_rdy_idle_timeout = low_rdy_idle_timeout
        self.low_rdy_timeout = low_rdy_timeout
        self.rng = rng or random.Random()
        self.backoff_level = 0
        self.backoff_until: float | None = None  # end of the current RDY 0 window
        self._conns: dict[K, _State] = {}

    # -- what the consumer reports ---------------------------------------------------------

    def add(self, key: K, max_rdy: int, now: float) -> dict[K, int]:
        self._conns[key] = _State(max_rdy, last_message=now, rdy_since=now)
        return self._rebalance(now)

    def remove(self, key: K, now: float) -> dict[K, int]:
        self._conns.pop(key, None)
        return self._rebalance(now)

    def set_max_in_flight(self, max_in_flight: int, now: float) -> dict[K, int]:
        self.max_in_flight = max_in_flight
        return self._rebalance(now)

    def on_messages(self, key: K, count: int, now: float) -> None:
        state = self._conns.get(key)
        if state is not None:
            state.in_flight += count
            state.last_message = now

    def on_done(self, key: K) -> None:
        state = self._conns.get(key)
        if state is not None and state.in_flight > 0:
            state.in_flight -= 1

    def on_success(self, now: float) -> dict[K, int]:
        if self.in_backoff_window(now) or self.backoff_level == 0:
            return {}
        self.backoff_level -= 1
        if self.backoff_level == 0:
            return self._rebalance(now)
        return self._start_window(now)

    def on_failure(self, now: float) -> dict[K, int]:
        if self.in_backoff_window(now):
            return {}
        if self.backoff_multiplier * 2.0**self.backoff_level <= self.max_backoff_duration:
            self.backoff_level += 1
        return self._start_window(now)

    def tick(self, now: float) -> dict[K, int]:
        """End a finished backoff window; rotate RDY away from idle holders."""
        if self.backoff_until is not None and now >= self.backoff_until:
            self.backoff_until = None
            return self._rebalance(now)
        if self.backoff_until is not None:
            return {}
        return self._rotate(now)

    # -- queries ---------------------------------------------------------------------------

    def in_backoff_window(self, now: float) -> bool:
        return self.backoff_until is not None and now < self.backoff_until

    def rdy(self, key: K) -> int:
        return self._conns[key].rdy

    def total_rdy(self) -> int:
        return sum(state.rdy for state in self._conns.values())

    def is_starved(self) -> bool:
        """Some connection has 85% or more of its RDY in flight (go-nsq's ``IsStarved``)."""
        return any(s.rdy > 0 and s.in_flight >= 0.85 * s.rdy for s in self._conns.values())

    def backoff_duration(self, level: int, *, jitter: bool = True) -> float:
        duration = min(self.max_backoff_duration, self.backoff_multiplier * 2.0 ** (level - 1))
        return duration * self.rng.uniform(0.5, 1.0) if jitter else duration

    # -- the decisions ---------------------------------------------------------------------

    def _budget(self) -> int:
        """RDY to hand out in total: max_in_flight, or 1 while testing the water."""
        if self.backoff_until is not None:
            return 0
        return min(1, self.max_in_flight) if self.backoff_level else self.max_in_flight

    def _start_window(self, now: float) -> dict[K, int]:
        self.backoff_until = now + self.backoff_duration(self.backoff_level)
        return self._rebalance(now)

    def _rebalance(self, now: float) -> dict[K, int]:
        budget, keys = self._budget(), list(self._conns)
        targets: dict[K, int] = dict.fromkeys(keys, 0)
        if budget >= len(keys) > 0:
            share, extra = divmod(budget, len(keys))
            for i, key in enumerate(keys):
                targets[key] = min(share + (i < extra), self._conns[key].max_rdy)
        elif budget > 0:
            holders = [k for k in keys if self._conns[k].rdy > 0][:budget]
            others = [k for k in keys if k not in holders]
            self.rng.shuffle(others)
            for key in holders + others[: budget - len(holders)]:
                targets[key] = 1
        return self._apply(targets, now)

    def _rotate(self, now: float) -> dict[K, int]:
        budget = self._budget()
        if budget == 0 or budget >= len(self._conns):
            return {}
        targets = {key: state.rdy for key, state in self._conns.items()}
        waiting = [k for k, s in self._conns.items() if s.rdy == 0]
        self.rng.shuffle(waiting)
        for key, state in self._conns.items():
            if not waiting:
                break
            idle = now - state.last_message >= self.low_rdy_idle_timeout
            held_long = now - state.rdy_since >= self.low_rdy_timeout
            if state.rdy > 0 and state.in_flight == 0 and (idle or held_long):
                targets[key] = 0
                targets[waiting.pop()] = 1
        return self._apply(targets, now)

    def _apply(self, targets: dict[K, int], now: float) -> dict[K, int]:
        changes: dict[K, int] = {}
        for key, rdy in targets.items():
            state = self._conns[key]
            if state.rdy != rdy:
                if state.rdy == 0:
                    state.rdy_since = now
                    state.last_message = max(state.last_message, now)
                state.rdy = rdy
                changes[key] = rdy
        return changes
