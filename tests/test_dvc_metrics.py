"""`dvc metrics show` and `dvc metrics diff` fit 120 columns: the report's DVC metrics are one small file per
evaluated cell, all of one schema (dcpipe.report.metrics), named from the parameters alone (report_files.report_outputs).
Checked with FAKE metrics files of the widest plausible values for params.yaml and config/paper.yaml (the full
protocol: the most cells and the longest method names), in a throwaway DVC project; no pipeline runs."""
import json
from pathlib import Path

import pytest

from dcpipe.config import load_params
from dcpipe.report_files import report_outputs
from dcpipe.report.metrics import SCHEMA
from tests.conftest import run

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 120
WIDEST = {"mean": 99.99, "std": 99.99, "models": 100, "paper": 99.99, "paper_std": 99.99}


def fake_metrics(root: Path, params_file: str) -> list[str]:
    """The metrics files the report declares for `params_file`, with the widest plausible values, under root;
    a dvc.yaml that lists them as metrics, as the report stage does."""
    files = report_outputs(load_params(ROOT / params_file))["metrics"]
    assert set(WIDEST) == set(SCHEMA)
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text(json.dumps(WIDEST))
    (root / "dvc.yaml").write_text("metrics:\n" + "".join(f"- {f}\n" for f in files))
    return files


def too_wide(text: str) -> list[str]:
    return [f"{len(line)}: {line!r}" for line in text.splitlines() if len(line) > WIDTH]


@pytest.mark.parametrize("params_file", ["params.yaml", "config/paper.yaml"])
def test_dvc_metrics_show_fits_120_columns(tmp_path, params_file):
    files = fake_metrics(tmp_path, params_file)
    run(["dvc", "init", "--no-scm", "-q"], tmp_path)
    shown = run(["dvc", "metrics", "show"], tmp_path).stdout
    lines = shown.splitlines()
    widest = max(lines, key=len)
    print(f"{params_file}: {len(files)} metrics files, widest line of `dvc metrics show` {len(widest)}: {widest}")
    assert not too_wide(shown), f"`dvc metrics show` for {params_file}: {too_wide(shown)[0]}"
    header = lines[0].split()
    assert header[0] == "Path" and set(header[1:]) == set(SCHEMA)  # one schema: one column per value, no more
    assert len(lines) == 1 + len(files) and all(any(line.startswith(f + " ") for line in lines) for f in files)


def test_dvc_metrics_diff_names_the_changed_cell_in_one_short_line(tmp_path):
    files = fake_metrics(tmp_path, "params.yaml")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    run(["git", "init", "-q"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    run(git + ["add", "-A"], tmp_path)
    run(git + ["commit", "-q", "-m", "metrics"], tmp_path)
    changed = next(f for f in files if f.endswith("/FashionMNIST_ipc1_DC.json"))
    (tmp_path / changed).write_text(json.dumps({**WIDEST, "mean": 71.25}))
    diff = run(["dvc", "metrics", "diff"], tmp_path).stdout
    print(diff)
    assert not too_wide(diff), f"`dvc metrics diff`: {too_wide(diff)[0]}"
    rows = [line.split() for line in diff.splitlines()[1:] if line.strip()]
    assert rows == [[changed, "mean", "99.99", "71.25", "-28.74"]], diff
