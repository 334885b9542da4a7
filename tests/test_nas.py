"""Neural architecture search with proxy sets (DC paper section 3.2, appendix A): the search space, the
stratified CPU sample, the shards, the rank correlation and the held-out validation split."""
import itertools
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
import yaml

from dcpipe import config, nas, nas_space, plan
from dcpipe.config import ParamsError, validate_params
from dcpipe.models import build_model
from dcpipe.train import TrainConfig, schedule

ROOT = Path(__file__).resolve().parents[1]


def test_the_space_is_the_papers_720_convnets_W_D_N_A_P():
    assert len(nas_space.SPACE) == 720 == 4 * 4 * 5 * 3 * 3
    assert len(set(nas_space.SPACE)) == 720 and len({a.name for a in nas_space.SPACE}) == 720
    assert set(nas_space.WIDTHS) == {32, 64, 128, 256} and set(nas_space.DEPTHS) == {1, 2, 3, 4}
    assert set(nas_space.FACTORS["norm"]) == {"none", "batch", "layer", "instance", "group"}
    assert set(nas_space.FACTORS["act"]) == {"sigmoid", "relu", "leakyrelu"}
    assert set(nas_space.FACTORS["pool"]) == {"none", "max", "avg"}
    assert {(a.width, a.depth, a.norm, a.act, a.pool) for a in nas_space.SPACE} == set(itertools.product(*nas_space.FACTORS.values()))


def test_every_architecture_builds_and_classifies_1_and_3_channel_images():
    """All 720, incl. depth 4 without pooling, on 28x28 grey (padded to 32 inside) and 32x32 colour inputs: each
    network is built and a 2-image batch propagated on the meta device, giving one logit per class (shapes only:
    measured 11 s for all 1,440 on this 2-core CPU, against 19 s for real 2-image forwards; the next test runs
    real ones on a sample)."""
    with torch.device("meta"):
        for arch in nas_space.SPACE:
            for channels, size in ((1, (28, 28)), (3, (32, 32))):
                net = build_model(arch.name, channels, 10, size)
                assert net(torch.empty(2, channels, *size)).shape == (2, 10), (arch.name, channels)
                side = 32 // 2 ** arch.depth if arch.pool != "none" else 32
                assert net.classifier.in_features == arch.width * side * side


@torch.inference_mode()
def test_a_stratified_sample_of_architectures_computes_finite_logits_for_real():
    for i in nas_space.stratified_sample(30, 0):
        for channels, size in ((1, (28, 28)), (3, (32, 32))):
            net = build_model(nas_space.SPACE[i].name, channels, 10, size).eval()
            assert torch.isfinite(net(torch.randn(2, channels, *size))).all()


def test_spearman_equals_scipy_on_known_rankings():
    cases = [([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), ([0.3, 0.1, 0.2], [0.3, 0.1, 0.2]), ([1, 2, 3], [3, 2, 1]),
             ([0.5, 0.5, 0.7, 0.1, 0.9, 0.5], [0.2, 0.4, 0.4, 0.1, 0.3, 0.0])]  # ties share the average rank
    rng = np.random.default_rng(0)
    cases += [(rng.random(10), rng.random(10)) for _ in range(20)]
    cases += [(rng.integers(0, 4, 10), rng.integers(0, 4, 10)) for _ in range(20)]  # many ties
    for a, b in cases:
        assert nas.spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)
    assert nas.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(nas.spearman([1, 1, 1], [1, 2, 3]))  # no ranking to correlate


def test_top_k_is_the_k_highest_proxy_scores_best_first():
    scores = {7: 0.30, 3: 0.50, 9: 0.50, 1: 0.10, 4: 0.40}
    assert nas.top(scores, 3) == [3, 9, 4]  # tie at 0.50: lower space index first
    assert nas.top(scores, 10) == [3, 9, 4, 7, 1]


def _balanced(sample, factors):
    for f, levels in factors.items():
        counts = Counter(getattr(nas_space.SPACE[i], f) for i in sample)
        full = [counts.get(v, 0) for v in levels]
        assert max(full) - min(full) <= 1, (f, counts)


@pytest.mark.parametrize("n,widths", [(16, (32, 64)), (24, nas_space.WIDTHS), (60, nas_space.WIDTHS), (359, nas_space.WIDTHS),
                                      (700, nas_space.WIDTHS), (360, (32, 64))])
def test_the_stratified_sample_is_distinct_balanced_in_every_factor_and_seeded(n, widths):
    factors = nas_space.subspace(widths)
    s = nas_space.stratified_sample(n, 5, factors)
    assert len(s) == len(set(s)) == n and s == sorted(s)
    assert {nas_space.SPACE[i].width for i in s} <= set(widths)
    _balanced(s, factors)
    assert s == nas_space.stratified_sample(n, 5, factors) != nas_space.stratified_sample(n, 6, factors) or n == 360


