"""The package's shape (issue #10): folders are layers, imports go one way, modules stay readable.

Reads every module's imports (module level and inside functions) with the ast module, so a
lazy import that closes a cycle counts too.
"""

import ast
from pathlib import Path

from testkit.shared_data import ROOT

PACKAGE = ROOT / "mt"
# bottom to top; a module may import from its own layer and the ones before it
LAYERS = ["mt.errors", "mt.settings", "mt.budget", "mt.text", "mt.models", "mt.engines", "mt.links", "mt.quality", "mt.align",
          "mt.cache", "mt.document", "mt.terms", "mt.extras", "mt.pipeline", "mt.io", "mt.web", "mt.cli_memory", "mt.cli", "mt.__main__"]
MAX_LINES = 450


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name, is_package = module_name(path)
        package = name.split(".") if is_package else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                if not base.startswith("mt"):
                    continue
                submodules = [f"{base}.{alias.name}" for alias in node.names if is_module(f"{base}.{alias.name}")]
                deps.update(submodules)
                if len(submodules) < len(node.names):
                    deps.add(base)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names if alias.name.startswith("mt"))
        graph[name] = {dep for dep in deps if dep != name}
    return graph


def layer(name: str) -> int:
    found = [i for i, prefix in enumerate(LAYERS) if name == prefix or name.startswith(prefix + ".")]
    assert found, f"{name} is in no layer: add its folder to LAYERS"
    return found[-1]


def test_no_import_cycles():
    graph = import_graph()
    cycles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(trail[trail.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, trail + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def test_imports_go_down_the_layers_only():
    upward = [(name, dep) for name, deps in import_graph().items() if name != "mt"
              for dep in deps if dep != "mt" and layer(dep) > layer(name)]
    assert not upward, upward


def test_modules_stay_readable_in_one_sitting():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_the_package_ships_no_test_fixtures():
    assert not (PACKAGE / "testing.py").exists()
    assert not [p for p in PACKAGE.rglob("*.py") if "tiny_model" in p.read_text(encoding="utf-8")]


def imported_names(folder: Path) -> dict[str, set[str]]:
    """Top-level names each module of ``folder`` imports (absolute imports, any depth in the code)."""
    found = {}
    for path in folder.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[path.name] = names
    return found


def reaches(names: set[str], folder: Path) -> set[str]:
    """The names that are the package ``folder`` or one of its modules by bare name."""
    stems = {p.stem for p in folder.glob("*.py")}
    return {n for n in names if n.split(".")[0] == folder.name or n.split(".")[0] in stems - {"__init__"}}


def test_tests_and_benchmarks_share_only_testkit():
    """Tests do not import benchmarks, nor benchmarks tests: what both need is in testkit/, which
    imports neither, and which the service never imports."""
    tests, benchmarks, testkit = ROOT / "tests", ROOT / "benchmarks", ROOT / "testkit"
    wrong = {f"tests/{name}": reaches(names, benchmarks) for name, names in imported_names(tests).items()}
    wrong |= {f"benchmarks/{name}": reaches(names, tests) for name, names in imported_names(benchmarks).items()}
    wrong |= {f"testkit/{name}": reaches(names, tests) | reaches(names, benchmarks)
              for name, names in imported_names(testkit).items()}
    assert not {k: v for k, v in wrong.items() if v}
    on_path = [p.name for p in benchmarks.glob("*.py") if '"tests"' in p.read_text(encoding="utf-8")]
    assert not on_path, f"benchmarks put tests/ on sys.path: {on_path}"
    assert not [p for p in PACKAGE.rglob("*.py") if "testkit" in p.read_text(encoding="utf-8")]
