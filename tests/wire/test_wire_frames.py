"""Server frames on the wire: one table drives ``encode_frame`` and the client's ``FrameReader``.

The exact bytes are NSQ's: ``[4-byte size][4-byte frame type][data]``, size = len(data) + 4
(the reference's section 1.1); the message frame's data is timestamp, attempts, id, body.
"""

from __future__ import annotations

import pytest

from pnsq.nsqd.client_v2 import ClientV2
from pnsq.nsqd.message import Message, queue_records
from pnsq.nsqd.options import Options
from pnsq.wire import (
    CLOSE_WAIT,
    CLOSE_WAIT_FRAME,
    FRAME_TYPE_ERROR,
    FRAME_TYPE_MESSAGE,
    FRAME_TYPE_RESPONSE,
    HEARTBEAT,
    HEARTBEAT_FRAME,
    MSG_HEADER_LENGTH,
    OK,
    OK_FRAME,
    FrameReader,
    decode_message,
    encode_error,
    encode_frame,
    encode_message_frame,
    encode_response,
    pack_message_frame_into,
)
from pnsq.wire.errors import BadTopicError, FinFailedError

MSG_ID = b"0123456789abcdef"

# timestamp 1, attempts 2, MSG_ID, body b"hi"
MESSAGE = b"\x00\x00\x00\x00\x00\x00\x00\x01" + b"\x00\x02" + MSG_ID + b"hi"
MESSAGE_FRAME = b"\x00\x00\x00\x20" + b"\x00\x00\x00\x02" + MESSAGE

# (frame type, data, exact bytes)
FRAMES: list[tuple[int, bytes, bytes]] = [
    (FRAME_TYPE_RESPONSE, OK, b"\x00\x00\x00\x06\x00\x00\x00\x00OK"),
    (FRAME_TYPE_RESPONSE, HEARTBEAT, b"\x00\x00\x00\x0f\x00\x00\x00\x00_heartbeat_"),
    (FRAME_TYPE_RESPONSE, CLOSE_WAIT, b"\x00\x00\x00\x0e\x00\x00\x00\x00CLOSE_WAIT"),
    (FRAME_TYPE_RESPONSE, b"", b"\x00\x00\x00\x04\x00\x00\x00\x00"),
    (
        FRAME_TYPE_ERROR,
        b"E_INVALID invalid command FOO",
        b"\x00\x00\x00\x21\x00\x00\x00\x01E_INVALID invalid command FOO",
    ),
    (FRAME_TYPE_MESSAGE, MESSAGE, MESSAGE_FRAME),
    # a frame type the reader does not know is handed over for the caller to judge
    (0xFFFFFFFF, b"x", b"\x00\x00\x00\x05\xff\xff\xff\xffx"),
]


def drain(reader: FrameReader) -> list[tuple[int, bytes]]:
    frames = []
    while (frame := reader.next_frame()) is not None:
        frames.append(frame)
    return frames


@pytest.mark.parametrize(("frame_type", "data", "wire"), FRAMES)
def test_each_frame_encodes_to_its_exact_bytes(frame_type: int, data: bytes, wire: bytes) -> None:
    assert encode_frame(frame_type, data) == wire


@pytest.mark.parametrize(("frame_type", "data", "wire"), FRAMES)
def test_each_frame_decodes_whole_byte_by_byte_and_with_trailing_bytes(
    frame_type: int, data: bytes, wire: bytes
) -> None:
    reader = FrameReader()
    reader.receive_data(wire)
    assert reader.next_frame() == (frame_type, data)
    assert reader.trailing_data == b""
    assert reader.next_frame() is None

    reader = FrameReader()
    for i in range(len(wire)):
        assert reader.next_frame() is None
        reader.receive_data(wire[i : i + 1])
    assert reader.next_frame() == (frame_type, data)
    assert reader.trailing_data == b""

    reader = FrameReader()
    reader.receive_data(wire + b"\x00\x00\x00")
    assert reader.next_frame() == (frame_type, data)
    assert reader.trailing_data == b"\x00\x00\x00"
    assert reader.next_frame() is None


