"""Client commands on the wire: one table drives both the encoders and the server's reader.

Every decode is checked three ways, as h11's ``tr()`` does: the whole input at once, one byte
at a time (nothing comes out before the last byte), and followed by the start of the next command
(which stays buffered, untouched).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pnsq.wire import (
    MAGIC_V2,
    Auth,
    Cls,
    Command,
    CommandReader,
    DPub,
    Fin,
    Identify,
    MPub,
    Nop,
    ProtocolError,
    Pub,
    Rdy,
    Req,
    Sub,
    Touch,
    encode,
    encode_auth,
    encode_cls,
    encode_dpub,
    encode_fin,
    encode_identify,
    encode_mpub,
    encode_nop,
    encode_pub,
    encode_rdy,
    encode_req,
    encode_sub,
    encode_touch,
)
from pnsq.wire.errors import BadTopicError
from pnsq.wire.server import ClientState

INIT = ClientState.INIT
SUBSCRIBED = ClientState.SUBSCRIBED
CLOSING = ClientState.CLOSING

MSG_ID = b"0123456789abcdef"
IDENTIFY_JSON = b'{"client_id":"a","feature_negotiation":true}'


# (state the server is in, command, its exact bytes)
COMMANDS: list[tuple[ClientState, Command, bytes]] = [
    (INIT, Identify(IDENTIFY_JSON), b"IDENTIFY\n\x00\x00\x00\x2c" + IDENTIFY_JSON),
    (INIT, Auth(b"secret"), b"AUTH\n\x00\x00\x00\x06secret"),
    (INIT, Sub("t", "c"), b"SUB t c\n"),
    (INIT, Sub("t#ephemeral", "c#ephemeral"), b"SUB t#ephemeral c#ephemeral\n"),
    (
        INIT,
        Sub("a" * 64, "b" * 54 + "#ephemeral"),
        b"SUB " + b"a" * 64 + b" " + b"b" * 54 + b"#ephemeral\n",
    ),
    (INIT, Pub("t", b"hi"), b"PUB t\n\x00\x00\x00\x02hi"),
    (INIT, Pub("t", b"a b\nc\r\n"), b"PUB t\n\x00\x00\x00\x07a b\nc\r\n"),
    (INIT, Pub("t", bytes(range(256))), b"PUB t\n\x00\x00\x01\x00" + bytes(range(256))),
    (SUBSCRIBED, Pub("t", b"x"), b"PUB t\n\x00\x00\x00\x01x"),
    (CLOSING, Pub("t", b"x"), b"PUB t\n\x00\x00\x00\x01x"),
    (
        INIT,
        MPub("t", [b"a", b"bc"]),
        b"MPUB t\n\x00\x00\x00\x0f\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x02bc",
    ),
    (SUBSCRIBED, MPub("t", [b"\n"]), b"MPUB t\n\x00\x00\x00\x09\x00\x00\x00\x01\x00\x00\x00\x01\n"),
    (INIT, DPub("t", 1000, b"hi"), b"DPUB t 1000\n\x00\x00\x00\x02hi"),
    (INIT, DPub("t", 0, b"x"), b"DPUB t 0\n\x00\x00\x00\x01x"),
    (CLOSING, DPub("t", 3_600_000, b"x"), b"DPUB t 3600000\n\x00\x00\x00\x01x"),
    (SUBSCRIBED, Rdy(0), b"RDY 0\n"),
    (SUBSCRIBED, Rdy(1), b"RDY 1\n"),
    (SUBSCRIBED, Rdy(2500), b"RDY 2500\n"),
    (SUBSCRIBED, Fin(MSG_ID), b"FIN 0123456789abcdef\n"),
    (CLOSING, Fin(MSG_ID), b"FIN 0123456789abcdef\n"),
    (SUBSCRIBED, Req(MSG_ID, 0), b"REQ 0123456789abcdef 0\n"),
    (CLOSING, Req(MSG_ID, 3_600_000), b"REQ 0123456789abcdef 3600000\n"),
    (SUBSCRIBED, Touch(MSG_ID), b"TOUCH 0123456789abcdef\n"),
    (CLOSING, Touch(MSG_ID), b"TOUCH 0123456789abcdef\n"),
    (SUBSCRIBED, Cls(), b"CLS\n"),
    (INIT, Nop(), b"NOP\n"),
    (SUBSCRIBED, Nop(), b"NOP\n"),
    (CLOSING, Nop(), b"NOP\n"),
]

# Input a client may send that NSQ reads, though our encoders never write it.
UNUSUAL: list[tuple[ClientState, bytes, Command]] = [
    # a trailing '\r' is stripped
    (INIT, b"NOP\r\n", Nop()),
    (INIT, b"SUB t c\r\n", Sub("t", "c")),
    (INIT, b"PUB t\r\n\x00\x00\x00\x01x", Pub("t", b"x")),
    (SUBSCRIBED, b"RDY 10\r\n", Rdy(10)),
    # RDY's count defaults to 1; an empty one reads as 0, as NSQ's ByteToBase10 does
    (SUBSCRIBED, b"RDY\n", Rdy(1)),
    (SUBSCRIBED, b"RDY \n", Rdy(0)),
    (SUBSCRIBED, b"RDY 0002500\n", Rdy(2500)),
    # after CLS, RDY is ignored before its count is even parsed
    (CLOSING, b"RDY 5\n", Nop()),
    (CLOSING, b"RDY nonsense\n", Nop()),
    # REQ's timeout is clamped, not rejected; 2**64 - 1 wraps to -1 and clamps to 0
    (SUBSCRIBED, b"REQ " + MSG_ID + b" 3600001\n", Req(MSG_ID, 3_600_000)),
    (SUBSCRIBED, b"REQ " + MSG_ID + b" 18446744073709551615\n", Req(MSG_ID, 0)),
    (SUBSCRIBED, b"REQ " + MSG_ID + b" \n", Req(MSG_ID, 0)),
    (INIT, b"DPUB t \n\x00\x00\x00\x01x", DPub("t", 0, b"x")),
    (INIT, b"DPUB t 0001\n\x00\x00\x00\x01x", DPub("t", 1, b"x")),
    # extra parameters are ignored (AUTH excepted)
    (INIT, b"IDENTIFY ignored\n\x00\x00\x00\x02{}", Identify(b"{}")),
    (INIT, b"SUB t c extra\n", Sub("t", "c")),
    (INIT, b"PUB t extra\n\x00\x00\x00\x01x", Pub("t", b"x")),
    (INIT, b"NOP anything at all\n", Nop()),
    (SUBSCRIBED, b"RDY 3 extra\n", Rdy(3)),
    (SUBSCRIBED, b"FIN " + MSG_ID + b" extra\n", Fin(MSG_ID)),
    (SUBSCRIBED, b"REQ " + MSG_ID + b" 5 extra\n", Req(MSG_ID, 5)),
    (SUBSCRIBED, b"TOUCH " + MSG_ID + b" extra\n", Touch(MSG_ID)),
    (SUBSCRIBED, b"CLS extra\n", Cls()),
    # MPUB's outer size is only bounds-checked: the parts are read from the stream past it
    (
        INIT,
        b"MPUB t\n\x00\x00\x00\x05\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x02bc",
        MPub("t", [b"a", b"bc"]),
    ),
    # ... and an outer size larger than the parts does not make the server wait for more
    (
        INIT,
        b"MPUB t\n\x00\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00\x01a",
        MPub("t", [b"a"]),
    ),
]

ENCODERS: dict[type[Any], Any] = {
    Identify: encode_identify,
    Auth: encode_auth,
    Sub: encode_sub,
    Pub: encode_pub,
    MPub: encode_mpub,
    DPub: encode_dpub,
    Rdy: encode_rdy,
    Fin: encode_fin,
    Req: encode_req,
    Touch: encode_touch,
    Cls: encode_cls,
    Nop: encode_nop,
}


def reader_after_magic(state: ClientState = INIT, **settings: Any) -> CommandReader:
    reader = CommandReader()
    reader.receive_data(MAGIC_V2)
    assert reader.next_command() is None
    reader.state = state
    for name, value in settings.items():
        setattr(reader, name, value)
    return reader


def check_decodes(state: ClientState, data: bytes, expected: Command) -> None:
    # all at once
    reader = reader_after_magic(state)
    reader.receive_data(data)
    assert reader.next_command() == expected
    assert reader.buffered == 0
    assert reader.next_command() is None

    # one byte at a time: nothing until the last byte
    reader = reader_after_magic(state)
    for i in range(len(data)):
        assert reader.next_command() is None
        reader.receive_data(data[i : i + 1])
    assert reader.next_command() == expected
    assert reader.buffered == 0

    # trailing bytes: the start of the next command stays buffered, intact
    reader = reader_after_magic(state)
    reader.receive_data(data + b"NOP")
    assert reader.next_command() == expected
    assert reader.buffered == 3
    assert reader.next_command() is None
    reader.receive_data(b"\n")
    assert reader.next_command() == Nop()
    assert reader.buffered == 0


def ids(rows: list[Any]) -> list[str]:
    return [repr(row[1])[:60] for row in rows]


@pytest.mark.parametrize(("state", "command", "data"), COMMANDS, ids=ids(COMMANDS))
def test_each_command_encodes_to_its_exact_bytes(
    state: ClientState, command: Command, data: bytes
) -> None:
    assert encode(command) == data


@pytest.mark.parametrize(("state", "command", "data"), COMMANDS, ids=ids(COMMANDS))
def test_each_encode_helper_writes_the_same_bytes_as_encode(
    state: ClientState, command: Command, data: bytes
) -> None:
    args = (command.data(),) if isinstance(command, Identify) else dataclasses.astuple(command)
    assert ENCODERS[type(command)](*args) == data


@pytest.mark.parametrize(("state", "command", "data"), COMMANDS, ids=ids(COMMANDS))
def test_each_command_decodes_from_its_exact_bytes(
    state: ClientState, command: Command, data: bytes
) -> None:
    check_decodes(state, data, command)


@pytest.mark.parametrize(("state", "data", "command"), UNUSUAL, ids=ids(UNUSUAL))
def test_unusual_input_decodes_as_nsq_reads_it(
    state: ClientState, data: bytes, command: Command
) -> None:
    check_decodes(state, data, command)


def test_identify_data_is_the_parsed_json_body() -> None:
    assert Identify(IDENTIFY_JSON).data() == {"client_id": "a", "feature_negotiation": True}


def test_magic_may_arrive_one_byte_at_a_time() -> None:
    reader = CommandReader()
    for byte in b"  V2NOP":
        reader.receive_data(bytes([byte]))
        assert reader.next_command() is None
    reader.receive_data(b"\n")
    assert reader.next_command() == Nop()


def test_reader_without_magic_reads_commands_from_the_first_byte() -> None:
    reader = CommandReader(expect_magic=False)
    reader.receive_data(b"NOP\n")
    assert reader.next_command() == Nop()


def test_many_nops_in_one_buffer_yield_that_many_commands() -> None:
    reader = reader_after_magic()
    reader.receive_data(b"NOP\n" * 1000)
    commands = []
    while (command := reader.next_command()) is not None:
        commands.append(command)
    assert commands == [Nop()] * 1000
    assert reader.buffered == 0


def test_one_command_per_call_so_a_sub_can_change_the_state_the_next_rdy_sees() -> None:
    reader = reader_after_magic()
    reader.receive_data(b"SUB t c\nRDY 5\n")
    assert reader.next_command() == Sub("t", "c")
    reader.state = SUBSCRIBED  # the server does this when the SUB succeeds
    assert reader.next_command() == Rdy(5)


def test_cls_moves_the_client_to_closing_where_rdy_is_ignored_but_fin_still_works() -> None:
    reader = reader_after_magic(SUBSCRIBED)
    reader.receive_data(b"CLS\nRDY 10\nFIN " + MSG_ID + b"\n")
    assert reader.next_command() == Cls()
    assert reader.state == CLOSING
    assert reader.next_command() == Nop()
    assert reader.next_command() == Fin(MSG_ID)


def test_a_16384_byte_command_is_accepted() -> None:
    line = b"NOP " + b"a" * (16384 - 4)
    check_decodes(INIT, line + b"\n", Nop())


def test_a_large_command_followed_by_more_keeps_the_rest() -> None:
    body = bytes(300 * 1024)
    reader = reader_after_magic()
    reader.receive_data(encode_pub("t", body) + b"NOP\nNO")
    assert reader.next_command() == Pub("t", body)
    assert reader.buffered == 6
    assert reader.next_command() == Nop()
    assert reader.next_command() is None
    reader.receive_data(b"P\n")
    assert reader.next_command() == Nop()


# (settings, command) accepted exactly at a configured limit
AT_THE_LIMITS: list[tuple[dict[str, int], ClientState, Command]] = [
    ({"max_body_size": 2}, INIT, Identify(b"{}")),
    ({"max_body_size": 3}, INIT, Auth(b"abc")),
    ({"max_msg_size": 3}, INIT, Pub("t", b"abc")),
    ({"max_msg_size": 3}, INIT, DPub("t", 7, b"abc")),
    ({"max_req_timeout_ms": 7}, INIT, DPub("t", 7, b"abc")),
    # count + one 3-byte part = 4 + 4 + 3 bytes; each part may be max_msg_size
    ({"max_body_size": 11, "max_msg_size": 3}, INIT, MPub("t", [b"abc"])),
    # at most (max_body_size - 4) // 5 parts: 14 allows two
    ({"max_body_size": 14}, INIT, MPub("t", [b"a", b"b"])),
    ({"max_rdy_count": 7}, SUBSCRIBED, Rdy(7)),
    ({"max_req_timeout_ms": 7}, SUBSCRIBED, Req(MSG_ID, 7)),
]


@pytest.mark.parametrize(("settings", "state", "command"), AT_THE_LIMITS)
def test_sizes_and_counts_at_the_configured_limits_are_accepted(
    settings: dict[str, int], state: ClientState, command: Command
) -> None:
    reader = reader_after_magic(state, **settings)
    reader.receive_data(encode(command))
    assert reader.next_command() == command


def test_req_timeout_above_the_configured_maximum_is_clamped_to_it() -> None:
    reader = reader_after_magic(SUBSCRIBED, max_req_timeout_ms=7)
    reader.receive_data(encode_req(MSG_ID, 8))
    assert reader.next_command() == Req(MSG_ID, 7)


@pytest.mark.parametrize("not_a_command", [Nop, "NOP\n", None])
def test_encode_of_something_that_is_not_a_command_raises_type_error(not_a_command: Any) -> None:
    with pytest.raises(TypeError, match=r"^not a command: "):
        encode(not_a_command)


def test_mpub_keeps_its_topic_pending_while_the_body_is_read_and_clears_it_when_whole() -> None:
    reader = reader_after_magic()
    data = encode(MPub("t", [b"a", b"bc"]))
    reader.receive_data(data[:-1])
    assert reader.next_command() is None
    assert reader.pending_topic == "t"
    reader.receive_data(data[-1:])
    assert reader.next_command() == MPub("t", [b"a", b"bc"])
    assert reader.pending_topic is None


@pytest.mark.parametrize(
    ("data", "pending_topic"),
    [
        (b"MPUB t\n\x00\x00\x00\x00", "t"),  # bad body: NSQ has created the topic by then
        (b"MPUB t\n\x00\x00\x00\x04\x00\x00\x00\x00", "t"),
        (b"MPUB t!\n", None),  # bad name: no topic to create
        (b"MPUB\n", None),
    ],
)
def test_a_rejected_mpub_leaves_pending_only_a_topic_nsq_would_have_created(
    data: bytes, pending_topic: str | None
) -> None:
    reader = reader_after_magic()
    reader.receive_data(data)
    with pytest.raises(ProtocolError):
        reader.next_command()
    assert reader.pending_topic == pending_topic


def test_topic_names_are_judged_alike_however_many_came_before() -> None:
    """The reader remembers valid names it has seen; a bad one is refused all the same."""
    reader = reader_after_magic()
    for i in range(200):  # more names than the reader keeps
        reader.receive_data(encode_pub(f"t{i % 70}", b"x"))
        assert reader.next_command() == Pub(f"t{i % 70}", b"x")
    reader.receive_data(b"PUB t0!\n" + b"\x00\x00\x00\x01x")
    with pytest.raises(BadTopicError, match='PUB topic name "t0!" is not valid'):
        reader.next_command()
