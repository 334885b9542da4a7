"""Cross studies (DC Table 2, appendix T6-T10): condense with each network C, train each network T on every set.

The plan is exactly C x T per set, each set evaluated on each T once; bad names fail early; the report's tables
and heat map work on a result table (a FAKE one here, made up for the test)."""
import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dcpipe import artifacts, paper, plan
from dcpipe.config import ParamsError, condense_config, load_params, models_per_set, train_config
from dcpipe.methods import parse
from dcpipe.model_names import is_model_name
from dcpipe.plan import check_job
from dcpipe.report_files import section_keys
from dcpipe.report.sections import cross as report_cross

ROOT = Path(__file__).resolve().parents[1]
C = ["MLP", "ConvNet", "VGG11BN"]
T = ["MLP", "LeNet"]


def params_with_cross(tmp_path, sets=2, **study):
    doc = yaml.safe_load((ROOT / "params.yaml").read_text())
    doc["experiment"]["sets"] = sets
    doc["studies"] = {"crossarch": {"datasets": ["MNIST"], "ipcs": [1], "models": C, "eval_models": T,
                                    "iterations": {1: 2}, "models_per_set": 3, "epochs": {1: 7}, **study}}
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(doc))
    return load_params(f)


def test_the_cross_plan_is_every_condensation_network_times_every_evaluation_network(tmp_path):
    p = params_with_cross(tmp_path)
    cells = plan.cross_cells(p)
    assert [c["method"] for c in cells] == ["X-MLP", "X-ConvNet", "X-VGG11BN"]
    jobs = plan.cross_plan(p)
    keys = [(j["dataset"], j["ipc"], j["method"], j["set"], j["model"]) for j in jobs]
    assert len(keys) == len(set(keys)) == len(C) * len(T) * 2  # each set on each evaluation network once
    for s in range(2):
        assert {(j["condense_model"], j["model"]) for j in jobs if j["set"] == s} == {(c, t) for c in C for t in T}
    files = {artifacts.EVAL_ON.format(**j) for j in jobs}
    assert len(files) == len(jobs) and "data/eval/MNIST/ipc1/X-VGG11BN_set1_on-LeNet.json" in files
    # the main experiment's evaluations (one file per set, EVAL) are untouched by a cross study
    assert not [j for j in plan.plan(p) if j["method"].startswith("X-")]
    assert plan.plan(p) == plan.plan({**p, "studies": {}})


def test_a_cross_cell_condenses_with_its_network_on_its_own_budget(tmp_path):
    p = params_with_cross(tmp_path)
    mlp, vgg = condense_config(p, 1, "X-MLP"), condense_config(p, 1, "X-VGG11BN")
    assert (mlp.model, mlp.lr_img, mlp.iterations) == ("MLP", 0.01, 2)  # DC appendix A: image lr 0.01 for MLP
    assert (vgg.model, vgg.lr_img, vgg.level, vgg.distance) == ("VGG11BN", 0.1, "intra", "ours")
    assert models_per_set(p, "X-MLP") == 3 and models_per_set(p, "DC") == p["evaluate"]["models_per_set"]
    assert train_config(p, "MNIST", 1, "X-MLP").epochs == 7 and train_config(p, "MNIST", 1, "X-MLP").augment
    assert train_config(p, "MNIST", 1, "DC").epochs == p["evaluate"]["epochs_augmented"]["1"]
    # the ablations reuse the same mechanism with their own prefixes (T8: BatchNorm on both sides)
    assert parse("XN-ConvNetBN").settings["model"] == "ConvNetBN" and parse("XW-ConvNetW32").settings["model"] == "ConvNetW32"


def test_a_stage_run_by_hand_must_be_a_planned_cross_job(tmp_path):
    p = params_with_cross(tmp_path)
    check_job(p, "p", dataset="MNIST", ipc=1, method="X-MLP", model="LeNet")
    with pytest.raises(ParamsError, match=r"--model 'AlexNet': not an evaluation model of X-MLP \(planned: LeNet, MLP\)"):
        check_job(p, "p", dataset="MNIST", ipc=1, method="X-MLP", model="AlexNet")
    with pytest.raises(ParamsError, match="not planned for MNIST"):
        check_job(p, "p", dataset="MNIST", ipc=1, method="X-LeNet")


@pytest.mark.parametrize("key,bad", [("models", "VGG13"), ("eval_models", "ResNet50")])
def test_bad_network_names_list_the_valid_ones(tmp_path, key, bad):
    with pytest.raises(ParamsError) as e:
        params_with_cross(tmp_path, **{key: ["MLP", bad]})
    assert f"studies.crossarch.{key}[1]: unknown name {bad!r}; valid: ConvNet," in str(e.value)
    assert "ResNet18BN_AP" in str(e.value)


