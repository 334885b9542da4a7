"""A stage depends on the code it runs: its script and the dcpipe modules the script imports (dcpipe.codedeps), as
rule inputs and as dvc.yaml deps, so Snakemake and DVC rerun exactly the stages a library edit touches. RERUNS
states, for every module, the rules an edit of it reruns (checked against the import graph, nothing run); the slow
tests check on a copy of the finished smoke run that both runners plan just that: a report edit only the report, a
matching.py edit the condensations and everything below them."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from dcpipe import codedeps
from tests.conftest import NO_MIRROR, ROOT, run, smoke_params

DVC_DRY = ["dvc", "repro", "--dry", "--force-downstream"]
SRC = ROOT / "src"

# Rule = script = stage module (tests/test_rule_script_stage.py).
RULES = frozenset(p.stem for p in (ROOT / "workflow/scripts").glob("*.py"))
EVERY = RULES
REPORT = ("paper", "report_files", "report", "report.build", "report.cells", "report.collect", "report.first_screen",
          "report.metrics", "report.protocol", "report.render", "report.section", "report.summary", "report.sections",
          "report.sections.continual", "report.sections.cross", "report.sections.figures", "report.sections.main",
          "report.sections.nas", "report.sections.protocol", "report.sections.score", "report.sections.speed",
          "report.sections.studies", "report.sections.sweep", "report.sections.table1")

# For each module of src/dcpipe ("dcpipe": its __init__), the rules an edit of it reruns: those whose script runs
# it (and, through their outputs, every rule below them). A new module needs its line here.
RERUNS = {
    # set-up, the algorithms' names and configs, the parameter file, the plan and every stage's start
    **dict.fromkeys(("dcpipe", "errors", "precision", "io", "seeding", "lease", "runtime", "distances",
                     "condense_config", "train_config", "continual_config", "score_config", "dsa_strategies",
                     "model_names", "nas_space", "coreset_names", "datasets", "sources", "fetch", "methods",
                     "artifacts", "config", "config.load", "config.checks", "config.sections", "config.settings",
                     "plan", "stages", "stages.start", "registry", "transfer"), EVERY),
    "jobs": EVERY - {"prepare_data", "report"},  # the scripts that build their stage's typed job
    "data": EVERY - {"download"},
    # the networks: every rule that builds one (nas_split and the report through dcpipe.nas)
    **dict.fromkeys(("models", "fused", "dsa"), EVERY - {"download", "prepare_data", "select_coreset"}),
    "train": EVERY - {"download", "prepare_data", "select_coreset", "condense"},
    # the prepared dataset and the training sets of the stages that read them
    **dict.fromkeys(("stages.common", "sets"), EVERY - {"download", "prepare_data", "nas_split", "report"}),
    # every method runs through one door (dcpipe.door); the built-ins behind it are each stage's own code
    **dict.fromkeys(("door", "plugin"), {"condense", "select_coreset"}),
    **dict.fromkeys(("builtins", "matching", "condense", "dm"), {"condense"}),
    "builtin_coresets": {"select_coreset"},
    "coreset": {"select_coreset", "wholeset", "optimal_random", "continual"},
    "set_files": {"condense", "select_coreset", "score"},  # the readers of finished sets: kind file cells and score
    "continual": {"continual"},
    "nas": {"nas_split", "nas_shard", "nas_ground_truth", "report"},
    "score": {"score"},
    **dict.fromkeys(REPORT, {"report"}),
    **{f"stages.{rule}": {rule} for rule in RULES},
    "stages.evaluate": {"evaluate", "evaluate_cross"},  # evaluate_cross trains as evaluate does
    # no rule's: the command line, the tools beside the pipeline
    **dict.fromkeys(("cli", "dvcgen", "codedeps", "bench", "gpu_check", "plansize"), set()),
}
# What the data rules must not depend on: an edit of training, matching or model code reruns no download.
TRAINING_CODE = {"train", "matching", "condense", "dm", "dsa", "coreset", "models", "nas", "continual", "score", "fused",
                 "stages.common"}


def rules_running_each_module() -> dict[str, set[str]]:
    """Module -> the rules whose code (codedeps.script_code: each rule's declared inputs) holds its file."""
    out = {codedeps.module_name(p, SRC).removeprefix("dcpipe."): set() for p in codedeps.sources(SRC)}
    for rule in RULES:
        for f in codedeps.script_code(str(ROOT / f"workflow/scripts/{rule}.py"), SRC)[1:]:
            if f.endswith(".py"):
                out[codedeps.module_name(Path(f), SRC).removeprefix("dcpipe.")].add(rule)
    return out


def test_every_module_says_which_rules_an_edit_of_it_reruns():
    modules = set(rules_running_each_module())
    assert not modules - set(RERUNS), (f"add to RERUNS in tests/test_code_deps.py the rules an edit of each reruns: "
                                       f"{sorted(modules - set(RERUNS))}")
    assert not set(RERUNS) - modules, f"RERUNS names modules that are gone: {sorted(set(RERUNS) - modules)}"


def test_an_edit_of_each_module_reruns_the_rules_the_table_says():
    found = rules_running_each_module()
    wrong = {m: f"table {sorted(RERUNS[m])}, imported by {sorted(rules)}" for m, rules in found.items()
             if m in RERUNS and set(RERUNS[m]) != rules}
    assert not wrong, "\n".join(f"{m}: {why}" for m, why in sorted(wrong.items()))


@pytest.mark.parametrize("rule", ["download", "prepare_data"])
def test_the_data_rules_depend_on_no_training_matching_or_model_code(rule):
    code = {m for m, rules in rules_running_each_module().items() if rule in rules}
    assert not code & TRAINING_CODE, f"{rule} runs {sorted(code & TRAINING_CODE)}"
    assert not {m for m in TRAINING_CODE if rule in RERUNS[m]}


def test_a_scripts_code_is_its_import_closure_with_data_files():
    src = ROOT / "src"
    report = codedeps.script_code(str(ROOT / "workflow/scripts/report.py"), src)
    download = codedeps.script_code(str(ROOT / "workflow/scripts/download.py"), src)
    assert str(src / "dcpipe/report/render.py") in report and str(src / "dcpipe/report/render.py") not in download
    assert str(src / "dcpipe/report/templates/report.html.j2") in report
    assert str(src / "dcpipe/stages/start.py") in download and str(src / "dcpipe/__init__.py") in download


def test_every_data_file_of_the_package_has_a_reader():
    package = ROOT / "src/dcpipe"
    data = {str(p.relative_to(package)) for p in package.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")}
    claimed = {f for files in codedeps.DATA_FILES.values() for f in files}
    data -= {f for files in codedeps.SETUP_FILES.values() for f in files}  # written by make setup, or absent
    assert data == claimed, (sorted(data - claimed), sorted(claimed - data))


@pytest.fixture(scope="module")
def finished(smoke_run, official_server, tmp_path_factory) -> Path:
    """A copy of the finished smoke run (mtimes kept), adopted by DVC: both runners have nothing to do."""
    wd = tmp_path_factory.mktemp("code-deps") / "run"
    shutil.copytree(smoke_run, wd, symlinks=True)
    smoke_params(wd, official_server.urls())  # the e2e module's DVC test edits the shared run's params.yaml
    run(["dvc", "commit", "-f", "-q"], wd, env=NO_MIRROR)
    run(["snakemake", "--touch", "--cores", "1"], wd, env=NO_MIRROR)  # DVC re-linked the outputs (new mtimes)
    out = run(["snakemake", "-n"], wd, env=NO_MIRROR)
    assert "Nothing to be done" in out.stdout + out.stderr
    assert "Running stage" not in run(DVC_DRY, wd, env=NO_MIRROR).stdout
    return wd


def planned(wd: Path) -> tuple[set[str], set[str]]:
    """The commands `snakemake -n -p` and `dvc repro --dry --force-downstream` would run."""
    def commands(text):
        return set(re.findall(r"python workflow/scripts/\S+ [^>\n]*", text))
    return (commands(run(["snakemake", "-n", "-p"], wd, env=NO_MIRROR).stdout),
            commands(run(DVC_DRY, wd, env=NO_MIRROR).stdout))


def below(wd: Path, module: str) -> set[str]:
    """From dvc.yaml: the commands of the stages whose deps hold `module`, and of every stage below them."""
    stages = yaml.safe_load((wd / "dvc.yaml").read_text())["stages"]
    hit = {n for n, s in stages.items() if module in s["deps"]}
    while True:
        made = {o for n in hit for o in stages[n].get("outs", []) + stages[n].get("metrics", [])}
        more = {n for n, s in stages.items() if n not in hit and made & set(s["deps"])}
        if not more:
            break
        hit |= more
    return {re.search(r"python workflow/scripts/\S+ [^>\n]*", stages[n]["cmd"]).group(0) for n in hit}


def scripts_planned_after_an_edit(wd: Path, module: str) -> set[str]:
    """Append one comment line to a module (newer than every output, as a real edit is), check that both runners
    plan the same commands, those of the stages whose code holds the module and of the stages below them, and put
    the module back (text and mtime); returns the planned scripts."""
    path = wd / module
    text, stat = path.read_text(), path.stat()
    path.write_text(text + "# an edit\n")
    os.utime(path, (stat.st_atime, time.time() + 10))  # newer than every output (a copy keeps the source's mtime)
    try:
        smk, dvc = planned(wd)
    finally:
        path.write_text(text)
        os.utime(path, (stat.st_atime, stat.st_mtime))
    assert smk == dvc == below(wd, module)
    return {c.split()[1].split("/")[-1] for c in dvc}


@pytest.mark.slow
def test_a_report_edit_reruns_only_the_report(finished):
    planned_scripts = scripts_planned_after_an_edit(finished, "src/dcpipe/report/render.py")
    assert planned_scripts == {"report.py"} and len(below(finished, "src/dcpipe/report/render.py")) == 1


@pytest.mark.slow
def test_a_matching_edit_reruns_the_condensations_and_everything_below_them(finished):
    planned_scripts = scripts_planned_after_an_edit(finished, "src/dcpipe/matching.py")
    assert {"condense.py", "evaluate.py", "report.py"} <= planned_scripts
    assert not planned_scripts & {"download.py", "prepare_data.py", "wholeset.py", "select_coreset.py"}


@pytest.mark.slow
def test_after_the_edits_both_runners_have_nothing_to_do_again(finished):
    smk, dvc = planned(finished)
    assert smk == dvc == set()


def test_a_plugin_edit_reruns_its_own_cells_and_no_others(finished):
    """The smoke run's KMeans plug-in (examples/plugins/kmeans.py): an edit of its file reruns its selections, their
    evaluations and the report, under both runners, and no other method's jobs."""
    planned_scripts = scripts_planned_after_an_edit(finished, "examples/plugins/kmeans.py")
    assert planned_scripts == {"select_coreset.py", "evaluate.py", "report.py"}
    smk, _ = planned(finished)
    assert smk == set()  # put back: nothing to do again
    stages = yaml.safe_load((finished / "dvc.yaml").read_text())["stages"]
    own = {n for n, s in stages.items() if "examples/plugins/kmeans.py" in s["deps"]}
    assert own == {"select_coreset_FashionMNIST_1_KMeans_0", "select_coreset_MNIST_1_KMeans_0"}
