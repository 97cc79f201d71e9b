"""nsqlookupd's TCP protocol: one table of (bytes, commands) and one of (bytes, error reply).

Every case is also fed byte by byte, so a command split anywhere parses the same.
"""

from __future__ import annotations

import json
import struct

import pytest

from pnsq.wire import ProtocolError
from pnsq.wire.lookup import (
    MAGIC_V1,
    LookupCommand,
    LookupCommandReader,
    LookupIdentify,
    LookupPing,
    Register,
    ReplyReader,
    Unregister,
    encode_lookup_identify,
    encode_lookup_ping,
    encode_register,
    encode_reply,
    encode_unregister,
)

PEER = {"broadcast_address": "h", "tcp_port": 4150, "http_port": 4151, "version": "1.3.0"}
FULL_PEER = {**PEER, "hostname": "", "topology_zone": "", "topology_region": ""}


def identify(body: object) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return b"IDENTIFY\n" + struct.pack(">i", len(data)) + data


IDENT = identify(PEER)

GOOD: list[tuple[bytes, list[LookupCommand]]] = [
    (b"PING\n", [LookupPing()]),
    (b"  PING \r\n", [LookupPing()]),
    (IDENT, [LookupIdentify(FULL_PEER)]),
    (IDENT + b"REGISTER t\n", [LookupIdentify(FULL_PEER), Register("t")]),
    (IDENT + b"REGISTER t c\n", [LookupIdentify(FULL_PEER), Register("t", "c")]),
    (IDENT + b"UNREGISTER t c\n", [LookupIdentify(FULL_PEER), Unregister("t", "c")]),
    (IDENT + b"UNREGISTER t#ephemeral\n", [LookupIdentify(FULL_PEER), Unregister("t#ephemeral")]),
    (
        identify({**PEER, "hostname": "x", "extra": 1}),
        [LookupIdentify({**FULL_PEER, "hostname": "x"})],
    ),
]

BAD: list[tuple[bytes, bytes]] = [
    (b"FOO\n", b"E_INVALID invalid command FOO"),
    (b"\n", b"E_INVALID invalid command "),
    (b"REGISTER t\n", b"E_INVALID client must IDENTIFY"),
    (b"UNREGISTER t c\n", b"E_INVALID client must IDENTIFY"),
    (IDENT + b"REGISTER\n", b"E_INVALID REGISTER insufficient number of params"),
    (IDENT + b"REGISTER bad!t\n", b"E_BAD_TOPIC REGISTER topic name 'bad!t' is not valid"),
    (
        IDENT + b"UNREGISTER t bad!c\n",
        b"E_BAD_CHANNEL UNREGISTER channel name 'bad!c' is not valid",
    ),
    (
        IDENT + b"REGISTER " + b"t" * 65 + b"\n",
        b"E_BAD_TOPIC REGISTER topic name '" + b"t" * 65 + b"' is not valid",
    ),
    (IDENT + IDENT, b"E_INVALID cannot IDENTIFY again"),
    (identify(b"{not json"), b"E_BAD_BODY IDENTIFY failed to decode JSON body"),
    (identify([1]), b"E_BAD_BODY IDENTIFY failed to decode JSON body"),
    (identify({**PEER, "tcp_port": "4150"}), b"E_BAD_BODY IDENTIFY failed to decode JSON body"),
    (identify({**PEER, "version": ""}), b"E_BAD_BODY IDENTIFY missing fields"),
    (identify({"tcp_port": 1}), b"E_BAD_BODY IDENTIFY missing fields"),
    (b"IDENTIFY\n" + struct.pack(">i", 10**8), b"E_BAD_BODY IDENTIFY invalid body size 100000000"),
    (b"IDENTIFY\n" + struct.pack(">i", -1), b"E_BAD_BODY IDENTIFY invalid body size -1"),
    (b"x" * 20000, b"E_INVALID command too long"),
]


def parse(data: bytes, *, byte_by_byte: bool) -> list[LookupCommand]:
    reader = LookupCommandReader()
    commands: list[LookupCommand] = []
    chunks = [bytes([b]) for b in MAGIC_V1 + data] if byte_by_byte else [MAGIC_V1 + data]
    for chunk in chunks:
        reader.receive_data(chunk)
        while (command := reader.next_command()) is not None:
            commands.append(command)
    return commands


@pytest.mark.parametrize("byte_by_byte", [False, True])
@pytest.mark.parametrize(("data", "expected"), GOOD)
def test_commands_parse(data: bytes, expected: list[LookupCommand], byte_by_byte: bool) -> None:
    assert parse(data, byte_by_byte=byte_by_byte) == expected


@pytest.mark.parametrize("byte_by_byte", [False, True])
@pytest.mark.parametrize(("data", "error"), BAD)
def test_bad_input_raises_nsqs_error(data: bytes, error: bytes, byte_by_byte: bool) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(data, byte_by_byte=byte_by_byte)
    assert info.value.to_bytes() == error
    assert info.value.fatal


@pytest.mark.parametrize("magic", [b"  V2", b"GET ", b"\x00\x00\x00\x00"])
def test_bad_magic_is_e_bad_protocol(magic: bytes) -> None:
    reader = LookupCommandReader()
    reader.receive_data(magic + b"PING\n")
    with pytest.raises(ProtocolError) as info:
        reader.next_command()
    assert info.value.to_bytes() == b"E_BAD_PROTOCOL"


def test_client_encoders_are_what_the_reader_parses() -> None:
    data = (
        encode_lookup_identify(PEER)
        + encode_register("t")
        + encode_register("t", "c")
        + encode_unregister("t", "c")
        + encode_unregister("t")
        + encode_lookup_ping()
    )
    assert parse(data, byte_by_byte=False) == [
        LookupIdentify(FULL_PEER),
        Register("t"),
        Register("t", "c"),
        Unregister("t", "c"),
        Unregister("t"),
        LookupPing(),
    ]


def test_replies_are_size_prefixed_without_frame_type_and_split_by_the_reply_reader() -> None:
    assert encode_reply(b"OK") == b"\x00\x00\x00\x02OK"
    replies = ReplyReader()
    stream = encode_reply(b"OK") + encode_reply(b"") + encode_reply(b"E_INVALID x")
    got = []
    for byte in stream:
        replies.receive_data(bytes([byte]))
        while (reply := replies.next_reply()) is not None:
            got.append(reply)
    assert got == [b"OK", b"", b"E_INVALID x"]
