"""nsqd's /debug pages: what Python has in place of Go's /debug/pprof.

Go's goroutine profile becomes /debug/tasks, the trio task tree as text: one line per task
name (and where it waits) under its parent, siblings alike folded into a count (as the goroutine profile's
``debug=1`` folds identical stacks), so a thousand connections read as one line, not a
thousand. /debug/gc is the collector's counters and the resident set size, both cheap to
read. /debug/pprof lists these pages, since pnsq has no profile of Go's kinds to offer.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import trio

from .._internal.http_server import Request, Response, json_response, text

if TYPE_CHECKING:
    from .broker import Broker

# name -> [how many tasks of that name, their children by name]
_Tree = dict[str, list[Any]]

INDEX = """\
pnsq /debug (Python counterparts of NSQ's /debug/pprof):
GET  /debug/tasks       the trio task tree as text, tasks of one name folded into a count
GET  /debug/gc          garbage collector counts and stats, and resident set size, as JSON
POST /debug/freememory  run a full garbage collection
"""


def _label(task: trio.lowlevel.Task) -> str:
    """The task's name, and where outside trio it waits when that says more: a connection's
    task is trio's ``_run_handler`` by name, and its reader only by where it waits."""
    where = None
    for frame, _ in task.iter_await_frames():
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("trio"):
            where = f"{module}.{frame.f_code.co_qualname}"
    return task.name if where in (None, task.name) else f"{task.name} @ {where}"


def _fold(tasks: Iterable[trio.lowlevel.Task], tree: _Tree) -> int:
    """Add ``tasks`` and their descendants to ``tree``; the number of tasks added."""
    total = 0
    for task in tasks:
        entry = tree.setdefault(_label(task), [0, {}])
        entry[0] += 1
        total += 1
        for nursery in task.child_nurseries:
            total += _fold(nursery.child_tasks, entry[1])
    return total


def _render(tree: _Tree, depth: int, lines: list[str]) -> None:
    for name, (count, children) in sorted(tree.items()):
        lines.append(f"{'  ' * depth}{count} {name}")
        _render(children, depth + 1, lines)


def task_tree() -> str:
    """The current trio run's tasks, from the root, as indented ``<count> <name>`` lines."""
    tree: _Tree = {}
    root = trio.lowlevel.current_root_task()
    total = _fold([root] if root is not None else [], tree)
    lines = [f"task tree: total {total}"]
    _render(tree, 0, lines)
    return "\n".join(lines) + "\n"


def _rss_bytes() -> int | None:
    """Resident set size from /proc (Linux); None where there is no /proc."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def tasks(nsqd: Broker, request: Request) -> Response:
    return text(task_tree())


def gc_page(nsqd: Broker, request: Request) -> Response:
    return json_response(
        {
            "counts": list(gc.get_count()),
            "thresholds": list(gc.get_threshold()),
            "stats": gc.get_stats(),
            "rss_bytes": _rss_bytes(),
        }
    )


def index(nsqd: Broker, request: Request) -> Response:
    return text(INDEX)