@pytest.mark.parametrize("n,shards", [(720, 24), (720, 1), (16, 4), (17, 4), (5, 5)])
def test_shards_cover_the_candidates_exactly_once(n, shards):
    cands = nas_space.stratified_sample(n, 0)
    parts = [nas_space.shard(cands, k, shards) for k in range(shards)]
    flat = [i for p in parts for i in p]
    assert sorted(flat) == cands and len(flat) == len(set(flat))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1 and all(parts)


def test_the_parameter_files_searches_the_stated_candidates():
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    validate_params(paper)
    assert plan.nas_candidates(paper) == list(range(720))
    assert paper["nas"]["epochs"] == 100 and paper["nas"]["repeats"] == 5 and paper["nas"]["validation"] == 5000
    default = yaml.safe_load((ROOT / "params.yaml").read_text())
    validate_params(default)
    cands = plan.nas_candidates(default)
    assert len(cands) == default["nas"]["architectures"]
    _balanced(cands, nas_space.subspace(default["nas"]["widths"]))
    parts = [nas_space.shard(cands, k, default["nas"]["shards"]) for k in range(default["nas"]["shards"])]
    assert sorted(i for p in parts for i in p) == cands


@pytest.mark.parametrize("key,value,message", [("proxies", ["random", "herdin"], "unknown name 'herdin'"),
                                                ("widths", [32, 48], "not in the search space"),
                                                ("architectures", 400, "more than the 360"),
                                                ("shards", 17, "leave some empty")])
def test_a_bad_nas_section_fails_before_any_job_naming_what_is_valid(key, value, message):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["nas"][key] = value
    with pytest.raises(ParamsError, match=message):
        validate_params(params)


def test_early_stopping_trains_the_whole_set_for_as_many_steps_as_a_proxy():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["nas"]["epochs"] = 30
    proxy = config.nas_train_config(params, "DC", 100)
    es = config.nas_train_config(params, nas_space.EARLY_STOPPING, 100)
    assert schedule(proxy, 100)[2] == 30  # 100 images, batch 256: one step per epoch
    assert schedule(es, 3600) == (2, 15, 30)  # 2 epochs of 15 steps started, stopped after 30, lr drop at 15


def test_a_step_budget_stops_training_after_that_many_updates():
    net = torch.nn.Linear(4, 2)
    calls = []
    net.register_forward_hook(lambda *a: calls.append(1))
    from dcpipe.train import train_model

    x, y = torch.randn(50, 4), torch.arange(2).repeat(25)
    train_model(net, x, y, TrainConfig(epochs=99, batch=8, steps=10), torch.Generator().manual_seed(0))
    assert len(calls) == 10


def test_the_search_split_holds_the_validation_images_out_of_the_training_split(tmp_path):
    """Fake uint8 images (unit test): every training image lands in exactly one of the two splits."""
    from dcpipe.io import read_json, read_npz, write_json, write_npz

    x = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1).repeat(4, 2).repeat(4, 3)
    y = np.arange(40) % 4
    write_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:5], y_test=y[:5])
    write_json(tmp_path / "d.npz.json", {"dataset": "d", "num_classes": 4, "mean": [0.5], "std": [0.5]})
    meta = nas.make_search_split(tmp_path / "d.npz", tmp_path / "d_nas.npz", 10, seed=3)
    z = read_npz(tmp_path / "d_nas.npz")
    train, val = set(z["x_train"][:, 0, 0, 0]), set(z["x_val"][:, 0, 0, 0])
    assert len(val) == 10 and len(train) == 30 and not train & val and train | val == set(range(40))
    assert meta["n_train"] == 30 and read_json(tmp_path / "d_nas.npz.json")["dataset"] == "d_nas"
    assert (z["x_test"] == x[:5]).all()


