"""The multi-publish body: one table of (bodies, exact bytes) drives the encoder and the decoder.

Layout (NSQ's MPUB, and HTTP ``/mpub?binary=true``): ``[4-byte count]([4-byte size][body])*``,
big-endian. The decoder reads a whole body, so "byte by byte" here means every cut-short prefix
is refused with NSQ's "failed to read" error, and bytes after the last part are ignored.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pnsq.wire import decode_mpub_body, encode_mpub, encode_mpub_body
from pnsq.wire.errors import BadBodyError, BadMessageError, ProtocolError

MAX_MSG, MAX_BODY = 1024 * 1024, 5 * 1024 * 1024

# (bodies, exact bytes)
BODIES: list[tuple[list[bytes], bytes]] = [
    ([b"a"], b"\x00\x00\x00\x01" + b"\x00\x00\x00\x01a"),
    ([b"a", b"bc"], b"\x00\x00\x00\x02" + b"\x00\x00\x00\x01a" + b"\x00\x00\x00\x02bc"),
    ([b"\n", b"a b\r\n"], b"\x00\x00\x00\x02\x00\x00\x00\x01\n\x00\x00\x00\x05a b\r\n"),
    ([bytes(range(256))], b"\x00\x00\x00\x01\x00\x00\x01\x00" + bytes(range(256))),
    ([b"x"] * 3, b"\x00\x00\x00\x03" + b"\x00\x00\x00\x01x" * 3),
]


@pytest.mark.parametrize(("bodies", "wire"), BODIES)
def test_each_mpub_body_encodes_to_its_exact_bytes(bodies: list[bytes], wire: bytes) -> None:
    assert encode_mpub_body(bodies) == wire


@pytest.mark.parametrize(("bodies", "wire"), BODIES)
def test_each_mpub_body_decodes_whole_and_with_trailing_bytes(
    bodies: list[bytes], wire: bytes
) -> None:
    assert decode_mpub_body(wire, MAX_MSG, MAX_BODY) == bodies
    assert decode_mpub_body(wire + b"\x00\x00\x00\x09rest", MAX_MSG, MAX_BODY) == bodies


@pytest.mark.parametrize(("bodies", "wire"), BODIES)
def test_every_cut_short_mpub_body_is_refused_with_nsqs_error(
    bodies: list[bytes], wire: bytes
) -> None:
    for end in range(len(wire)):
        with pytest.raises(ProtocolError) as info:
            decode_mpub_body(wire[:end], MAX_MSG, MAX_BODY)
        if end < 4:
            assert info.value.to_bytes() == b"E_BAD_BODY MPUB failed to read message count"
        else:
            assert info.value.to_bytes() in (
                b"E_BAD_MESSAGE MPUB failed to read message body size",
                b"E_BAD_MESSAGE MPUB failed to read message body",
            )


@pytest.mark.parametrize(("bodies", "wire"), BODIES)
def test_tcp_mpub_is_the_command_line_a_size_and_the_body(bodies: list[bytes], wire: bytes) -> None:
    assert encode_mpub("t", bodies) == b"MPUB t\n" + len(wire).to_bytes(4, "big") + wire


def size(n: int) -> bytes:
    return n.to_bytes(4, "big", signed=True)


@pytest.mark.parametrize(
    ("data", "max_msg", "max_body", "error", "text"),
    [
        (size(0), MAX_MSG, MAX_BODY, BadBodyError, b"E_BAD_BODY MPUB invalid message count 0"),
        (size(-1), MAX_MSG, MAX_BODY, BadBodyError, b"E_BAD_BODY MPUB invalid message count -1"),
        # (max_body_size - 4) // 5 parts at most: 5 bytes each at the least
        (size(3), 100, 18, BadBodyError, b"E_BAD_BODY MPUB invalid message count 3"),
        (size(1) + size(0), MAX_MSG, MAX_BODY, BadMessageError,
            b"E_BAD_MESSAGE MPUB invalid message(0) body size 0"),
        (size(2) + size(1) + b"a" + size(-5), MAX_MSG, MAX_BODY, BadMessageError,
            b"E_BAD_MESSAGE MPUB invalid message(1) body size -5"),
        (size(1) + size(11) + b"x" * 11, 10, MAX_BODY, BadMessageError,
            b"E_BAD_MESSAGE MPUB message too big 11 > 10"),
    ],
)  # fmt: skip
def test_bad_mpub_bodies_raise_nsqs_errors(
    data: bytes, max_msg: int, max_body: int, error: type[ProtocolError], text: bytes
) -> None:
    with pytest.raises(error) as info:
        decode_mpub_body(data, max_msg, max_body)
    assert info.value.to_bytes() == text


def test_limits_are_inclusive() -> None:
    assert decode_mpub_body(size(1) + size(10) + b"x" * 10, 10, 20) == [b"x" * 10]
    three = encode_mpub_body([b"a", b"b", b"c"])
    assert decode_mpub_body(three, 10, 19) == [b"a", b"b", b"c"]  # (19 - 4) // 5 == 3


@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=20))
def test_any_bodies_round_trip(bodies: list[bytes]) -> None:
    assert decode_mpub_body(encode_mpub_body(bodies), MAX_MSG, MAX_BODY) == bodies


@given(st.binary(max_size=200))
def test_garbage_decodes_to_bodies_or_a_protocol_error(data: bytes) -> None:
    try:
        bodies = decode_mpub_body(data, 64, 400)
    except (BadBodyError, BadMessageError):
        return
    encoded = encode_mpub_body(bodies)
    assert data.startswith(encoded)  # nothing invented; the rest is ignored
