"""What the server answers to bad input: NSQ 1.3's error class and exact text, in NSQ's order.

Each row is checked whole, one byte at a time (the error comes with the byte that decides it,
never earlier and never waiting for bytes NSQ would not wait for), and with more bytes after it.
Texts follow nsqd/protocol_v2.go; a row's comment says why when the order of checks matters.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from pnsq.wire import MAGIC_V2, CommandReader, ProtocolError
from pnsq.wire.errors import (
    BadBodyError,
    BadChannelError,
    BadMessageError,
    BadProtocolError,
    BadTopicError,
    InvalidError,
)
from pnsq.wire.server import ClientState

INIT = ClientState.INIT
SUBSCRIBED = ClientState.SUBSCRIBED
CLOSING = ClientState.CLOSING

MSG_ID = b"0123456789abcdef"


def size(n: int) -> bytes:
    return struct.pack(">i", n)


def E(
    state: ClientState,
    data: bytes,
    error: type[ProtocolError],
    text: bytes,
    **settings: Any,
) -> Any:
    return pytest.param(state, data, error, text, settings, id=text.decode("utf-8", "replace")[:70])


# Rows that do not fit one line continue, indented, on the next: the table reads better so.
# fmt: off
ERRORS = [
    # -- unknown commands ----------------------------------------------------------------------
    E(INIT, b"FOO\n", InvalidError, b"E_INVALID invalid command FOO"),
    E(INIT, b"pub t\n", InvalidError, b"E_INVALID invalid command pub"),
    E(INIT, b"NOP\t\n", InvalidError, b"E_INVALID invalid command NOP\t"),
    E(INIT, b"\n", InvalidError, b"E_INVALID invalid command "),
    E(INIT, b"\r\n", InvalidError, b"E_INVALID invalid command "),
    E(INIT, b" NOP\n", InvalidError, b"E_INVALID invalid command "),
    # -- the state is checked before anything else ---------------------------------------------
    E(SUBSCRIBED, b"IDENTIFY\n", InvalidError, b"E_INVALID cannot IDENTIFY in current state"),
    E(CLOSING, b"IDENTIFY\n", InvalidError, b"E_INVALID cannot IDENTIFY in current state"),
    E(SUBSCRIBED, b"AUTH\n", InvalidError, b"E_INVALID cannot AUTH in current state"),
    E(SUBSCRIBED, b"AUTH x y\n", InvalidError, b"E_INVALID cannot AUTH in current state"),
    E(SUBSCRIBED, b"SUB t c\n", InvalidError, b"E_INVALID cannot SUB in current state"),
    E(CLOSING, b"SUB\n", InvalidError, b"E_INVALID cannot SUB in current state"),
    E(INIT, b"RDY 1\n", InvalidError, b"E_INVALID cannot RDY in current state"),
    E(INIT, b"RDY x\n", InvalidError, b"E_INVALID cannot RDY in current state"),
    E(INIT, b"FIN " + MSG_ID + b"\n", InvalidError, b"E_INVALID cannot FIN in current state"),
    E(INIT, b"FIN\n", InvalidError, b"E_INVALID cannot FIN in current state"),
    E(INIT, b"REQ " + MSG_ID + b" 0\n", InvalidError, b"E_INVALID cannot REQ in current state"),
    E(INIT, b"TOUCH " + MSG_ID + b"\n", InvalidError, b"E_INVALID cannot TOUCH in current state"),
    E(INIT, b"CLS\n", InvalidError, b"E_INVALID cannot CLS in current state"),
    E(CLOSING, b"CLS\n", InvalidError, b"E_INVALID cannot CLS in current state"),
    # -- SUB: heartbeats, then parameters, then topic, then channel ----------------------------
    E(INIT, b"SUB t c\n", InvalidError, b"E_INVALID cannot SUB with heartbeats disabled",
        heartbeats_enabled=False),
    E(INIT, b"SUB\n", InvalidError, b"E_INVALID cannot SUB with heartbeats disabled",
        heartbeats_enabled=False),
    E(INIT, b"SUB\n", InvalidError, b"E_INVALID SUB insufficient number of parameters"),
    E(INIT, b"SUB t\n", InvalidError, b"E_INVALID SUB insufficient number of parameters"),
    E(INIT, b"SUB t! c!\n", BadTopicError, b'E_BAD_TOPIC SUB topic name "t!" is not valid'),
    E(INIT, b"SUB  c\n", BadTopicError, b'E_BAD_TOPIC SUB topic name "" is not valid'),
    E(INIT, b"SUB t c!\n", BadChannelError, b'E_BAD_CHANNEL SUB channel name "c!" is not valid'),
    E(INIT, b"SUB t \n", BadChannelError, b'E_BAD_CHANNEL SUB channel name "" is not valid'),
    E(INIT, b"SUB t " + b"c" * 65 + b"\n", BadChannelError,
        b'E_BAD_CHANNEL SUB channel name "' + b"c" * 65 + b'" is not valid'),
    E(INIT, b"SUB t c\xff\n", BadChannelError,
        b'E_BAD_CHANNEL SUB channel name "c\\xff" is not valid'),
    # -- topic names: 1 to 64 characters including '#ephemeral', quoted like Go's %q ----------
    E(INIT, b"PUB " + b"a" * 65 + b"\n", BadTopicError,
        b'E_BAD_TOPIC PUB topic name "' + b"a" * 65 + b'" is not valid'),
    E(INIT, b"PUB " + b"a" * 55 + b"#ephemeral\n", BadTopicError,
        b'E_BAD_TOPIC PUB topic name "' + b"a" * 55 + b'#ephemeral" is not valid'),
    E(INIT, b"PUB #ephemeral\n", BadTopicError,
        b'E_BAD_TOPIC PUB topic name "#ephemeral" is not valid'),
    E(INIT, b"PUB t#ephemeral#ephemeral\n", BadTopicError,
        b'E_BAD_TOPIC PUB topic name "t#ephemeral#ephemeral" is not valid'),
    E(INIT, b"PUB t#Ephemeral\n", BadTopicError,
        b'E_BAD_TOPIC PUB topic name "t#Ephemeral" is not valid'),
    E(INIT, "PUB tëst\n".encode(), BadTopicError,
        'E_BAD_TOPIC PUB topic name "tëst" is not valid'.encode()),
    E(INIT, b"PUB t\xff\n", BadTopicError, b'E_BAD_TOPIC PUB topic name "t\\xff" is not valid'),
    E(INIT, b"PUB t\x00\n", BadTopicError, b'E_BAD_TOPIC PUB topic name "t\\x00" is not valid'),
    E(INIT, b'PUB "t"\\\t\n', BadTopicError,
        b'E_BAD_TOPIC PUB topic name "\\"t\\"\\\\\\t" is not valid'),
    E(INIT, "PUB t\u200b\n".encode(), BadTopicError,
        b'E_BAD_TOPIC PUB topic name "t\\u200b" is not valid'),
    E(INIT, "PUB t\U000e0001\n".encode(), BadTopicError,
        b'E_BAD_TOPIC PUB topic name "t\\U000e0001" is not valid'),
    # -- PUB: parameters, topic, then the body size (<= 0 before too big) ----------------------
    E(INIT, b"PUB\n", InvalidError, b"E_INVALID PUB insufficient number of parameters"),
    E(INIT, b"PUB t!\n", BadTopicError, b'E_BAD_TOPIC PUB topic name "t!" is not valid'),
    E(INIT, b"PUB t\n" + size(0), BadMessageError,
        b"E_BAD_MESSAGE PUB invalid message body size 0"),
    E(INIT, b"PUB t\n" + size(-1), BadMessageError,
        b"E_BAD_MESSAGE PUB invalid message body size -1"),
    E(INIT, b"PUB t\n" + size(1048577), BadMessageError,
        b"E_BAD_MESSAGE PUB message too big 1048577 > 1048576"),
    # a limit below zero fails both checks, showing which NSQ makes first
    E(INIT, b"PUB t\n" + size(0), BadMessageError,
        b"E_BAD_MESSAGE PUB invalid message body size 0", max_msg_size=-1),
    # -- DPUB: parameters, topic, timeout, then the body size ----------------------------------
    E(INIT, b"DPUB t\n", InvalidError, b"E_INVALID DPUB insufficient number of parameters"),
    E(INIT, b"DPUB t! x\n", BadTopicError, b'E_BAD_TOPIC DPUB topic name "t!" is not valid'),
    E(INIT, b"DPUB t x\n", InvalidError, b"E_INVALID DPUB could not parse timeout x"),
    E(INIT, b"DPUB t -1\n", InvalidError, b"E_INVALID DPUB could not parse timeout -1"),
    E(INIT, b"DPUB t 1.5\n", InvalidError, b"E_INVALID DPUB could not parse timeout 1.5"),
    E(INIT, b"DPUB t 3600001\n", InvalidError,
        b"E_INVALID DPUB timeout 3600001 out of range 0-3600000"),
    # NSQ prints the parsed uint64, not the int64 it compares
    E(INIT, b"DPUB t 18446744073709551615\n", InvalidError,
        b"E_INVALID DPUB timeout 18446744073709551615 out of range 0-3600000"),
    E(INIT, b"DPUB t 8\n", InvalidError, b"E_INVALID DPUB timeout 8 out of range 0-7",
        max_req_timeout_ms=7),
    E(INIT, b"DPUB t 0\n" + size(0), BadMessageError,
        b"E_BAD_MESSAGE DPUB invalid message body size 0"),
    E(INIT, b"DPUB t 0\n" + size(-5), BadMessageError,
        b"E_BAD_MESSAGE DPUB invalid message body size -5"),
    E(INIT, b"DPUB t 0\n" + size(1048577), BadMessageError,
        b"E_BAD_MESSAGE DPUB message too big 1048577 > 1048576"),
    E(INIT, b"DPUB t 0\n" + size(0), BadMessageError,
        b"E_BAD_MESSAGE DPUB invalid message body size 0", max_msg_size=-1),
    # -- MPUB: parameters, topic (its text repeats the code), body size, count, then parts ----
    E(INIT, b"MPUB\n", InvalidError, b"E_INVALID MPUB insufficient number of parameters"),
    E(INIT, b"MPUB t!\n", BadTopicError,
        b'E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "t!" is not valid'),
    E(INIT, b"MPUB t\n" + size(0), BadBodyError, b"E_BAD_BODY MPUB invalid body size 0"),
    E(INIT, b"MPUB t\n" + size(-1), BadBodyError, b"E_BAD_BODY MPUB invalid body size -1"),
    E(INIT, b"MPUB t\n" + size(5242881), BadBodyError,
        b"E_BAD_BODY MPUB body too big 5242881 > 5242880"),
    E(INIT, b"MPUB t\n\x7f\xff\xff\xff", BadBodyError,
        b"E_BAD_BODY MPUB body too big 2147483647 > 5242880"),
    E(INIT, b"MPUB t\n" + size(0), BadBodyError, b"E_BAD_BODY MPUB invalid body size 0",
        max_body_size=-1),
    E(INIT, b"MPUB t\n" + size(4) + size(0), BadBodyError,
        b"E_BAD_BODY MPUB invalid message count 0"),
    E(INIT, b"MPUB t\n" + size(4) + size(-1), BadBodyError,
        b"E_BAD_BODY MPUB invalid message count -1"),
    # at most (max_body_size - 4) // 5 parts: 1048575 by default
    E(INIT, b"MPUB t\n" + size(4) + size(1048576), BadBodyError,
        b"E_BAD_BODY MPUB invalid message count 1048576"),
    E(INIT, b"MPUB t\n" + size(14) + size(3), BadBodyError,
        b"E_BAD_BODY MPUB invalid message count 3", max_body_size=14),
    E(INIT, b"MPUB t\n" + size(8) + size(1) + size(0), BadMessageError,
        b"E_BAD_MESSAGE MPUB invalid message(0) body size 0"),
    E(INIT, b"MPUB t\n" + size(13) + size(2) + size(1) + b"a" + size(-1), BadMessageError,
        b"E_BAD_MESSAGE MPUB invalid message(1) body size -1"),
    E(INIT, b"MPUB t\n" + size(8) + size(1) + size(1048577), BadMessageError,
        b"E_BAD_MESSAGE MPUB message too big 1048577 > 1048576"),
    # -- IDENTIFY and AUTH: too big is checked before <= 0 -------------------------------------
    E(INIT, b"IDENTIFY\n" + size(0), BadBodyError, b"E_BAD_BODY IDENTIFY invalid body size 0"),
    E(INIT, b"IDENTIFY\n" + size(-1), BadBodyError, b"E_BAD_BODY IDENTIFY invalid body size -1"),
    E(INIT, b"IDENTIFY\n" + size(5242881), BadBodyError,
        b"E_BAD_BODY IDENTIFY body too big 5242881 > 5242880"),
    E(INIT, b"IDENTIFY\n" + size(0), BadBodyError, b"E_BAD_BODY IDENTIFY body too big 0 > -1",
        max_body_size=-1),
    E(INIT, b"AUTH x\n", InvalidError, b"E_INVALID AUTH invalid number of parameters"),
    E(INIT, b"AUTH \n", InvalidError, b"E_INVALID AUTH invalid number of parameters"),
    E(INIT, b"AUTH\n" + size(0), BadBodyError, b"E_BAD_BODY AUTH invalid body size 0"),
    E(INIT, b"AUTH\n" + size(-1), BadBodyError, b"E_BAD_BODY AUTH invalid body size -1"),
    E(INIT, b"AUTH\n" + size(5242881), BadBodyError,
        b"E_BAD_BODY AUTH body too big 5242881 > 5242880"),
    E(INIT, b"AUTH\n" + size(0), BadBodyError, b"E_BAD_BODY AUTH body too big 0 > -1",
        max_body_size=-1),
    # -- RDY: parsed as unsigned digits, then range-checked as int64 -------------------------
    E(SUBSCRIBED, b"RDY x\n", InvalidError, b"E_INVALID RDY could not parse count x"),
    E(SUBSCRIBED, b"RDY -1\n", InvalidError, b"E_INVALID RDY could not parse count -1"),
    E(SUBSCRIBED, b"RDY +1\n", InvalidError, b"E_INVALID RDY could not parse count +1"),
    E(SUBSCRIBED, b"RDY 2501\n", InvalidError, b"E_INVALID RDY count 2501 out of range 0-2500"),
    E(SUBSCRIBED, b"RDY 18446744073709551615\n", InvalidError,
        b"E_INVALID RDY count -1 out of range 0-2500"),
    E(SUBSCRIBED, b"RDY 6\n", InvalidError, b"E_INVALID RDY count 6 out of range 0-5",
        max_rdy_count=5),
    # -- FIN, REQ, TOUCH: parameters, the 16-byte ID, then REQ's timeout -----------------------
    E(SUBSCRIBED, b"FIN\n", InvalidError, b"E_INVALID FIN insufficient number of params"),
    E(SUBSCRIBED, b"FIN 0123\n", InvalidError, b"E_INVALID invalid message ID"),
    E(SUBSCRIBED, b"FIN \n", InvalidError, b"E_INVALID invalid message ID"),
    E(CLOSING, b"FIN " + MSG_ID + b"0\n", InvalidError, b"E_INVALID invalid message ID"),
    E(SUBSCRIBED, b"REQ " + MSG_ID + b"\n", InvalidError,
        b"E_INVALID REQ insufficient number of params"),
    E(SUBSCRIBED, b"REQ 0123 x\n", InvalidError, b"E_INVALID invalid message ID"),
    E(SUBSCRIBED, b"REQ " + MSG_ID + b" x\n", InvalidError,
        b"E_INVALID REQ could not parse timeout x"),
    E(CLOSING, b"REQ " + MSG_ID + b" -5\n", InvalidError,
        b"E_INVALID REQ could not parse timeout -5"),
    E(SUBSCRIBED, b"TOUCH\n", InvalidError, b"E_INVALID TOUCH insufficient number of params"),
    E(CLOSING, b"TOUCH 0123456789abcde\n", InvalidError, b"E_INVALID invalid message ID"),
    # -- a line that cannot end within NSQ's 16 KiB read buffer -------------------------------
    E(INIT, b"N" * 16385, InvalidError, b"E_INVALID command longer than 16384 bytes"),
]
# fmt: on


def reader_after_magic(state: ClientState, settings: dict[str, Any]) -> CommandReader:
    reader = CommandReader()
    reader.receive_data(MAGIC_V2)
    assert reader.next_command() is None
    reader.state = state
    for name, value in settings.items():
        setattr(reader, name, value)
    return reader


def check_rejected(reader: CommandReader, error: type[ProtocolError], text: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        reader.next_command()
    assert type(info.value) is error
    assert info.value.to_bytes() == text
    assert info.value.fatal


@pytest.mark.parametrize(("state", "data", "error", "text", "settings"), ERRORS)
def test_invalid_input_is_rejected_with_nsqs_error_and_text(
    state: ClientState,
    data: bytes,
    error: type[ProtocolError],
    text: bytes,
    settings: dict[str, Any],
) -> None:
    reader = reader_after_magic(state, settings)
    reader.receive_data(data)
    check_rejected(reader, error, text)

    # one byte at a time: the error comes with the last byte, not before
    reader = reader_after_magic(state, settings)
    for i in range(len(data) - 1):
        reader.receive_data(data[i : i + 1])
        assert reader.next_command() is None
    reader.receive_data(data[-1:])
    check_rejected(reader, error, text)

    # more bytes after it change nothing
    reader = reader_after_magic(state, settings)
    reader.receive_data(data + b"NOP\nNOP\n")
    check_rejected(reader, error, text)


def test_mpub_with_2gb_size_header_is_rejected_before_the_body_arrives() -> None:
    reader = reader_after_magic(INIT, {})
    reader.receive_data(b"MPUB t\n\x7f\xff\xff")
    assert reader.next_command() is None
    reader.receive_data(b"\xff")
    check_rejected(reader, BadBodyError, b"E_BAD_BODY MPUB body too big 2147483647 > 5242880")


@pytest.mark.parametrize(
    "chunks", [[b"NOP " + b"a" * 16381 + b"\n"], [b"NOP ", b"a" * 16381, b"\n"]]
)
def test_a_command_longer_than_16384_bytes_is_rejected_however_it_arrives(
    chunks: list[bytes],
) -> None:
    reader = reader_after_magic(INIT, {})
    with pytest.raises(InvalidError) as info:  # noqa: PT012 - the chunk that overflows raises
        for chunk in chunks:
            reader.receive_data(chunk)
            assert reader.next_command() is None
    assert info.value.to_bytes() == b"E_INVALID command longer than 16384 bytes"


@pytest.mark.parametrize(
    "magic", [b"  V1", b"V2  ", b" V2 ", b"GET ", b"\x00\x00\x00\x00", b"  v2"]
)
def test_wrong_magic_is_rejected_with_e_bad_protocol_once_four_bytes_arrive(magic: bytes) -> None:
    reader = CommandReader()
    for byte in magic[:3]:
        reader.receive_data(bytes([byte]))
        assert reader.next_command() is None
    reader.receive_data(magic[3:] + b"NOP\n")
    with pytest.raises(BadProtocolError) as info:
        reader.next_command()
    assert info.value.to_bytes() == b"E_BAD_PROTOCOL"
    assert info.value.fatal


# Go formats these with %s: the client's bytes go back unchanged, undecodable ones included.
RAW_BYTES_ECHOED = [
    (INIT, b"\xff\n", b"E_INVALID invalid command \xff"),
    (SUBSCRIBED, b"RDY \xff\n", b"E_INVALID RDY could not parse count \xff"),
    (INIT, b"DPUB t \xff\n", b"E_INVALID DPUB could not parse timeout \xff"),
    (SUBSCRIBED, b"REQ " + MSG_ID + b" \xff\n", b"E_INVALID REQ could not parse timeout \xff"),
]


@pytest.mark.parametrize(("state", "data", "text"), RAW_BYTES_ECHOED)
def test_undecodable_bytes_are_echoed_back_unchanged_like_nsq(
    state: ClientState, data: bytes, text: bytes
) -> None:
    reader = reader_after_magic(state, {})
    reader.receive_data(data)
    check_rejected(reader, InvalidError, text)
