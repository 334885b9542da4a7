"""One function per pipeline stage: read params and input artifacts, call the library, write artifacts.
The workflow scripts are thin command-line wrappers around these."""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from . import config, data as data_mod
from .condense import condense
from .coreset import EVIDENCE, SELECTORS, CorrectnessTrace, forgetting_counts, penultimate_features, random_select, rank_coresets
from .io import ArtifactError, atomic_path, provenance, read_json, read_npz, remove_stale_temps, write_json, write_npz
from .models import build_model, has_batchnorm
from .runtime import Progress, pick_device
from .seeding import derive_seed, torch_seeded
from .train import test_accuracy, train_models, train_models_batched, trained_model

log = logging.getLogger("dcpipe")


def set_seed(params, dataset: str, ipc: int, method: str, index: int) -> int:
    return derive_seed(params["seed"], dataset, ipc, method, index)


def load_data(params, prepared: Path, device) -> data_mod.Data:
    return data_mod.load(prepared, device, params["data"].get("train_subset"))


def prepare(params, dataset: str, out: Path, staging: Path) -> None:
    meta = data_mod.prepare(dataset, out, data_mod.mirror_dirs(params["data"]["mirrors"]), staging)
    log.info("prepared %s: %d train / %d test images, sources %s", dataset, meta["n_train"], meta["n_test"],
             {k: v["sha256"][:12] for k, v in meta["sources"].items()})


def select(params, dataset: str, ipc: int, method: str, index: int, prepared: Path, out: Path,
           evidence: Path | None = None) -> None:
    """Herding and k-center read the whole-set model's features, forgetting its counts (`evidence`); herding
    and k-center are deterministic given the features (the seed is recorded but unused)."""
    d = load_data(params, prepared, "cpu")
    seed = set_seed(params, dataset, ipc, method, index)
    kwargs = {}
    if method in EVIDENCE:
        if evidence is None:
            raise config.ParamsError(f"{method} selects from the whole-set stage's {EVIDENCE[method]}: pass --evidence")
        values = torch.as_tensor(read_npz(evidence, (EVIDENCE[method],))[EVIDENCE[method]])
        if len(values) != len(d.y_train):
            raise ArtifactError(f"{evidence}: {len(values)} samples, the training set has {len(d.y_train)}; "
                                "rerun the wholeset stage")
        kwargs[EVIDENCE[method]] = values
    idx = SELECTORS[method](d.y_train, ipc, d.num_classes, seed, **kwargs)
    write_npz(out, indices=idx.numpy(), labels=d.y_train[idx].numpy())
    write_json(str(out) + ".json", {"kind": "coreset", "method": method, "dataset": dataset, "ipc": ipc,
                                    "set": index, "seed": seed, "evidence": str(evidence) if evidence else None,
                                    "deterministic_given_evidence": method in ("herding", "kcenter"),
                                    "provenance": provenance()})


