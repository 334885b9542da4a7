"""Continual learning with a rehearsal memory (DC paper section 3.2, E2E learner of Castro et al. 2018): the memory
keeps at most 10 images per class of each earlier task and nothing else, distillation pulls towards the previous
stage's model, the test set grows by 2,000 images per task, and a run is a function of its seed.

The learner tests use tiny random tensors (8x8 "images" with class-dependent means) as tasks: they specify the
protocol's bookkeeping, not accuracy."""
import copy

import numpy as np
import pytest
import torch

from dcpipe import continual as cl
from dcpipe import data, datasets
from dcpipe.config import ParamsError, continual_config, validate_params
from dcpipe.plan import check_job

C = 10  # the digit tasks share the labels 0-9


def tiny_task(name: str, seed: int, train_per_class=6, test_per_class=4, condensed_per_class=2) -> cl.Task:
    g = torch.Generator().manual_seed(seed)

    def images(per_class):
        y = torch.arange(C).repeat_interleave(per_class)
        return torch.randn(len(y), 3, 8, 8, generator=g) + y.view(-1, 1, 1, 1) * 0.3, y

    (xtr, ytr), (xte, yte), (xs, ys) = images(train_per_class), images(test_per_class), images(condensed_per_class)
    return cl.Task(name, xtr, ytr, xte, yte, condensed=(xs, ys))


TASKS = [tiny_task("A", 1), tiny_task("B", 2), tiny_task("C", 3)]
CFG = cl.ContinualConfig(memory_per_class=2, iterations=3, finetune_iterations=2, batch=16, test_per_task=30,
                         herding_candidates=4)
SETTINGS = [cl.Setting(m, kd) for kd in (True, False) for m in ("herding", "DC")]


