"""Hypothesis: round trips of anything valid, split anywhere, and garbage that must fail cleanly.

Garbage may only ever produce commands, "need more bytes" or a ``ProtocolError`` (for the server
to send and close): never an IndexError, struct.error or UnicodeError escaping from the parser,
and never a loop that stops consuming input.
"""

from __future__ import annotations

import re
import string
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pnsq.wire import (
    FRAME_TYPE_MESSAGE,
    MAGIC_V2,
    Auth,
    Cls,
    Command,
    CommandReader,
    DPub,
    Fin,
    FrameReader,
    Identify,
    MPub,
    Nop,
    ProtocolError,
    Pub,
    Rdy,
    Req,
    Sub,
    Touch,
    decode_message,
    encode,
    encode_frame,
    encode_message_frame,
    go_quote,
    pack_message_frame_into,
    parse_base10,
)
from pnsq.wire.errors import BadProtocolError
from pnsq.wire.server import ClientState

NAME_CHARS = string.ascii_letters + string.digits + "._-"

names = st.one_of(
    st.text(NAME_CHARS, min_size=1, max_size=64),
    st.text(NAME_CHARS, min_size=1, max_size=54).map(lambda name: name + "#ephemeral"),
)
bodies = st.binary(min_size=1, max_size=300)
msg_ids = st.one_of(
    st.text("0123456789abcdef", min_size=16, max_size=16).map(str.encode),
    # any 16 bytes that do not split or end the line
    st.binary(min_size=16, max_size=16).filter(lambda b: not {10, 13, 32} & set(b)),
)
timeouts = st.integers(0, 3_600_000)

# Commands valid in any state; a stream of them needs no state changes in between.
any_state_commands = st.one_of(
    st.builds(Pub, names, bodies),
    st.builds(MPub, names, st.lists(bodies, min_size=1, max_size=5)),
    st.builds(DPub, names, timeouts, bodies),
    st.just(Nop()),
)
commands = st.one_of(
    any_state_commands,
    st.builds(Identify, bodies),
    st.builds(Auth, bodies),
    st.builds(Sub, names, names),
    st.builds(Rdy, st.integers(0, 2500)),
    st.builds(Fin, msg_ids),
    st.builds(Req, msg_ids, timeouts),
    st.builds(Touch, msg_ids),
    st.just(Cls()),
)
cuts = st.lists(st.integers(min_value=0), max_size=10)


def state_for(command: Command) -> ClientState:
    if isinstance(command, Rdy | Fin | Req | Touch | Cls):
        return ClientState.SUBSCRIBED
    return ClientState.INIT


def split(data: bytes, at: list[int]) -> list[bytes]:
    points = sorted({i % (len(data) + 1) for i in at})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def feed(reader: CommandReader, pieces: list[bytes], limit: int) -> list[Command]:
    """Every command the pieces give; each one consumes a byte, so ``limit`` bounds the loop."""
    got: list[Command] = []
    for piece in pieces:
        reader.receive_data(piece)
        while (command := reader.next_command()) is not None:
            got.append(command)
            assert len(got) <= limit, "the reader returns commands without consuming bytes"
    return got


@given(command=commands, at=cuts)
def test_any_valid_command_decodes_to_itself_however_its_bytes_are_split(
    command: Command, at: list[int]
) -> None:
    reader = CommandReader()
    reader.receive_data(MAGIC_V2)
    reader.next_command()
    reader.state = state_for(command)
    data = encode(command)
    assert feed(reader, split(data, at), len(data)) == [command]
    assert reader.buffered == 0


@given(
    stream=st.lists(any_state_commands, max_size=20), at=cuts, state=st.sampled_from(ClientState)
)
def test_a_stream_of_publishes_decodes_to_the_same_stream_however_it_is_split(
    stream: list[Command], at: list[int], state: ClientState
) -> None:
    reader = CommandReader()
    data = MAGIC_V2 + b"".join(map(encode, stream))
    reader.state = state
    assert feed(reader, split(data, at), len(data)) == stream
    assert reader.buffered == 0


NAMES = [b"IDENTIFY", b"AUTH", b"SUB", b"PUB", b"MPUB", b"DPUB", b"RDY", b"FIN", b"REQ", b"TOUCH"]
PARAMS = [
    b"", b"t", b"c#ephemeral", b"t!", b"\xff", b"0123456789abcdef", b"0123", b"0", b"7", b"100",
    b"3600001", b"18446744073709551615", b"-1",
]  # fmt: skip
SIZES = [struct.pack(">i", n) for n in (-1, 0, 1, 2, 5, 9, 13, 40, 2**31 - 1)]

# Command-shaped garbage reaches deeper than random bytes: a name, parameters, a line end, then
# sizes and bytes where a body might be; mixed with valid commands and with plain noise.
garbage_lines = st.builds(
    lambda name, params, end, body: b" ".join([name, *params]) + end + b"".join(body),
    st.sampled_from([*NAMES, b"CLS", b"NOP", b"", b"nop"]),
    st.lists(st.sampled_from(PARAMS), max_size=3),
    st.sampled_from([b"\n", b"\r\n"]),
    st.lists(st.sampled_from(SIZES) | st.binary(max_size=6), max_size=4),
)
garbage = st.lists(garbage_lines | commands.map(encode) | st.binary(max_size=12), max_size=12).map(
    b"".join
)
SMALL_LIMITS: dict[str, Any] = {
    "max_msg_size": 8,
    "max_body_size": 32,
    "max_rdy_count": 5,
    "max_req_timeout_ms": 9,
}


