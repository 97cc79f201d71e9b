"""``run_tool``: an error the user can act on is one line and exit code 1, even from a task."""

from __future__ import annotations

import anyio
import pytest

from pnsq.client import NSQConnectionError
from pnsq.tools.runner import EXIT_FAILED, ToolMain, run_tool


async def fails_in_a_task(stop: anyio.Event) -> int:
    async def connect() -> None:
        raise NSQConnectionError("cannot connect to 127.0.0.1:1")

    async with anyio.create_task_group() as tg:
        tg.start_soon(connect)
    return 0


async def fails_directly(stop: anyio.Event) -> int:
    raise ValueError("bad topic name")


async def has_a_bug(stop: anyio.Event) -> int:
    raise KeyError("oops")


@pytest.mark.parametrize(
    ("main", "line"),
    [
        (fails_in_a_task, "pnsq t: cannot connect to 127.0.0.1:1\n"),
        (fails_directly, "pnsq t: bad topic name\n"),
    ],
)
def test_errors_become_one_line_and_exit_code_1(
    main: ToolMain, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_tool("t", main) == EXIT_FAILED
    assert capsys.readouterr().err == line


def test_a_bug_is_not_hidden() -> None:
    with pytest.raises(BaseException) as raised:
        run_tool("t", has_a_bug)
    assert isinstance(raised.value, KeyError) or raised.group_contains(KeyError)
