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
from .coreset import SELECTORS
from .io import ArtifactError, atomic_path, provenance, read_json, read_npz, remove_stale_temps, write_json, write_npz
from .models import build_model, has_batchnorm
from .runtime import Progress, pick_device
from .seeding import derive_seed, torch_seeded
from .train import train_models, train_models_batched

log = logging.getLogger("dcpipe")


def set_seed(params, dataset: str, ipc: int, method: str, index: int) -> int:
    return derive_seed(params["seed"], dataset, ipc, method, index)


def load_data(params, prepared: Path, device) -> data_mod.Data:
    return data_mod.load(prepared, device, params["data"].get("train_subset"))


def prepare(params, dataset: str, out: Path, staging: Path) -> None:
    meta = data_mod.prepare(dataset, out, data_mod.mirror_dirs(params["data"]["mirrors"]), staging)
    log.info("prepared %s: %d train / %d test images, sources %s", dataset, meta["n_train"], meta["n_test"],
             {k: v["sha256"][:12] for k, v in meta["sources"].items()})


def select(params, dataset: str, ipc: int, method: str, index: int, prepared: Path, out: Path) -> None:
    d = load_data(params, prepared, "cpu")
    seed = set_seed(params, dataset, ipc, method, index)
    idx = SELECTORS[method](d.y_train, ipc, d.num_classes, seed)
    write_npz(out, indices=idx.numpy(), labels=d.y_train[idx].numpy())
    write_json(str(out) + ".json", {"kind": "coreset", "method": method, "dataset": dataset, "ipc": ipc,
                                    "set": index, "seed": seed, "provenance": provenance()})


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
    """Images and labels of a condensed set or a coreset artifact, on the data's device."""
    z = read_npz(artifact)
    dev = d.x_train.device
    if "images" in z:
        return torch.as_tensor(z["images"], device=dev), torch.as_tensor(z["labels"], device=dev)
    idx = torch.as_tensor(z["indices"], device=dev)
    return d.x_train[idx], d.y_train[idx]


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
        # checkpoint; measured slower than the loop on a 2-core CPU (reports/bench.json), hence "auto" = CUDA
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
    tasks, classes = [], set()
    for name, path in zip(task_names, prepared, strict=True):
        d = load_data(params, path, dev)
        tasks.append(cl.Task(name, d.x_train, d.y_train, d.x_test, d.y_test))
        classes.add(d.num_classes)
    (num_classes,) = classes
    sets = []
    for task, path in zip(tasks, condensed):  # the DC memory of every task but the last, in task order
        meta = read_json(str(path) + ".json")
        if meta["dataset"] != data_mod.rgb32_name(task.name) or meta["ipc"] != cfg.memory_per_class:
            raise ArtifactError(f"{path}: a condensed set of {meta['dataset']} at IPC {meta['ipc']}, not the DC "
                                f"memory of task {task.name} ({cfg.memory_per_class} per class)")
        z = read_npz(path)  # images in the task's normalised space, as condensed
        task.condensed = (torch.as_tensor(z["images"], device=dev), torch.as_tensor(z["labels"], device=dev))
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
