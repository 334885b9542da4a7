"""Imports point one way: down the layers below, never up, and never in a circle (read from the source with ast,
nothing imported, by dcpipe.codedeps: the graph that each stage's code dependencies come from). A module may import
its own layer's modules as long as no circle forms."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dcpipe import codedeps

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "dcpipe"

# The algorithms' names and configs: what the parameter checks, the plan and every stage's start read, without torch
# (so a stage that trains nothing depends on no training code: tests/test_code_deps.py).
NAMES = ("distances", "condense_config", "train_config", "continual_config", "score_config", "dsa_strategies",
         "model_names", "nas_space", "coreset_names", "datasets")
# Top-level modules (or packages) of dcpipe, lowest layer first.
LAYERS = [
    ("dcpipe", "codedeps", "errors", "precision", "io", "seeding", "paper", "lease", "fused", "runtime"),  # set-up, files, seeds, kernels
    NAMES,             # the algorithms' names and configs, no torch
    ("sources", "transfer", "fetch", "data", "models", "matching", "dsa", "train", "coreset", "condense", "dm", "continual", "nas", "sets", "set_files", "score", "builtins", "builtin_coresets"),  # the algorithms
    ("registry", "plugin", "methods", "door"),  # the methods by name (built-ins and plug-ins), what a plug-in imports, their grammar, the door they run through
    ("artifacts",),    # path templates
    ("config",),       # load, validate, typed configs
    ("plan", "plansize", "jobs", "report_files"),  # the jobs of a parameter file, their number, the typed job of each stage, the report's files
    ("report",),       # the report's pages, from the artifacts
    ("stages", "bench", "gpu_check"),  # stages: one entry function per rule (stages.report calls the report)
    ("cli", "dvcgen"),
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    return codedeps.module_name(path, SRC)


def imports(path: Path) -> list[tuple[str, ast.stmt, bool]]:
    """(imported dcpipe module, the statement, whether it is inside a function) of one source file."""
    return codedeps.imports(path, SRC)


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


SOURCES = codedeps.sources(SRC)
GRAPH = codedeps.graph(SRC)


def test_every_module_has_a_layer():
    assert {top(m) for m in GRAPH} <= set(LAYER), sorted({top(m) for m in GRAPH} - set(LAYER))


MAX_LINES = 400


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_no_module_is_over_400_lines(path):
    """A module that grows past this is two: split it where its callers divide (plan -> report_files)."""
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module_name(path)} has {lines} lines (at most {MAX_LINES}): split it"


@pytest.mark.parametrize("name", NAMES)
def test_the_names_and_configs_import_no_torch(name):
    """What the parameter checks, the plan and every stage's start read stays free of torch: the algorithms import
    it, the tables of their names and settings do not."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in modules if m.split(".")[0] == "torch"}, f"dcpipe.{name} imports torch"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_imports_point_down_the_layers(path):
    here = module_name(path)
    up = [f"line {node.lineno}: {t} (layer {LAYER[top(t)]})" for t, node, _ in imports(path)
          if top(t) != top(here) and LAYER[top(t)] > LAYER[top(here)]]
    assert not up, f"{here} (layer {LAYER[top(here)]}) imports up: {up}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_no_dcpipe_import_hides_in_a_function(path):
    hidden = [f"line {node.lineno}: {t}" for t, node, local in imports(path) if local]
    assert not hidden, f"{module_name(path)}: function-local imports of the package: {hidden}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_a_function_local_import_says_why(path):
    """Only optional or heavy dependencies are imported inside a function, with the reason beside them."""
    lines = path.read_text().splitlines()
    tree = ast.parse(path.read_text())
    silent = [f"line {n.lineno}: {lines[n.lineno - 1].strip()}" for f in ast.walk(tree)
              if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)
              if isinstance(n, (ast.Import, ast.ImportFrom))
              and "#" not in lines[n.lineno - 1] and "#" not in lines[n.lineno - 2]]
    assert not silent, f"{module_name(path)}: {silent}"


def test_there_is_no_import_circle():
    state, circles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for t in sorted(GRAPH.get(m, ())):
            if state.get(t) == "open":
                circles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    assert not circles, " ; ".join(" -> ".join(c) for c in circles)


def test_the_workflow_imports_only_config_plan_report_files_artifacts_methods_and_codedeps():
    root = PACKAGE.parents[1]
    allowed = {"dcpipe.config", "dcpipe.plan", "dcpipe.plansize", "dcpipe.report_files", "dcpipe.artifacts",
               "dcpipe.methods", "dcpipe.registry", "dcpipe.codedeps"}  # plansize: the plan's size, in plan's layer
    found = set()
    for f in [root / "Snakefile", *sorted((root / "workflow" / "rules").glob("*.smk"))]:
        for line in f.read_text().splitlines():
            words = line.split()
            if words[:1] in (["from"], ["import"]) and words[1].startswith("dcpipe"):
                found |= {words[1]} if words[0] == "from" and words[1] != "dcpipe" else {
                    f"dcpipe.{n.strip(',')}" for n in words[3:]}
    assert found <= allowed, sorted(found - allowed)
