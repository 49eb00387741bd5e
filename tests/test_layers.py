"""The package's layers, kept by reading every module's imports (``ast``, nothing is imported).

From the bottom: the engine (the modules at the top of ``fg_analysis/``: tangents, JVPs, aggregators, the
estimator, theory, metrics, problems, plain gradient descent), :mod:`fg_analysis.runs` (cache, sweeps,
environment, command-line options, paths), :mod:`fg_analysis.nets` (data, models, gradient sources, training),
:mod:`fg_analysis.bench` (the benchmark and the cost model), :mod:`fg_analysis.experiments` (one module per
question, the learning-rate tables and search, the stored-record readers, the GPU run), :mod:`fg_analysis.publish`
(the book runner, the pages' sentences and figures), and the command line (``__main__``). A module may import
its own layer and those below, never one above; no two modules import each other, directly or around a circle;
and the package's own modules are imported at the top of a module, never inside a function (only the heavy
optional libraries in :data:`DEFERRED` may be imported late, where a module needs them in one function).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fg_analysis.runs.paths import PACKAGE

LAYERS = ("engine", "runs", "nets", "bench", "experiments", "publish", "__main__")

#: third-party libraries a function may import where it needs them: heavy, and used by one part only
DEFERRED = {"matplotlib", "seaborn", "optuna", "mpi4py", "nbformat", "nbclient", "papermill", "IPython", "pynvml",
            "scipy", "sklearn", "mnist1d", "bs4", "torch.utils.flop_counter"}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """The layer of a module of the package: the engine (0) for the top-level modules, else its folder's."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else 0


def imports(source: str, module: str, modules: set[str]) -> list[tuple[str, int, bool]]:
    """``(imported module, line, at top level)`` for every import of the package in ``source``; ``from X import
    y`` counts as an import of ``X.y`` when that is a module, else of ``X``."""
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{module}: use absolute imports (line {node.lineno})")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fg_analysis":
            targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                       for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.split(".")[0] == "fg_analysis"]
        else:
            continue
        found += [(target, node.lineno, id(node) in top) for target in dict.fromkeys(targets)]
    return found


def late_imports(source: str) -> list[tuple[str, int]]:
    """``(module, line)`` of every import inside a function or class."""
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    late = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            late += [(name, node.lineno) for name in names if name]
    return late


def problems(package: Path = PACKAGE) -> list[str]:
    """Every upward import, import circle and late import of the package under ``package``."""
    sources = {module_name(path, package): path.read_text() for path in sorted(package.rglob("*.py"))}
    modules = set(sources)
    found, graph = [], {}
    for module, source in sources.items():
        edges = imports(source, module, modules)
        graph[module] = {target for target, _, _ in edges if target != module}
        for target, line, at_top in edges:
            if layer(target) > layer(module):
                found.append(f"{module}:{line} imports {target}, a layer above ({LAYERS[layer(target)]} over "
                             f"{LAYERS[layer(module)]})")
            if not at_top:
                found.append(f"{module}:{line} imports {target} inside a function")
        for name, line in late_imports(source):
            if name.split(".")[0] != "fg_analysis" and not any(name == d or name.startswith(d + ".") for d in DEFERRED):
                found.append(f"{module}:{line} imports {name} inside a function (not a deferred heavy library)")
    found += [f"import circle: {' -> '.join(cycle)}" for cycle in circles(graph)]
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group) + [sorted(group)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_package_keeps_its_layers():
    assert problems() == []


def test_the_top_level_holds_the_engine_and_the_layer_folders():
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    folders = [name for name in entries if (PACKAGE / name).is_dir()]
    assert folders == ["bench", "experiments", "nets", "publish", "runs"]
    assert len(entries) <= 18, entries


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "fg_analysis"
    for name, text in {"__init__.py": "", "runs/__init__.py": "", "publish/__init__.py": "", **files}.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    return package


@pytest.mark.parametrize(("files", "expected"), [
    ({"tangents.py": "from fg_analysis.publish import pages\n", "publish/pages.py": ""},
     "fg_analysis.tangents:1 imports fg_analysis.publish.pages, a layer above (publish over engine)"),
    ({"runs/a.py": "from fg_analysis.runs import b\n", "runs/b.py": "import fg_analysis.runs.a\n"},
     "import circle: fg_analysis.runs.a -> fg_analysis.runs.b -> fg_analysis.runs.a"),
    ({"runs/a.py": "def f():\n    from fg_analysis import theory\n", "theory.py": ""},
     "fg_analysis.runs.a:2 imports fg_analysis.theory inside a function"),
    ({"runs/a.py": "def f():\n    import json\n"},
     "fg_analysis.runs.a:2 imports json inside a function (not a deferred heavy library)"),
])
def test_the_check_finds_a_planted_problem(tmp_path, files, expected):
    assert expected in problems(_plant(tmp_path, files))


def test_a_deferred_heavy_library_and_a_downward_import_pass(tmp_path):
    package = _plant(tmp_path, {"publish/pages.py": "from fg_analysis import theory\n\ndef f():\n"
                                                    "    import matplotlib.pyplot as plt\n", "theory.py": ""})
    assert problems(package) == []
