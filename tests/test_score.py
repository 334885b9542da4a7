"""`dcpipe score`: a distilled set from anywhere is read without running code, checked against the dataset before
any training, and scored the same whatever file format it came in.

NOTE: the prepared "dataset" below is random tensors, acceptable ONLY because these tests check the mechanics
(refusals, checks, format equivalence); no claim about accuracy is made here."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.numpy import save_file

from dcpipe import artifacts
from dcpipe.cli import main
from dcpipe.data import load
from dcpipe.config.checks import score as score_checks
from dcpipe.errors import ArtifactError, ParamsError
from dcpipe.io import write_json, write_npz
from dcpipe.jobs import score_job
from dcpipe.report.collect import Inputs, summarise
from dcpipe.report.sections.score import score_section
from dcpipe.score import checked, stats
from dcpipe.set_files import load_set
from dcpipe.score_config import ZCA_REFUSED
from dcpipe.stages.score import score as score_file

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 3


@pytest.fixture
def prepared(tmp_path) -> Path:
    """A fake prepared dataset: 1x8x8 uint8 noise, 3 classes (unit-test stand-in, NOT a real dataset)."""
    g = np.random.default_rng(0)
    y = np.arange(60) % CLASSES
    x = g.integers(0, 256, size=(60, 1, 8, 8), dtype=np.uint8)
    path = tmp_path / "fake.npz"
    write_npz(path, x_train=x, y_train=y, x_test=x[:30], y_test=y[:30])
    write_json(str(path) + ".json", {"dataset": "fake", "num_classes": CLASSES, "mean": [0.5], "std": [0.25]})
    return path


def tiny_set(seed=1):
    g = np.random.default_rng(seed)
    return g.standard_normal((6, 1, 8, 8)).astype(np.float32), np.repeat(np.arange(CLASSES), 2)


def run_score(*args):
    result = CliRunner().invoke(main, ["score", *map(str, args)])
    return result.exit_code, result.output


class Payload:
    """An object whose unpickling would run a shell command: what a malicious res_*.pt holds."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_holds_code_is_refused_with_one_error_line_and_never_run(tmp_path, prepared):
    marker = tmp_path / "ran"
    bad = tmp_path / "res_DC_fake_ConvNet_2ipc.pt"
    torch.save({"data": [[torch.zeros(6, 1, 8, 8), torch.zeros(6)]], "payload": Payload(marker)}, bad)
    code, out = run_score(bad, "--dataset", "fake", "--params", ROOT / "params.yaml", "--prepared", prepared)
    assert code == 2
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "refused" in lines[0] and str(bad) in lines[0]
    assert not marker.exists()


def test_a_set_of_the_wrong_shape_is_refused_before_any_training(tmp_path, prepared):
    path = tmp_path / "rgb.npz"
    write_npz(path, images=np.zeros((6, 3, 32, 32), np.float32), labels=np.repeat(np.arange(CLASSES), 2))
    code, out = run_score(path, "--dataset", "fake", "--params", ROOT / "params.yaml", "--prepared", prepared)
    assert code == 2
    error = [line for line in out.splitlines() if line.startswith("error:")]
    assert error == [f"error: {path}: float32 images of shape (6, 3, 32, 32) (N, C, H, W); the prepared fake has 1x8x8 images and "
                     f"labels 0..{CLASSES - 1}"]
    assert not Path(str(path) + ".score.json").exists()


def test_labels_classes_and_normalisation_are_checked(prepared):
    d = load(prepared)
    x, y = tiny_set()
    with pytest.raises(ArtifactError, match=r"labels 0\.\.3"):
        checked(x, np.array([0, 1, 2, 3, 0, 1]), d)
    with pytest.raises(ArtifactError, match="no image of class"):
        checked(x, np.zeros(6, np.int64), d)
    with pytest.raises(ArtifactError, match="look unnormalised"):
        checked(np.full_like(x, 0.5), y, d)
    unit, _, _ = checked(np.full_like(x, 0.5), y, d, pixels="unit")  # the dataset's mean/std applied
    assert torch.allclose(unit, torch.zeros_like(unit))


