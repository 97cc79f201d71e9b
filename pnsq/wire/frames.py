"""Server-to-client frames and the message layout.

A frame::

    [x][x][x][x][x][x][x][x][x][x][x][x]...
    |  (int32) ||  (int32) || (binary)
    |  4-byte  ||  4-byte  || N-byte
    ------------------------------------...
        size     frame type     data

``size`` counts the frame type and the data. The data of a message frame::

    [x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x]...
    |       (int64)        ||    ||      (hex string encoded in ASCII)           || (binary)
    |       8-byte         ||    ||                 16-byte                      || N-byte
    ------------------------------------------------------------------------------------...
      nanosecond timestamp    ^^                   message ID                       message body
                           (uint16)
                            2-byte
                           attempts

The frames a server sends most (OK, heartbeat, CLOSE_WAIT) are prebuilt constants. A message
frame is one struct pack (everything up to the body) plus the body, appended to the caller's
output buffer: ``pack_message_frame_into``. nsqd's delivery path spells those two appends out
inline with ``MESSAGE_FRAME_HEADER`` and ``MESSAGE_FRAME_EXTRA`` to save a Python call per
message; the tests hold both to the same bytes.
"""

from __future__ import annotations

import struct
from typing import Final

from .errors import ProtocolError

FRAME_TYPE_RESPONSE: Final = 0
FRAME_TYPE_ERROR: Final = 1
FRAME_TYPE_MESSAGE: Final = 2

MSG_ID_LENGTH: Final = 16
MSG_HEADER_LENGTH: Final = 26  # timestamp + attempts + id

HEARTBEAT: Final = b"_heartbeat_"
OK: Final = b"OK"
CLOSE_WAIT: Final = b"CLOSE_WAIT"

_FRAME_HEADER = struct.Struct(">iI")
FRAME_HEADER_LENGTH: Final = 8

# A message frame up to its body: size, frame type, timestamp, attempts, id (16 bytes exactly).
MESSAGE_FRAME_HEADER: Final = struct.Struct(">iIqH16s")
# What a message frame's size counts besides the body: the frame type and the message header.
MESSAGE_FRAME_EXTRA: Final = 4 + MSG_HEADER_LENGTH
_MESSAGE_HEADER = struct.Struct(">qH")


def encode_frame(frame_type: int, data: bytes) -> bytes:
    return _FRAME_HEADER.pack(len(data) + 4, frame_type) + data


def encode_response(data: bytes) -> bytes:
    return _FRAME_HEADER.pack(len(data) + 4, FRAME_TYPE_RESPONSE) + data


def encode_error(error: ProtocolError) -> bytes:
    """The error frame that tells a client about ``error`` (``"<code> <description>"``)."""
    return encode_frame(FRAME_TYPE_ERROR, error.to_bytes())


OK_FRAME: Final = encode_response(OK)
HEARTBEAT_FRAME: Final = encode_response(HEARTBEAT)
CLOSE_WAIT_FRAME: Final = encode_response(CLOSE_WAIT)


def pack_message_frame_into(
    buf: bytearray, timestamp: int, attempts: int, msg_id: bytes, body: bytes
) -> None:
    """Append a message frame to ``buf``; ``msg_id`` must be 16 bytes."""
    buf += MESSAGE_FRAME_HEADER.pack(
        len(body) + MESSAGE_FRAME_EXTRA, FRAME_TYPE_MESSAGE, timestamp, attempts, msg_id
    )
    buf += body


def encode_message_frame(timestamp: int, attempts: int, msg_id: bytes, body: bytes) -> bytes:
    buf = bytearray()
    pack_message_frame_into(buf, timestamp, attempts, msg_id, body)
    return bytes(buf)


def decode_message(data: bytes) -> tuple[int, int, bytes, bytes]:
    """``(timestamp, attempts, id, body)`` of a message frame's data."""
    if len(data) < MSG_HEADER_LENGTH:
        raise ValueError(f"message too short: {len(data)} < {MSG_HEADER_LENGTH} bytes")
    timestamp, attempts = _MESSAGE_HEADER.unpack_from(data)
    return timestamp, attempts, bytes(data[10:26]), bytes(data[26:])


class FrameReader:
    """Splits a byte stream from nsqd into ``(frame_type, data)`` frames.

    Feed bytes with ``receive_data``; ``next_frame`` returns a frame or None when more bytes are
    needed. A size below 4 or above ``max_frame_size`` raises ValueError (the stream is garbage).
    A client uses ``pnsq.wire.client.ClientConnection``, which adds the protocol on top; this is
    for tools and tests that look at raw frames.
    """

    def __init__(self, max_frame_size: int = 16 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_frame_size = max_frame_size

    def receive_data(self, data: bytes) -> None:
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    def next_frame(self) -> tuple[int, bytes] | None:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 8:
            return None
        size, frame_type = _FRAME_HEADER.unpack_from(buf, pos)
        if size < 4 or size > self.max_frame_size:  # no room for the frame type, or garbage
            raise ValueError(f"invalid frame size {size}")
        end = pos + 4 + size
        if len(buf) < end:
            return None
        data = bytes(buf[pos + 8 : end])
        self._pos = end
        if end > 65536:
            del buf[:end]
            self._pos = 0
        return frame_type, data

    @property
    def trailing_data(self) -> bytes:
        """Bytes received but not yet returned as a frame."""
        return bytes(self._buf[self._pos :])

    def take_trailing_data(self) -> bytes:
        """The bytes not yet returned as a frame, removed: the stream changes encoding at this
        point (a compression upgrade), so they must be decoded before they are framed."""
        data = self.trailing_data
        self._buf.clear()
        self._pos = 0
        return data