@settings(max_examples=500)
@given(
    data=garbage,
    at=cuts,
    state=st.sampled_from(ClientState),
    heartbeats=st.booleans(),
    small=st.booleans(),
)
def test_garbage_after_the_magic_gives_commands_or_a_protocol_error_and_nothing_else(
    data: bytes, at: list[int], state: ClientState, heartbeats: bool, small: bool
) -> None:
    reader = CommandReader(**(SMALL_LIMITS if small else {}))
    reader.receive_data(MAGIC_V2)
    reader.next_command()
    reader.state = state
    reader.heartbeats_enabled = heartbeats
    error = None
    try:
        feed(reader, split(data, at), len(data))
    except ProtocolError as err:
        error = err
    if error is not None:
        assert error.fatal
        assert error.to_bytes().startswith(error.code.encode())


@given(data=st.binary(max_size=64).filter(lambda data: not data.startswith(MAGIC_V2)))
def test_anything_but_the_magic_is_rejected_once_four_bytes_arrive(data: bytes) -> None:
    reader = CommandReader()
    reader.receive_data(data)
    if len(data) < 4:
        assert reader.next_command() is None
    else:
        with pytest.raises(BadProtocolError):
            reader.next_command()


frames = st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=100)), max_size=10)


@given(frame_list=frames, at=cuts)
def test_any_frames_decode_to_themselves_however_their_bytes_are_split(
    frame_list: list[tuple[int, bytes]], at: list[int]
) -> None:
    data = b"".join(encode_frame(frame_type, body) for frame_type, body in frame_list)
    reader = FrameReader()
    got = []
    for piece in split(data, at):
        reader.receive_data(piece)
        while (frame := reader.next_frame()) is not None:
            got.append(frame)
    assert got == frame_list
    assert reader.trailing_data == b""


@given(data=st.binary(max_size=400), at=cuts, max_frame_size=st.sampled_from([4, 16, 64, 2**24]))
def test_garbage_to_the_frame_reader_gives_frames_or_value_error(
    data: bytes, at: list[int], max_frame_size: int
) -> None:
    reader = FrameReader(max_frame_size=max_frame_size)
    got: list[tuple[int, bytes]] = []
    try:
        for piece in split(data, at):
            reader.receive_data(piece)
            while (frame := reader.next_frame()) is not None:
                got.append(frame)
    except ValueError:
        return
    # nothing lost, nothing invented: the frames and the rest are the input
    rest = reader.trailing_data
    assert b"".join(encode_frame(frame_type, body) for frame_type, body in got) + rest == data


@given(
    timestamp=st.integers(-(2**63), 2**63 - 1),
    attempts=st.integers(0, 2**16 - 1),
    msg_id=st.binary(min_size=16, max_size=16),
    body=st.binary(max_size=200),
)
def test_any_message_round_trips_through_its_frame(
    timestamp: int, attempts: int, msg_id: bytes, body: bytes
) -> None:
    frame = encode_message_frame(timestamp, attempts, msg_id, body)
    out = bytearray(b"before")
    pack_message_frame_into(out, timestamp, attempts, msg_id, body)
    assert out == b"before" + frame
    reader = FrameReader()
    reader.receive_data(frame)
    frame_type, data = reader.next_frame() or (-1, b"")
    assert frame_type == FRAME_TYPE_MESSAGE
    assert encode_frame(FRAME_TYPE_MESSAGE, data) == frame
    assert decode_message(data) == (timestamp, attempts, msg_id, body)


@given(data=st.binary(max_size=100))
def test_decode_message_of_any_bytes_gives_them_back_or_value_error(data: bytes) -> None:
    try:
        decoded = decode_message(data)
    except ValueError:
        assert len(data) < 26
    else:
        assert encode_message_frame(*decoded)[8:] == data


@given(digits=st.text("0123456789", min_size=1, max_size=25))
def test_parse_base10_is_the_number_wrapped_to_int64(digits: str) -> None:
    expected = (int(digits) + 2**63) % 2**64 - 2**63
    assert parse_base10(digits.encode()) == expected


_GO_ESCAPE = re.compile(r'\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[abfnrtv"\\])')
_SIMPLE = {"a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v"}


def go_unquote(quoted: str) -> bytes:
    assert quoted[0] == quoted[-1] == '"'
    out = bytearray()
    pos = 1
    for match in _GO_ESCAPE.finditer(quoted, 1, len(quoted) - 1):
        out += quoted[pos : match.start()].encode()
        escape = match.group(1)
        if escape[0] == "x":
            out.append(int(escape[1:], 16))
        elif escape[0] in "uU":
            out += chr(int(escape[1:], 16)).encode()
        else:
            out += _SIMPLE.get(escape, escape.encode())
        pos = match.end()
    out += quoted[pos:-1].encode()
    return bytes(out)


@given(raw=st.binary(max_size=40) | st.text(max_size=20).map(str.encode))
def test_go_quote_is_printable_and_loses_nothing(raw: bytes) -> None:
    quoted = go_quote(raw)
    assert quoted.isprintable()
    assert go_unquote(quoted) == raw
