"""End to end on a small real slice: Snakemake runs the whole DAG (.test/params.yaml: 50 real training images per
class of FashionMNIST and MNIST, the full test sets), DVC adopts the outputs, and both runners then plan the same
work after a parameter change."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import run

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(smoke_run):
    """The session's smoke run (tests/conftest.py: Snakemake on .test/params.yaml in a copy of the workflow)."""
    return smoke_run


def test_the_run_writes_a_report_with_real_accuracies(workdir):
    main = json.loads((workdir / "reports/tables/main.json").read_text())
    for dataset in ("FashionMNIST", "MNIST"):
        for method in ("DC", "random"):
            cell = main[f"{dataset}_ipc1_{method}"]
            # trained on 10 real or synthetic images, tested on all 10,000: better than chance (10%)
            assert 15 < cell["mean"] <= 100 and cell["n_models"] == 1
            # the DVC metrics file of the cell: the same numbers, rounded, beside the paper's
            m = json.loads((workdir / f"reports/metrics/{dataset}_ipc1_{method}.json").read_text())
            assert m["mean"] == round(cell["mean"], 2) and m["models"] == 1 and m["paper"] > 0
    table1 = json.loads((workdir / "reports/tables/table1.json").read_text())
    for dataset in ("FashionMNIST", "MNIST"):
        assert 15 < table1[f"{dataset}_ipc1_herding"]["mean"] <= 100
        # 2 epochs on the 500-image slice; tested on all 10,000
        assert 15 < table1[f"{dataset}_whole_dataset"]["mean"] <= 100
        whole = json.loads((workdir / f"reports/metrics/{dataset}_whole.json").read_text())
        assert whole["mean"] == round(table1[f"{dataset}_whole_dataset"]["mean"], 2)
    html = (workdir / "reports/index.html").read_text()
    assert "<table" in html and "70.5 ± 0.6" in html  # ours beside the paper's number
    # the smoke budget: amber, on hover in the paper's tables and in its own column of the summary
    assert "What is reproduced" in html and 'class="st-reduced num" title="K = 3, 1 set × 1 model, 5 epochs"' in html
    assert "| reduced budget | K = 3, 1 set × 1 model, 5 epochs |" in (workdir / "reports/index.md").read_text()
    assert (workdir / "reports/plots/model_accuracies.csv").read_text().startswith(
        "dataset,ipc,method,set,model,accuracy")
    for img in re.findall(r'src="(figures/[^"]+)"', html):
        assert (workdir / "reports" / img).stat().st_size > 1000
    assert (workdir / "reports/figures/synthetic_FashionMNIST_ipc1.png").exists()


def test_artifacts_are_complete_and_carry_their_provenance(workdir):
    z = np.load(workdir / "data/synthetic/FashionMNIST/ipc1/DC_set0.npz", allow_pickle=False)
    assert z["images"].shape == (10, 1, 28, 28) and np.isfinite(z["images"]).all()
    assert z["labels"].tolist() == list(range(10))
    meta = json.loads((workdir / "data/synthetic/FashionMNIST/ipc1/DC_set0.npz.json").read_text())
    assert meta["seed"] > 0 and meta["provenance"]["torch"].startswith("2.14")
    assert not list(workdir.glob("data/**/*.ckpt*")), "finished jobs remove their checkpoints"
    assert not list(workdir.glob("data/**/.*.tmp*")), "no temporary files left behind"
    loss = (workdir / "data/synthetic/FashionMNIST/ipc1/DC_set0_loss.csv").read_text().splitlines()
    assert loss[0] == "iteration,matching_loss,net_updates" and len(loss) == 1 + 3


def test_the_continual_stage_reports_four_settings_on_a_growing_test_set(workdir):
    r = json.loads((workdir / "data/continual/run1.json").read_text())
    assert r["tasks"] == ["MNIST", "USPS"] and len(r["settings"]) == 4
    for s in r["settings"]:
        assert [st["test_images"] for st in s["stages"]] == [200, 400]
        assert s["stages"][1]["memory_tasks"] == ["MNIST"] and s["stages"][1]["memory_images"] == 100
    assert r["condensed_sets"][0]["path"] == "data/synthetic/MNIST_RGB32/ipc10/DC_set0.npz"
    metrics = json.loads((workdir / "reports/tables/continual.json").read_text())
    assert set(metrics["settings"]) == {s["name"] for s in r["settings"]}
    assert "Continual learning (DC paper Figure 4)" in (workdir / "reports/index.md").read_text()
    assert (workdir / "reports/figures/continual.png").stat().st_size > 1000


