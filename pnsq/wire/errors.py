"""NSQ's protocol errors as exceptions.

Each class carries NSQ's code and whether the error is fatal (the server closes the connection
after sending it). Only E_FIN_FAILED, E_REQ_FAILED and E_TOUCH_FAILED leave a connection open.
The text sent on the wire is ``"<code> <description>"``.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """An error the server reports to the client as an error frame."""

    code = "E_INVALID"
    fatal = True

    def __init__(self, description: str = "") -> None:
        super().__init__(description)
        self.description = description

    def to_bytes(self) -> bytes:
        if not self.description:
            return self.code.encode()
        # surrogateescape: bytes a client sent that are not UTF-8 go back to it unchanged, as Go
        # echoes them.
        return f"{self.code} {self.description}".encode("utf-8", "surrogateescape")


class InvalidError(ProtocolError):
    code = "E_INVALID"


class BadProtocolError(ProtocolError):
    code = "E_BAD_PROTOCOL"


class BadBodyError(ProtocolError):
    code = "E_BAD_BODY"


class BadTopicError(ProtocolError):
    code = "E_BAD_TOPIC"


class BadChannelError(ProtocolError):
    code = "E_BAD_CHANNEL"


class BadMessageError(ProtocolError):
    code = "E_BAD_MESSAGE"


class PubFailedError(ProtocolError):
    code = "E_PUB_FAILED"


class MPubFailedError(ProtocolError):
    code = "E_MPUB_FAILED"


class DPubFailedError(ProtocolError):
    code = "E_DPUB_FAILED"


class SubFailedError(ProtocolError):
    code = "E_SUB_FAILED"


class IdentifyFailedError(ProtocolError):
    code = "E_IDENTIFY_FAILED"


class AuthDisabledError(ProtocolError):
    code = "E_AUTH_DISABLED"


class AuthFailedError(ProtocolError):
    code = "E_AUTH_FAILED"


class AuthFirstError(ProtocolError):
    code = "E_AUTH_FIRST"


class UnauthorizedError(ProtocolError):
    code = "E_UNAUTHORIZED"


class AuthErrorError(ProtocolError):
    code = "E_AUTH_ERROR"


class FinFailedError(ProtocolError):
    code = "E_FIN_FAILED"
    fatal = False


class ReqFailedError(ProtocolError):
    code = "E_REQ_FAILED"
    fatal = False


class TouchFailedError(ProtocolError):
    code = "E_TOUCH_FAILED"
    fatal = False


ERRORS_BY_CODE: dict[str, type[ProtocolError]] = {
    cls.code: cls
    for cls in (
        InvalidError,
        BadProtocolError,
        BadBodyError,
        BadTopicError,
        BadChannelError,
        BadMessageError,
        PubFailedError,
        MPubFailedError,
        DPubFailedError,
        SubFailedError,
        IdentifyFailedError,
        AuthDisabledError,
        AuthFailedError,
        AuthFirstError,
        UnauthorizedError,
        AuthErrorError,
        FinFailedError,
        ReqFailedError,
        TouchFailedError,
    )
}


def error_from_bytes(data: bytes) -> ProtocolError:
    """The exception for an error frame's payload, as a client sees it."""
    text = data.decode("utf-8", "replace")
    code, _, description = text.partition(" ")
    cls = ERRORS_BY_CODE.get(code)
    if cls is None:
        err = ProtocolError(description)
        err.code = code
        return err
    return cls(description)
