"""The code a stage runs: its script and every dcpipe module the script imports, directly or not, read from the
sources with ast (nothing is imported). Each rule declares these files as inputs (workflow/rules/common.smk,
`code(...)`), and dvc.yaml lists them as deps, so Snakemake and DVC both rerun exactly the stages a library edit
touches. tests/test_layering.py checks the same import graph for its layers."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SRC = Path("src")  # the package's parent, relative to the repository root (a rule's working directory)

# Files a module reads that are not Python: an edit of one reruns the stages that import its reader.
DATA_FILES = {
    "dcpipe.config.load": ["params.schema.yaml"],
    "dcpipe.fused": ["csrc/norm_relu_avgpool.cpp"],
    "dcpipe.report.render": [f"report/templates/{t}" for t in ("report.md.j2", "report.html.j2", "cell.html.j2",
                                                                 "_blocks.html.j2")],
}

# Package data that set-up writes (gitignored), read by the module named but no stage's dependency: a checkout
# without npm has none, and its pinned version changes only with workflow/build_web_assets.py.
SETUP_FILES = {"dcpipe.report.render": ["report/static/tablesort.min.js"]}


def module_name(path: Path, src: Path = SRC) -> str:
    """dcpipe.x.y of src/dcpipe/x/y.py (a package's __init__.py is the package)."""
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_path(module: str, src: Path = SRC) -> Path | None:
    """The source file of a dcpipe module, or None when there is none."""
    base = src.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imports(path: Path, src: Path = SRC) -> list[tuple[str, ast.stmt, bool]]:
    """(imported dcpipe module, the statement, whether it is inside a function) of one source file, in the package
    (relative imports resolved) or outside it (a workflow script: absolute imports only)."""
    inside = path.resolve().is_relative_to(src.resolve())
    here = module_name(path.resolve(), src.resolve()) if inside else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    local = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[:len(package.split(".")) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [module]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "dcpipe":
            module = node.module
            targets = [module]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.split(".")[0] == "dcpipe"]
        if isinstance(node, ast.ImportFrom) and targets:
            # `from pkg import x` imports the submodule x when there is one
            targets = [f"{module}.{a.name}" if module_path(f"{module}.{a.name}", src) else module for a in node.names]
        out += [(t, node, id(node) in local) for t in targets]
    return out


def sources(src: Path = SRC) -> list[Path]:
    return sorted((src / "dcpipe").rglob("*.py"))


def graph(src: Path = SRC) -> dict[str, set[str]]:
    """dcpipe module -> the dcpipe modules it imports (itself left out)."""
    return {module_name(p, src): {t for t, _, _ in imports(p, src)} - {module_name(p, src)} for p in sources(src)}


def _with_parents(module: str) -> list[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def closure(roots, edges: dict[str, set[str]]) -> set[str]:
    """Every module that importing `roots` runs."""
    seen, todo = set(), [p for r in roots for p in _with_parents(r)]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += [p for t in edges.get(m, ()) for p in _with_parents(t)]
    return seen


@functools.lru_cache(maxsize=None)
def _graph_of(src: str) -> dict[str, set[str]]:
    return graph(Path(src))


def script_code(script: str, src: Path = SRC) -> list[str]:
    """The script and the files of every dcpipe module it runs (with their data files), sorted: a rule's code."""
    modules = closure({t for t, _, _ in imports(Path(script), src)}, _graph_of(str(src)))
    files = {str(module_path(m, src)) for m in modules if module_path(m, src)}
    files |= {str(src / "dcpipe" / f) for m in modules for f in DATA_FILES.get(m, [])}
    return [script] + sorted(files)
