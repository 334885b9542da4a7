"""FAKE pipeline results for the report's tests: every file the report rule declares as an input, written with
made-up numbers (no training) in the shapes the stages write them, so a whole report builds in seconds. The
accuracies mean nothing; only the report's reading, judging and rendering of them is under test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import yaml

from dcpipe import artifacts, config, nas_space, plan
from dcpipe.coreset import rank_coresets
from dcpipe.datasets import DATASETS, dataset_spec
from dcpipe.io import write_json, write_npz
from dcpipe.methods import parse

ROOT = Path(__file__).resolve().parents[1]


def fake_params(tmp_path: Path, edit=None) -> tuple[dict, str]:
    """The default params.yaml (every report section) plus Table T12 on 10 coresets and Table T15 on one LeNet
    cell; `edit(doc)` changes it."""
    doc = yaml.safe_load((ROOT / "params.yaml").read_text())
    doc["coresets"]["optimal_random"] = {"coresets": 10, "datasets": ["FashionMNIST"], "ipcs": [1]}
    doc["studies"]["resources"] = {"datasets": ["MNIST"], "ipcs": [10], "models": ["LeNet"], "iterations": {10: 2}}
    if edit:
        edit(doc)
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(doc))
    return config.load_params(f), str(f)


def _accuracies(rng, n: int, centre: float = 0.7) -> list[float]:
    return [float(np.clip(centre + 0.02 * rng.standard_normal(), 0.1, 0.99)) for _ in range(n)]


def write_fake_run(params, root: Path, seed: int = 0) -> None:
    """Write every declared input of the report under `root` (the working directory of the build)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for job in plan.plan(params):
        d, i, m = job["dataset"], int(job["ipc"]), job["method"]
        synthetic = parse(m).synthetic
        meta = {"kind": "synthetic" if synthetic else "coreset", "seed": 100 + job["set"],
                "config": {"iterations": config.condense_config(params, i, m, d).iterations} if synthetic else {}}
        if synthetic:
            spec = DATASETS[d]
            write_npz(root / artifacts.SYNTHETIC.format(**job),
                      images=rng.standard_normal((spec.num_classes * i, spec.channels, *spec.im_size)).astype("f4"),
                      labels=np.repeat(np.arange(spec.num_classes), i))
            write_json(root / (artifacts.SYNTHETIC.format(**job) + ".json"),
                       {**meta, "seconds_per_iteration": 1.5, "net_updates_per_iteration": 10, "wall_seconds": 60.0,
                        "peak_memory": {"mb": 900.0, "measure": "process peak resident set (fake)"}})
            (root / artifacts.LOSS.format(**job)).write_text(
                "iteration,matching_loss,net_updates\n" + "".join(f"{k},{1.0 / (k + 1):.4f},10\n" for k in range(4)))
        accs = _accuracies(rng, config.models_per_set(params, m))
        write_json(root / artifacts.EVAL.format(**job),
                   {"seed": 7, "accuracies": accs, "wall_seconds": 2.0 * len(accs), "train_set_meta": meta,
                    "train_config": {"epochs": config.train_config(params, d, i, m).epochs}})
    for d in {j["dataset"] for j in plan.plan(params)}:
        spec = DATASETS[d]
        write_json(root / (artifacts.PREPARED.format(dataset=d) + ".json"),
                   {"mean": list(spec.mean), "std": list(spec.std), "num_classes": spec.num_classes})
    for job in plan.cross_plan(params):
        k = config.condense_config(params, int(job["ipc"]), job["method"]).iterations
        write_json(root / artifacts.EVAL_ON.format(**job),
                   {"accuracies": _accuracies(rng, config.models_per_set(params, job["method"])), "wall_seconds": 1.0,
                    "train_config": {"epochs": config.train_config(params, job["dataset"], int(job["ipc"]),
                                                                   job["method"]).epochs},
                    "train_set_meta": {"config": {"iterations": k}}})
    for c in plan.cross_cells(params):
        write_json(root / (artifacts.SYNTHETIC.format(**c, set=0) + ".json"), {"seconds_per_iteration": 2.5})
    for job in plan.wholeset_jobs(params):
        write_json(root / artifacts.WHOLESET_RESULT.format(**job),
                   {"accuracy": _accuracies(rng, 1, 0.9)[0], "net": job["net"],
                    "train_config": {"epochs": params["coresets"]["whole_epochs"]}})
    for job in plan.optimal_random_jobs(params):
        spec = params["coresets"]["optimal_random"]
        scores = _accuracies(rng, spec["coresets"], 0.55)
        write_json(root / artifacts.OPTIMAL_RANDOM.format(**job),
                   {"coresets": spec["coresets"], "models_per_coreset": 1, "scores": scores,
                    "top": rank_coresets(scores), "train_config": {"epochs": 300}})
    _write_fake_sets(params, root, rng)
    _write_fake_continual(params, root, rng)
    _write_fake_nas(params, root, rng)
    shutil.copytree(ROOT / "reports/records", root / "reports/records", dirs_exist_ok=True)