def test_table4_ranks_by_proxy_correlates_each_proxys_top_k_and_marks_estimates(tmp_path, monkeypatch):
    """Fake search results (unit test): early stopping ranks as the ground truth does, random in reverse."""
    from dcpipe import artifacts
    from dcpipe.io import write_json
    from dcpipe.report.collect import Inputs
    from dcpipe.report.sections.nas import table4

    monkeypatch.chdir(tmp_path)
    params = {"seed": 0, "evaluate": {"batch": 256}, "experiment": {"datasets": ["MNIST"], "ipcs": [1]},
              "nas": {"dataset": "D", "validation": 1, "ipc": 1, "architectures": 2, "batched": False, "proxies": ["random", "early_stopping"], "shards": 2, "ground_truth_shards": 1,
                      "top": 2, "repeats": 1, "whole_repeats": 1, "best_repeats": 2, "whole_epochs": 2, "epochs": 5,
                      "batched": False, "ipc": 10}}
    idx = [0, 1, 2, 3, 4]
    truth = {i: 0.5 + 0.05 * i for i in idx}  # architecture 4 is the best
    rows = [{"index": i, "proxies": {
        "random": {"val_mean": 0.3 - 0.01 * i, "train_seconds": 1.0, "val_seconds": 0.5, "images": 100, "steps": 5},
        "early_stopping": {"val_mean": 0.2 + 0.01 * i, "train_seconds": 5.0, "val_seconds": 0.5, "images": 3600,
                           "steps": 5}}} for i in idx]
    for k in range(2):
        write_json(artifacts.NAS_SHARD.format(dataset="D", shard=k), {"rows": rows[k::2]})
    # ground truth for the union of the top 2s ({0, 1} and {4, 3}); architecture 0, random's best, has 2 runs
    gt = [{"index": 0, "runs": 2, "val": [truth[0]] * 2, "val_mean": truth[0], "test": [0.40, 0.42],
           "train_seconds": 20.0}]
    gt += [{"index": i, "runs": 1, "val": [truth[i]], "val_mean": truth[i], "test": [truth[i] - 0.1],
            "train_seconds": 10.0} for i in (1, 3, 4)]
    write_json(artifacts.NAS_GROUND_TRUTH.format(dataset="D", shard=0),
               {"rows": gt, "n_train": 3600, "n_validation": 400, "n_test": 1000})
    assert nas.ground_truth_candidates(nas.read_shards(
        [Path(artifacts.NAS_SHARD.format(dataset="D", shard=k)) for k in range(2)]), params["nas"]["proxies"], params["nas"]["top"]) == [0, 1, 3, 4]
    t4 = table4(Inputs(params, {"nas": plan.nas_outputs(params)}))  # reads the declared NAS files only
    assert [q["arch"] for q in t4["random"]["top"]] == [nas_space.SPACE[i].name for i in (0, 1)]
    assert t4["random"]["spearman"] == pytest.approx(-1.0) and t4["early_stopping"]["spearman"] == pytest.approx(1.0)
    assert t4["random"]["best_test"] == pytest.approx(41.0) and t4["random"]["best_runs"] == 2
    assert t4["early_stopping"]["best_arch"] == nas_space.SPACE[4].name == t4["whole"]["best_arch"]
    assert t4["random"]["search_minutes"] == pytest.approx(5 * 1.5 / 60)
    assert t4["random"]["storage_images"] == 100 and t4["early_stopping"]["storage_images"] == 5 * 256
    # whole-set time: measured for the 4 with ground truth (10 s per run each), estimated for architecture 2 from
    # its early-stopping second per step x the 15 x 2 steps of whole-set training
    assert t4["whole"]["estimated"] and t4["whole"]["search_minutes"] == pytest.approx((4 * 10 + 30) / 60)
    assert t4["whole"]["storage_images"] == 3600


def test_the_nas_stages_split_search_rank_and_resume_on_fake_data(tmp_path):
    """FAKE data (random 8x8 pixels, 2 classes): the three NAS stages in a row, then a shard resumed from its
    checkpoint ends identical to the uninterrupted one."""
    from dcpipe.io import read_json, resumable, write_json, write_npz
    from dcpipe.stages.nas_ground_truth import nas_ground_truth
    from dcpipe.jobs import nas_job, select_job, set_job
    from dcpipe.stages.nas_shard import nas_shard
    from dcpipe.stages.nas_split import nas_split
    from dcpipe.stages.select_coreset import select_coreset

    rng = np.random.default_rng(0)
    src = tmp_path / "Fake.npz"
    write_npz(src, x_train=rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8), y_train=np.arange(40) % 2,
              x_test=rng.integers(0, 256, (10, 1, 8, 8), dtype=np.uint8), y_test=np.arange(10) % 2)
    write_json(str(src) + ".json", {"dataset": "Fake", "num_classes": 2, "mean": [0.5], "std": [0.25]})
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["train_subset"] = None
    params["evaluate"].update(batch=8, test_batch=16)
    params["nas"].update(dataset="Fake", validation=10, ipc=2, proxies=["random", "early_stopping"],
                         architectures=2, shards=1, epochs=1, whole_epochs=1, ground_truth_shards=1, top=1,
                         best_repeats=1)
    split = tmp_path / "Fake_nas.npz"
    nas_split(nas_job(params), src, split)
    coreset = tmp_path / "random_set0.npz"
    select_coreset(select_job(params, "Fake_nas", 2, "random", 0), split, coreset)
    shard = tmp_path / "shard0.json"
    nas_shard(nas_job(params, 0), 0, split, {"random": coreset}, shard)
    rows = read_json(shard)["rows"]
    assert [r["index"] for r in rows] == plan.nas_candidates(params)
    assert set(rows[0]["proxies"]) == {"random", "early_stopping"}
    truth = tmp_path / "ground_truth0.json"
    nas_ground_truth(nas_job(params), 0, split, [shard], truth)
    assert len(read_json(truth)["rows"]) == len({nas.top(nas.proxy_scores(rows, p), 1)[0] for p in ("random", "early_stopping")})
    resumed = tmp_path / "resumed.json"
    resumable(resumed, {**nas_job(params, 0).fingerprint, "shard": 0}).save(rows[:1])  # a shard killed after its first architecture
    nas_shard(nas_job(params, 0), 0, split, {"random": coreset}, resumed)
    again = read_json(resumed)["rows"]
    assert again[0] == rows[0] and [r["proxies"]["random"]["val"] for r in again] == [
        r["proxies"]["random"]["val"] for r in rows]
