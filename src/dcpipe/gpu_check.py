"""`make gpu-check`: does this code's CUDA path run, how fast, and does it still reproduce the paper?

One script that needs only this library and the torch of the machine it runs on (no venv: it does not import the
config package, whose jsonschema a GPU image may lack): `PYTHONPATH=src python3 -m dcpipe.gpu_check`. It

1. checks that dcpipe.lease hands each of several concurrent jobs its own device (real processes, as Snakemake's
   jobs are) and that one job more than there are devices waits until a device is freed;
2. runs the tests marked `cuda` (pytest -m cuda on CUDA_TEST_FILES; on a CPU they skip);
3. condenses FashionMNIST at 1 image per class (DC, ConvNet, the paper's settings: CondenseConfig's defaults)
   and trains evaluation models on the set, batched (train_models_batched) and one by one (train_models);
4. times outer iterations of an IPC-10 condensation at the paper's loops (T = 10, ς_θ = 50);
5. writes a JSON (default reports/gpu.json) with the device, torch version, timings and accuracies; a real GPU
   run's JSON is committed as reports/records/gpu.json, which the report's speed section shows when present.

Budgets: FULL on CUDA (K = 1000, 20 models of 300 epochs on the whole test set: one set of the paper's 5 x 20),
TINY on a CPU (seconds: the same code paths, so CI covers the script; its accuracies mean nothing).

FULL takes 205 s on one NVIDIA H200 with torch 2.11 (reports/records/gpu.json: 142 s of it the IPC-1 condensation,
0.14 s per outer iteration at real batch 256), well inside the 8 minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import data as data_mod, fetch, paper
from .condense import CondenseConfig, condense
from .errors import ParamsError
from .io import provenance, write_json
from .lease import LeaseJob, gpu_count
from .runtime import Progress, device_problem, pick_device, setup, stage_errors
from .train import TrainConfig, train_models, train_models_batched

ROOT = Path(__file__).resolve().parents[2]  # the source checkout (tests/, the default output path)
SRC = Path(__file__).resolve().parents[1]
# Every test marked `cuda` lives in these files (tests/test_gpu_check.py checks it): collecting the whole suite
# would import modules (the config package, the report) whose dependencies a bare GPU image may lack.
CUDA_TEST_FILES = ("tests/test_cuda.py",)
TARGET_SECONDS = 8 * 60  # the time bound for the FULL budget on one modern GPU
DATASET, SEED = "FashionMNIST", 0


@dataclass(frozen=True)
class Budget:
    name: str
    iterations: int            # K of the IPC-1 condensation
    batch_real: int            # real images per class per matching step
    models: int                # evaluation models, trained batched and again one by one
    epochs: int
    test_images: int | None    # None: the whole test set
    ipc10_loops: tuple[int, int]
    ipc10_iterations: int      # outer iterations timed at IPC 10 (the first one includes warm-up)


# The paper's protocol (DC section 3, appendix A) for one set: K = 1000, batch 256, 20 models x 300 epochs.
FULL = Budget("full", iterations=CondenseConfig.iterations, batch_real=CondenseConfig.batch_real, models=20,
              epochs=TrainConfig.epochs, test_images=None, ipc10_loops=(10, 50), ipc10_iterations=2)
# Seconds of CPU: a ConvNet matching step costs about 1 s of one core per 160 real images on this project's CPU.
TINY = Budget("tiny", iterations=3, batch_real=8, models=3, epochs=10, test_images=300, ipc10_loops=(2, 2),
              ipc10_iterations=1)
BUDGETS = {"full": FULL, "tiny": TINY}


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def lease_check(lock_dir: Path, cuda: bool, timeout: float = 120.0) -> dict:
    """As many concurrent jobs as devices must each get a distinct CUDA_VISIBLE_DEVICES (on CUDA: each then sees
    exactly one device, and they are distinct GPUs), and one job more must wait until a device is freed and then
    get that one. Without GPUs (nvidia-smi lists none) 2 devices are faked (DCPIPE_FAKE_GPUS), which checks the
    locking but no hardware. The jobs' own CUDA_VISIBLE_DEVICES is removed: a scheduler's value would be kept
    by the lease (its documented behaviour) and leave nothing to check."""
    listed = gpu_count() if cuda else 0
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "DCPIPE_FAKE_GPUS")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    faked = listed == 0
    n = 2 if faked else listed
    if faked:
        env["DCPIPE_FAKE_GPUS"] = str(n)
    lock_dir.mkdir(parents=True, exist_ok=True)
    jobs: list[LeaseJob] = []
    t0 = time.perf_counter()
    try:
        jobs = [LeaseJob(lock_dir, env, cuda) for _ in range(n)]
        seen = [j.seen(timeout) for j in jobs]
        extra = LeaseJob(lock_dir, env, cuda)
        jobs.append(extra)
        extra_waited = extra.seen(2.0) is None
        extra_seen = None
        if seen[0] is not None:  # free the first job's device: the waiting one should get it
            jobs[0].finish()
            extra_seen = extra.seen(timeout)
    finally:
        for j in jobs:
            j.cleanup()
    visible = [s and s["visible"] for s in seen]
    checks = {"each_job_got_a_device": all(v is not None for v in visible),
              "devices_distinct": len(set(visible)) == n,
              "extra_job_waited": extra_waited,
              "extra_job_got_the_freed_device": bool(extra_seen) and extra_seen["visible"] == visible[0]}
    if cuda:
        checks["torch_devices_listed_by_nvidia_smi"] = listed == torch.cuda.device_count()
        checks["each_job_sees_one_gpu"] = all(s and s["torch_devices"] == 1 and s.get("kernel_ran") for s in seen)
        checks["gpus_distinct"] = len({s and s["uuid"] for s in seen}) == n
    return {"devices": n, "faked": faked, "nvidia_smi_devices": listed, "jobs": seen, "extra_job": extra_seen,
            "checks": checks, "ok": all(checks.values()), "seconds": time.perf_counter() - t0}


def cuda_tests(root: Path = ROOT) -> dict:
    """pytest -m cuda on CUDA_TEST_FILES in a child process; on CUDA every one must pass, none skip."""
    files = [f for f in CUDA_TEST_FILES if (root / f).exists()]
    if not files:
        return {"ran": False, "ok": False, "why": f"{', '.join(CUDA_TEST_FILES)} not under {root}: not a checkout"}
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", *files]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    summary = lines[-1].strip("= ") if lines else ""
    counts = {k.rstrip("s"): int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary)}
    cuda = torch.cuda.is_available()
    ok = res.returncode == 0 and not counts.get("failed") and not counts.get("error") and (
        not cuda or (counts.get("passed", 0) > 0 and not counts.get("skipped")))
    return {"ran": True, "command": " ".join(["python"] + cmd[1:]), "returncode": res.returncode,
            "summary": summary, "counts": counts, "ok": ok, "seconds": time.perf_counter() - t0,
            "output_tail": "" if ok else (res.stdout + res.stderr)[-4000:]}


def prepared_dataset(prepared: Path | None, mirrors: list[str], cache: Path) -> Path:
    """FashionMNIST's prepared .npz: `prepared`, else the pipeline's data/prepared/ copy if there is one, else one
    prepared once into `cache` from a mirror ($DCPIPE_DATA_MIRRORS, then `mirrors`) or the official URL. No CUDA
    is touched."""
    if prepared is not None and not prepared.is_file():
        raise ParamsError(f"--prepared {prepared}: no such file (a FashionMNIST .npz written by prepare_data)")
    if prepared is None:
        pipeline_copy = Path(f"data/prepared/{DATASET}.npz")
        prepared = pipeline_copy if pipeline_copy.exists() else cache / f"{DATASET}.npz"
        if not prepared.exists():
            manifest = cache / "raw" / f"{DATASET}.json"
            write_json(manifest, fetch.fetch(DATASET, manifest.parent, fetch.mirror_dirs(mirrors)))
            data_mod.prepare(DATASET, prepared, manifest)
    return prepared


def _stats(accuracies: list[float]) -> dict:
    pct = [100 * a for a in accuracies]
    return {"accuracies": pct, "mean": statistics.fmean(pct), "std": statistics.pstdev(pct)}  # the papers' std


def condense_and_evaluate(d: data_mod.Data, b: Budget, log_every: int) -> dict:
    """IPC-1 DC condensation at budget `b`, then b.models evaluation models batched and one by one (same seeds:
    model i is the same network either way, so the two should agree up to floating-point order)."""
    dev = d.x_train.device
    cfg = CondenseConfig(ipc=1, iterations=b.iterations, batch_real=b.batch_real, checkpoint_every=10**9)
    progress = Progress(b.iterations, "condense IPC 1", log_every=log_every)
    t0 = time.perf_counter()
    syn = condense(d, cfg, seed=SEED, progress=progress)
    _sync(dev)
    condense_seconds = time.perf_counter() - t0
    progress.close()
    n_test = len(d.y_test) if b.test_images is None else b.test_images
    x_test, y_test = d.x_test[:n_test], d.y_test[:n_test]
    tcfg = TrainConfig(epochs=b.epochs)
    evaluations = {}
    for name, train in (("batched", train_models_batched), ("one_by_one", train_models)):
        t0 = time.perf_counter()
        accs = train("ConvNet", b.models, syn.images, syn.labels, x_test, y_test, d.num_classes, tcfg, seed=SEED)
        _sync(dev)
        evaluations[name] = {**_stats(accs), "seconds": time.perf_counter() - t0}
        evaluations[name]["seconds_per_model"] = evaluations[name]["seconds"] / b.models
    bat, seq = evaluations["batched"], evaluations["one_by_one"]
    published = paper.table1(DATASET, 1, "DC")
    return {
        "condense": {"config": asdict(cfg), "seconds": condense_seconds,
                     "seconds_per_iteration": condense_seconds / b.iterations,
                     "final_matching_loss": syn.losses[-1],
                     "real_gradients_vectorised": cfg.vectorise_classes == "on" or dev.type == "cuda"},
        "evaluate": {"train_config": asdict(tcfg), "test_images": n_test, **evaluations,
                     "batched_speedup": seq["seconds"] / bat["seconds"],
                     "max_abs_difference_points": max(abs(a - c) for a, c in zip(bat["accuracies"], seq["accuracies"])),
                     "mean_difference_points": abs(bat["mean"] - seq["mean"])},
        "paper": {"table": "DC Table 1, FashionMNIST, 1 img/cls", "mean": published[0], "std": published[1],
                  # one set of 20 models against the paper's 5 x 20: a check of the GPU path, not a reproduction
                  "inside_2_std": abs(seq["mean"] - published[0]) <= 2 * published[1] if b is FULL else None},
    }


def time_ipc10(d: data_mod.Data, b: Budget) -> dict:
    """Seconds per outer iteration of an IPC-10 condensation at b.ipc10_loops (the paper's 10 x 50 on FULL)."""
    dev = d.x_train.device
    outer, inner = b.ipc10_loops
    cfg = CondenseConfig(ipc=10, iterations=b.ipc10_iterations, batch_real=b.batch_real, outer_loop=outer,
                         inner_loop=inner, checkpoint_every=10**9)
    stamps = [time.perf_counter()]

    def tick(_it, _loss):
        _sync(dev)
        stamps.append(time.perf_counter())

    condense(d, cfg, seed=SEED, progress=tick)
    per = [b2 - a for a, b2 in zip(stamps, stamps[1:])]
    return {"loops": [outer, inner], "batch_real": b.batch_real, "iterations_timed": len(per),
            "seconds_per_iteration": per, "steady_seconds_per_iteration": per[-1],
            "estimated_K1000_minutes": per[-1] * 1000 / 60}


def environment(dev: torch.device, threads: int) -> dict:
    env = {"device": str(dev), "torch": torch.__version__, "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "python": platform.python_version(), "threads": threads, "host_cpu": platform.processor() or platform.machine()}
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        env.update(device_name=p.name, device_memory_gib=round(p.total_memory / 2**30, 1),
                   multiprocessors=p.multi_processor_count, compute_capability=f"{p.major}.{p.minor}",
                   visible_devices=torch.cuda.device_count(),
                   # the library keeps torch's defaults: TF32 convolutions on, TF32 matmuls off
                   cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                   matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32)
    else:
        env["device_name"] = "cpu"
    return env


def run(device: str = "auto", budget: str = "auto", prepared: Path | None = None, mirrors: list[str] = (),
        cache: Path = Path(".dcpipe/gpu-check"), threads: int = 1, log_every: int = 100) -> dict:
    problem = device_problem(device)
    if device not in ("auto", "cpu", "cuda") or problem:
        raise ParamsError(problem or f"unknown device {device!r}; valid: auto, cpu, cuda")
    dev = pick_device(device)
    if budget not in ("auto", *BUDGETS):
        raise ParamsError(f"unknown budget {budget!r}; valid: auto, {', '.join(BUDGETS)}")
    b = BUDGETS[budget] if budget != "auto" else FULL if dev.type == "cuda" else TINY
    t_start = time.perf_counter()
    out = {"what": "make gpu-check: the CUDA road (lease, CUDA tests, FashionMNIST IPC-1 DC, IPC-10 timing)",
           "budget": {**asdict(b), "test_images": b.test_images or "all"}, **environment(dev, threads)}
    t0 = time.perf_counter()
    path = prepared_dataset(prepared, list(mirrors), cache)  # first: missing data stops the check at once
    prepare_seconds = time.perf_counter() - t0
    # the lease's jobs and the tests' process get the GPU before this process holds memory on it
    out["lease"] = lease_check(cache / "locks", dev.type == "cuda")
    out["cuda_tests"] = cuda_tests()
    t0 = time.perf_counter()
    d = data_mod.load(path, dev)
    out["prepared"], out["data_seconds"] = str(path), prepare_seconds + time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    out["ipc1"] = condense_and_evaluate(d, b, log_every)
    out["ipc10"] = time_ipc10(d, b)
    if dev.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    out["total_seconds"] = time.perf_counter() - t_start
    ev = out["ipc1"]["evaluate"]
    out["checks"] = {
        "lease": out["lease"]["ok"],
        "cuda_tests": out["cuda_tests"]["ok"],
        "accuracies_finite": all(0 <= a <= 100 for k in ("batched", "one_by_one") for a in ev[k]["accuracies"]),
        # same networks either way; on CUDA the kernels' summation order differs, so allow a point of drift
        "batched_agrees_with_one_by_one": ev["mean_difference_points"] <= 1.0,
    }
    out["within_target"] = out["total_seconds"] <= TARGET_SECONDS if b is FULL else None
    out["ok"] = all(out["checks"].values())
    out["provenance"] = provenance()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dcpipe.gpu_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    ap.add_argument("--budget", default="auto", help="auto (full on CUDA, tiny elsewhere) | full | tiny")
    ap.add_argument("--prepared", type=Path, help="a prepared FashionMNIST .npz (default: data/prepared/ or the cache)")
    ap.add_argument("--mirror", action="append", default=["/usr/share/datasets/fashion-mnist"],
                    help="where FashionMNIST's idx files are, after $DCPIPE_DATA_MIRRORS (repeatable)")
    ap.add_argument("--cache", type=Path, default=Path(".dcpipe/gpu-check"), help="prepared data and lock files")
    # one thread: the tiny budget's tensors are small, and on a busy CPU a pool's spinning threads cost more than
    # they give (tests/conftest.py); on CUDA the host threads only launch kernels
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("reports/gpu.json"))
    args = ap.parse_args(argv)
    setup(threads=args.threads)
    with stage_errors():
        res = run(args.device, args.budget, args.prepared, args.mirror, args.cache, args.threads)
    res["command"] = " ".join(["python -m dcpipe.gpu_check"] + (sys.argv[1:] if argv is None else argv))
    write_json(args.out, res)
    ev = res["ipc1"]["evaluate"]
    print(f"{res['device_name']} ({res['device']}), torch {res['torch']}, budget {res['budget']['name']}: "
          f"IPC-1 K = {res['budget']['iterations']} in {res['ipc1']['condense']['seconds']:.1f} s; "
          f"{res['budget']['models']} models {ev['batched']['mean']:.2f} ± {ev['batched']['std']:.2f} batched "
          f"({ev['batched']['seconds']:.1f} s), {ev['one_by_one']['mean']:.2f} ± {ev['one_by_one']['std']:.2f} one by one "
          f"({ev['one_by_one']['seconds']:.1f} s); IPC-10 {res['ipc10']['steady_seconds_per_iteration']:.2f} s per "
          f"outer iteration; tests: {res['cuda_tests'].get('summary', res['cuda_tests'].get('why'))}; "
          f"lease {'ok' if res['lease']['ok'] else 'FAILED'}; total {res['total_seconds']:.0f} s -> {args.out}")
    failed = [k for k, v in res["checks"].items() if not v]
    if failed:
        print(f"error: gpu-check failed: {', '.join(failed)} (details in {args.out})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
