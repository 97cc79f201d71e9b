"""The client's state machine: negotiation, frames to events, heartbeats, and its command bytes.

Frames are built here from NSQ's layout by hand (``frame()``), not with wire's encoders, so a
test fails if both sides drift together. Every feed is also tried byte by byte, as h11's tests do.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pnsq.wire import (
    MAGIC_V2,
    NEED_DATA,
    ClientConnection,
    CommandReader,
    DPub,
    ErrorFrame,
    Event,
    Fin,
    Heartbeat,
    MessageEvent,
    MPub,
    Negotiated,
    Nop,
    Phase,
    Pub,
    Rdy,
    Req,
    Response,
    Sub,
    Touch,
)
from pnsq.wire.commands import Cls, Command
from pnsq.wire.errors import AuthFirstError, BadTopicError, FinFailedError, InvalidError
from pnsq.wire.server import ClientState

MSG_ID = b"0123456789abcdef"
IDENTIFY = {"client_id": "a", "feature_negotiation": True}
IDENTIFY_BYTES = b'  V2IDENTIFY\n\x00\x00\x00\x2c{"client_id":"a","feature_negotiation":true}'
# nsqd 1.3's reply to feature negotiation, byte for byte
SETTINGS = (
    b'{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,'
    b'"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,'
    b'"sample_rate":0,"auth_required":false,"output_buffer_size":16384,'
    b'"output_buffer_timeout":250}'
)
AUTH_REPLY = b'{"identity":"alice","identity_url":"https://id.example/alice","permission_count":1}'


def frame(frame_type: int, data: bytes) -> bytes:
    return (len(data) + 4).to_bytes(4, "big") + frame_type.to_bytes(4, "big") + data


def message_frame(timestamp: int, attempts: int, msg_id: bytes, body: bytes) -> bytes:
    return frame(
        2, timestamp.to_bytes(8, "big", signed=True) + attempts.to_bytes(2, "big") + msg_id + body
    )


OK = frame(0, b"OK")
HEARTBEAT = frame(0, b"_heartbeat_")


def connect(**kwargs: Any) -> ClientConnection[MessageEvent]:
    """A connection whose IDENTIFY nsqd answered with a plain OK."""
    conn = ClientConnection(IDENTIFY, **kwargs)
    conn.data_to_send()
    conn.receive_data(OK)
    assert isinstance(conn.next_event(), Negotiated)
    return conn


def events_of(conn: ClientConnection[MessageEvent], data: bytes) -> list[Event[MessageEvent]]:
    conn.receive_data(data)
    return conn.next_events()


def events_byte_by_byte(
    conn: ClientConnection[MessageEvent], data: bytes
) -> list[Event[MessageEvent] | object]:
    got: list[Event[MessageEvent] | object] = []
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
        while (event := conn.next_event()) is not NEED_DATA:
            got.append(event)
    return got


# -- negotiation --------------------------------------------------------------------------------


def test_magic_and_identify_go_out_first() -> None:
    conn = ClientConnection(IDENTIFY)
    assert conn.phase is Phase.IDENTIFYING
    assert conn.data_to_send() == IDENTIFY_BYTES
    assert conn.data_to_send() == b""
    assert conn.next_event() is NEED_DATA


@pytest.mark.parametrize(
    ("reply", "settings"),
    [(OK, {}), (frame(0, SETTINGS), json.loads(SETTINGS))],
    ids=["plain-ok", "feature-negotiation"],
)
def test_identify_reply_plain_ok_or_json_negotiates(reply: bytes, settings: Any) -> None:
    for feed in ("whole", "byte-by-byte"):
        conn = ClientConnection(IDENTIFY)
        conn.data_to_send()
        if feed == "whole":
            conn.receive_data(reply + b"\x00\x00")
            events: list[object] = [conn.next_event()]
            assert conn.trailing_data == b"\x00\x00"
        else:
            events = events_byte_by_byte(conn, reply)
        assert len(events) == 1
        event = events[0]
        assert isinstance(event, Negotiated)
        assert (event.settings, event.auth) == (settings, None)
        assert conn.settings == settings
        assert conn.phase is Phase.READY
        assert conn.data_to_send() == b""


def test_auth_required_sends_auth_with_the_secret_then_negotiates() -> None:
    conn = ClientConnection(IDENTIFY, auth_secret=b"s3cret")
    conn.data_to_send()
    reply = json.loads(SETTINGS) | {"auth_required": True}
    conn.receive_data(frame(0, json.dumps(reply).encode()))
    assert conn.next_event() is NEED_DATA
    assert conn.phase is Phase.AUTHENTICATING
    assert conn.data_to_send() == b"AUTH\n\x00\x00\x00\x06s3cret"
    (event,) = events_byte_by_byte(conn, frame(0, AUTH_REPLY))
    assert isinstance(event, Negotiated)
    assert (event.settings, event.auth) == (reply, json.loads(AUTH_REPLY))
    assert conn.phase is Phase.READY
    assert conn.settings == reply


def test_auth_reply_is_reported_with_the_settings() -> None:
    conn = ClientConnection(IDENTIFY, auth_secret=b"s3cret")
    conn.data_to_send()
    conn.receive_data(frame(0, b'{"auth_required":true}') + frame(0, AUTH_REPLY))
    event = conn.next_event()
    assert isinstance(event, Negotiated)
    assert event.settings == {"auth_required": True}
    assert event.auth == json.loads(AUTH_REPLY)
    assert conn.data_to_send() == b"AUTH\n\x00\x00\x00\x06s3cret"


def test_auth_required_without_a_secret_raises_auth_first() -> None:
    conn = ClientConnection(IDENTIFY)
    conn.data_to_send()
    conn.receive_data(frame(0, b'{"auth_required":true}'))
    with pytest.raises(AuthFirstError, match="set auth_secret"):
        conn.next_event()
    assert conn.phase is Phase.FAILED
    assert conn.data_to_send() == b""  # no AUTH without a secret


@pytest.mark.parametrize("reply", [b"[1]", b"not json", b"\xff", b'"OK"', b"ok"])
def test_identify_reply_that_is_neither_ok_nor_a_json_object_raises_value_error(
    reply: bytes,
) -> None:
    conn = ClientConnection(IDENTIFY)
    conn.receive_data(frame(0, reply))
    with pytest.raises(ValueError, match="IDENTIFY reply is neither OK nor a JSON object"):
        conn.next_event()


def test_error_frame_during_negotiation_is_reported_fatal() -> None:
    conn = ClientConnection(IDENTIFY)
    conn.receive_data(frame(1, b"E_BAD_BODY IDENTIFY heartbeat interval (1) is invalid"))
    event = conn.next_event()
    assert isinstance(event, ErrorFrame)
    assert event.fatal
    assert event.error.code == "E_BAD_BODY"
    assert event.error.description == "IDENTIFY heartbeat interval (1) is invalid"
    assert conn.phase is Phase.FAILED


def test_heartbeat_during_negotiation_is_answered_and_negotiation_goes_on() -> None:
    conn = ClientConnection(IDENTIFY)
    conn.data_to_send()
    conn.receive_data(HEARTBEAT + OK)
    assert isinstance(conn.next_event(), Heartbeat)
    assert conn.data_to_send() == b"NOP\n"
    assert isinstance(conn.next_event(), Negotiated)


# -- after negotiation ---------------------------------------------------------------------------


def test_heartbeat_is_answered_with_nop_and_counted() -> None:
    conn = connect()
    assert [type(e) for e in events_of(conn, HEARTBEAT * 3)] == [Heartbeat] * 3
    assert conn.heartbeats == 3
    assert conn.data_to_send() == b"NOP\n" * 3
    assert events_byte_by_byte(conn, HEARTBEAT)[0].__class__ is Heartbeat
    assert conn.data_to_send() == b"NOP\n"


# (frame bytes, the event they give)
FRAMES: list[tuple[bytes, Event[MessageEvent]]] = [
    (OK, Response(b"OK")),
    (frame(0, b"CLOSE_WAIT"), Response(b"CLOSE_WAIT")),
    (frame(0, b""), Response(b"")),
    (message_frame(1, 2, MSG_ID, b"hi"), MessageEvent(1, 2, MSG_ID, b"hi")),
    (message_frame(1_700_000_000_000_000_000, 65535, MSG_ID, b""), MessageEvent(
        1_700_000_000_000_000_000, 65535, MSG_ID, b"")),
    (message_frame(-1, 0, MSG_ID, bytes(range(256))), MessageEvent(-1, 0, MSG_ID, bytes(range(256)))),
]  # fmt: skip


@pytest.mark.parametrize(("data", "event"), FRAMES)
def test_each_frame_gives_its_event_whole_byte_by_byte_and_with_trailing_bytes(
    data: bytes, event: Event[MessageEvent]
) -> None:
    assert events_of(connect(), data) == [event]
    assert events_byte_by_byte(connect(), data) == [event]
    conn = connect()
    assert events_of(conn, data + data[:7]) == [event]
    assert conn.trailing_data == data[:7]
    assert events_of(conn, data[7:]) == [event]


def test_message_frame_from_nsq_decodes_to_its_fields() -> None:
    # a frame as nsqd 1.3 sends it: 200-byte body, id from its GUID factory
    data = (
        b"\x00\x00\x00\xe6"  # size 230: type 4 + timestamp 8 + attempts 2 + id 16 + body 200
        b"\x00\x00\x00\x02"
        b"\x17\x9d\x3b\x2e\x1c\x5a\x40\x00"
        b"\x00\x01"
        b"0b8e4c6ab6c2e000" + b"x" * 200
    )
    (event,) = events_of(connect(), data)
    assert isinstance(event, MessageEvent)
    assert event.timestamp == 0x179D3B2E1C5A4000
    assert (event.attempts, event.id, event.body) == (1, b"0b8e4c6ab6c2e000", b"x" * 200)


@pytest.mark.parametrize(
    ("data", "error", "fatal"),
    [
        (b"E_FIN_FAILED FIN 0123456789abcdef failed ID not in flight", FinFailedError, False),
        (b'E_BAD_TOPIC PUB topic name "t!" is not valid', BadTopicError, True),
        (b"E_INVALID cannot SUB in current state", InvalidError, True),
    ],
)
def test_error_frames_are_events_fatal_or_not(
    data: bytes, error: type[Exception], fatal: bool
) -> None:
    conn = connect()
    (event,) = events_of(conn, frame(1, data))
    assert isinstance(event, ErrorFrame)
    assert isinstance(event.error, error)
    assert event.fatal is fatal
    assert event.error.to_bytes() == data
    assert conn.phase is (Phase.FAILED if fatal else Phase.READY)


def test_an_unknown_error_code_keeps_its_code() -> None:
    (event,) = events_of(connect(), frame(1, b"E_NEW_THING something"))
    assert isinstance(event, ErrorFrame)
    assert (event.error.code, event.error.description, event.fatal) == (
        "E_NEW_THING",
        "something",
        True,
    )


def test_many_frames_in_one_receive_come_out_in_order_in_one_call() -> None:
    conn = connect()
    messages = [message_frame(i, 1, MSG_ID, b"%d" % i) for i in range(1000)]
    data = b"".join(messages[:500]) + HEARTBEAT + OK + b"".join(messages[500:])
    events = events_of(conn, data + OK[:3])
    assert len(events) == 1002
    assert events[500:502] == [events[500], Response(b"OK")]
    assert isinstance(events[500], Heartbeat)
    got = [e for e in events if isinstance(e, MessageEvent)]
    assert [m.body for m in got] == [b"%d" % i for i in range(1000)]
    assert conn.next_events() == []
    assert events_of(conn, OK[3:]) == [Response(b"OK")]
    assert conn.data_to_send() == b"NOP\n"


class Delivery(MessageEvent):
    __slots__ = ("seen",)


def test_messages_are_built_as_the_given_message_type() -> None:
    conn = ClientConnection(IDENTIFY, message_type=Delivery)
    conn.receive_data(OK + message_frame(5, 1, MSG_ID, b"a") + message_frame(6, 1, MSG_ID, b"b"))
    assert isinstance(conn.next_event(), Negotiated)
    first = conn.next_event()
    assert type(first) is Delivery
    assert [type(e) for e in conn.next_events()] == [Delivery]


# -- garbage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00\x00\x00\x00\x00\x00\x00", "invalid frame size 0"),
        (b"\x00\x00\x00\x03\x00\x00\x00\x00", "invalid frame size 3"),
        (b"\xff\xff\xff\xff\x00\x00\x00\x00", "invalid frame size -1"),
        (b"\x01\x00\x00\x01\x00\x00\x00\x00", "invalid frame size 16777217"),
        (frame(3, b"x"), "unknown frame type 3"),
        (frame(2, b"x" * 25), "message too short: 25 < 26 bytes"),
        (frame(0xFFFFFFFF, b""), "unknown frame type 4294967295"),
    ],
)
def test_garbage_from_the_server_raises_value_error_and_keeps_raising(
    data: bytes, message: str
) -> None:
    for method in ("next_event", "next_events"):
        conn = connect()
        conn.receive_data(data)
        with pytest.raises(ValueError, match=f"^{message}$"):
            getattr(conn, method)()
        with pytest.raises(ValueError, match=f"^{message}$"):
            conn.next_events()


def test_garbage_after_good_frames_gives_the_good_ones_first() -> None:
    conn = connect()
    good = message_frame(1, 1, MSG_ID, b"a") + OK
    assert events_of(conn, good + b"\x00\x00\x00\x01\x00\x00\x00\x00") == [
        MessageEvent(1, 1, MSG_ID, b"a"),
        Response(b"OK"),
    ]
    assert conn.phase is Phase.FAILED
    with pytest.raises(ValueError, match="invalid frame size 1"):
        conn.next_events()


def test_max_frame_size_is_configurable() -> None:
    conn = connect(max_frame_size=64)
    assert events_of(conn, frame(0, b"x" * 60)) == [Response(b"x" * 60)]
    with pytest.raises(ValueError, match="invalid frame size 65"):
        events_of(conn, frame(0, b"x" * 61))


# -- commands -----------------------------------------------------------------------------------

# (what the client calls, the exact bytes, the command nsqd's reader sees, its state)
COMMANDS: list[tuple[str, tuple[Any, ...], bytes, Command, ClientState]] = [
    ("sub", ("t", "c"), b"SUB t c\n", Sub("t", "c"), ClientState.INIT),
    ("rdy", (100,), b"RDY 100\n", Rdy(100), ClientState.SUBSCRIBED),
    ("fin", (MSG_ID,), b"FIN 0123456789abcdef\n", Fin(MSG_ID), ClientState.SUBSCRIBED),
    ("req", (MSG_ID, 5000), b"REQ 0123456789abcdef 5000\n", Req(MSG_ID, 5000),
        ClientState.SUBSCRIBED),
    ("touch", (MSG_ID,), b"TOUCH 0123456789abcdef\n", Touch(MSG_ID), ClientState.SUBSCRIBED),
    ("pub", ("t", b"hi"), b"PUB t\n\x00\x00\x00\x02hi", Pub("t", b"hi"), ClientState.INIT),
    ("mpub", ("t", [b"a", b"bc"]),
        b"MPUB t\n\x00\x00\x00\x0f\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x02bc",
        MPub("t", [b"a", b"bc"]), ClientState.INIT),
    ("dpub", ("t", 1000, b"hi"), b"DPUB t 1000\n\x00\x00\x00\x02hi", DPub("t", 1000, b"hi"),
        ClientState.INIT),
    ("cls", (), b"CLS\n", Cls(), ClientState.SUBSCRIBED),
    ("nop", (), b"NOP\n", Nop(), ClientState.INIT),
]  # fmt: skip


@pytest.mark.parametrize(("method", "args", "wire", "command", "state"), COMMANDS)
def test_each_command_writes_its_exact_bytes_and_nsqds_reader_reads_it_back(
    method: str, args: tuple[Any, ...], wire: bytes, command: Command, state: ClientState
) -> None:
    conn = connect()
    getattr(conn, method)(*args)
    assert conn.pending_output == len(wire)
    data = conn.data_to_send()
    assert data == wire
    reader = CommandReader(expect_magic=False)
    reader.state = state
    reader.receive_data(data + b"NOP\n")
    assert reader.next_command() == command
    assert reader.buffered == 4


def test_commands_queue_up_behind_each_other_until_sent() -> None:
    conn = connect()
    conn.fin(MSG_ID)
    conn.rdy(1)
    events_of(conn, HEARTBEAT)
    assert conn.data_to_send() == b"FIN 0123456789abcdef\nRDY 1\nNOP\n"


# -- properties ---------------------------------------------------------------------------------

frames_st = st.lists(
    st.one_of(
        st.builds(
            lambda t, a, b: (message_frame(t, a, MSG_ID, b), MessageEvent(t, a, MSG_ID, b)),
            st.integers(-(2**63), 2**63 - 1),
            st.integers(0, 2**16 - 1),
            st.binary(max_size=64),
        ),
        st.binary(max_size=32)
        .filter(lambda d: d != b"_heartbeat_")
        .map(lambda d: (frame(0, d), Response(d))),
    ),
    max_size=20,
)


@given(frames=frames_st, cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_any_frames_split_anywhere_give_the_same_events(
    frames: list[tuple[bytes, Event[MessageEvent]]], cuts: list[int]
) -> None:
    data = b"".join(wire for wire, _ in frames)
    points = sorted({c % (len(data) + 1) for c in cuts})
    conn = connect()
    got: list[Event[MessageEvent]] = []
    for a, b in zip([0, *points], [*points, len(data)], strict=True):
        got += events_of(conn, data[a:b])
    assert got == [event for _, event in frames]
    assert conn.trailing_data == b""


@given(data=st.binary(max_size=300))
def test_garbage_gives_events_or_value_error_never_another_exception(data: bytes) -> None:
    conn = connect()
    try:
        for i in range(0, len(data), 7):
            events_of(conn, data[i : i + 7])
    except ValueError:
        assert conn.phase is Phase.FAILED


def test_message_event_compares_by_value_and_the_magic_is_nsqs() -> None:
    assert MessageEvent(1, 2, MSG_ID, b"x") == MessageEvent(1, 2, MSG_ID, b"x")
    assert MessageEvent(1, 2, MSG_ID, b"x") != MessageEvent(1, 3, MSG_ID, b"x")
    assert MAGIC_V2 == b"  V2"