def test_several_frames_in_one_chunk_come_out_in_order() -> None:
    reader = FrameReader()
    reader.receive_data(b"".join(wire for _, _, wire in FRAMES))
    assert drain(reader) == [(frame_type, data) for frame_type, data, _ in FRAMES]
    assert reader.trailing_data == b""


def test_frames_split_across_chunks_keep_the_unread_rest() -> None:
    first, second, third = (wire for _, _, wire in FRAMES[:3])
    reader = FrameReader()
    reader.receive_data(first + second + third[:5])
    assert drain(reader) == [(FRAME_TYPE_RESPONSE, OK), (FRAME_TYPE_RESPONSE, HEARTBEAT)]
    assert reader.trailing_data == third[:5]
    reader.receive_data(third[5:] + first)
    assert drain(reader) == [(FRAME_TYPE_RESPONSE, CLOSE_WAIT), (FRAME_TYPE_RESPONSE, OK)]
    reader.receive_data(first)
    assert drain(reader) == [(FRAME_TYPE_RESPONSE, OK)]
    assert reader.trailing_data == b""


def test_a_frame_larger_than_64_kib_is_read_and_what_follows_kept() -> None:
    big = bytes(range(256)) * 1024
    reader = FrameReader()
    reader.receive_data(encode_frame(FRAME_TYPE_MESSAGE, big) + encode_frame(0, OK)[:3])
    assert reader.next_frame() == (FRAME_TYPE_MESSAGE, big)
    assert reader.trailing_data == encode_frame(0, OK)[:3]
    reader.receive_data(encode_frame(0, OK)[3:])
    assert reader.next_frame() == (FRAME_TYPE_RESPONSE, OK)


@pytest.mark.parametrize(
    ("header", "max_frame_size", "message"),
    [
        (b"\x00\x00\x00\x03\x00\x00\x00\x00", 1024, "invalid frame size 3"),
        (b"\x00\x00\x00\x00\x00\x00\x00\x00", 1024, "invalid frame size 0"),
        (b"\xff\xff\xff\xff\x00\x00\x00\x00", 1024, "invalid frame size -1"),
        (b"\x80\x00\x00\x00\x00\x00\x00\x01", 1024, "invalid frame size -2147483648"),
        (b"\x00\x00\x04\x01\x00\x00\x00\x00", 1024, "invalid frame size 1025"),
        (b"\x01\x00\x00\x01\x00\x00\x00\x00", 16 * 1024 * 1024, "invalid frame size 16777217"),
    ],
)
def test_an_impossible_frame_size_raises_value_error_once_the_header_arrives(
    header: bytes, max_frame_size: int, message: str
) -> None:
    reader = FrameReader(max_frame_size=max_frame_size)
    for i in range(7):
        reader.receive_data(header[i : i + 1])
        assert reader.next_frame() is None
    reader.receive_data(header[7:])
    with pytest.raises(ValueError, match=f"^{message}$"):
        reader.next_frame()


def test_a_frame_of_exactly_max_frame_size_is_accepted() -> None:
    reader = FrameReader(max_frame_size=8)
    reader.receive_data(encode_frame(FRAME_TYPE_RESPONSE, b"abcd"))
    assert reader.next_frame() == (FRAME_TYPE_RESPONSE, b"abcd")


def test_message_frame_has_nsqs_exact_layout() -> None:
    assert encode_message_frame(1, 2, MSG_ID, b"hi") == MESSAGE_FRAME
    assert encode_frame(FRAME_TYPE_MESSAGE, MESSAGE) == MESSAGE_FRAME


@pytest.mark.parametrize(
    ("timestamp", "attempts", "body"),
    [
        (1, 2, b"hi"),
        (0, 0, b""),
        (1_700_000_000_000_000_000, 65535, bytes(range(256))),
        (-(2**63), 1, b"\n"),
        (2**63 - 1, 1, b"x"),
    ],
)
def test_message_round_trips_through_its_bytes(timestamp: int, attempts: int, body: bytes) -> None:
    frame = encode_message_frame(timestamp, attempts, MSG_ID, body)
    reader = FrameReader()
    reader.receive_data(frame)
    frame_type, data = reader.next_frame() or (None, b"")
    assert frame_type == FRAME_TYPE_MESSAGE
    assert data == frame[8:]
    assert decode_message(data) == (timestamp, attempts, MSG_ID, body)


