"""MPUB batches as the server reads them: equal-sized parts take a fast path, anything else the
part-by-part loop, and both must give the same bodies, the same errors and the same leftovers.

The fast path (``uniform_parts``) reads a whole batch with one struct layout and gives up on
anything unusual; these tests hold it to the loop's results on every kind of batch, whole, cut
at every byte, and pipelined between other commands.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pnsq.wire import CommandReader, MPub, Nop, Pub, decode_mpub_body, encode_mpub, encode_pub
from pnsq.wire.commands import MAGIC_V2
from pnsq.wire.errors import BadMessageError
from pnsq.wire.mpub import encode_mpub_body, uniform_parts

MAX_MSG, MAX_BODY = 1024 * 1024, 5 * 1024 * 1024


def size(n: int) -> bytes:
    return n.to_bytes(4, "big", signed=True)


def reader() -> CommandReader:
    r = CommandReader()
    r.receive_data(MAGIC_V2)
    assert r.next_command() is None
    return r


def test_equal_sized_parts_are_read_whole_and_their_end_is_returned() -> None:
    bodies = [b"%05d" % i for i in range(300)]
    data = encode_mpub_body(bodies) + b"rest"
    assert uniform_parts(data, 4, 300, MAX_MSG) == (bodies, len(data) - 4)


@pytest.mark.parametrize(
    ("parts", "count"),
    [
        ([b"aa", b"b"], 2),  # mixed sizes
        ([b"aa", b"bb"], 3),  # cut short: fewer parts than counted
        ([b"a" * 11], 1),  # over the part limit below
    ],
)
def test_anything_unusual_is_left_to_the_loop(parts: list[bytes], count: int) -> None:
    data = b"".join(size(len(p)) + p for p in parts)
    assert uniform_parts(data, 0, count, 10) is None


def test_a_zero_size_part_in_an_equal_sized_batch_gets_nsqs_error_for_that_part() -> None:
    body = size(3) + size(5) + b"aaaaa" + size(5) + b"bbbbb" + size(0) + size(5) + b"ccccc"
    assert uniform_parts(body, 4, 3, MAX_MSG) is None
    with pytest.raises(BadMessageError, match=r"MPUB invalid message\(2\) body size 0"):
        decode_mpub_body(body, MAX_MSG, MAX_BODY)


def test_an_equal_sized_mpub_cut_at_any_byte_reads_as_the_whole_one() -> None:
    bodies = [b"x%03d" % i for i in range(40)]
    data = encode_mpub("t", bodies) + b"NOP\n"
    for cut in range(len(data)):
        r = reader()
        r.receive_data(data[:cut])
        first = r.next_command()
        r.receive_data(data[cut:])
        commands = [c for c in (first, r.next_command(), r.next_command()) if c is not None]
        assert commands == [MPub("t", bodies), Nop()], cut
        assert r.buffered == 0


def test_pipelined_commands_around_a_bad_mpub_come_out_until_its_error() -> None:
    bad = b"MPUB t\n" + size(31) + size(3) + (size(5) + b"aaaaa") * 2 + size(-1) + b"zzzz"
    r = reader()
    r.receive_data(encode_pub("t", b"before") + bad + encode_pub("t", b"after"))
    assert r.next_command() == Pub("t", b"before")
    with pytest.raises(BadMessageError, match=r"MPUB invalid message\(2\) body size -1"):
        r.next_command()


@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=30))
def test_any_batch_reads_the_same_through_tcp_and_the_http_decoder(bodies: list[bytes]) -> None:
    r = reader()
    r.receive_data(encode_mpub("t", bodies))
    assert r.next_command() == MPub("t", bodies)
    assert decode_mpub_body(encode_mpub_body(bodies), MAX_MSG, MAX_BODY) == bodies