def test_a_set_in_the_res_pt_layout_scores_like_the_same_set_as_npz_and_safetensors(tmp_path, prepared):
    x, y = tiny_set()
    npz, pt, st = tmp_path / "set.npz", tmp_path / "res_DC_fake.pt", tmp_path / "set.safetensors"
    write_npz(npz, images=x, labels=y)
    other = torch.randn(6, 1, 8, 8)  # the authors save one [images, labels] pair per experiment
    torch.save({"data": [[other, torch.as_tensor(y)], [torch.as_tensor(x), torch.as_tensor(y)]],
                "accs_all_exps": {"ConvNet": [0.5]}}, pt)
    save_file({"images": x, "labels": y}, str(st))
    params = {"seed": 0, "runtime": {"threads": 1, "device": "cpu", "log_every": 10}, "data": {"train_subset": None},
              "experiment": {"datasets": ["MNIST"], "ipcs": [1]}, "evaluate": {"lr": 0.01},
              "score": {"model": "ConvNetW32", "models": 2, "epochs": 2}}
    job = score_job(params, "fake")
    results = [score_file(job, p, prepared, tmp_path / f"{p.name}.json") for p in (npz, pt, st)]
    assert results[1]["source"] == "res_*.pt entry 1 of 2"
    assert results[0]["accuracies"] == results[1]["accuracies"] == results[2]["accuracies"]
    assert results[0]["random_accuracies"] == results[1]["random_accuracies"]
    r = results[0]
    assert r["set"]["n"] == 2 and r["set"]["ci95"][0] <= r["set"]["mean"] <= r["set"]["ci95"][1]
    assert r["gap_to_random"] == pytest.approx(r["set"]["mean"] - r["random_real"]["mean"])
    assert r["protocol"]["test_epoch_picking"] is False and r["wall_seconds"] > 0


def test_the_interval_is_a_t_interval_of_the_mean():
    s = stats([0.5, 0.7])  # mean 60 %, sample std 14.14 %, t(0.975, 1) = 12.706
    assert s["mean"] == pytest.approx(60.0) and s["std"] == pytest.approx(10.0)
    assert s["ci95"][1] - 60.0 == pytest.approx(12.706 * 14.142 / 2 ** 0.5, rel=1e-3)
    assert stats([0.5])["ci95"] is None


def test_an_unknown_format_names_the_valid_ones(tmp_path):
    with pytest.raises(Exception, match=r"valid: \.npz, \.safetensors, \.pt, \.pth"):
        load_set(tmp_path / "set.pkl")


def test_the_report_shows_a_scored_file_with_its_interval_and_gap(tmp_path, monkeypatch):
    """A made-up score result (no training) read back by the report's score section."""
    monkeypatch.chdir(tmp_path)
    params = {"seed": 0, "experiment": {"methods": ["DC"]}, "evaluate": {},
              "score": {"files": [{"name": "theirs", "path": "x.pt", "dataset": "FashionMNIST"}]}}
    out = artifacts.SCORE.format(name="theirs")
    write_json(out, {"set": {"mean": 70.0, "std": 1.0, "n": 5, "ci95": [68.8, 71.2]}, "images_per_class": [1] * 10,
                     "random_real": {"mean": 50.0, "std": 2.0, "n": 5, "ci95": None}, "gap_to_random": 20.0,
                     "wall_seconds": 12.0, "protocol": {"model": "ConvNet", "models": 5,
                                                        "train": {"epochs": 300, "dsa": None, "augment": False}}})
    section = score_section(Inputs(params, {"score": [out]}), summarise(pd.DataFrame()))
    assert section.rows == [["theirs", "FashionMNIST", "1", "70.0 ± 1.0", "[68.8, 71.2]", "50.0 ± 2.0", "+20.0", "12"]]
    assert "no epoch picked on the test set" in section.note and section.metrics["theirs"]["gap_to_random"] == 20.0


def trajectory_folder(tmp_path, labels, name="run") -> Path:
    """MTT's/DATM's saved set: FAKE tensors (noise images), saved as their code saves its optimised leaf tensors
    (requires_grad on)."""
    folder = tmp_path / name
    folder.mkdir()
    x, _ = tiny_set()
    torch.save(torch.as_tensor(x).requires_grad_(), folder / "images_best.pt")
    torch.save(labels, folder / "labels_best.pt")
    return folder


def test_mtt_s_folder_of_images_best_and_labels_best_is_read_with_its_class_indices(tmp_path):
    x, y = tiny_set()
    folder = trajectory_folder(tmp_path, torch.as_tensor(y))
    for path in (folder, folder / "images_best.pt"):  # the folder, or its images file
        s = load_set(path)
        assert np.array_equal(s.images, x) and np.array_equal(s.labels, y) and s.soft is None
    assert s.source.startswith("MTT/DATM")


def test_datm_s_soft_label_logits_are_read_as_their_softmax(tmp_path, prepared):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, CLASSES, generator=g) + 4 * torch.eye(CLASSES).repeat(2, 1)  # every class present
    s = load_set(trajectory_folder(tmp_path, logits.requires_grad_()))
    assert np.allclose(s.soft, torch.softmax(logits.detach(), 1).numpy(), atol=1e-6)  # DATM's SoftCrossEntropy
    assert np.array_equal(s.labels, logits.argmax(1).numpy()) and "soft" in s.source
    x, y, soft = checked(s.images, s.labels, load(prepared), soft=s.soft)
    assert soft.shape == (6, CLASSES) and soft.dtype == torch.float32


