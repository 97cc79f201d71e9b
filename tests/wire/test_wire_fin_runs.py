"""A consumer's run of FINs, which the server reads in one pass (``CommandReader.take_fins``).

The run holds only FINs spelled exactly ``FIN <16 letters or digits>\\n``; anything else, a FIN
with CRLF, a short ID or a space in it, stops the run and is read by ``next_command`` with
the usual rules and errors, so the fast path never changes what a client is told.
"""

from __future__ import annotations

import pytest

from pnsq.wire import ClientState, CommandReader, Fin, Nop, encode_fin
from pnsq.wire.commands import MAGIC_V2
from pnsq.wire.errors import InvalidError


def reader(state: ClientState = ClientState.SUBSCRIBED) -> CommandReader:
    r = CommandReader()
    r.receive_data(MAGIC_V2)
    assert r.next_command() is None
    r.state = state
    return r


def ids(n: int) -> list[bytes]:
    return [b"%016x" % i for i in range(n)]


def test_the_fins_after_a_fin_are_taken_at_once_and_the_next_command_stays() -> None:
    r = reader()
    r.receive_data(b"".join(map(encode_fin, ids(4))) + b"NOP\n")
    assert r.next_command() == Fin(ids(1)[0])
    assert r.take_fins() == ids(4)[1:]
    assert r.take_fins() == []
    assert r.next_command() == Nop()
    assert r.buffered == 0


def test_a_long_run_is_taken_whole_and_a_fin_cut_short_waits_for_its_end() -> None:
    r = reader()
    data = b"".join(map(encode_fin, ids(1000)))
    r.receive_data(data[:-5])
    assert r.take_fins() == ids(999)
    assert r.buffered == 16
    r.receive_data(data[-5:])
    assert r.take_fins() == ids(1000)[-1:]
    assert r.buffered == 0


@pytest.mark.parametrize(
    ("odd", "expected"),
    [
        (b"FIN 0123456789abcdef\r\n", Fin(b"0123456789abcdef")),
        (b"FIN 0123456789abcde-\n", Fin(b"0123456789abcde-")),
        (b"FIN 0123456789abcdef extra\n", Fin(b"0123456789abcdef")),
    ],
)
def test_a_fin_spelled_otherwise_ends_the_run_and_reads_as_before(
    odd: bytes, expected: Fin
) -> None:
    r = reader()
    r.receive_data(encode_fin(ids(1)[0]) + odd + encode_fin(ids(2)[1]))
    assert r.take_fins() == ids(1)
    assert r.take_fins() == []
    assert r.next_command() == expected
    assert r.take_fins() == ids(2)[1:]


def test_an_id_with_a_space_ends_the_run_and_is_refused_as_before() -> None:
    r = reader()
    r.receive_data(encode_fin(ids(1)[0]) + b"FIN 0123 56789abcdef\n")
    assert r.take_fins() == ids(1)
    with pytest.raises(InvalidError, match="invalid message ID"):
        r.next_command()


def test_fins_before_subscribing_are_not_taken() -> None:
    r = reader(ClientState.INIT)
    r.receive_data(encode_fin(ids(1)[0]))
    assert r.take_fins() == []
    with pytest.raises(InvalidError, match="cannot FIN in current state"):
        r.next_command()
