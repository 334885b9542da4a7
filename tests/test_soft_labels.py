"""Soft labels: training takes class probabilities as targets (the soft-target cross-entropy), leaves hard-label
training exactly as it was, and the evaluate stage scores a soft-label set on its soft labels beside the same
models trained on its argmax labels.

NOTE: every tensor and the prepared "dataset" here are FAKE (random noise): these tests check the arithmetic and the
bookkeeping, not learning; no claim about accuracy is made."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dcpipe.io import read_json, write_json, write_npz
from dcpipe.jobs import Env, EvaluateJob, SetJob
from dcpipe.train import TrainConfig, train_models, train_models_batched, trained_model, training_targets

CLASSES = 3
DSA = "color_crop_cutout_flip_scale_rotate"


def fake(n=24, n_test=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, x_test = torch.randn(n, 1, 8, 8, generator=g), torch.randn(n_test, 1, 8, 8, generator=g)
    return x, torch.arange(CLASSES).repeat(n // CLASSES), x_test, torch.arange(CLASSES).repeat(n_test // CLASSES)


def test_the_soft_target_cross_entropy_of_a_row_is_minus_the_sum_of_p_log_softmax():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, CLASSES, generator=g)
    p = torch.softmax(torch.randn(4, CLASSES, generator=g), 1)
    by_hand = -(p * torch.log_softmax(logits, 1)).sum(1)
    assert torch.allclose(F.cross_entropy(logits, p, reduction="none"), by_hand, atol=1e-6)
    assert torch.allclose(F.cross_entropy(logits, p), by_hand.mean(), atol=1e-6)  # what a training step takes


def test_hard_label_training_is_unchanged():
    """The hard-label path trains on the label tensor itself, and gives what it gave before soft labels existed
    (these accuracies were computed by train.py as it was before, commit 367773c)."""
    x, y, xt, yt = fake()
    assert training_targets(y, None, CLASSES) is y
    cfg = TrainConfig(epochs=4, batch=10, augment=True)
    before = [0.36666666666666664, 0.3333333333333333, 0.43333333333333335]
    assert train_models("ConvNetD1", 3, x, y, xt, yt, CLASSES, cfg, seed=11) == before
    assert train_models_batched("ConvNetD1", 3, x, y, xt, yt, CLASSES, cfg, seed=11) == pytest.approx(before, abs=1e-9)


@pytest.mark.parametrize("cfg", [TrainConfig(epochs=4, batch=10), TrainConfig(epochs=4, batch=10, augment=True),
                                 TrainConfig(epochs=2, batch=10, dsa=DSA)], ids=["plain", "augment", "dsa"])
def test_with_one_hot_soft_labels_training_equals_hard_label_training(cfg):
    """Same seed, same shuffles and augmentations: the same networks, one by one and as a batch of models."""
    x, y, xt, yt = fake()
    one_hot = F.one_hot(y, CLASSES).float()
    hard = train_models("ConvNetD1", 2, x, y, xt, yt, CLASSES, cfg, seed=3)
    assert train_models("ConvNetD1", 2, x, y, xt, yt, CLASSES, cfg, seed=3, soft=one_hot) == hard
    assert train_models_batched("ConvNetD1", 2, x, y, xt, yt, CLASSES, cfg, seed=3, soft=one_hot) == \
        pytest.approx(hard, abs=1e-9)
    a, b = (trained_model("ConvNetD1", 0, x, targets, CLASSES, cfg, 3) for targets in (y, one_hot))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_soft_labels_are_what_the_networks_train_on():
    x, y, _, _ = fake()
    cfg = TrainConfig(epochs=2, batch=10)
    uniform = torch.full((len(y), CLASSES), 1 / CLASSES)
    a, b = (trained_model("ConvNetD1", 0, x, targets, CLASSES, cfg, 3) for targets in (y, uniform))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match=r"expected float \(24, 3\)"):
        train_models("ConvNetD1", 1, x, y, x, y, CLASSES, cfg, seed=0, soft=uniform[:, :2])


@pytest.fixture
def soft_set(tmp_path):
    """A FAKE prepared dataset (1x8x8 uint8 noise, 3 classes) and a FAKE 6-image set with soft labels, and the
    same set without them."""
    rng = np.random.default_rng(0)
    prepared = tmp_path / "Fake.npz"
    write_npz(prepared, x_train=rng.integers(0, 256, (30, 1, 8, 8), dtype=np.uint8), y_train=np.arange(30) % 3,
              x_test=rng.integers(0, 256, (30, 1, 8, 8), dtype=np.uint8), y_test=np.arange(30) % 3)
    write_json(str(prepared) + ".json", {"dataset": "Fake", "num_classes": CLASSES, "mean": [0.5], "std": [0.25]})
    images = rng.standard_normal((6, 1, 8, 8)).astype(np.float32)
    soft = rng.dirichlet(np.ones(CLASSES), 6).astype(np.float32)
    soft[np.arange(6), np.arange(6) % 3] += 1  # every class has an image
    soft /= soft.sum(1, keepdims=True)
    sets = {"soft": tmp_path / "soft_set0.npz", "hard": tmp_path / "hard_set0.npz"}
    write_npz(sets["soft"], images=images, labels=soft.argmax(1), soft_labels=soft)
    write_npz(sets["hard"], images=images, labels=soft.argmax(1))
    for path in sets.values():
        write_json(str(path) + ".json", {"method": "fake"})
    return prepared, sets


def job(batched="off"):
    return EvaluateJob(SetJob(Env("cpu", 10, None), "Fake", 2, "fake", 0, seed=0), TrainConfig(epochs=2, batch=4),
                       models=2, model="ConvNetD1", seed=5, batched=batched)


def test_a_soft_label_set_is_scored_on_its_soft_labels_beside_its_argmax_labels(tmp_path, soft_set):
    from dcpipe.stages.evaluate import evaluate

    prepared, sets = soft_set
    evaluate(job(), prepared, sets["soft"], tmp_path / "soft.json")
    evaluate(job(), prepared, sets["hard"], tmp_path / "hard.json")
    soft, hard = read_json(tmp_path / "soft.json"), read_json(tmp_path / "hard.json")
    assert soft["labels"] == "soft" and hard["labels"] == "hard" and "hard_label" not in hard
    assert len(soft["accuracies"]) == 2 and soft["mean"] == pytest.approx(np.mean(soft["accuracies"]))
    # the hard-label models are the ordinary evaluation's: same seeds, same labels
    assert soft["hard_label"]["accuracies"] == hard["accuracies"]
    assert soft["hard_label"]["mean"] == hard["mean"] and soft["hard_label"]["std"] == hard["std"]
    # the batched evaluation (a stack of models) gives the same numbers
    evaluate(job("on"), prepared, sets["soft"], tmp_path / "batched.json")
    batched = read_json(tmp_path / "batched.json")
    assert batched["accuracies"] == pytest.approx(soft["accuracies"], abs=1e-9)
    assert batched["hard_label"]["accuracies"] == pytest.approx(soft["hard_label"]["accuracies"], abs=1e-9)


def test_a_soft_label_evaluation_resumes_after_its_finished_models(tmp_path, soft_set):
    """Killed after the soft-label models and one hard-label model (a poisoned value, to prove it is reused)."""
    from dcpipe.stages.evaluate import evaluate

    prepared, sets = soft_set
    evaluate(job(), prepared, sets["soft"], tmp_path / "full.json")
    ref = read_json(tmp_path / "full.json")
    fingerprint = {"seed": ref["seed"], "model": ref["model"], "train_config": ref["train_config"],
                   "n_train_images": ref["n_train_images"], "labels": "soft"}
    resumed = tmp_path / "resumed.json"
    write_json(str(resumed) + ".partial.json", {"fingerprint": fingerprint, "done": ref["accuracies"] + [0.123]})
    evaluate(job(), prepared, sets["soft"], resumed)
    got = read_json(resumed)
    assert got["accuracies"] == ref["accuracies"]
    assert got["hard_label"]["accuracies"] == [0.123] + ref["hard_label"]["accuracies"][1:]
    assert not (tmp_path / "resumed.json.partial.json").exists()


def test_soft_labels_that_are_not_probabilities_are_refused_before_any_training(tmp_path, soft_set):
    from dcpipe.errors import ArtifactError
    from dcpipe.stages.evaluate import evaluate

    prepared, sets = soft_set
    z = dict(np.load(sets["soft"]))
    bad = tmp_path / "logits_set0.npz"
    write_npz(bad, images=z["images"], labels=z["labels"], soft_labels=np.log(z["soft_labels"]))
    with pytest.raises(ArtifactError, match="must be a distribution over the classes"):
        evaluate(job(), prepared, bad, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()