def test_a_study_cell_runs_the_follow_ups_options_and_counts_network_updates(workdir):
    """V-MDA at 2 img/cls, loops [2, 2]: adaptive steps give zeta(0) = 50 updates after the first matching step."""
    meta = json.loads((workdir / "data/synthetic/FashionMNIST/ipc2/V-MDA_set0.npz.json").read_text())
    cfg = meta["config"]
    assert (cfg["level"], cfg["distance"], cfg["inner_steps"]) == ("multilevel", "improved", "adaptive")
    assert meta["net_updates_per_iteration"] == 50 and cfg["iterations"] == 1
    assert "Follow-up Table 3" in (workdir / "reports/index.md").read_text()


def test_the_cross_study_trains_every_network_on_every_set(workdir):
    import pandas as pd

    cross = pd.read_csv(workdir / "reports/cross.csv")
    assert sorted(zip(cross.condense_model, cross.eval_model)) == [("LeNet", "LeNet"), ("LeNet", "MLP"),
                                                                    ("MLP", "LeNet"), ("MLP", "MLP")]
    assert (cross.n_models == 1).all() and cross["mean"].between(0, 100).all()
    assert cross.set_index(["condense_model", "eval_model"]).loc[("LeNet", "LeNet"), "paper_mean"] == 85.0
    r = json.loads((workdir / "data/eval/MNIST/ipc1/X-MLP_set0_on-LeNet.json").read_text())
    assert r["model"] == "LeNet" and r["train_set_meta"]["config"]["lr_img"] == 0.01  # DC appendix A: MLP
    assert (workdir / "reports/figures/cross_crossarch_MNIST_ipc1.png").stat().st_size > 1000


def test_logs_hold_one_line_per_step_not_a_flood(workdir):
    logs = list((workdir / "logs").rglob("*.log"))
    # download (FashionMNIST, MNIST, USPS), prepare (incl. the continual tasks' 32x32 RGB datasets), coreset (random,
    # herding and the KMeans plug-in), whole-set, condense (incl. the V-MDA study cell, the continual DC memory and
    # the 2 cross cells), evaluate, the 2 x 2 cross evaluations, continual runs, report
    assert len(logs) == 3 + 4 + 6 + 2 + (4 + 2) + 9 + 4 + 2 + 1
    for log in logs:
        assert len(log.read_text().splitlines()) < 50, log


def _planned_commands(text: str) -> set[str]:
    return set(re.findall(r"python workflow/scripts/\S+ [^>\n]*", text))


def test_dvc_adopts_snakemake_outputs_and_both_plan_the_same_work(workdir):
    # docs/remotes-and-clusters.md: `dvc commit -f` adopts the outputs; DVC re-links them into the workspace (new
    # mtimes), so `snakemake --touch` then marks them current for Snakemake.
    run(["dvc", "commit", "-f", "-q"], workdir)
    run(["snakemake", "--touch", "--cores", "1"], workdir)
    assert "Running stage" not in run(["dvc", "repro", "--dry"], workdir).stdout
    res = run(["snakemake", "-n"], workdir)
    assert "Nothing to be done" in res.stdout + res.stderr
    shown = run(["dvc", "metrics", "show"], workdir).stdout
    assert "reports/metrics/FashionMNIST_ipc1_DC.json" in shown and "paper_std" in shown
    wide = [line for line in shown.splitlines() if len(line) > 120]
    assert not wide, f"`dvc metrics show` is wider than 120 columns: {wide[0]!r} ({len(wide[0])})"

    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["evaluate"]["models_per_set"] = 2
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    dvc = _planned_commands(run(["dvc", "repro", "--dry"], workdir).stdout)
    smk = _planned_commands(run(["snakemake", "-n", "-p"], workdir).stdout)
    # the nine evaluations (KMeans, the plug-in, included), the 2 x 2 cross evaluations, the report
    assert dvc == smk and len(dvc) == 9 + 4 + 1


def test_the_slurm_profile_parses_with_a_dry_run(workdir):
    res = run(["snakemake", "--profile", str(ROOT / "workflow/profiles/slurm"), "-n"], workdir)
    assert "dry-run" in res.stdout + res.stderr


def test_the_committed_dvc_yaml_is_generated_from_the_snakefile():
    res = run(["dcpipe", "dvc-yaml", "--check"], ROOT, check=False)
    assert res.returncode == 0, res.stderr
