"""No import circle among our modules, and no bench that needs the test suite or pytest (SPEC §15, issue 28).

The graph is read from the source with `ast`; nothing is imported. Its nodes are the modules of our packages
(`pkg/__init__.py` is the node `pkg`); an edge is any import of one of them:

- `import a.b` is an edge to `a.b`; `from a import b` is an edge to the module `a.b` if there is one, else to `a`
  (b is a name defined in `a`); relative imports are resolved against the importing module's package.
- Imports inside functions (and under `if TYPE_CHECKING:`) count like any other. A deferred import does not remove a
  circle, it hides it until the function runs: the circle is still there for a reader and for the next refactor.
- Importing `pkg.sub` is an edge to `pkg.sub` alone, not to `pkg/__init__` too, although Python runs the parent
  first: an `__init__` that imports its own submodules is the normal shape of a package, and a submodule importing a
  sibling finds its parent already loading. So `pkg` -> `pkg.sub` is an ordinary edge; only a submodule that takes a
  name from its package's `__init__` (`from pkg import name`, `from . import name`) has an edge back to `pkg`, and
  with an `__init__` that imports it, that circle counts: it is the one that fails with a half-initialised module.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("shared", "vesper_ingest", "vesper_web")  # SPEC §15: the product's own packages
TOOLS = (*PACKAGES, "vesper_sim", "harness")  # with the simulator and what tests and benches share
# bench/ is walked for its own rule only: bench.fanout_floor's demo and bench.fanout_yards import each other.
FIRST_PARTY = (*TOOLS, "bench")
Graph = dict[str, set[str]]


def module_name(path: Path) -> str:
    """The dotted name of a source file under ROOT (a package's __init__ is the package)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(packages: Iterable[str]) -> dict[str, Path]:
    """Every module of these packages and their subpackages, by dotted name."""
    return {module_name(p): p for package in packages for p in sorted((ROOT / package).rglob("*.py"))}


def _base(name: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module a `from ... import` names, its leading dots resolved against the importer's package."""
    if not node.level:
        return node.module or ""
    package = name.split(".") if is_package else name.split(".")[:-1]
    anchor = package[: len(package) - node.level + 1]
    return ".".join([*anchor, node.module] if node.module else anchor)


def imported(name: str, is_package: bool, tree: ast.AST, known: set[str]) -> set[str]:
    """What each import anywhere in the module names: `x` for `import x`; `x.y` for `from x import y` if that is a
    module, else `x` (y is a name defined in x)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(name, is_package, node)
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return found


def _ours(target: str, known: set[str]) -> str:
    """The module of ours that importing `target` names: itself, or its longest known prefix ("" if none)."""
    while target and target not in known:  # import a.b.c where a.b.c is not a module (or not ours): a.b
        target = target.rpartition(".")[0]
    return target


def edges(name: str, is_package: bool, tree: ast.AST, known: set[str]) -> set[str]:
    """The modules of ours this one imports (never itself)."""
    return {_ours(t, known) for t in imported(name, is_package, tree, known)} - {"", name}


def build(found: dict[str, Path]) -> Graph:
    """The import graph of these modules (edges only to each other)."""
    known = set(found)
    return {
        name: edges(name, path.name == "__init__.py", ast.parse(path.read_text(), str(path)), known)
        for name, path in found.items()
    }


def components(graph: Graph) -> list[set[str]]:
    """The strongly connected components of the graph (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:  # node is the root of a component: it and everything above it on the stack
            at = stack.index(node)
            out.append(set(stack[at:]))
            del stack[at:]

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def _loop(graph: Graph, members: set[str]) -> list[str]:
    """The shortest circle from the component's first module back to it, staying inside the component."""
    start = min(members)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(graph[node] & members):
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if succ not in came_from:
                came_from[succ] = node
                queue.append(succ)
    return [start]


def cycles(graph: Graph) -> list[list[str]]:
    """One circle for each group of modules that import each other, as a path `a, b, ..., a`."""
    return sorted(_loop(graph, c) for c in components(graph) if len(c) > 1 or next(iter(c)) in graph[next(iter(c))])


def _reach(graph: Graph, start: str) -> set[str]:
    """Every module `start` loads, itself included."""
    seen, todo = {start}, [start]
    while todo:
        for succ in graph[todo.pop()] - seen:
            seen.add(succ)
            todo.append(succ)
    return seen


# ---- the rules on the real source ----


def test_no_import_circle_in_the_packages() -> None:
    """shared/, vesper_ingest/ and vesper_web/ import each other in one direction only."""
    found = cycles(build(modules(PACKAGES)))
    assert found == [], "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_import_circle_through_the_simulator_or_the_harness() -> None:
    """Nor through vesper_sim/ or harness/."""
    found = cycles(build(modules(TOOLS)))
    assert found == [], "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def _top_level_imports(path: Path) -> set[str]:
    """The first part of every absolute import in a module, anywhere in it (`tests`, `pytest`, `shared`, ...)."""
    tree = ast.parse(path.read_text(), str(path))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    return {name.partition(".")[0] for name in names}


@pytest.mark.parametrize("package", ["bench", "harness"])
def test_bench_needs_neither_the_tests_nor_pytest(package: str) -> None:
    """A bench run loads no module of tests/ and never pytest, directly or through any of our modules it loads."""
    found = modules(FIRST_PARTY)
    graph = build(found)
    offenders = sorted(
        f"{name} (via {start}): imports {', '.join(sorted(bad))}"
        for start in found
        if start.partition(".")[0] == package
        for name in _reach(graph, start)
        if (bad := _top_level_imports(found[name]) & {"tests", "pytest"})
    )
    assert offenders == [], "\n".join(offenders)


# ---- the finder itself, on graphs made by hand ----


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c", "a"]]),
        ({"a": {"b", "c"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b", "a"], ["c", "d", "c"]]),
        ({"a": {"a"}}, [["a", "a"]]),
        ({"pkg": {"pkg.sub"}, "pkg.sub": {"pkg.other"}, "pkg.other": set()}, []),
    ],
)
def test_cycles_are_found_and_named(graph: Graph, expected: list[list[str]]) -> None:
    """Each group of modules that import each other is reported once, as a circle from its first module."""
    assert cycles(graph) == expected


KNOWN = {"pkg", "pkg.sub", "pkg.other", "pkg.deep", "pkg.deep.leaf", "other"}


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("pkg.sub", "import pkg.other", {"pkg.other"}),
        ("pkg.sub", "from pkg import other", {"pkg.other"}),  # a submodule: not the package's __init__
        ("pkg.sub", "from pkg import name", {"pkg"}),  # a name its __init__ defines: an edge to it
        ("pkg.sub", "from . import other, name", {"pkg.other", "pkg"}),
        ("pkg.sub", "from .deep.leaf import x", {"pkg.deep.leaf"}),
        ("pkg.deep.leaf", "from .. import other", {"pkg.other"}),
        ("pkg.deep", "from . import leaf", {"pkg.deep.leaf"}),  # an __init__: `.` is its own package
        ("pkg.sub", "import other.thing, json", {"other"}),  # not ours beyond `other`; json not ours at all
        ("pkg.sub", "def f():\n    from pkg.other import x\n", {"pkg.other"}),  # inside a function: counted
        ("pkg.sub", "from pkg.sub import x", set()),  # itself: not an edge
    ],
)
def test_edges_from_source(name: str, source: str, expected: set[str]) -> None:
    """Absolute, relative and function-level imports resolve to the module they load."""
    is_package = name == "pkg.deep"
    assert edges(name, is_package, ast.parse(source), KNOWN) == expected