@pytest.mark.parametrize("length", [0, 1, MSG_HEADER_LENGTH - 1])
def test_decode_message_shorter_than_the_header_raises_value_error(length: int) -> None:
    with pytest.raises(ValueError, match=f"^message too short: {length} < 26 bytes$"):
        decode_message(MESSAGE[:length])


def test_prebuilt_frames_are_nsqs_bytes() -> None:
    assert OK_FRAME == b"\x00\x00\x00\x06\x00\x00\x00\x00OK"
    assert HEARTBEAT_FRAME == b"\x00\x00\x00\x0f\x00\x00\x00\x00_heartbeat_"
    assert CLOSE_WAIT_FRAME == b"\x00\x00\x00\x0e\x00\x00\x00\x00CLOSE_WAIT"
    assert encode_response(b'{"a":1}') == b"\x00\x00\x00\x0b\x00\x00\x00\x00" + b'{"a":1}'


def test_an_error_frame_carries_code_and_description() -> None:
    wire = b"\x00\x00\x00\x30\x00\x00\x00\x01" + b'E_BAD_TOPIC PUB topic name "t!" is not valid'
    assert encode_error(BadTopicError('PUB topic name "t!" is not valid')) == wire
    assert encode_error(FinFailedError()) == b"\x00\x00\x00\x10\x00\x00\x00\x01E_FIN_FAILED"


def test_pack_message_frame_into_appends_to_what_is_buffered() -> None:
    out = bytearray(OK_FRAME)
    pack_message_frame_into(out, 1, 2, MSG_ID, b"hi")
    pack_message_frame_into(out, 1, 2, MSG_ID, b"hi")
    assert out == OK_FRAME + MESSAGE_FRAME + MESSAGE_FRAME


class _Delivery:
    __slots__ = ("attempts", "body", "id", "record", "timestamp")

    def __init__(self, timestamp: int, attempts: int, msg_id: bytes, body: bytes) -> None:
        self.timestamp, self.attempts, self.id, self.body = timestamp, attempts, msg_id, body
        self.record = None


@pytest.mark.parametrize("body", [b"hi", b"", bytes(range(256)) * 300])
def test_nsqd_delivery_path_writes_the_same_bytes_as_wire(body: bytes) -> None:
    """nsqd inlines pack_message_frame_into for speed; the bytes must not drift apart."""
    client = ClientV2(1, ("127.0.0.1", 1), Options())
    batch = [_Delivery(1_700_000_000_000_000_000, 3, MSG_ID, body), _Delivery(7, 1, MSG_ID, b"x")]
    client.send_messages(batch)  # type: ignore[arg-type]
    assert client.out == encode_message_frame(
        1_700_000_000_000_000_000, 3, MSG_ID, body
    ) + encode_message_frame(7, 1, MSG_ID, b"x")
    assert (client.in_flight_count, client.message_count) == (2, 2)


@pytest.mark.parametrize("body", [b"hi", bytes(range(256)) * 300])
def test_a_queued_record_frames_as_wire_on_its_first_delivery_and_after(body: bytes) -> None:
    """nsqd appends a queued record whole on its first delivery: the same bytes as wire's."""
    (record,) = queue_records([MSG_ID], [body], 1_700_000_000_000_000_000)
    msg = Message.of(record)
    assert (msg.id, msg.body, msg.timestamp) == (MSG_ID, body, 1_700_000_000_000_000_000)
    client = ClientV2(1, ("127.0.0.1", 1), Options())
    for attempts in (1, 2):
        msg.attempts = attempts
        client.send_messages([msg])
        assert client.out == encode_message_frame(1_700_000_000_000_000_000, attempts, MSG_ID, body)
        client.out.clear()
