"""Stage continual: one run (seed) of the continual-learning experiment, every memory/distillation setting."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from safetensors.torch import load_file

from .. import continual as cl
from ..datasets import rgb32_name
from ..errors import ArtifactError
from ..io import provenance, read_json, resumable, write_json, write_safetensors
from ..models import build_model
from ..jobs import ContinualJob
from ..seeding import torch_seeded
from .common import device, load_data, training_set

log = logging.getLogger("dcpipe")


def _result(r: cl.SettingRun) -> dict:
    return {"memory": r.setting.memory, "distillation": r.setting.distillation, "name": r.setting.name,
            "stages": r.stages}


def continual(job: ContinualJob, prepared: list[Path], condensed: list[Path], out: Path) -> None:
    """Every setting on the task sequence (DC paper 3.2). Checkpoint: the stage-1 model and each finished
    setting, so a killed run redoes only the unfinished settings (each depends on (seed, stage-1 model) alone,
    so the result is bit-identical)."""
    run, seed, cfg, settings, task_names = job.run, job.seed, job.cfg, list(job.settings), list(job.tasks)
    dev = device(job.env)
    tasks, loaded, classes = [], [], set()
    for name, path in zip(task_names, prepared, strict=True):
        d = load_data(job.env, path, dev)
        tasks.append(cl.Task(name, d.x_train, d.y_train, d.x_test, d.y_test))
        loaded.append(d)
        classes.add(d.num_classes)
    (num_classes,) = classes
    sets = []
    for task, d, path in zip(tasks, loaded, condensed):  # the DC memory of every task but the last, in task order
        meta = read_json(str(path) + ".json")
        if meta["dataset"] != rgb32_name(task.name) or meta["ipc"] != cfg.memory_per_class:
            raise ArtifactError(f"{path}: a condensed set of {meta['dataset']} at IPC {meta['ipc']}, not the DC "
                                f"memory of task {task.name} ({cfg.memory_per_class} per class)")
        task.condensed = training_set(path, d)  # images in the task's normalised space, as condensed
        sets.append({"task": task.name, "path": str(path), "seed": meta["seed"],
                     "iterations": meta["config"]["iterations"]})

    partial = resumable(out, {"seed": seed, "config": cfg.__dict__, "tasks": task_names, "sets": sets})
    stage1_file = Path(str(out) + ".stage1.safetensors")
    stage1, done = None, {}
    if partial.done and stage1_file.exists():
        with torch_seeded(0):
            stage1 = build_model(cfg.model, tasks[0].x_train.shape[1], num_classes, tuple(tasks[0].x_train.shape[2:]))
        stage1 = stage1.to(dev)
        stage1.load_state_dict(load_file(str(stage1_file), device=str(dev)))
        for r in partial.done:
            s = cl.Setting(r["memory"], r["distillation"])
            done[s.name] = cl.SettingRun(s, r["stages"])
        log.info("resuming from %s: %d of %d settings done", partial.path, len(done), len(settings))
    finished = list(done.values())

    def checkpoint(stage1_net, setting_run):
        if not stage1_file.exists():
            write_safetensors(stage1_file, {k: v.contiguous() for k, v in stage1_net.state_dict().items()})
        finished.append(setting_run)
        partial.save([_result(r) for r in finished])

    t0 = time.perf_counter()
    runs = cl.run(tasks, settings, cfg, seed, num_classes, stage1=stage1, done=done, on_setting=checkpoint)
    write_json(out, {"run": run, "seed": seed, "tasks": task_names, "datasets": [str(p) for p in prepared],
                     "condensed_sets": sets, "config": cfg.__dict__, "settings": [_result(r) for r in runs],
                     "wall_seconds": time.perf_counter() - t0, "provenance": provenance()})
    partial.finish()
    stage1_file.unlink(missing_ok=True)