def test_a_labels_best_of_another_shape_or_a_missing_file_is_named(tmp_path):
    with pytest.raises(ArtifactError, match=r"labels_best.pt: torch.float32 labels of shape \(6,\); expected"):
        load_set(trajectory_folder(tmp_path, torch.zeros(6)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParamsError, match=r"empty/images_best.pt: no such file"):
        load_set(tmp_path / "empty")


def test_a_labels_best_that_holds_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    folder = trajectory_folder(tmp_path, torch.zeros(6, dtype=torch.long))
    torch.save({"labels": torch.zeros(6), "payload": Payload(marker)}, folder / "labels_best.pt")
    with pytest.raises(ArtifactError, match="refused: it holds pickled Python objects"):
        load_set(folder)
    assert not marker.exists()


def test_zca_whitened_sets_are_refused_with_one_line(tmp_path, prepared):
    folder = trajectory_folder(tmp_path, torch.as_tensor(tiny_set()[1]))
    code, out = run_score(folder, "--dataset", "fake", "--params", ROOT / "params.yaml", "--prepared", prepared,
                          "--pixels", "zca")
    assert code == 2
    error = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "ZCA-whitened sets (MTT's and DATM's CIFAR sets) are not supported" in error[0]
    params = {"score": {"files": [{"name": "mtt", "path": str(folder), "dataset": "MNIST", "pixels": "zca"}]}}
    assert [p for p in score_checks(params) if "ZCA" in p] == [
        f"  score.files[0].pixels: zca: {ZCA_REFUSED}"]  # check-params refuses it before any job


def test_soft_labels_must_be_probabilities_of_the_image_s_class(prepared):
    """One row per image, non-negative, summing to 1, its argmax the image's class: the one set check refuses else."""
    d = load(prepared)
    x, y = tiny_set()
    p = np.full((len(y), CLASSES), 0.1 / (CLASSES - 1), np.float32)
    p[np.arange(len(y)), y] = 0.9
    assert checked(x, y, d, soft=p)[2].shape == (len(y), CLASSES)
    for bad, says in ((p * 0.5, "soft-label rows do not sum to 1"), (p * 2, "apply a softmax to logits"),
                      (p - 0.2, "negative or non-finite"), (p[:, :2], "soft labels of shape"),
                      (np.roll(p, 1, axis=1), "not the argmax of their soft-label rows")):
        with pytest.raises(ArtifactError, match=says):
            checked(x, y, d, soft=bad)


def test_a_set_with_soft_labels_scores_the_same_from_datm_s_folder_and_an_npz(tmp_path, prepared):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, CLASSES, generator=g) + 4 * torch.eye(CLASSES).repeat(2, 1)
    folder = trajectory_folder(tmp_path, logits)
    s = load_set(folder)
    npz = tmp_path / "soft.npz"
    write_npz(npz, images=s.images, labels=s.labels, soft_labels=s.soft)
    params = {"seed": 0, "runtime": {"threads": 1, "device": "cpu", "log_every": 10}, "data": {"train_subset": None},
              "experiment": {"datasets": ["MNIST"], "ipcs": [1]}, "evaluate": {"lr": 0.01},
              "score": {"model": "ConvNetW32", "models": 2, "epochs": 2, "random_baseline": False}}
    job = score_job(params, "fake")
    a, b = (score_file(job, p, prepared, tmp_path / f"{p.name}.json") for p in (folder, npz))
    assert a["labels"] == b["labels"] == "soft" and a["accuracies"] == b["accuracies"]


def test_score_replaces_a_score_result_and_with_force_any_other_file(tmp_path, prepared, monkeypatch):
    """An --out that holds a score result is replaced; another existing file only with --force (without it:
    tests/test_bad_inputs.py, score-out-not-a-score-result)."""
    from tests.stage_runs import tiny_params

    monkeypatch.chdir(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params(score={"model": "ConvNetW32", "models": 1, "epochs": 1,
                                                        "random_baseline": False})))
    x, y = tiny_set()
    path, out = tmp_path / "set.npz", tmp_path / "notes.json"
    write_npz(path, images=x, labels=y)
    out.write_text('{"my": "notes"}\n')
    args = (path, "--dataset", "fake", "--params", params, "--prepared", prepared, "--out", out)
    code, output = run_score(*args, "--force")
    assert code == 0, output
    first = json.loads(out.read_text())
    assert first["set"]["n"] == 1
    code, output = run_score(*args)  # now a score result: replaced without --force
    assert code == 0, output
    assert json.loads(out.read_text())["accuracies"] == first["accuracies"]