def wholeset(params, dataset: str, model: str, prepared: Path, weights_out: Path, features_out: Path,
             forgetting_out: Path, result_out: Path) -> None:
    """Train `coresets.whole_models` networks on the whole training set with the one training loop. Model 0's
    weights, its penultimate features of every training image (herding, k-center) and its forgetting counts
    (from the correctness trace of its own training) are saved; the test accuracies of all models give the
    whole-dataset upper bound (DC Table 1, last column)."""
    from safetensors.torch import save_file

    dev = pick_device(params["runtime"].get("device", "auto"))
    d = load_data(params, prepared, dev)
    cfg = config.wholeset_config(params, dataset)
    n_models = params["coresets"]["whole_models"]
    seed = derive_seed(params["seed"], "wholeset", dataset, model)
    bar = Progress(cfg.epochs, f"wholeset {dataset} {model} model0", 1)
    trace = CorrectnessTrace(d.y_train, on_epoch=lambda e, acc: bar(e - 1, acc))  # logs the training accuracy
    accs, seconds, train_seconds = [], [], []
    cpu0 = time.process_time()  # core-seconds: the budget's unit on a shared machine, where wall time varies
    for i in range(n_models):
        t0 = time.perf_counter()
        net = trained_model(model, i, d.x_train, d.y_train, d.num_classes, cfg, seed, observe=trace if i == 0 else None)
        train_seconds.append(time.perf_counter() - t0)
        accs.append(test_accuracy(net, d.x_test, d.y_test, cfg.test_batch, cfg.test_precision))
        seconds.append(time.perf_counter() - t0)
        log.info("wholeset %s model %d: test accuracy %.4f (%.0f s)", dataset, i, accs[-1], seconds[-1])
        if i == 0:
            bar.close()
            with atomic_path(weights_out) as tmp:
                save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, str(tmp))
            t1 = time.perf_counter()
            # float16 on disk: 60,000 x 2048 features are 250 MB instead of 500 (l2 distances keep 3 digits)
            feats = penultimate_features(net, d.x_train, cfg.test_batch, cfg.test_precision)
            write_npz(features_out, features=feats.numpy().astype(np.float16))
            feature_seconds = time.perf_counter() - t1
            correct = trace.trace()
            write_npz(forgetting_out, counts=forgetting_counts(correct).numpy(), correct=correct.numpy())
    counts = read_npz(forgetting_out)["counts"]
    write_json(result_out, {"dataset": dataset, "model": model, "seed": seed, "train_config": cfg.__dict__,
                            "n_train_images": len(d.y_train), "n_test_images": len(d.y_test),
                            "accuracies": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs)),
                            "train_accuracy_per_epoch": [float(r.mean()) for r in read_npz(forgetting_out)["correct"]],
                            "forgetting": {"never_learnt": int(np.isinf(counts).sum()),
                                           "never_forgotten": int((counts == 0).sum()),
                                           "max_finite": float(counts[np.isfinite(counts)].max(initial=0))},
                            "feature_dim": int(feats.shape[1]), "feature_seconds": feature_seconds,
                            "seconds_per_model": seconds, "wall_seconds": sum(seconds) + feature_seconds,
                            "seconds_per_epoch": float(np.mean(train_seconds)) / cfg.epochs,
                            "cpu_seconds": time.process_time() - cpu0, "threads": torch.get_num_threads(), "provenance": provenance()})


def optimal_random(params, dataset: str, ipc: int, prepared: Path, out: Path) -> None:
    """DC appendix C, Table T12: N random coresets, each trained on by fresh models with the evaluation protocol,
    ranked by their mean TEST accuracy as the paper does ("selected by ranking their performance"; no validation
    split is mentioned), so the Top-k rows are an oracle's pick, an upper bound on random selection, not a method
    one could deploy. Resumes from the scores of finished coresets."""
    dev = pick_device(params["runtime"].get("device", "auto"))
    d = load_data(params, prepared, dev)
    spec = params["coresets"]["optimal_random"]
    n, m = spec["coresets"], spec.get("models_per_coreset", 1)
    cfg = config.train_config(params, dataset, ipc)
    model = config.evaluation_model_for(params, "random")
    seed = derive_seed(params["seed"], "optimal_random", dataset, ipc)
    partial = Path(str(out) + ".partial.json")
    fingerprint = json.loads(json.dumps({"seed": seed, "model": model, "train_config": cfg.__dict__, "models": m,
                                         "n_train_images": len(d.y_train)}))
    scores = read_json(partial)["scores"][:n] if partial.exists() and read_json(partial).get("fingerprint") == fingerprint else []
    bar = Progress(n, f"optimal random {dataset} ipc{ipc}", params["runtime"].get("log_every", 10))
    t0 = time.perf_counter()
    for j in range(len(scores), n):
        idx = random_select(d.y_train.cpu(), ipc, d.num_classes, derive_seed(seed, "coreset", j)).to(dev)
        accs = train_models(model, m, d.x_train[idx], d.y_train[idx], d.x_test, d.y_test, d.num_classes, cfg,
                            derive_seed(seed, "evaluate", j))
        scores.append(float(np.mean(accs)))
        write_json(partial, {"fingerprint": fingerprint, "scores": scores})
        bar(j, scores[-1])
    bar.close()
    best = int(np.argmax(scores))
    write_json(out, {"dataset": dataset, "ipc": ipc, "model": model, "seed": seed, "coresets": n,
                     "models_per_coreset": m, "ranked_by": "test accuracy (as the paper; an oracle)",
                     "train_config": cfg.__dict__, "scores": scores, "top": rank_coresets(scores),
                     "best": {"coreset": best, "seed": derive_seed(seed, "coreset", best), "score": scores[best]},
                     "wall_seconds": time.perf_counter() - t0, "provenance": provenance()})
    partial.unlink(missing_ok=True)


