"""Go's duration syntax (``time.ParseDuration`` and ``Duration.String``), exactly.

NSQ's flags, config files and HTTP answers spell durations the Go way (``60s``, ``1m0s``,
``250ms``), and operators copy those strings between NSQ and pnsq, so both directions follow Go
to the letter: the same accepted grammar, the same overflow limits, the same error texts.
The work is done on integer nanoseconds like Go's ``int64``; the float-seconds wrappers are what
the rest of pnsq uses.
"""

from __future__ import annotations

__all__ = ["format_duration", "format_duration_ns", "parse_duration", "parse_duration_ns"]

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign, what Go prints
    "\u03bcs": 1_000,  # Greek small letter mu, also accepted by Go
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_LIMIT = 1 << 63  # Go's durations are int64 nanoseconds
_DIGITS = frozenset("0123456789")


def _go_quote(text: str) -> str:
    """Quote like Go's time package: non-ASCII and control bytes as \\x escapes."""
    out = ['"']
    for char in text:
        if char < " " or char > "\x7f":
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        elif char in '"\\':
            out.append("\\" + char)
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _leading_int(text: str, pos: int) -> tuple[int, int]:
    """Digits at ``pos`` as an integer; overflow past 2**63 is an error, as in Go."""
    value = 0
    while pos < len(text) and text[pos] in _DIGITS:
        if value > _LIMIT // 10:
            raise OverflowError
        value = value * 10 + int(text[pos])
        if value > _LIMIT:
            raise OverflowError
        pos += 1
    return value, pos


def _leading_fraction(text: str, pos: int) -> tuple[int, float, int]:
    """Digits after a '.', as (numerator, scale); digits past int64 precision are skipped."""
    value, scale, overflow = 0, 1.0, False
    while pos < len(text) and text[pos] in _DIGITS:
        if not overflow:
            candidate = value * 10 + int(text[pos])
            if value > (_LIMIT - 1) // 10 or candidate > _LIMIT:
                overflow = True
            else:
                value, scale = candidate, scale * 10
        pos += 1
    return value, scale, pos


def parse_duration_ns(text: str) -> int:
    """Parse a Go duration string (``"1h15m30.5s"``, ``"-250ms"``, ``"0"``) into nanoseconds.

    Raises ValueError with Go's own message, e.g. ``time: invalid duration "abc"``.
    """
    invalid = ValueError(f"time: invalid duration {_go_quote(text)}")
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total, pos = 0, 0
    while pos < len(rest):
        if rest[pos] != "." and rest[pos] not in _DIGITS:
            raise invalid
        start = pos
        try:
            whole, pos = _leading_int(rest, pos)
        except OverflowError:
            raise invalid from None
        has_whole = pos != start
        fraction, scale, has_fraction = 0, 1.0, False
        if pos < len(rest) and rest[pos] == ".":
            fraction, scale, end = _leading_fraction(rest, pos + 1)
            has_fraction, pos = end != pos + 1, end
        if not has_whole and not has_fraction:
            raise invalid
        unit_start = pos
        while pos < len(rest) and rest[pos] != "." and rest[pos] not in _DIGITS:
            pos += 1
        unit = rest[unit_start:pos]
        if not unit:
            raise ValueError(f"time: missing unit in duration {_go_quote(text)}")
        if unit not in _NS_PER_UNIT:
            raise ValueError(f"time: unknown unit {_go_quote(unit)} in duration {_go_quote(text)}")
        total += _component_ns(whole, fraction, scale, _NS_PER_UNIT[unit], invalid)
        if total > _LIMIT:
            raise invalid
    if negative:
        return -total
    if total > _LIMIT - 1:
        raise invalid
    return total


def _component_ns(whole: int, fraction: int, scale: float, unit: int, invalid: Exception) -> int:
    if whole > _LIMIT // unit:
        raise invalid
    value = whole * unit
    if fraction > 0:
        # Go goes through float64 here; truncating the same product keeps us bit-identical.
        value += int(float(fraction) * (float(unit) / scale))
        if value > _LIMIT:
            raise invalid
    return value


def parse_duration(text: str) -> float:
    """Parse a Go duration string into float seconds (``"1m30s"`` -> ``90.0``)."""
    return parse_duration_ns(text) / 1e9


def _fraction(value: int, digits: int) -> str:
    """``.123`` for the low ``digits`` decimal digits of value, trailing zeros dropped."""
    text = f"{value % 10**digits:0{digits}d}".rstrip("0")
    return "." + text if text else ""


def format_duration_ns(nanoseconds: int) -> str:
    """Go's ``Duration.String()``: ``72h3m0.5s``, ``1.5ms``, ``0s``."""
    magnitude = abs(nanoseconds)
    sign = "-" if nanoseconds < 0 else ""
    if magnitude == 0:
        return "0s"
    if magnitude < 1_000:
        return f"{sign}{magnitude}ns"
    if magnitude < 1_000_000:
        return f"{sign}{magnitude // 1_000}{_fraction(magnitude, 3)}\u00b5s"
    if magnitude < 1_000_000_000:
        return f"{sign}{magnitude // 1_000_000}{_fraction(magnitude, 6)}ms"
    seconds = f"{magnitude // 1_000_000_000 % 60}{_fraction(magnitude, 9)}s"
    minutes, hours = magnitude // 60_000_000_000 % 60, magnitude // 3_600_000_000_000
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def format_duration(seconds: float) -> str:
    """Go's ``Duration.String()`` for float seconds (``60.0`` -> ``"1m0s"``)."""
    return format_duration_ns(round(seconds * 1e9))
