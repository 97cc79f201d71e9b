"""The body of a multi-publish: TCP MPUB after its size, and HTTP ``/mpub?binary=true``.

::

    [x][x][x][x][x][x][x][x][x][x][x][x]...[x][x][x][x][x][x][x][x]...
    |  (int32) ||  (int32) || (binary)    |  (int32) || (binary)
    |  4-byte  ||  4-byte  || N-byte      |  4-byte  || M-byte
    ------------------------------------...------------------------...
      count      size        message 1      size       message 2 ...

All integers big-endian. The checks and their texts are NSQ's ``readMPUB``: a count below 1 or
above what ``max_body_size`` can hold is E_BAD_BODY, a part that is empty, too big or cut short is
E_BAD_MESSAGE. Over HTTP nsqd answers 413 with the code minus its ``E_`` (``BAD_BODY``,
``BAD_MESSAGE``). ``CommandReader`` scans the TCP form incrementally as bytes arrive, with the same
``check_mpub_count`` / ``check_mpub_part``.

Most batches hold parts of one size. ``uniform_parts`` reads such a batch with one precompiled
``struct`` layout (``>i{size}s`` repeated), ~30 ns a part against ~130 for a loop in Python,
and gives up (None) on anything else, for the loop to read it part by part with NSQ's errors.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .errors import BadBodyError, BadMessageError

_INT32 = struct.Struct(">i")


def encode_mpub_body(bodies: Sequence[bytes]) -> bytes:
    parts = [_INT32.pack(len(bodies))]
    for body in bodies:
        parts.append(_INT32.pack(len(body)))
        parts.append(body)
    return b"".join(parts)


def check_mpub_count(count: int, max_body_size: int) -> None:
    # Every part takes at least 5 bytes (a size and one byte), after the 4 of the count.
    if count <= 0 or count > (max_body_size - 4) // 5:
        raise BadBodyError(f"MPUB invalid message count {count}")


def check_mpub_part(index: int, size: int, max_msg_size: int) -> None:
    if size <= 0:
        raise BadMessageError(f"MPUB invalid message({index}) body size {size}")
    if size > max_msg_size:
        raise BadMessageError(f"MPUB message too big {size} > {max_msg_size}")


_UNIFORM_MAX_COUNT = 1024  # a layout holds two codes per part: keep each one small
_UNIFORM_LAYOUTS = 32
_layouts: dict[tuple[int, int], struct.Struct] = {}


def uniform_parts(
    data: bytes | bytearray, pos: int, count: int, max_msg_size: int
) -> tuple[list[bytes], int] | None:
    """The ``count`` parts from ``pos`` and where they end, if every part is whole and valid
    and all have the same size as the first; None otherwise (nothing is checked then)."""
    if count > _UNIFORM_MAX_COUNT or len(data) < pos + 4:
        return None
    (size,) = _INT32.unpack_from(data, pos)
    end = pos + count * (4 + size)
    if size <= 0 or size > max_msg_size or len(data) < end:
        return None
    layout = _layouts.get((count, size))
    if layout is None:
        if len(_layouts) >= _UNIFORM_LAYOUTS:
            _layouts.clear()
        layout = _layouts[count, size] = struct.Struct(">" + f"i{size}s" * count)
    fields = layout.unpack_from(data, pos)
    if fields[0::2].count(size) != count:
        return None
    return list(fields[1::2]), end


def decode_mpub_body(data: bytes, max_msg_size: int, max_body_size: int) -> list[bytes]:
    """The messages of a whole MPUB body; bytes after the last part are ignored, as NSQ reads
    the parts from a stream. Raises BadBodyError or BadMessageError with NSQ's texts."""
    if len(data) < 4:
        raise BadBodyError("MPUB failed to read message count")
    (count,) = _INT32.unpack_from(data)
    check_mpub_count(count, max_body_size)
    whole = uniform_parts(data, 4, count, max_msg_size)
    if whole is not None:
        return whole[0]
    bodies, pos, have = [], 4, len(data)
    for i in range(count):
        if have < pos + 4:
            raise BadMessageError("MPUB failed to read message body size")
        (size,) = _INT32.unpack_from(data, pos)
        check_mpub_part(i, size, max_msg_size)
        end = pos + 4 + size
        if have < end:
            raise BadMessageError("MPUB failed to read message body")
        bodies.append(data[pos + 4 : end])
        pos = end
    return bodies
