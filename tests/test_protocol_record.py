"""Protocol runs as the report shows them: a record keeps every network of every cell of a finished run, and the
report judges a cell against the paper's mean ± 2 std only when it ran at the paper's own protocol. The
evaluation files below are FAKE (made-up accuracies in the stage's format); no training runs."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from dcpipe import artifacts, plan
from dcpipe.cli import main
from dcpipe.config import load_params
from dcpipe.io import read_json, write_json
from dcpipe.report.protocol import cell_stats, protocol_record
from dcpipe.report.sections.protocol import protocol_section
from dcpipe.report.summary import OUTSIDE, REPRODUCED, summary_section

ROOT = Path(__file__).resolve().parents[1]
MD = "config/protocol_fmnist_md.yaml"  # the follow-up's protocol: K = 1000, 2 sets x 50 networks, 300 epochs


def write_evals(checkout: Path, params, accuracy: float, models: int | None = None) -> None:
    """FAKE evaluation files of every job of params' plan, every network at `accuracy` %."""
    for job in plan.plan(params):
        n = models or params["evaluate"]["models_per_set"]
        write_json(checkout / artifacts.EVAL.format(**job),
                   {"set": job["set"], "accuracies": [accuracy / 100] * n, "wall_seconds": 60.0,
                    "train_config": {"epochs": 300},
                    "provenance": {"git_commit": "0123456789abcdef"},
                    "train_set_meta": {"kind": "synthetic", "config": {"iterations": 1000},
                                       "wall_seconds": 1200.0, "seconds_per_iteration": 1.2}})


def record(tmp_path, accuracy, models=None, departures=None):
    params = load_params(ROOT / MD)
    write_evals(tmp_path, params, accuracy, models)
    return protocol_record(params, tmp_path, name="fmnist_md", params_file=MD, command="snakemake ...",
                           wall_clock="1:00:00", machine="2 cores", departures=departures or {})


def test_a_record_keeps_every_network_of_every_set_of_each_cell(tmp_path):
    r = record(tmp_path, 71.0)
    (cell,) = r["cells"]
    assert (cell["dataset"], cell["ipc"], cell["method"]) == ("FashionMNIST", 1, "MD")
    assert [s["set"] for s in cell["sets"]] == [0, 1] and all(len(s["accuracies"]) == 50 for s in cell["sets"])
    assert cell_stats(cell) == {"mean": pytest.approx(71.0), "std": pytest.approx(0.0, abs=1e-9), "n_models": 100,
                                "sets": 2, "models": 50, "epochs": 300, "iterations": 1000}


def test_an_unfinished_run_is_refused_naming_the_missing_evaluation(tmp_path):
    params = load_params(ROOT / MD)
    with pytest.raises(FileNotFoundError, match="MD_set0.json: the run of .* has not finished"):
        protocol_record(params, tmp_path, name="x", params_file=MD, command="c", wall_clock="0:01", machine="m",
                        departures={})


def test_a_cell_at_the_followups_protocol_is_judged_against_its_band(tmp_path):
    inside = protocol_section([record(tmp_path, 71.4 + 1.1)])  # MD: 71.4 +- 0.6, band +- 1.2
    assert inside.comparisons[0].status == REPRODUCED
    outside = protocol_section([record(tmp_path, 71.4 - 1.3)])
    assert outside.comparisons[0].status == OUTSIDE
    assert outside.rows[0][:5] == ["fmnist_md", "FashionMNIST, IPC 1, MD", "70.1 ± 0.0", "71.4 ± 0.6", OUTSIDE]


def test_a_cell_with_fewer_networks_than_the_protocol_is_a_reduced_budget_whatever_its_accuracy(tmp_path):
    s = protocol_section([record(tmp_path, 71.4, models=10)])
    assert s.comparisons[0].status == "reduced budget: K = 1000, 2 sets × 10 models, 300 epochs"


def test_the_summary_shows_a_protocol_run_with_its_departures(tmp_path):
    s = protocol_section([record(tmp_path, 71.4, departures={"condense.batch_real": "64 (paper 256)"})])
    (row,) = summary_section([s]).rows
    assert row[1:4] == ["FashionMNIST", "1", "MD (protocol run fmnist_md; departs in condense.batch_real)"]
    # the run's own departures: a folded table of the section, one row each
    assert ("departs in condense.batch_real", "64 (paper 256)") in s.details[0].rows


def test_no_record_is_a_section_that_says_how_to_make_one():
    s = protocol_section([])
    assert not s.rows and "dcpipe record-protocol" in s.note


def test_record_protocol_writes_the_record_and_refuses_a_departure_without_a_key(tmp_path):
    params = load_params(ROOT / MD)
    (tmp_path / "config").mkdir()
    (tmp_path / MD).write_text((ROOT / MD).read_text())
    write_evals(tmp_path, params, 71.0)
    out = tmp_path / "rec.json"
    args = ["record-protocol", "--params", MD, "--checkout", str(tmp_path), "--name", "fmnist_md", "--command", "c",
            "--wall", "1:00:00", "--machine", "m", "--out", str(out)]
    bad = CliRunner().invoke(main, args + ["--departure", "batch_real 64"])
    assert bad.exit_code != 0 and "KEY=TEXT" in bad.output and not out.exists()
    ok = CliRunner().invoke(main, args + ["--departure", "condense.batch_real=64 (paper 256)"])
    assert ok.exit_code == 0, ok.output
    assert "FashionMNIST IPC 1 MD: 71.00 over 100 networks" in ok.output
    assert read_json(out)["departures_from_paper"] == {"condense.batch_real": "64 (paper 256)"}
