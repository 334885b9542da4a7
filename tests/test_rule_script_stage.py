"""Rule = script = stage: every rule `x` of workflow/rules runs workflow/scripts/x.py, which calls function `x` of
dcpipe.stages.x, and every script and stage module belongs to a rule (read from the files, nothing imported)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = sorted((ROOT / "workflow/rules").glob("*.smk"))
RULES = {m.group(1): f for f in RULE_FILES for m in re.finditer(r"^\s*rule (\w+):", f.read_text(), re.M)}
SCRIPTS = {p.stem for p in (ROOT / "workflow/scripts").glob("*.py")}
# What the stage modules share (their start; the dataset and sets of those that train), no rule's own
SHARED = {"dcpipe.stages.start", "dcpipe.stages.common"}
STAGES = {p.stem for p in (ROOT / "src/dcpipe/stages").glob("*.py")} - {"__init__"} - {m.split(".")[-1] for m in SHARED}


def rule_block(name: str) -> str:
    text = RULES[name].read_text()
    start = re.search(rf"^(\s*)rule {name}:", text, re.M)
    indent = len(start.group(1))
    end = re.search(rf"^\s{{0,{indent}}}\S", text[start.end():], re.M)
    return text[start.start(): start.end() + (end.start() if end else len(text))]


def test_rules_scripts_and_stage_modules_are_the_same_names():
    assert set(RULES) == SCRIPTS == STAGES, (sorted(RULES), sorted(SCRIPTS), sorted(STAGES))


@pytest.mark.parametrize("name", sorted(RULES))
def test_the_rule_runs_its_script(name):
    scripts = set(re.findall(r"\{RUN\}/(\w+)\.py", rule_block(name)))
    assert scripts == {name}, f"rule {name} runs {sorted(scripts)}"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_script_calls_its_stage_function(name):
    tree = ast.parse((ROOT / f"workflow/scripts/{name}.py").read_text())
    stages = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
              and (n.module or "").startswith("dcpipe.stages.") and n.module not in SHARED for a in n.names}
    assert stages == {(f"dcpipe.stages.{name}", name)}, f"workflow/scripts/{name}.py imports {sorted(stages)}"
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert name in calls


@pytest.mark.parametrize("name", sorted(STAGES))
def test_the_stage_module_defines_its_function(name):
    tree = ast.parse((ROOT / f"src/dcpipe/stages/{name}.py").read_text())
    assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