def run_condense(params, dataset: str, ipc: int, method: str, index: int, prepared: Path, out: Path,
                 loss_csv: Path) -> None:
    dev = pick_device(params["runtime"].get("device", "auto"))
    d = load_data(params, prepared, dev)
    cfg = config.condense_config(params, ipc, method)
    seed = set_seed(params, dataset, ipc, method, index)
    ckpt = Path(str(out) + ".ckpt.safetensors")
    for p in (ckpt, out, Path(str(out) + ".json"), loss_csv):  # a SIGKILL mid-write leaves its temporary behind
        for stale in remove_stale_temps(p):
            log.info("removed %s, left by a killed run", stale)
    bar = Progress(cfg.iterations, f"condense {dataset} ipc{ipc} {method} set{index}", params["runtime"].get("log_every", 10))
    ran = []  # iterations this process ran: a resumed run's wall time covers only those

    def progress(it, loss):
        ran.append(it)
        bar(it, loss)

    t0 = time.perf_counter()
    images, labels, losses, net_updates = condense(d, cfg, seed, checkpoint=ckpt, progress=progress)
    bar.close()
    wall = time.perf_counter() - t0
    with atomic_path(loss_csv) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "matching_loss", "net_updates"])
        w.writerows(zip(range(len(losses)), losses, net_updates))
    write_npz(out, images=images.cpu().numpy().astype(np.float32), labels=labels.cpu().numpy())
    write_json(str(out) + ".json", {"kind": "synthetic", "method": method, "dataset": dataset, "ipc": ipc,
                                    "set": index, "seed": seed, "config": cfg.__dict__, "wall_seconds": wall,
                                    "seconds_per_iteration": wall / max(1, len(ran)),
                                    "net_updates_per_iteration": float(np.mean(net_updates)) if net_updates else 0.0,
                                    "final_loss": losses[-1] if losses else None, "provenance": provenance()})
    ckpt.unlink(missing_ok=True)