def test_the_papers_cross_tables_are_complete_and_share_the_default_convnet_cell():
    t2 = paper.CROSS["crossarch"]
    assert len(t2) == 6 and all(len(row) == 6 for row in t2.values())
    assert t2["MLP"]["AlexNet"] == (70.9, 11.6) and t2["ResNet18BN_AP"]["ConvNet"] == (91.6, 0.5)
    # the default ConvNet (128 wide, 3 deep, instance norm, ReLU, average pooling) learned and tested: 91.7 +- 0.5
    for study, default in [("crossarch", "ConvNet"), ("activation", "ConvNetAR"), ("pooling", "ConvNetAP"),
                           ("normalization", "ConvNetIN"), ("depth", "ConvNetD3"), ("width", "ConvNetW128")]:
        assert paper.cross(study, "MNIST", 1, default, default) == (91.7, 0.5)
        assert all(is_model_name(c) and all(is_model_name(t) for t in row) for c, row in paper.CROSS[study].items())
    assert paper.cross("crossarch", "FashionMNIST", 1, "ConvNet", "ConvNet") is None  # the paper has MNIST only


def test_the_report_shows_the_matrix_beside_the_papers_on_a_fake_result_table(tmp_path):
    """FAKE accuracies, made up for this test: the report code only, no training."""
    p = params_with_cross(tmp_path, sets=1)
    fake = pd.DataFrame([{"study": "crossarch", "dataset": "MNIST", "ipc": 1, "condense_model": c, "eval_model": t,
                          "set": 0, "model": k, "accuracy": 50.0 + 10 * i + j + 2 * k, "epochs": 7, "iterations": 2,
                          "wall_seconds": 1.0}
                         for i, c in enumerate(C) for j, t in enumerate(T) for k in range(2)])
    summary = report_cross.summarise_cross(fake)
    assert len(summary) == len(C) * len(T)
    row = summary[(summary.condense_model == "ConvNet") & (summary.eval_model == "LeNet")].iloc[0]
    assert (row["mean"], row["std"], row["n_models"]) == (62.0, 1.0, 2)  # 61 and 63: population std (the papers')
    assert (row["paper_mean"], row["paper_std"]) == (85.3, 1.8)
    [table] = report_cross.cross_sections(summary, p)
    assert "Table 2" in table.title and table.header == ["C \\ T"] + T
    assert table.rows[1] == ["ConvNet", "61.0 ± 1.0 / 69.6 ± 1.6", "62.0 ± 1.0 / 85.3 ± 1.8"]
    assert "Budget of every cell: K = 2, 1 set × 2 models, 7 epochs" in table.note  # the cells' own budget
    assert all(c.status.startswith("reduced budget") for c in table.comparisons)
    [table] = report_cross.cross_sections(summary, p, {("crossarch", "MNIST", 1, c): 2.5 for c in C})
    assert table.header[-1] == "C: s / iteration" and table.rows[0][-1] == "2.5"  # each C's condensation cost
    [table] = report_cross.cross_sections(summary, p, fig_dir=tmp_path)
    [png] = table.figures
    assert png.name == "cross_crossarch_MNIST_ipc1.png" and png.read_bytes()[:4] == b"\x89PNG"
    assert report_cross.summarise_cross(fake.iloc[:0]).columns.tolist() == report_cross.CROSS_COLUMNS  # empty
    assert [k for k in section_keys(p) if "crossarch" in k] == ["cross_crossarch_MNIST_ipc1"]  # shown once


def test_both_runners_get_one_evaluation_job_per_set_and_network(tmp_path, monkeypatch):
    """The Snakemake DAG (and so the generated dvc.yaml) holds the cross jobs, with the study's budget as params."""
    from dcpipe.dvcgen import snakemake_jobs

    from tests.stage_runs import SMOKE

    doc = copy.deepcopy(SMOKE)  # its plug-in's folder made absolute: the file is written elsewhere
    doc["studies"] = {"pooling": {"datasets": ["MNIST"], "ipcs": [1], "models": ["ConvNetNP", "ConvNetAP"],
                                  "eval_models": ["ConvNetMP", "ConvNetAP"], "iterations": {1: 1}}}
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(doc))
    monkeypatch.chdir(ROOT)
    jobs = snakemake_jobs(ROOT / "Snakefile", str(f))
    evals = [j for j in jobs if j["rule"] == "evaluate_cross"]
    assert sorted((j["wildcards"]["method"], j["wildcards"]["model"]) for j in evals) == [
        ("XP-ConvNetAP", "ConvNetAP"), ("XP-ConvNetAP", "ConvNetMP"), ("XP-ConvNetNP", "ConvNetAP"),
        ("XP-ConvNetNP", "ConvNetMP")]
    assert all("studies.pooling" in j["dvc_params"] and "--model" in j["cmd"] for j in evals)
    condense = {j["wildcards"]["method"]: j for j in jobs if j["rule"] == "condense"}
    assert {"XP-ConvNetNP", "XP-ConvNetAP"} <= set(condense) and "studies.pooling" in condense["XP-ConvNetNP"]["dvc_params"]
    [rep] = [j for j in jobs if j["rule"] == "report"]
    assert {artifacts.EVAL_ON.format(**j) for j in plan.cross_plan(load_params(f))} <= set(rep["input"])
