"""Import direction: `web` never imports `worker`, celeryconfig imports neither, and no cycles.

The worker is built on the web package (its tasks use the models, the outbox and the Flask
app); the web must run, and be imported, without the worker. celeryconfig.py holds settings
only. A cycle between modules works by luck of import order, and breaks the day a module is
imported first from somewhere else.

Every `import` and `from ... import` statement counts, at the top of a module and inside its
functions; `from web import cli` is an import of the module web.cli when web/cli.py exists,
else of the package `web`. Only explicit statements make edges: importing web.outbox.api also
runs web/outbox/__init__.py, but that is not an edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("web", "worker")
MODULES = ("celeryconfig",)


@dataclass(frozen=True, order=True)
class Import:
    """One statement of `module` (at `path`:`line`) that imports `target`."""

    target: str
    path: str
    line: int


Graph = Mapping[str, Mapping[str, Import]]


def project_modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every module of the packages and the top-level modules."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    for module in MODULES:
        if (root / f"{module}.py").is_file():
            found[module] = root / f"{module}.py"
    return found


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The project module `name` names, or its longest project prefix; None if not ours."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imported(
    module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: Mapping[str, Path]
) -> Iterable[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            target = _resolve(alias.name, modules)
            if target is not None:
                yield target
        return
    if node.level:  # relative: from the module's own package, one level up per extra dot
        package = module.split(".") if _is_package(path) else module.split(".")[:-1]
        base_parts = package[: len(package) - (node.level - 1)] if node.level > 1 else package
        base = ".".join([*base_parts, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    for alias in node.names:
        submodule = f"{base}.{alias.name}" if base else alias.name
        target = submodule if submodule in modules else _resolve(base, modules)
        if target is not None:
            yield target


def import_graph(root: Path) -> dict[str, dict[str, Import]]:
    """module -> {imported project module -> the first statement importing it}."""
    modules = project_modules(root)
    graph: dict[str, dict[str, Import]] = {}
    for module, path in modules.items():
        edges: dict[str, Import] = {}
        tree = ast.parse(path.read_text(), filename=str(path))
        nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
        for node in sorted(nodes, key=lambda n: n.lineno):
            for target in _imported(module, path, node, modules):
                if target != module:
                    relative = str(path.relative_to(root))
                    edges.setdefault(target, Import(target, relative, node.lineno))
        graph[module] = edges
    return graph


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _cycles(graph: Graph) -> list[list[str]]:
    """One cycle per strongly connected component (Tarjan), each as [a, b, ..., a]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, {})):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, {}):
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_through(sorted(c), graph) for c in sorted(components)]


def _cycle_through(component: list[str], graph: Graph) -> list[str]:
    """A shortest path from the component's first module back to itself (breadth first)."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for successor in sorted(graph.get(node, {})):
            if successor == start:
                return [*paths[node], start]
            if successor in members and successor not in paths:
                paths[successor] = [*paths[node], successor]
                queue.append(successor)
    raise AssertionError(f"no cycle through {start} in {component}")  # not a component


def violations(graph: Graph) -> list[str]:
    """One line per forbidden import and per cycle; empty when the graph is clean."""
    problems = []
    for module in sorted(graph):
        for target, found in sorted(graph[module].items()):
            where = f"{found.path}:{found.line}"
            if _in(module, "web") and _in(target, "worker"):
                problems.append(f"{where}: {module} imports {target} (web must not import worker)")
            if module == "celeryconfig" and (_in(target, "web") or _in(target, "worker")):
                problems.append(
                    f"{where}: celeryconfig imports {target} (celeryconfig imports neither web "
                    "nor worker)"
                )
    for cycle in _cycles(graph):
        steps = [
            f"{a} ({graph[a][b].path}:{graph[a][b].line})"
            for a, b in zip(cycle, cycle[1:], strict=False)
        ]
        problems.append("import cycle: " + " -> ".join([*steps, cycle[-1]]))
    return problems


def test_imports_go_one_way_and_never_in_a_circle() -> None:
    graph = import_graph(ROOT)
    assert "web" in graph and "celeryconfig" in graph  # the walk found the project
    problems = violations(graph)
    assert not problems, "import direction broken:\n" + "\n".join(problems)


# --- the checker itself ---------------------------------------------------------------------


def _edges(**modules: tuple[str, ...]) -> dict[str, dict[str, Import]]:
    """A synthetic graph: module (underscores for dots) -> the modules it imports."""
    graph: dict[str, dict[str, Import]] = {}
    for name, targets in modules.items():
        module = name.replace("_", ".")
        path = module.replace(".", "/") + ".py"
        graph[module] = {t: Import(t, path, line) for line, t in enumerate(targets, start=1)}
    return graph


def test_the_checker_reports_a_web_to_worker_edge_celeryconfig_and_a_cycle() -> None:
    graph = _edges(
        web=("worker.tasks", "web.views"),
        web_views=("web.models",),
        web_models=("web.outbox.api",),
        web_outbox_api=("web.views",),
        worker_tasks=("web.models",),
        celeryconfig=("web.config",),
        web_config=(),
    )
    assert violations(graph) == [
        "celeryconfig.py:1: celeryconfig imports web.config "
        "(celeryconfig imports neither web nor worker)",
        "web.py:1: web imports worker.tasks (web must not import worker)",
        "import cycle: web.models (web/models.py:1) -> web.outbox.api (web/outbox/api.py:1) "
        "-> web.views (web/views.py:1) -> web.models",
    ]


def test_the_checker_accepts_a_clean_graph_and_reports_a_module_importing_itself() -> None:
    clean = _edges(worker_tasks=("web.models", "worker.claims"), worker_claims=("web.models",))
    assert violations(clean) == []
    assert violations(_edges(web_a=("web.a",))) == ["import cycle: web.a (web/a.py:1) -> web.a"]


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def test_the_graph_reads_every_kind_of_import_statement(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "web/__init__.py": (
                "from web.config import X\n"
                "def create_app():\n"
                "    from web import cli, helpers\n"  # a submodule, and a name of the package
                "    import worker.tasks\n"
            ),
            "web/config.py": "import os\nfrom . import cli\n",
            "web/cli.py": "from .outbox import api\nfrom ..celeryconfig import x\n",
            "web/outbox/__init__.py": "",
            "web/outbox/api.py": "from ..config import X\nfrom web.outbox import nothing_here\n",
            "worker/__init__.py": "from web import create_app\n",
            "worker/tasks.py": "import celery\nfrom worker import claims\n",
            "celeryconfig.py": "import kombu\n",
        },
    )
    graph = import_graph(tmp_path)
    assert {module: sorted(edges) for module, edges in graph.items()} == {
        "web": ["web.cli", "web.config", "worker.tasks"],
        "web.config": ["web.cli"],
        "web.cli": ["celeryconfig", "web.outbox.api"],
        "web.outbox": [],
        "web.outbox.api": ["web.config", "web.outbox"],
        "worker": ["web"],
        "worker.tasks": ["worker"],  # no worker/claims.py: the name is the package's
        "celeryconfig": [],
    }
    assert graph["web"]["worker.tasks"] == Import("worker.tasks", "web/__init__.py", 4)
    assert violations(graph)[0] == (
        "web/__init__.py:4: web imports worker.tasks (web must not import worker)"
    )


@pytest.mark.parametrize("module", ["web", "worker", "celeryconfig"])
def test_the_walk_finds_the_real_project(module: str) -> None:
    assert module in project_modules(ROOT)