def rows_in(x: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """For each row of x: is it exactly one of pool's rows?"""
    return (x.flatten(1)[:, None] == pool.flatten(1)[None]).all(-1).any(1)


def test_the_memory_holds_its_budget_of_earlier_tasks_and_nothing_else(monkeypatch):
    seen = []  # (stage's new task, the images it trained on) for every fit call after stage 1
    real_fit = cl.fit

    def spy(net, x, y, iterations, lr, cfg, gen, teacher=None):
        seen.append((x.clone(), y.clone()))
        return real_fit(net, x, y, iterations, lr, cfg, gen, teacher)

    monkeypatch.setattr(cl, "fit", spy)
    runs = cl.run(TASKS, SETTINGS, CFG, seed=0)
    calls = iter(seen[1:])  # seen[0] is stage 1 (task A alone, no memory)
    assert len(seen[0][1]) == len(TASKS[0].y_train)
    for r in runs:
        for t in range(1, len(TASKS)):
            stage = r.stages[t]
            assert stage["memory_tasks"] == [task.name for task in TASKS[:t]]
            # never more than 10 (here 2) images per class for each earlier task, and exactly that
            assert stage["memory_class_counts"] == [CFG.memory_per_class * t] * C
            earlier = torch.cat([task.condensed[0] if r.setting.memory == "DC" else task.x_train for task in TASKS[:t]])
            for x, y in (next(calls), next(calls)):  # training, then balanced fine-tuning
                memory = x[-stage["memory_images"]:]
                assert rows_in(memory, earlier).all()
                assert not rows_in(memory, torch.cat([task.x_train for task in TASKS[t:]])).any()
            # the balanced fine-tuning set: as many images per class of the new task as of each earlier one
            assert torch.equal(torch.bincount(y, minlength=C), torch.full((C,), CFG.memory_per_class * (t + 1)))


def test_the_memory_refuses_more_than_its_budget_or_a_task_twice():
    m = cl.Memory(per_class=2, num_classes=C)
    y = torch.arange(C).repeat_interleave(2)
    m.add("A", torch.zeros(len(y), 3, 8, 8), y)
    with pytest.raises(ValueError, match="budget 2"):
        m.add("B", torch.zeros(len(y) + 1, 3, 8, 8), torch.cat([y, torch.tensor([0])]))
    with pytest.raises(ValueError, match="already held"):
        m.add("A", torch.zeros(len(y), 3, 8, 8), y)
    assert len(m) == 20 and m.tasks == ["A"]


def test_herding_picks_per_class_distinct_real_images_of_that_class():
    task = TASKS[0]
    net = cl.train_stage1(TASKS, CFG, seed=0, num_classes=C)
    idx = cl.herding_memory(net, task, 3, C, candidates=None, gen=torch.Generator().manual_seed(0))
    assert len(idx) == 3 * C and len(set(idx.tolist())) == 3 * C
    assert torch.equal(task.y_train[idx], torch.arange(C).repeat_interleave(3))
    # the first pick of each class is the image whose (normalised) feature is nearest the class mean
    f = cl.features(net, task.x_train)
    for c in range(C):
        members = torch.nonzero(task.y_train == c).flatten()
        nearest = members[((f[members] - f[members].mean(0)) ** 2).sum(1).argmin()]
        assert idx[3 * c] == nearest


def test_distillation_loss_is_zero_when_the_student_equals_the_teacher():
    logits = torch.randn(5, C)
    assert cl.distillation_loss(logits, logits.clone(), 2.0).abs().item() < 1e-6
    assert cl.distillation_loss(logits, torch.randn(5, C), 2.0).item() > 0


def test_distillation_has_the_gradient_of_e2e_soft_target_cross_entropy():
    """E2E's L_D = -sum p_teacher log q_student with both softened by T: the KL form differs by a constant."""
    teacher, T = torch.randn(4, C), 2.0
    student = torch.randn(4, C, requires_grad=True)
    cl.distillation_loss(student, teacher, T).backward()
    ours = student.grad.clone()
    student.grad = None
    p = torch.softmax(teacher / T, 1)
    (-(p * torch.log_softmax(student / T, 1)).sum(1).mean()).backward()
    assert torch.allclose(ours, student.grad, atol=1e-6)


def test_the_test_set_grows_by_test_per_task_images_at_each_stage():
    runs = cl.run(TASKS, SETTINGS[:1], CFG, seed=0)
    assert [s["test_images"] for s in runs[0].stages] == [30, 60, 90]  # the paper: 2,000 -> 4,000 -> 6,000
    assert [len(s["per_task"]) for s in runs[0].stages] == [1, 2, 3]
    with pytest.raises(ValueError, match="fewer than test_per_task"):
        cl.test_sets(TASKS, 41, seed=0)  # 40 test images per tiny task


def test_a_run_is_a_function_of_its_seed_and_stage_one_is_shared():
    a = cl.run(TASKS, SETTINGS, CFG, seed=3)
    b = cl.run(TASKS, SETTINGS, CFG, seed=3)
    c = cl.run(TASKS, SETTINGS, CFG, seed=4)
    assert [r.stages for r in a] == [r.stages for r in b]
    assert [r.stages for r in a] != [r.stages for r in c]
    # stage 1 has no memory and no teacher: every setting reports the same model there
    assert len({r.stages[0]["accuracy"] for r in a}) == 1


def test_a_resumed_run_skips_finished_settings_and_ends_identical():
    full = cl.run(TASKS, SETTINGS, CFG, seed=5)
    kept = []
    cl.run(TASKS, SETTINGS[:2], CFG, seed=5, on_setting=lambda net, r: kept.append((copy.deepcopy(net), r)))
    resumed = cl.run(TASKS, SETTINGS, CFG, seed=5, stage1=kept[0][0], done={r.setting.name: r for _, r in kept})
    assert [r.stages for r in resumed] == [r.stages for r in full]


def test_svhn_is_read_from_its_mat_files(tmp_path, monkeypatch):
    """FAKE DATA, for the file format only: a few random images written the way the SVHN site's train_32x32.mat
    and test_32x32.mat are (X: 32x32x3xN uint8, y: Nx1 with 10 standing for the digit 0), read by data.py's SVHN
    path from a mirror (their checksums made the known ones). Real SVHN is not available on these machines."""
    import hashlib

    from scipy.io import savemat

    from dcpipe import sources
    from tests.conftest import fetch_and_prepare

    rng = np.random.default_rng(0)
    mirror = tmp_path / "mirror"
    (mirror / "SVHN").mkdir(parents=True)
    sets = {}
    for split, n in (("train", 7), ("test", 3)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = np.array([[10], [1], [2], [3], [9], [10], [5]][:n], dtype=np.uint8)
        savemat(mirror / f"SVHN/{split}_32x32.mat", {"X": x, "y": y})
        sets[split] = (x, y)
        md5 = hashlib.md5((mirror / f"SVHN/{split}_32x32.mat").read_bytes()).hexdigest()
        monkeypatch.setitem(sources.CHECKSUMS, f"SVHN/{split}_32x32.mat", f"md5:{md5}")
    meta = fetch_and_prepare("SVHN", tmp_path / "SVHN.npz", tmp_path / "raw", [mirror], download=False)
    z = np.load(tmp_path / "SVHN.npz", allow_pickle=False)
    assert z["x_train"].shape == (7, 3, 32, 32) and z["x_test"].shape == (3, 3, 32, 32)
    assert z["y_train"].tolist() == [0, 1, 2, 3, 9, 0, 5] and z["y_test"].tolist() == [0, 1, 2]
    x = sets["train"][0]
    assert z["x_train"][4, 2, 5, 17] == x[5, 17, 2, 4]  # image n, channel c, row h, column w = X[h, w, c, n]
    assert np.array_equal(z["x_train"], x.transpose(3, 2, 0, 1))
    assert meta["channels"] == 3 and meta["im_size"] == [32, 32] and datasets.rgb32_name("SVHN") == "SVHN"


def test_grey_digits_become_32x32_rgb_images():
    x = np.zeros((2, 1, 16, 16), np.uint8)
    x[1] = 200
    x[0, 0, 4:12, 6:10] = 255
    out = data.to_rgb32(x)
    assert out.shape == (2, 3, 32, 32) and out.dtype == np.uint8
    assert (out[:, 0] == out[:, 1]).all() and (out[:, 1] == out[:, 2]).all()  # grey replicated
    assert (out[1] == 200).all()  # a constant image stays constant
    assert out[0, 0, 16, 16] == 255 and out[0, 0, 0, 0] == 0  # the stroke is scaled up, not moved
    assert datasets.rgb32_name("MNIST") == "MNIST_RGB32" and datasets.rgb32_name("USPS") == "USPS_RGB32"
    assert datasets.dataset_spec("USPS_RGB32").variant_of == "USPS"


def continual_params(**changes):
    import yaml
    from pathlib import Path

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["continual"].update(changes)
    return params


def test_the_continual_section_is_validated_and_its_memory_sets_are_planned_jobs():
    params = continual_params()
    validate_params(params)
    cfg, settings = continual_config(params)
    assert cfg.memory_per_class == 10 and cfg.kd_weight == 1.0 and cfg.kd_temperature == 2.0
    assert {(s.memory, s.distillation) for s in settings} == {(m, kd) for m in ("herding", "DC")
                                                              for kd in (True, False)}
    first = datasets.rgb32_name(params["continual"]["tasks"][0])
    check_job(params, dataset=first, ipc=10, method="DC")  # the DC memory's condensation job
    with pytest.raises(ParamsError, match="valid: MNIST, FashionMNIST"):
        validate_params(continual_params(tasks=["MNIST", "SVHM"]))
    with pytest.raises(ParamsError, match="has no 32x32 RGB variant"):
        validate_params(continual_params(tasks=["MNIST", "FashionMNIST"]))
    with pytest.raises(ParamsError, match="one label space"):
        validate_params(continual_params(tasks=["MNIST", "CIFAR100"]))
    with pytest.raises(ParamsError, match="continual.memories"):
        validate_params(continual_params(memories=["herding", "kcenter"]))


def test_a_run_outside_continual_runs_is_not_part_of_the_experiment():
    params = continual_params(runs=2)
    validate_params(params)
    check_job(params, run=1)
    with pytest.raises(ParamsError, match=r"--run 2: not planned \(continual.runs = 2\)"):
        check_job(params, run=2)