def _write_fake_sets(params, root: Path, rng) -> None:
    """The sets the cell pages show that the loop above did not write (coresets, cross, continual and NAS sets),
    and a tiny prepared training split (10 random images per class) for the coresets to index."""
    for job in plan.set_jobs(params):
        d, i = job["dataset"], int(job["ipc"])
        spec = dataset_spec(d.removesuffix("_nas"))  # the NAS search split of a dataset
        path = root / artifacts.train_set(d, i, job["method"], job["set"])
        if path.exists():
            continue
        labels = np.repeat(np.arange(spec.num_classes), i)
        if parse(job["method"]).synthetic:
            write_npz(path, images=rng.standard_normal((len(labels), spec.channels, *spec.im_size)).astype("f4"),
                      labels=labels)
            if not Path(str(path) + ".json").exists():
                write_json(str(path) + ".json", {"kind": "synthetic", "seed": 1, "config": {"iterations": 5}})
            (root / artifacts.LOSS.format(**job)).write_text("iteration,matching_loss,net_updates\n0,1.0,10\n1,0.5,10\n")
        else:
            write_npz(path, indices=labels * 10 + np.tile(np.arange(i), spec.num_classes), labels=labels)
            prepared = root / artifacts.PREPARED.format(dataset=d)
            if not prepared.exists():
                n = 10 * spec.num_classes
                write_npz(prepared, x_train=rng.standard_normal((n, spec.channels, *spec.im_size)).astype("f4"),
                          y_train=np.repeat(np.arange(spec.num_classes), 10))
        write_json(root / (artifacts.PREPARED.format(dataset=d) + ".json"),
                   {"mean": list(spec.mean), "std": list(spec.std), "num_classes": spec.num_classes})


def _write_fake_continual(params, root: Path, rng) -> None:
    c = params.get("continual")
    if not c:
        return
    for r, path in enumerate(plan.continual_results(params)):
        settings = [{"name": f"{m}{' + KD' if kd else ''}", "memory": m, "distillation": kd,
                     "stages": [{"accuracy": float(0.9 - 0.1 * t + 0.01 * rng.standard_normal()),
                                 "test_images": 200 * (t + 1)} for t in range(len(c["tasks"]))]}
                    for kd in c["distillation"] for m in c["memories"]]
        write_json(root / path, {"run": r, "tasks": c["tasks"], "settings": settings,
                                 "condensed_sets": [{"iterations": 3}]})


def _write_fake_nas(params, root: Path, rng) -> None:
    n = params.get("nas")
    if not n:
        return
    index = list(range(0, 720, 720 // n["architectures"]))[:n["architectures"]]
    rows = [{"index": i, "proxies": {p: {"val_mean": float(rng.uniform(0.2, 0.6)), "train_seconds": 1.0,
                                         "val_seconds": 0.5, "images": 100, "steps": 5} for p in n["proxies"]}}
            for i in index]
    for k in range(n["shards"]):
        write_json(root / artifacts.NAS_SHARD.format(dataset=n["dataset"], shard=k),
                   {"rows": rows[k::n["shards"]], "cpu_seconds": 10.0})
    gt = [{"index": i, "runs": 1, "val": [v := float(rng.uniform(0.3, 0.7))], "val_mean": v,
           "test": [v - 0.05], "train_seconds": 10.0} for i in index]
    for g in range(n["ground_truth_shards"]):
        write_json(root / artifacts.NAS_GROUND_TRUTH.format(dataset=n["dataset"], shard=g),
                   {"rows": gt[g::n["ground_truth_shards"]], "n_train": 3600, "n_validation": 400, "n_test": 1000,
                    "cpu_seconds": None})


def declared_files(params) -> set[str]:
    from dcpipe.report_files import report_inputs

    return {str(Path(f)) for fs in report_inputs(params).values() for f in fs}


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


assert nas_space.SPACE  # the fake NAS rows index the real search space
