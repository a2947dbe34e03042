"""payops's modules import each other without a cycle, and its packages form layers.

tools (pure functions, formats, storage) < agent (the loop, chat, the CLI) < evals (what
scores the agent): a package imports only those before it. The graph is read from the
source, so an import hidden inside a function to dodge a cycle still counts, and so does
a module a catalogue's registry loads by name.

An edge: `import a.b` depends on `a.b`; `from a import b` depends on `a` (its namespace
is read, so a package's own modules must not import its `__init__`) and on `a.b` when that
is a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.actions import registry as action_registry
from tools.incidents import registry as kind_registry

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("tools", "agent", "evals")  # each may import only the packages before it
Graph = dict[str, set[str]]


def _modules(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "scenarios" in parts:  # recorded scenario folders, not code
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imported(name: str, path: Path) -> Iterator[str]:
    """Every name `path`'s imports depend on, payops's or not."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from . import x`, `from ..pkg import y`
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            yield target
            yield from (f"{target}.{a.name}" for a in node.names)


def source_graph(root: Path) -> Graph:
    """Every module under `root`'s packages and the modules it imports, as its source says."""
    known = _modules(root)
    return {
        name: {t for t in _imported(name, path) if t in known and t != name}
        for name, path in known.items()
    }


def import_graph() -> Graph:
    """payops's modules and what each imports, anywhere in its source or by name."""
    graph = source_graph(ROOT)
    # The catalogues load their modules by name (tools/registry.py), which ast cannot see.
    for registry in (action_registry, kind_registry):
        loader = registry._REGISTRY
        graph[registry.__name__] |= {f"{loader.package}.{m}" for m in loader.modules}
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_through_others() -> None:
    found = cycles(import_graph())
    assert not found, "modules that import each other:\n" + "\n".join(map(", ".join, found))


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(package) + 1])
    graph = import_graph()
    upward = sorted(
        (module, target)
        for module, targets in graph.items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in allowed
    )
    assert not upward, f"{package} imports a layer above it: {upward}"


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_graph_sees_what_it_must(tmp_path: Path) -> None:
    # A cycle hidden in a function, through a package's __init__, and a relative import.
    files = {
        "tools/__init__.py": "",
        "tools/low.py": "def f():\n    from agent import high\n",
        "tools/pkg/__init__.py": "from tools.pkg.engine import run\n",
        "tools/pkg/engine.py": "from tools.pkg import rules\nrun = 1\n",
        "tools/pkg/rules.py": "from . import engine\n",
        "agent/__init__.py": "",
        "agent/high.py": "import tools.low\n",
        "evals/__init__.py": "",
    }
    _write_tree(tmp_path, files)
    assert cycles(source_graph(tmp_path)) == [
        ["agent.high", "tools.low"],
        ["tools.pkg", "tools.pkg.engine", "tools.pkg.rules"],
    ]


# Only the acting path reaches the executor, claims in the ledger or touches approvals:
# agent/acting.py, and the entry points that ask for and answer approvals. Everything else
# reads the context's investigation side (and `Context.action_history`, read-only).
ACTING_PATH = {"agent.acting", "agent.runner", "agent.chat.session", "agent.context"}
ACTING_PORTS = "ports"  # Context.ports: the ActionPorts
PORT_FACTORIES = {"ledger", "approvals", "action_executor"}
STORE_CLASSES = {
    "ActionLedger": "tools.ledger",
    "SqliteApprovalStore": "tools.approvals",
    "SimulatedExecutor": "tools.executor",
}


def _reaches_acting(name: str, path: Path) -> Iterator[str]:
    """Where `path` uses the ports, a port factory or builds a store only acting may use."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Attribute) and node.attr == ACTING_PORTS:
            yield f"{path.name}:{node.lineno} .{ACTING_PORTS}"
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if isinstance(func, ast.Attribute) and called in PORT_FACTORIES:
            yield f"{path.name}:{node.lineno} .{called}()"
        if STORE_CLASSES.get(called, name) != name:
            yield f"{path.name}:{node.lineno} {called}()"


def acting_outside_its_path(root: Path) -> list[str]:
    """Every use of what only acting may touch, in modules off the acting path."""
    return [
        f"{name}: {use}"
        for name, path in _modules(root).items()
        if name not in ACTING_PATH
        for use in _reaches_acting(name, path)
    ]


def test_only_the_acting_path_reaches_the_executor_the_ledger_claims_and_approvals() -> None:
    found = acting_outside_its_path(ROOT)
    assert not found, "off the acting path:\n" + "\n".join(found)


def test_the_acting_check_sees_what_it_must(tmp_path: Path) -> None:
    files = {
        "tools/__init__.py": "",
        "tools/ledger.py": "class ActionLedger: ...\nActionLedger()\n",
        "agent/__init__.py": "",
        "agent/acting.py": "def act(ctx):\n    ctx.ports.action_executor()\n",
        "agent/chat/__init__.py": "",
        "agent/chat/tools.py": "def recent(env):\n    with env.ctx.ledger() as ledger: ...\n",
        "agent/nodes.py": "def f(ctx):\n    p = ctx.ports\n",
        "evals/__init__.py": "from tools.ledger import ActionLedger\nActionLedger('x')\n",
    }
    _write_tree(tmp_path, files)
    assert acting_outside_its_path(tmp_path) == [
        "agent.chat.tools: tools.py:2 .ledger()",
        "agent.nodes: nodes.py:2 .ports",
        "evals: __init__.py:2 ActionLedger()",
    ]
