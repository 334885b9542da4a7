"""DSA and DM as names of experiment.methods: config/paper.yaml runs them at their authors' protocol, and the
report shows them against the published tables."""

import copy
from pathlib import Path

import pytest

from dcpipe import paper
from dcpipe.config import condense_config, load_params, train_config, validate_params
from dcpipe.errors import ParamsError
from dcpipe.report.summary import protocol_budget

PAPER = Path(__file__).resolve().parents[1] / "config" / "paper.yaml"


def test_the_paper_file_runs_dm_at_its_papers_defaults():
    cfg = condense_config(load_params(PAPER), 10, "DM")
    assert (cfg.objective, cfg.iterations, cfg.lr_img, cfg.init, cfg.dsa, cfg.batch_real) == (
        "distribution", 20000, 1.0, "real", "auto", 256)


def test_dsa_is_dc_with_augmentation_at_dcs_budget():
    p = load_params(PAPER)
    dsa, dc = condense_config(p, 10, "DSA"), condense_config(p, 10, "DC")
    assert dsa.dsa == "auto" and dc.dsa is None
    assert (dsa.iterations, dsa.loops(), dsa.lr_img, dsa.distance) == (dc.iterations, dc.loops(), dc.lr_img, dc.distance)


def test_dsa_and_dm_sets_train_1000_epochs_with_dsa_augmentation_instead_of_crop_scale_rotate():
    p = load_params(PAPER)
    assert train_config(p, "FashionMNIST", 1, "DSA").dsa == "color_crop_cutout_flip_scale_rotate"
    mnist = train_config(p, "MNIST", 1, "DM")
    assert (mnist.dsa, mnist.augment, mnist.epochs) == ("color_crop_cutout_scale_rotate", False, 1000)
    assert train_config(p, "MNIST", 1, "DC").dsa is None


def test_a_method_iterations_entry_must_name_a_synthetic_method_and_cover_every_ipc():
    p = load_params(PAPER)
    p["condense"]["method_iterations"] = {"herding": {1: 5, 10: 5, 50: 5}, "DM": {1: 5}}
    with pytest.raises(ParamsError) as e:
        validate_params(p)
    assert "condense.method_iterations: unknown name 'herding'" in str(e.value)
    assert "condense.method_iterations.DM: no entry for IPC 10" in str(e.value)


def test_the_reference_columns_are_the_published_tables():
    assert paper.reference("FashionMNIST", 1, "DSA") == (70.6, None)
    assert paper.reference("CIFAR10", 50, "DSA") == (60.6, None)
    assert paper.reference("CIFAR10", 10, "DM") == (48.9, None)
    assert paper.reference("FashionMNIST", 1, "DM") is None  # the DM table has no FashionMNIST column
    assert paper.reference("FashionMNIST", 1, "DC") == (70.5, 0.6)


def test_dm_cells_are_judged_at_k_20000_and_1000_epochs():
    assert protocol_budget("CIFAR10", True, "DM").iterations == 20000
    assert protocol_budget("FashionMNIST", True, "DSA").epochs == 1000
    assert protocol_budget("FashionMNIST", True, "DC").epochs == 300


def test_a_methods_own_K_is_a_param_of_its_own_condense_jobs_only(monkeypatch):
    """Both runners rerun a job whose params changed (and Snakemake deletes its outputs first): DM's K must be a
    param of the DM sets alone, so that changing it keeps the DSA sets."""
    from dcpipe.dvcgen import snakemake_jobs

    root = PAPER.parent.parent
    monkeypatch.chdir(root)
    jobs = snakemake_jobs(root / "Snakefile", "config/protocol_fmnist_successors.yaml")
    condense = {j["wildcards"]["method"]: set(j["dvc_params"]) for j in jobs if j["rule"] == "condense"}
    assert set(condense) == {"DSA", "DM"}
    assert "condense.method_iterations.DM" in condense["DM"]
    assert not any("method_iterations" in k for k in condense["DSA"])
    assert {"condense.iterations", "condense.lr_img", "condense.batch_real", "seed"} <= condense["DSA"] & condense["DM"]
