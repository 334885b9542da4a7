"""The coreset baselines' pipeline (DC paper section 3.1, Table 1 and appendix Table T12): the whole-set training
that records forgetting events and gives the features, selection from those artifacts, and optimal random
ranking. Tiny tensors; the stage tests use a FAKE 3-class prepared dataset of random pixels (no real data needed:
they check bookkeeping, not accuracy)."""
import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from dcpipe import artifacts, config, coreset, coreset_names, plan
from dcpipe.coreset import CorrectnessTrace, forgetting_counts, herding_select, penultimate_features, rank_coresets
from dcpipe.io import ArtifactError, read_npz, write_json, write_npz
from dcpipe.methods import CORESETS, MAIN
from dcpipe.models import build_model
from dcpipe.jobs import env, optimal_random_job, select_job, set_job, wholeset_job
from dcpipe.stages.common import load_data
from dcpipe.stages.select_coreset import select_coreset
from dcpipe.stages.wholeset import wholeset
from dcpipe import train
from tests.conftest import ROOT, set_dotted


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))


def _toy(n=13, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 2, 2, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_the_trace_has_one_row_per_epoch_and_each_sample_once_per_row():
    """lr 0: the network never changes, so every presentation's verdict is the fixed network's prediction."""
    x, y = _toy()
    net = _net()
    expected = (net(x).argmax(1) == y)
    trace = CorrectnessTrace(y)
    seen = []
    train.train_model(net, x, y, train.TrainConfig(epochs=3, lr=0.0, batch=5), torch.Generator().manual_seed(1),
                observe=lambda idx, logits: (seen.append(idx.clone()), trace(idx, logits)))
    correct = trace.trace()
    assert correct.shape == (3, 13)
    assert all(torch.equal(row, expected) for row in correct)
    # 13 samples in batches of 5: 3 batches per epoch covering every sample exactly once
    for e in range(3):
        assert sorted(torch.cat(seen[3 * e:3 * e + 3]).tolist()) == list(range(13))


def test_the_trace_records_the_training_time_prediction_of_each_presentation():
    """With training, row e holds what the network predicted for each sample in the mini-batch it was in."""
    x, y = _toy(seed=2)
    net = _net(1)
    logged = {}

    def observe(idx, logits):
        for i, p in zip(idx.tolist(), logits.argmax(1).tolist()):
            logged.setdefault(i, []).append(p == int(y[i]))
        trace(idx, logits)

    trace = CorrectnessTrace(y)
    train.train_model(net, x, y, train.TrainConfig(epochs=4, lr=0.5, batch=4), torch.Generator().manual_seed(3), observe=observe)
    assert trace.trace().T.tolist() == [logged[i] for i in range(13)]


def test_penultimate_features_are_the_input_of_the_last_linear_layer():
    net = build_model("ConvNet", 1, 10, (28, 28)).eval()
    x = torch.randn(5, 1, 28, 28)
    f = penultimate_features(net, x, batch=2)
    assert f.shape == (5, 2048)
    assert torch.allclose(f, net.features(x).flatten(1), atol=1e-5)
    assert torch.allclose(net.classifier(f), net(x), atol=1e-5)


def test_optimal_random_reports_the_mean_of_the_best_fractions():
    """T12: "Top 1000 (all)", "Top 100", "Top 10" of 1000 coresets ranked by their performance."""
    scores = [0.1 * k for k in range(1, 21)]  # 20 coresets: 0.1 .. 2.0
    top = rank_coresets(scores)
    assert [t["n"] for t in top] == [20, 2, 1]
    assert top[0]["mean"] == pytest.approx(np.mean(scores))
    assert top[1]["mean"] == pytest.approx(1.95) and top[1]["std"] == pytest.approx(0.05)
    assert top[2]["mean"] == pytest.approx(2.0) and top[2]["std"] == 0


def test_the_coreset_methods_are_one_list():
    assert tuple(coreset.SELECTORS) == CORESETS
    assert set(CORESETS) <= set(MAIN)
    assert set(coreset_names.EVIDENCE.values()) == set(artifacts.EVIDENCE)


def _params(**edits):
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["data"]["train_subset"] = None
    p["coresets"] = {"whole_epochs": 2, "whole_models": 2}
    p["evaluate"]["augment_datasets"] = []
    for k, v in edits.items():
        set_dotted(p, k, v)
    config.validate_params(p)
    return p


def test_feature_and_forgetting_methods_need_a_whole_set_stage():
    p = _params()
    del p["coresets"]
    with pytest.raises(config.ParamsError, match="coresets"):
        config.validate_params(p)
    with pytest.raises(config.ParamsError, match="at least 2 epochs"):
        _params(**{"coresets.whole_epochs": 1})
    assert plan.wholeset_jobs(_params()) == [dict(dataset=d, model="ConvNet", net=k)
                                             for d in ("FashionMNIST", "MNIST") for k in (0, 1)]
    assert plan.evidence(_params(), "MNIST", "kcenter", 1) == ["data/wholeset/MNIST/ConvNet/net1/features.npz"]
    assert plan.evidence(_params(), "MNIST", "forgetting", 0) == ["data/wholeset/MNIST/ConvNet/net0/forgetting.npz"]
    assert plan.evidence(_params(), "MNIST", "random") == []


def test_coreset_set_k_selects_from_whole_set_network_k_or_all_from_network_0_with_one_network():
    """DC section 3.1: each baseline is run 5 times; the CPU default may train one whole-set network."""
    five = _params(**{"experiment.sets": 5, "coresets.whole_models": 5})
    assert [plan.evidence_network(five, k) for k in range(5)] == [0, 1, 2, 3, 4]
    one = _params(**{"experiment.sets": 5, "coresets.whole_models": 1})
    assert [plan.evidence(one, "MNIST", "herding", k) for k in range(5)] == [["data/wholeset/MNIST/ConvNet/net0/features.npz"]] * 5
    with pytest.raises(config.ParamsError, match="whole_models: 3 networks for 5 sets"):
        _params(**{"experiment.sets": 5, "coresets.whole_models": 3})


@pytest.fixture
def fake_prepared(tmp_path):
    """FAKE data (random pixels, 3 classes of 8 training images, 12 test images), for bookkeeping tests only."""
    rng = np.random.default_rng(0)
    out = tmp_path / "Fake.npz"
    write_npz(out, x_train=rng.integers(0, 256, (24, 1, 28, 28), dtype=np.uint8), y_train=np.repeat(np.arange(3), 8),
              x_test=rng.integers(0, 256, (12, 1, 28, 28), dtype=np.uint8), y_test=np.repeat(np.arange(3), 4))
    write_json(str(out) + ".json", {"dataset": "Fake", "num_classes": 3, "mean": [0.5], "std": [0.25]})
    return out


def test_the_wholeset_stage_saves_the_model_its_features_its_forgetting_trace_and_the_bound(tmp_path, fake_prepared):
    p = _params(**{"evaluate.batch": 10})
    out = {k: tmp_path / name for k, name in (("w", "model.safetensors"), ("f", "features.npz"),
                                               ("c", "forgetting.npz"), ("r", "result.json"))}
    wholeset(wholeset_job(p, "Fake", "ConvNet", 0), fake_prepared, out["w"], out["f"], out["c"], out["r"])
    result = json.loads(out["r"].read_text())
    assert result["net"] == 0 and result["train_config"]["epochs"] == 2
    forgetting = read_npz(out["c"])
    assert forgetting["correct"].shape == (2, 24)  # epochs x training images
    assert np.array_equal(forgetting["counts"], forgetting_counts(torch.as_tensor(forgetting["correct"])).numpy())
    assert result["train_accuracy_per_epoch"] == pytest.approx(forgetting["correct"].mean(1).tolist())
    # the saved weights are this network's: they reproduce its test accuracy and the saved features
    net = build_model("ConvNet", 1, 3, (28, 28))
    net.load_state_dict(load_file(out["w"]))
    data = load_data(env(p), fake_prepared, "cpu")
    assert train.test_accuracy(net, data.x_test, data.y_test) == pytest.approx(result["accuracy"], abs=1 / 12 + 1e-9)
    features = read_npz(out["f"])["features"]
    assert features.shape == (24, 2048) and features.dtype == np.float16
    assert np.allclose(features, penultimate_features(net, data.x_train).numpy(), rtol=0.05, atol=0.05)


def test_the_sets_of_a_coreset_method_differ_and_each_comes_from_its_own_networks_evidence(tmp_path, fake_prepared):
    """Three whole-set networks (their own initialisation and shuffling), three sets per method: set k of
    herding / k-center is the selection in network k's features, set k of forgetting in network k's counts."""
    p = _params(**{"evaluate.batch": 10, "experiment.sets": 3, "coresets.whole_models": 3})
    for k in range(3):
        job = dict(dataset="Fake", model="ConvNet", net=k)
        paths = [tmp_path / t.format(**job) for t in (artifacts.WHOLESET_MODEL, artifacts.WHOLESET_FEATURES,
                                                      artifacts.WHOLESET_FORGETTING, artifacts.WHOLESET_RESULT)]
        wholeset(wholeset_job(p, "Fake", "ConvNet", k), fake_prepared, *paths)
    data = load_data(env(p), fake_prepared, "cpu")
    features = [read_npz(tmp_path / artifacts.WHOLESET_FEATURES.format(dataset="Fake", model="ConvNet", net=k))["features"]
                for k in range(3)]
    assert not np.array_equal(features[0], features[1]) and not np.array_equal(features[1], features[2])
    for method in ("herding", "kcenter", "forgetting"):
        sets = []
        for k in range(3):
            evidence = tmp_path / plan.evidence(p, "Fake", method, k)[0]
            assert f"net{k}" in evidence.parts
            out = tmp_path / f"{method}{k}.npz"
            select_coreset(select_job(p, "Fake", 2, method, k, str(evidence)), fake_prepared, out)
            sets.append(read_npz(out)["indices"].tolist())
            kind = coreset_names.EVIDENCE[method]
            expected = coreset.SELECTORS[method](data.y_train, 2, 3, json.loads((tmp_path / f"{method}{k}.npz.json")
                                                 .read_text())["seed"], **{kind: torch.as_tensor(read_npz(evidence)[kind])})
            assert sets[-1] == expected.tolist()
        if method != "forgetting":  # forgetting breaks ties by the set's seed; features have no ties to break
            assert len({tuple(s) for s in sets}) == 3, f"{method}: the 3 sets are not distinct: {sets}"
        else:
            assert len({tuple(s) for s in sets}) > 1


def test_selection_reads_the_whole_set_evidence_and_checks_it_fits(tmp_path, fake_prepared):
    p = _params()
    data = load_data(env(p), fake_prepared, "cpu")
    feats = torch.randn(24, 6, generator=torch.Generator().manual_seed(0))
    write_npz(tmp_path / "features.npz", features=feats.numpy())
    select_coreset(select_job(p, "Fake", 2, "herding", 0, str(tmp_path / "features.npz")), fake_prepared, tmp_path / "h.npz")
    z = read_npz(tmp_path / "h.npz")
    assert z["indices"].tolist() == herding_select(data.y_train, 2, 3, 0, features=feats).tolist()
    assert z["labels"].tolist() == [0, 0, 1, 1, 2, 2]
    assert json.loads((tmp_path / "h.npz.json").read_text())["deterministic_given_evidence"] is True
    write_npz(tmp_path / "short.npz", features=feats[:10].numpy())
    with pytest.raises(ArtifactError, match="10 samples"):
        select_coreset(select_job(p, "Fake", 2, "kcenter", 0, str(tmp_path / "short.npz")), fake_prepared, tmp_path / "k.npz")


def test_optimal_random_ranks_its_coresets_and_resumes_from_the_scores_of_finished_ones(tmp_path, fake_prepared):
    from dcpipe.io import resumable
    from dcpipe.stages.optimal_random import optimal_random

    p = _params(**{"evaluate.batch": 10, "evaluate.epochs": {"1": 2, "10": 2}})
    p["coresets"]["optimal_random"] = {"coresets": 3}
    full = tmp_path / "full.json"
    optimal_random(optimal_random_job(p, "Fake", 1), fake_prepared, full)
    ref = json.loads(full.read_text())
    assert len(ref["scores"]) == 3 and ref["best"]["score"] == max(ref["scores"])
    # a killed job that finished coreset 0 only, with a poisoned score to prove it is reused, not recomputed
    resumed = tmp_path / "resumed.json"
    resumable(resumed, {"seed": ref["seed"], "model": ref["model"], "train_config": ref["train_config"],
                        "models": 1, "n_train_images": 24}).save([0.123])
    optimal_random(optimal_random_job(p, "Fake", 1), fake_prepared, resumed)
    assert json.loads(resumed.read_text())["scores"] == [0.123] + ref["scores"][1:]
    assert not (tmp_path / "resumed.json.partial.json").exists()