def training_set(artifact: Path, d: data_mod.Data) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of a condensed set or a coreset artifact, on the data's device.

    Checked against the prepared dataset before any model trains: a set of another dataset (or another kind of
    file) would otherwise train a model and fail at its test pass, or crash inside the loss on a label the
    network has no output for."""
    z = read_npz(artifact)
    dev = d.x_train.device

    def bad(what: str):
        return ArtifactError(f"{artifact}: {what}; the prepared {d.name} has {d.channels}x{d.im_size[0]}x"
                             f"{d.im_size[1]} images and labels 0-{d.num_classes - 1}: rerun the stage that wrote it")

    if "images" in z and "labels" in z:  # a condensed set
        x, y = z["images"], z["labels"]
        if x.ndim != 4 or tuple(x.shape[1:]) != (d.channels, *d.im_size) or not np.issubdtype(x.dtype, np.floating):
            raise bad(f"{x.dtype} images of shape {x.shape} (N, C, H, W)")
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or len(y) == 0:
            raise bad(f"{y.dtype} labels of shape {y.shape} for {len(x)} images")
        if y.min() < 0 or y.max() >= d.num_classes:
            raise bad(f"labels {int(y.min())}-{int(y.max())}")
        return torch.as_tensor(x, device=dev), torch.as_tensor(y, device=dev)
    if "indices" in z:  # a coreset: indices of real training images (and their labels, as selected)
        idx = z["indices"]
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or len(idx) == 0:
            raise bad(f"{idx.dtype} indices of shape {idx.shape}")
        if idx.min() < 0 or idx.max() >= len(d.y_train):
            raise bad(f"indices {int(idx.min())}-{int(idx.max())} into {len(d.y_train)} training images")
        t = torch.as_tensor(idx, device=dev)
        if "labels" in z and not np.array_equal(z["labels"], d.y_train[t].cpu().numpy()):
            raise bad("labels that differ from the training images' at its indices (selected from another "
                      "prepared dataset or data.train_subset)")
        return d.x_train[t], d.y_train[t]
    raise ArtifactError(f"{artifact}: has arrays {', '.join(sorted(z)) or '(none)'}, expected images and labels "
                        f"(a condensed set) or indices (a coreset); rerun the stage that wrote it")


def use_batched_training(params, model: str, device) -> bool:
    """evaluate.batched: on | off | auto (on CUDA, where one wide computation removes launch overhead); never for
    BatchNorm networks, whose running statistics vmap cannot batch."""
    choice = params["evaluate"].get("batched", "auto")
    if choice == "off" or (choice == "auto" and torch.device(device).type != "cuda"):
        return False
    return not has_batchnorm(build_model(model, 1, 10, (28, 28)))


def evaluate(params, dataset: str, ipc: int, method: str, index: int, prepared: Path, train_set: Path,
             out: Path, model: str | None = None) -> None:
    """Train fresh networks on one set and test them. `model` names the network for a cross study's
    evaluation (paths.EVAL_ON), trained as named; otherwise config.evaluation_model_for picks it."""
    dev = pick_device(params["runtime"].get("device", "auto"))
    d = load_data(params, prepared, dev)
    x, y = training_set(train_set, d)
    cfg = config.train_config(params, dataset, ipc, method)
    n = config.models_per_set(params, method)
    seed = derive_seed(params["seed"], "evaluate", dataset, ipc, method, index)
    if model is None:
        model = config.evaluation_model_for(params, method)
    else:
        seed = derive_seed(seed, "on", model)  # each evaluation network of a set draws its own models
    bar = Progress(n, f"evaluate {dataset} ipc{ipc} {method} set{index} on {model}", 1)
    # checkpoint: the accuracies of finished models (model i depends on (seed, i) alone, so a resumed job
    # retrains only the unfinished ones and ends bit-identical)
    partial = Path(str(out) + ".partial.json")
    fingerprint = {"seed": seed, "model": model, "train_config": cfg.__dict__, "n_train_images": len(y)}
    done = []
    if partial.exists():
        saved = read_json(partial)
        if saved.get("fingerprint") == json.loads(json.dumps(fingerprint)):
            done = saved["accuracies"][:n]
            log.info("resuming from %s: %d of %d models done", partial, len(done), n)
    finished = list(done)

    def progress(i, acc):
        finished.append(acc)
        write_json(partial, {"fingerprint": fingerprint, "accuracies": finished})
        bar(i, acc)

    t0 = time.perf_counter()
    if use_batched_training(params, model, dev) and len(done) < n:
        # one stack of models: the same accuracies as one by one (tests/test_batched_training.py), no per-model
        # checkpoint; measured slower than the loop on a 2-core CPU (reports/records/bench.json), hence "auto" = CUDA
        accs = done + train_models_batched(model, n - len(done), x, y, d.x_test, d.y_test, d.num_classes, cfg,
                                           seed, first=len(done))
    else:
        accs = train_models(model, n, x, y, d.x_test, d.y_test, d.num_classes, cfg, seed, progress=progress,
                            done=done)
    bar.close()
    write_json(out, {"dataset": dataset, "ipc": ipc, "method": method, "set": index, "model": model,
                     "seed": seed, "train_config": cfg.__dict__, "n_train_images": len(y),
                     "n_test_images": len(d.y_test), "accuracies": accs, "mean": float(np.mean(accs)),
                     "std": float(np.std(accs)), "wall_seconds": time.perf_counter() - t0,
                     "provenance": provenance(), "train_set_meta": read_json(str(train_set) + ".json")})
    partial.unlink(missing_ok=True)


def run_continual(params, run: int, prepared: list[Path], condensed: list[Path], out: Path) -> None:
    """One run (seed) of the continual-learning experiment: every setting on the task sequence (DC paper 3.2).
    Checkpoint: the stage-1 model and each finished setting, so a killed run redoes only the unfinished settings
    (each depends on (seed, stage-1 model) alone, so the result is bit-identical)."""
    from safetensors.torch import load_file, save_file

    from . import continual as cl

    dev = pick_device(params["runtime"].get("device", "auto"))
    cfg, settings = config.continual_config(params)
    task_names = params["continual"]["tasks"]
    if not 0 <= run < params["continual"]["runs"]:
        raise config.ParamsError(f"--run {run}: not planned (continual.runs = {params['continual']['runs']})")
    seed = derive_seed(params["seed"], "continual", run)
    tasks, loaded, classes = [], [], set()
    for name, path in zip(task_names, prepared, strict=True):
        d = load_data(params, path, dev)
        tasks.append(cl.Task(name, d.x_train, d.y_train, d.x_test, d.y_test))
        loaded.append(d)
        classes.add(d.num_classes)
    (num_classes,) = classes
    sets = []
    for task, d, path in zip(tasks, loaded, condensed):  # the DC memory of every task but the last, in task order
        meta = read_json(str(path) + ".json")
        if meta["dataset"] != data_mod.rgb32_name(task.name) or meta["ipc"] != cfg.memory_per_class:
            raise ArtifactError(f"{path}: a condensed set of {meta['dataset']} at IPC {meta['ipc']}, not the DC "
                                f"memory of task {task.name} ({cfg.memory_per_class} per class)")
        task.condensed = training_set(path, d)  # images in the task's normalised space, as condensed
        sets.append({"task": task.name, "path": str(path), "seed": meta["seed"],
                     "iterations": meta["config"]["iterations"]})

    fingerprint = json.loads(json.dumps({"seed": seed, "config": cfg.__dict__, "tasks": task_names, "sets": sets}))
    partial, stage1_file = Path(str(out) + ".partial.json"), Path(str(out) + ".stage1.safetensors")
    stage1, done = None, {}
    if partial.exists() and stage1_file.exists() and read_json(partial).get("fingerprint") == fingerprint:
        with torch_seeded(0):
            stage1 = build_model(cfg.model, tasks[0].x_train.shape[1], num_classes, tuple(tasks[0].x_train.shape[2:]))
        stage1 = stage1.to(dev)
        stage1.load_state_dict(load_file(str(stage1_file), device=str(dev)))
        for r in read_json(partial)["settings"]:
            s = cl.Setting(r["memory"], r["distillation"])
            done[s.name] = cl.SettingRun(s, r["stages"])
        log.info("resuming from %s: %d of %d settings done", partial, len(done), len(settings))

    def result(r: cl.SettingRun) -> dict:
        return {"memory": r.setting.memory, "distillation": r.setting.distillation, "name": r.setting.name,
                "stages": r.stages}

    finished = list(done.values())

    def checkpoint(stage1_net, setting_run):
        if not stage1_file.exists():
            with atomic_path(stage1_file) as tmp:
                save_file({k: v.contiguous() for k, v in stage1_net.state_dict().items()}, str(tmp))
        finished.append(setting_run)
        write_json(partial, {"fingerprint": fingerprint, "settings": [result(r) for r in finished]})

    t0 = time.perf_counter()
    runs = cl.run(tasks, settings, cfg, seed, num_classes, stage1=stage1, done=done, on_setting=checkpoint)
    write_json(out, {"run": run, "seed": seed, "tasks": task_names, "datasets": [str(p) for p in prepared],
                     "condensed_sets": sets, "config": cfg.__dict__, "settings": [result(r) for r in runs],
                     "wall_seconds": time.perf_counter() - t0, "provenance": provenance()})
    partial.unlink(missing_ok=True)
    stage1_file.unlink(missing_ok=True)
