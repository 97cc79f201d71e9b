"""Topic and channel names, and the two bits of Go that NSQ's texts depend on.

``parse_base10`` is NSQ's ByteToBase10 (digits only, wrapping as uint64); ``go_quote`` is Go's
``%q``, which NSQ uses to show a rejected name.
"""

from __future__ import annotations

import pytest

from pnsq.wire import (
    go_quote,
    is_ephemeral,
    is_valid_channel_name,
    is_valid_name,
    is_valid_topic_name,
    parse_base10,
)

NAMES: list[tuple[str, bool]] = [
    ("t", True),
    ("Topic.name_with-all-9", True),
    ("...", True),
    ("-", True),
    ("a" * 64, True),
    ("a" * 65, False),
    ("t#ephemeral", True),
    ("a" * 54 + "#ephemeral", True),
    ("a" * 55 + "#ephemeral", False),
    ("", False),
    ("#ephemeral", False),
    ("t#ephemeral#ephemeral", False),
    ("t#Ephemeral", False),
    ("t#ephemeralx", False),
    ("t#", False),
    ("t!", False),
    ("t c", False),
    ("t/c", False),
    ("t:c", False),
    ("t\n", False),
    ("t\x00", False),
    ("tëst", False),
    ("\uff54", False),  # fullwidth t
    ("\u0663", False),  # Arabic-Indic digit three
]


@pytest.mark.parametrize(("name", "valid"), NAMES)
def test_topic_and_channel_names_follow_nsqs_rule(name: str, valid: bool) -> None:
    assert is_valid_name(name) is valid
    assert is_valid_topic_name(name) is valid
    assert is_valid_channel_name(name) is valid


@pytest.mark.parametrize(
    ("name", "ephemeral"),
    [("t#ephemeral", True), ("t", False), ("t#ephemeralx", False), ("ephemeral", False)],
)
def test_a_name_ending_in_hash_ephemeral_is_ephemeral(name: str, ephemeral: bool) -> None:
    assert is_ephemeral(name) is ephemeral


BASE10: list[tuple[bytes, int]] = [
    (b"0", 0),
    (b"", 0),
    (b"1", 1),
    (b"2500", 2500),
    (b"0002500", 2500),
    (b"3600000", 3_600_000),
    (b"9223372036854775807", 2**63 - 1),
    # past int64: the uint64 is read as int64, as NSQ's int64(b10) does
    (b"9223372036854775808", -(2**63)),
    (b"18446744073709551615", -1),
    # past uint64: wraps
    (b"18446744073709551616", 0),
    (b"18446744073709551617", 1),
]


@pytest.mark.parametrize(("text", "value"), BASE10)
def test_parse_base10_reads_digits_like_nsq(text: bytes, value: int) -> None:
    assert parse_base10(text) == value


@pytest.mark.parametrize(
    "text",
    [b"-1", b"+1", b" 1", b"1 ", b"1x", b"x", b"1.0", b"1e3", b"0x10", b"\xff", "\u0663".encode()],
)
def test_parse_base10_rejects_anything_but_ascii_digits(text: bytes) -> None:
    with pytest.raises(ValueError):
        parse_base10(text)


# (bytes, what Go's fmt.Sprintf("%q", string(bytes)) prints)
GO_QUOTED: list[tuple[bytes, str]] = [
    (b"", '""'),
    (b"abc", '"abc"'),
    (b"a b", '"a b"'),
    (b"it's", '"it\'s"'),
    (b'a"b\\\n\x00\xff', r'"a\"b\\\n\x00\xff"'),
    (b"\a\b\f\n\r\t\v", r'"\a\b\f\n\r\t\v"'),
    (b"\x01\x1b\x1f\x7f", r'"\x01\x1b\x1f\x7f"'),
    # printable non-ASCII stays as it is
    ("tëst".encode(), '"tëst"'),
    ("日本".encode(), '"日本"'),
    ("\U0001f600".encode(), '"\U0001f600"'),
    ("\ufffd".encode(), '"\ufffd"'),
    # non-printable runes: \u below U+10000, \U above
    ("\u0085".encode(), r'"\u0085"'),
    ("\u00a0".encode(), r'"\u00a0"'),
    ("\u200b".encode(), r'"\u200b"'),
    ("\u2028".encode(), r'"\u2028"'),
    ("\ufeff".encode(), r'"\ufeff"'),
    ("\U000e0001".encode(), r'"\U000e0001"'),
    ("\U000f0000".encode(), r'"\U000f0000"'),
    # each byte of invalid UTF-8 is shown as \x
    (b"\x80a", r'"\x80a"'),
    (b"\xe2\x82", r'"\xe2\x82"'),
    (b"\xe2\x82a", r'"\xe2\x82a"'),
    (b"\xc0\xaf", r'"\xc0\xaf"'),
    (b"\xed\xa0\x80", r'"\xed\xa0\x80"'),
    (b"\xf4\x90\x80\x80", r'"\xf4\x90\x80\x80"'),
]


@pytest.mark.parametrize(("raw", "quoted"), GO_QUOTED)
def test_go_quote_prints_what_go_percent_q_prints(raw: bytes, quoted: str) -> None:
    assert go_quote(raw) == quoted
