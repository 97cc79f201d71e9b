"""pnsq's modules stack in floors: no import loops, and the layers of STYLE.md hold.

A newcomer reads a package bottom-up (nsqd: message; in_flight, backend, disk_record,
client_v2; diskqueue; disk_files; disk; channel; topic; lookup; broker; protocol_v2, stats,
http_api; nsqd; client: errors, codecs, config, message; _conn; producer, consumer, sync ...),
which only works while no module imports one above it. Every import counts:
top-level, inside functions, and under ``TYPE_CHECKING`` (a type-only loop is still a loop
for the reader). The graph comes from the source (``ast``), so nothing is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "pnsq"
NO_CYCLES = ("pnsq.nsqd", "pnsq.lookupd", "pnsq.wire", "pnsq.client")
DAEMONS = ("pnsq.nsqd", "pnsq.lookupd", "pnsq.client")

Graph = Mapping[str, set[str]]


def module_files() -> dict[str, Path]:
    """Every module of pnsq by dotted name (a package by its own name)."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement may refer to (modules or package attributes)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = package[: len(package) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    return [source] + [f"{source}.{alias.name}" for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """module -> the pnsq modules it imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    files = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        targets = graph.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = _imported(node, module, is_package)
                if isinstance(node, ast.ImportFrom):
                    source, attributes = names[0], names[1:]
                    modules = [name for name in attributes if name in files]
                    # ``from pkg import function`` needs pkg itself; ``from pkg import mod``
                    # only loads the package's __init__ on the way, not counted.
                    names = modules if len(modules) == len(attributes) else [source, *modules]
                targets.update(name for name in names if name in files and name != module)
    return graph


def find_cycle(graph: Graph, within: Iterable[str] | None = None) -> list[str] | None:
    """One import loop among the modules ``within`` (all if None), as a path a -> ... -> a."""
    nodes = set(graph) if within is None else set(within)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in nodes:
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(nodes):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _crossings(graph: Graph, source: str, forbidden: Iterable[str]) -> list[str]:
    forbidden = tuple(forbidden)
    return sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if _in(module, source)
        for target in targets
        if any(_in(target, package) for package in forbidden)
    )


# -- the cycle finder itself --------------------------------------------------------------------


def test_find_cycle_reports_a_loop_as_a_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


def test_find_cycle_sees_a_loop_off_the_first_path_and_a_self_import() -> None:
    assert find_cycle({"a": {"b", "c"}, "b": set(), "c": {"d"}, "d": {"c"}}) == ["c", "d", "c"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_find_cycle_accepts_a_diamond_and_ignores_modules_outside() -> None:
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None
    assert find_cycle({"a": {"x"}, "x": {"a"}, "b": set()}, within={"a", "b"}) is None


def test_the_graph_counts_relative_type_checking_and_function_level_imports() -> None:
    graph = import_graph()
    assert "pnsq.nsqd.message" in graph["pnsq.nsqd.channel"]  # from .message import Message
    assert "pnsq.nsqd.broker" in graph["pnsq.nsqd.stats"]  # under TYPE_CHECKING
    assert "pnsq.wire.commands" in graph["pnsq.nsqd.protocol_v2"]  # from ..wire import commands
    assert "pnsq" in graph["pnsq.nsqd.stats"]  # from .. import NSQ_VERSION


# -- pnsq's own graph ---------------------------------------------------------------------------


@pytest.mark.parametrize("package", NO_CYCLES)
def test_no_import_cycle_in(package: str) -> None:
    graph = import_graph()
    modules = [module for module in graph if _in(module, package)]
    cycle = find_cycle(graph, modules)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_wire_imports_nothing_else_of_pnsq() -> None:
    graph = import_graph()
    outside = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if _in(module, "pnsq.wire")
        for target in targets
        if not _in(target, "pnsq.wire")
    )
    assert outside == []


@pytest.mark.parametrize("daemon", DAEMONS)
def test_nsqd_lookupd_and_client_never_import_each_other(daemon: str) -> None:
    others = [package for package in DAEMONS if package != daemon]
    assert _crossings(import_graph(), daemon, others) == []


def test_admin_talks_to_the_daemons_only_over_http() -> None:
    assert _crossings(import_graph(), "pnsq.admin", DAEMONS) == []


def test_the_shared_internals_serve_every_daemon_and_know_none() -> None:
    assert _crossings(import_graph(), "pnsq._internal", [*DAEMONS, "pnsq.admin"]) == []
