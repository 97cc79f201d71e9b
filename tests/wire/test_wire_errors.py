"""Error frames as a client reads them: NSQ's code picks the class, and the class says fatal."""

from __future__ import annotations

import pytest

from pnsq.wire import ProtocolError, error_from_bytes
from pnsq.wire.errors import (
    AuthDisabledError,
    AuthFailedError,
    AuthFirstError,
    BadBodyError,
    BadChannelError,
    BadMessageError,
    BadProtocolError,
    BadTopicError,
    DPubFailedError,
    FinFailedError,
    IdentifyFailedError,
    InvalidError,
    MPubFailedError,
    PubFailedError,
    ReqFailedError,
    SubFailedError,
    TouchFailedError,
    UnauthorizedError,
)

# (error frame data as nsqd sends it, class, fatal: nsqd closes the connection after it)
ERROR_FRAMES: list[tuple[bytes, type[ProtocolError], bool]] = [
    (b"E_INVALID invalid command FOO", InvalidError, True),
    (b"E_BAD_PROTOCOL", BadProtocolError, True),
    (b"E_BAD_BODY IDENTIFY invalid body size 0", BadBodyError, True),
    (b'E_BAD_TOPIC PUB topic name "t!" is not valid', BadTopicError, True),
    (b'E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "t!" is not valid', BadTopicError, True),
    (b'E_BAD_CHANNEL SUB channel name "c!" is not valid', BadChannelError, True),
    (b"E_BAD_MESSAGE PUB invalid message body size 0", BadMessageError, True),
    (b"E_PUB_FAILED PUB failed exiting", PubFailedError, True),
    (b"E_MPUB_FAILED MPUB failed exiting", MPubFailedError, True),
    (b"E_DPUB_FAILED DPUB failed exiting", DPubFailedError, True),
    (b"E_SUB_FAILED SUB failed to deleted topic/channel", SubFailedError, True),
    (
        b"E_IDENTIFY_FAILED cannot enable both deflate and snappy compression",
        IdentifyFailedError,
        True,
    ),
    (b"E_AUTH_DISABLED AUTH Disabled", AuthDisabledError, True),
    (b"E_AUTH_FAILED AUTH failed", AuthFailedError, True),
    (b"E_AUTH_FIRST AUTH required before SUB", AuthFirstError, True),
    (b'E_UNAUTHORIZED AUTH failed for SUB on "t" "c"', UnauthorizedError, True),
    (b"E_FIN_FAILED FIN 0123456789abcdef failed ID not in flight", FinFailedError, False),
    (b"E_REQ_FAILED REQ 0123456789abcdef failed ID not in flight", ReqFailedError, False),
    (b"E_TOUCH_FAILED TOUCH 0123456789abcdef failed ID not in flight", TouchFailedError, False),
]


@pytest.mark.parametrize(("data", "cls", "fatal"), ERROR_FRAMES)
def test_error_frame_becomes_the_class_of_its_code_with_nsqs_fatality(
    data: bytes, cls: type[ProtocolError], fatal: bool
) -> None:
    err = error_from_bytes(data)
    assert type(err) is cls
    assert err.fatal is fatal
    assert err.code == data.split(b" ")[0].decode()
    assert err.description == data.partition(b" ")[2].decode()
    assert str(err) == err.description
    assert err.to_bytes() == data


def test_only_fin_req_and_touch_failures_keep_the_connection_open() -> None:
    non_fatal = {cls.code for _, cls, _ in ERROR_FRAMES if not cls.fatal}
    assert non_fatal == {"E_FIN_FAILED", "E_REQ_FAILED", "E_TOUCH_FAILED"}


@pytest.mark.parametrize(
    ("data", "code", "description"),
    [
        (b"E_NEW_IN_NSQ_2 something new", "E_NEW_IN_NSQ_2", "something new"),
        (b"E_SOMETHING_NEW", "E_SOMETHING_NEW", ""),
        (b"", "", ""),
    ],
)
def test_an_unknown_code_gives_a_fatal_protocol_error_that_keeps_code_and_text(
    data: bytes, code: str, description: str
) -> None:
    err = error_from_bytes(data)
    assert type(err) is ProtocolError
    assert err.fatal
    assert err.code == code
    assert err.description == description
    assert err.to_bytes() == data


def test_an_error_frame_with_undecodable_bytes_still_gives_its_class() -> None:
    err = error_from_bytes(b"E_INVALID invalid command \xff")
    assert type(err) is InvalidError
    assert err.description == "invalid command \ufffd"


def test_error_without_description_is_its_bare_code_on_the_wire() -> None:
    assert BadProtocolError().to_bytes() == b"E_BAD_PROTOCOL"
    assert InvalidError("cannot SUB in current state").to_bytes() == (
        b"E_INVALID cannot SUB in current state"
    )
