"""Reliability: a killed condensation resumes bit-identically, a diverging one stops cleanly, and bad inputs fail
before any work with a clear message while existing artifacts stay as they were.

Everything here runs the real stage scripts (or the real library) on real MNIST from the local mirror.
"""
from __future__ import annotations

import copy
import gzip
import math
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml

from tests.conftest import DELETE, set_dotted

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
SMOKE = yaml.safe_load((ROOT / ".test/params.yaml").read_text())
PROGRESS_LINE = re.compile(r"(condense|evaluate) \S+ ipc\d+ .*\b1/\d+ value=|score \S+ on \S+ 1/\d+ value=")


def stage_env(**overrides) -> dict:
    """The environment of a stage subprocess: this interpreter's venv first, the worktree's library, one thread."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DCPIPE_FAKE_GPUS="0")  # no GPU lease: a CPU test
    env.update(overrides)
    return env


def tiny_params(**updates) -> dict:
    """.test/params.yaml shrunk to seconds: 20 real images per class, 12 iterations of IPC 1, CPU, one thread."""
    p = copy.deepcopy(SMOKE)
    for section in ("studies", "continual", "nas"):  # the main experiment only
        p.pop(section, None)
    p["data"]["train_subset"] = 20
    p["condense"].update(iterations={1: 12}, checkpoint_every=2, batch_real=8)
    p["runtime"].update(threads=1, log_every=1, device="cpu")
    for dotted, value in updates.items():
        _set(p, dotted, value)
    return p


_set, _DELETE = set_dotted, DELETE


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --- 1. SIGKILL at several points, resume, compare bit for bit ------------------------------------------------

@pytest.mark.slow
def test_a_condensation_killed_with_sigkill_resumes_bit_identical(tmp_path, prepared):
    mnist = prepared("MNIST")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params()))
    env = stage_env()

    def command(out: Path, loss: Path) -> list[str]:
        return [sys.executable, str(SCRIPTS / "condense.py"), "--params", str(params), "--dataset", "MNIST",
                "--ipc", "1", "--set", "0", "--prepared", str(mnist), "--out", str(out), "--loss", str(loss)]

    ref_dir, run_dir, logs = tmp_path / "ref", tmp_path / "run", tmp_path / "logs"
    for d in (ref_dir, run_dir, logs):
        d.mkdir()
    a_npz, a_csv = ref_dir / "A.npz", ref_dir / "A.csv"
    done = subprocess.run(command(a_npz, a_csv), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming from" not in done.stderr

    b_npz, b_csv = run_dir / "B.npz", run_dir / "B.csv"
    ckpt = Path(str(b_npz) + ".ckpt.safetensors")

    def stamp():
        try:
            st = ckpt.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size  # os.replace gives every new checkpoint a new inode

    rng = random.Random(6)  # seeded "random-ish" kill delays: reproducible, still not aligned to anything
    # (what to wait for, extra delay before SIGKILL)
    plan = [("checkpoint", 0.0),                        # the moment the first checkpoint appears
            ("checkpoint", rng.uniform(0.05, 0.35)),    # somewhere in the iterations after a later checkpoint
            ("start-up", rng.uniform(0.3, 1.0)),        # while it is still importing / loading / resuming
            ("checkpoint", rng.uniform(0.05, 0.35))]
    runs = []  # (event, returncode, had_checkpoint_at_start, log text)
    planted = None
    proc = None
    try:
        for i, (event, delay) in enumerate([*plan, ("finish", None)]):
            log_path = logs / f"run{i}.log"
            had_ckpt = stamp() is not None
            if i == 3 and had_ckpt:
                # a checkpoint write killed half-way: the checkpoint survives, its temporary is left behind,
                # and the next run must clear it away (SIGKILL skips atomic_path's clean-up)
                kept = ckpt.read_bytes()
                planted = _killed_mid_write(ckpt, env)
                assert ckpt.read_bytes() == kept
            with open(log_path, "w") as log:
                before = stamp()
                proc = subprocess.Popen(command(b_npz, b_csv), cwd=ROOT, env=env, stdout=log, stderr=log)
                deadline = time.monotonic() + 240
                if event == "checkpoint":
                    while stamp() in (None, before) and proc.poll() is None:
                        assert time.monotonic() < deadline, f"run {i}: no new checkpoint in time"
                        time.sleep(0.005)
                if event != "finish":
                    time.sleep(delay)
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGKILL)
                rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                proc = None
            runs.append((event, rc, had_ckpt, log_path.read_text()))
            if rc == 0:
                break  # the job got to the end before the kill landed: nothing left to interrupt
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)

    summary = [(e, rc) for e, rc, _, _ in runs]
    print("runs (event, returncode):", summary)
    assert runs[-1][1] == 0, f"the last run must complete: {summary}\n{runs[-1][3]}"
    assert all(rc in (0, -signal.SIGKILL) for _, rc, _, _ in runs), f"{summary}\n" + "\n".join(r[3] for r in runs)
    assert sum(rc == -signal.SIGKILL for _, rc, _, _ in runs) >= 2, f"fewer than 2 kills interrupted the job: {summary}"
    for event, rc, had_ckpt, text in runs:
        if had_ckpt and event != "start-up":  # it got past start-up, so it must have said where it resumed
            assert f"resuming from {ckpt}" in text, text
    assert planted is not None and len(runs) > 3, summary
    assert f"removed {planted}, left by a killed run" in runs[3][3], runs[3][3]
    final = runs[-1][3]
    m = re.search(r"resuming from \S+ at iteration (\d+)", final)
    assert m and int(m.group(1)) >= 2, final
    assert f" {int(m.group(1))}/12 " not in final  # iterations before the checkpoint were not recomputed

    with np.load(a_npz, allow_pickle=False) as za, np.load(b_npz, allow_pickle=False) as zb:
        a, b = dict(za), dict(zb)
    assert sorted(a) == sorted(b) == ["images", "labels"]
    assert a["images"].dtype == b["images"].dtype == np.float32
    assert np.array_equal(a["images"], b["images"]) and np.array_equal(a["labels"], b["labels"])
    assert np.isfinite(b["images"]).all()
    assert a_csv.read_bytes() == b_csv.read_bytes()
    assert len(a_csv.read_text().splitlines()) == 13
    # no checkpoint, no temporary of a killed write, nothing but the three outputs
    assert sorted(p.name for p in run_dir.iterdir()) == ["B.csv", "B.npz", "B.npz.json"]
    assert sorted(p.name for p in ref_dir.iterdir()) == ["A.csv", "A.npz", "A.npz.json"]


def _killed_mid_write(path: Path, env) -> Path:
    """SIGKILL a process inside atomic_path(path) after it wrote half its data; return the temporary it left."""
    code = ("import os, signal, sys\nfrom dcpipe.io import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'half a checkpoint')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    r = subprocess.run([sys.executable, "-c", code, str(path)], env=env, timeout=120)
    assert r.returncode == -signal.SIGKILL
    (left,) = [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.") and ".tmp" in p.name]
    return left


# --- 2. a diverging run stops and keeps its last good checkpoint ---------------------------------------------

@pytest.fixture
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_a_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(tmp_path, prepared, one_thread):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    from dcpipe import data
    from dcpipe.condense import CondenseConfig, NonFiniteError, condense

    d = data.load(prepared("MNIST"), train_subset=10)
    # No monkeypatching needed: with lr_img = 1e30 iteration 0 is still finite (its loss is computed before the
    # step, and the step leaves images of ~3e30, below float32's 3.4e38), so its checkpoint is written; in
    # iteration 1 those images overflow the network and the matching loss is nan.
    cfg = CondenseConfig(ipc=1, iterations=4, lr_img=1e30, batch_real=8, checkpoint_every=1)
    ckpt = tmp_path / "DC_set0.npz.ckpt.safetensors"
    seen = []
    with pytest.raises(NonFiniteError, match=r"matching loss became nan at iteration 1, step 0; the last good "
                                             r"checkpoint is kept .*Lower lr_img"):
        condense(d, cfg, seed=0, checkpoint=ckpt, progress=lambda it, loss: seen.append(it))
    assert seen == [0]
    assert ckpt.exists()
    with safe_open(str(ckpt), "pt") as f:
        assert f.metadata()["next_iteration"] == "1"
    saved = load_file(str(ckpt))
    assert set(saved) == {"syn", "losses", "net_updates", "momentum_buffer"}
    assert all(torch.isfinite(t).all() for t in saved.values())
    assert saved["syn"].shape == (10, 1, 28, 28) and len(saved["losses"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == [ckpt.name]  # no temporary left behind

    # the run is deterministic, so resuming hits the same wall again, and the good checkpoint survives that too
    before = ckpt.read_bytes()
    with pytest.raises(NonFiniteError, match="at iteration 1"):
        condense(d, cfg, seed=0, checkpoint=ckpt)
    assert ckpt.read_bytes() == before


NO_CHECKPOINT = "no checkpoint was written before it, so a rerun starts from the beginning. Lower lr_img or check the data."


# lr_img = 3e38 is still a float32 (SGD refuses one that is not), but the step lr * grad overflows it wherever
# |grad| > 1.14 (the largest gradient of iteration 0 here is ~2.9): the loss of iteration 0 is finite, the images it
# leaves are not. lr_img = 1e30 diverges in iteration 1 (see the test above), here before the first checkpoint.
@pytest.mark.parametrize("lr_img, iterations, every, message", [
    (3e38, 2, 1, f"synthetic images became non-finite at iteration 0; {NO_CHECKPOINT}"),
    (1e30, 4, 2, f"matching loss became nan at iteration 1, step 0; {NO_CHECKPOINT}"),
], ids=["images-in-iteration-0", "loss-before-the-first-checkpoint"])
def test_a_run_diverging_before_any_checkpoint_stops_and_does_not_claim_one_is_kept(
        lr_img, iterations, every, message, tmp_path, prepared, one_thread):
    from dcpipe import data
    from dcpipe.condense import CondenseConfig, NonFiniteError, condense

    d = data.load(prepared("MNIST"), train_subset=10)
    cfg = CondenseConfig(ipc=1, iterations=iterations, lr_img=lr_img, batch_real=8, checkpoint_every=every)
    with pytest.raises(NonFiniteError) as diverged:
        condense(d, cfg, seed=0, checkpoint=tmp_path / "DC_set0.npz.ckpt.safetensors")
    assert str(diverged.value) == message
    assert list(tmp_path.iterdir()) == []  # no good iteration checkpointed (and never a non-finite one)


# --- 3. bad inputs: a clear error before any work, existing artifacts untouched --------------------------------

@dataclass
class Ctx:
    tmp: Path
    mnist: Path            # the session's real prepared MNIST (read only)
    mirrors: list
    params: dict           # written to params_file unless a setup wrote the file itself
    params_file: Path
    args: dict             # command-line options of the stage
    env: dict
    art: Path              # where the job's outputs (the existing artifacts) sit
    write_params: bool = True
    after: list = field(default_factory=list)  # extra checks after the run


@dataclass(frozen=True)
class Bad:
    id: str
    expect: tuple[str, ...]    # fragments of the message; {params}, {tmp}, {art}, {mnist} are filled in
    stage: str = "condense"    # condense | evaluate | download | prepare_data | select_coreset | score (`dcpipe score`)
    edit: dict = field(default_factory=dict)   # dotted params key -> value (_DELETE removes it)
    args: dict = field(default_factory=dict)   # command-line overrides (PATH: the set `dcpipe score` reads)
    setup: Callable[[Ctx], None] | None = None
    names_params: bool = False  # a config error: the message must name the parameter file
    line: str | None = None     # the exact `error:` line (filled in like expect), where the case states it


def _raw_params(text):
    def setup(ctx):
        ctx.params_file.write_text(text)
        ctx.write_params = False
    return setup


def _duplicate_key(ctx):
    ctx.params_file.write_text("seed: 0\nseed: 1\n" + yaml.safe_dump({k: v for k, v in ctx.params.items() if k != "seed"}))
    ctx.write_params = False


def _written_first(dotted: str, flow: str):
    """The parameter file with key `dotted` (a section, or section.key) written first as the flow mapping `flow`,
    the rest of the parameters after it in block style."""
    def setup(ctx):
        section, _, key = dotted.partition(".")
        rest = copy.deepcopy(ctx.params)
        inner = rest.pop(section)
        head = f"{section}: {flow}\n"
        if key:
            del inner[key]
            head = f"{section}:\n  {key}: {flow}\n" + textwrap.indent(yaml.safe_dump(inner), "  ")
        ctx.params_file.write_text(head + yaml.safe_dump(rest))
        ctx.write_params = False
    return setup


def _no_cuda(ctx):
    ctx.env["CUDA_VISIBLE_DEVICES"] = ""  # hides every GPU: the case holds on a GPU machine too


def _file_in_the_way(option: str):
    """The job's output under results/MNIST/, where results is a file."""
    def setup(ctx):
        (ctx.tmp / "results").write_text("notes\n")
        ctx.args[option] = str(ctx.tmp / "results" / "MNIST" / Path(ctx.args[option]).name)
    return setup


def _planned_from_other_values(ctx):
    from dcpipe.config import PLANNED_PARAMS

    ctx.env[PLANNED_PARAMS] = f"0123456789abcdef {ctx.params_file.resolve()}"  # what Snakemake's onstart recorded


def _missing_params(ctx):
    ctx.write_params = False
    ctx.args["--params"] = str(ctx.tmp / "paramz.yaml")


def _no_mirror(ctx):
    ctx.env["DCPIPE_DATA_MIRRORS"] = str(ctx.tmp / "no-such-env-mirror")
    ctx.params["data"]["mirrors"] = [str(ctx.tmp / "no-such-params-mirror")]
    ctx.params["data"]["download"] = False


def _mirror_copy(ctx, corrupt: Callable[[Path], Path]) -> None:
    """A mirror of symlinks to the real MNIST files, one of which `corrupt` replaces by a damaged copy."""
    from tests.conftest import require_dataset

    mirror = ctx.tmp / "mirror"
    for rel, src in require_dataset("MNIST", ctx.mirrors).items():  # present: the `prepared` fixture needed them
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        (mirror / rel).symlink_to(src)
    corrupt(mirror / "MNIST/raw/t10k-labels-idx1-ubyte")
    ctx.env["DCPIPE_DATA_MIRRORS"] = ""
    ctx.params["data"]["mirrors"] = [str(mirror)]


def _truncated_idx(ctx):
    def corrupt(link):
        data = link.read_bytes()
        link.unlink()
        link.write_bytes(data[:5000])
    _mirror_copy(ctx, corrupt)


def _truncated_gz(ctx):
    def corrupt(link):
        gz = gzip.compress(link.read_bytes())
        link.unlink()
        link.with_name(link.name + ".gz").write_bytes(gz[: len(gz) // 2])
    _mirror_copy(ctx, corrupt)


def _prepared_copy(ctx, npz_bytes: bytes | None, with_json: bool = True):
    bad = ctx.tmp / "prepared" / "MNIST.npz"
    bad.parent.mkdir()
    if npz_bytes is None:
        bad.symlink_to(ctx.mnist)
    else:
        bad.write_bytes(npz_bytes)
    if with_json:
        Path(str(bad) + ".json").write_bytes(Path(str(ctx.mnist) + ".json").read_bytes())
    ctx.args["--prepared"] = str(bad)


def _small_npz_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros((10, 1, 28, 28), np.uint8), y_train=np.arange(10))
    return buf.getvalue()


def _train_set(name: str, **arrays):
    """An evaluate case whose --train-set is a readable .npz holding `arrays` (and a .json beside it)."""
    def setup(ctx):
        path = ctx.tmp / "trainset" / name
        path.parent.mkdir()
        np.savez(path, **arrays)
        Path(str(path) + ".json").write_text("{}")
        ctx.args["--train-set"] = str(path)
        ctx.args["--method"] = name.partition("_set")[0]
    return setup


def _one_pixel(value: float) -> np.ndarray:
    """Ten normalised-looking MNIST images (one per class) whose pixels are all finite but one, set to `value`."""
    images = np.full((10, 1, 28, 28), -0.4, np.float32)
    images[3, 0, 5, 5] = value
    return images


def _scored_set(**arrays):
    """A score case whose set (PATH) is an .npz holding `arrays`."""
    def setup(ctx):
        np.savez(ctx.args["PATH"], **arrays)
    return setup


def _no_prepared_option(ctx):
    del ctx.args["--prepared"]  # the default, data/prepared/MNIST.npz in the (empty) working folder


def _evidence(ctx):
    path = ctx.tmp / "evidence" / "features.npz"
    path.parent.mkdir()
    np.savez(path, counts=np.zeros(200, np.int64))  # forgetting's array where herding reads features
    ctx.args["--evidence"] = str(path)


class _Exploit:
    """Unpickling this would create a marker file: a crafted 'artifact'."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickled_train_set(ctx):
    marker = ctx.tmp / "pwned"
    crafted = ctx.tmp / "trainset" / "DC_set0.npz"
    crafted.parent.mkdir()
    crafted.write_bytes(pickle.dumps(_Exploit(marker)))
    Path(str(crafted) + ".json").write_text("{}")
    ctx.args["--train-set"] = str(crafted)
    ctx.after.append(lambda: not marker.exists())


def _pickled_score_set(raw: bool):
    """An authors'-layout res_*.pt for `dcpipe score` that also carries code: saved by torch.save, or pickled
    straight (raw)."""
    def setup(ctx):
        import torch

        marker = ctx.tmp / "pwned"
        crafted = ctx.tmp / "scored" / "res.pt"
        obj = {"data": [[torch.zeros(10, 1, 28, 28), torch.arange(10)]], "payload": _Exploit(marker)}
        crafted.write_bytes(pickle.dumps(obj)) if raw else torch.save(obj, crafted)
        ctx.args["PATH"] = str(crafted)
        ctx.after.append(lambda: not marker.exists())
    return setup


def _checkpoint(content: Callable[[], bytes]):
    def setup(ctx):
        Path(str(ctx.art / "DC_set0.npz") + ".ckpt.safetensors").write_bytes(content())
    return setup


def _foreign_checkpoint() -> bytes:
    import torch
    from safetensors.torch import save

    return save({"syn": torch.zeros(10, 1, 28, 28), "losses": torch.zeros(2, dtype=torch.float64)},
                metadata={"next_iteration": "2", "fingerprint": "written by other settings"})


# the whole training split (no train_subset), and an IPC of 6000 beside the jobs' IPC 1, with every budget it needs
_AT_IPC_6000 = {"data.train_subset": None, "experiment.ipcs": [1, 6000], "condense.iterations": {1: 12, 6000: 1},
                "condense.loops": {1: [1, 1], 6000: [1, 1]}, "evaluate.epochs": {1: 5, 6000: 5},
                "evaluate.epochs_augmented": {1: 5, 6000: 5}}

BAD_INPUTS = [
    # config typos / unknown keys
    Bad("typo-condense-key", ("condense: Additional properties are not allowed ('iteratons' was unexpected)",
                              "valid keys:", "iterations"), edit={"condense.iteratons": 5}, names_params=True),
    Bad("typo-runtime-key", ("runtime: Additional properties are not allowed ('thread' was unexpected)",
                             "valid keys: device, fused, log_every, threads"), edit={"runtime.thread": 1}, names_params=True),
    Bad("unknown-top-level-key", ("(top level): Additional properties are not allowed ('seeed' was unexpected)",),
        edit={"seeed": 0}, names_params=True),
    Bad("missing-section", ("(top level): 'evaluate' is a required property",), edit={"evaluate": _DELETE},
        names_params=True),
    Bad("not-yaml", ("not valid YAML", 'in "{params}", line 1, column 7'), names_params=True,  # the file, named
        setup=_raw_params("seed: [0\nruntime: {threads: 1}\n"),
        line="error: {params}: not valid YAML: while parsing a flow sequence"),
    Bad("empty-params-file", ("empty; expected a mapping of sections such as seed, data, experiment",),
        setup=_raw_params("# nothing yet\n"), names_params=True,
        line="error: {params}: empty; expected a mapping of sections such as seed, data, experiment"),
    Bad("params-file-of-a-list", ("expected a mapping of sections such as seed, data, experiment, got a list",),
        setup=_raw_params("- seed: 0\n"), names_params=True,
        line="error: {params}: expected a mapping of sections such as seed, data, experiment, got a list"),
    Bad("missing-params-file", ("paramz.yaml: parameter file not found",), setup=_missing_params),
    Bad("duplicate-key", ("duplicate key 'seed' at line 2 (first at line 1); keep one of them",), setup=_duplicate_key,
        names_params=True),
    Bad("duplicate-key-in-a-flow-mapping", ("duplicate key 1 at line 2, column 29",),
        setup=_written_first("condense.iterations", "{1: 3, 10: 1, 1: 30}"), names_params=True,
        line="error: {params}: duplicate key 1 at line 2, column 29 (first at column 16); keep one of them"),
    Bad("duplicate-section-key-in-a-flow-mapping", ("duplicate key 'threads' at line 1, column 23",),
        setup=_written_first("runtime", "{threads: 1, threads: 2}"), names_params=True,
        line="error: {params}: duplicate key 'threads' at line 1, column 23 (first at column 11); keep one of them"),
    # wrong types
    Bad("seed-string", ("seed: 'zero' is not of type 'integer'",), edit={"seed": "zero"}, names_params=True),
    Bad("lr-img-string", ("condense.lr_img: '0.1' is not of type 'number'",), edit={"condense.lr_img": "0.1"},
        names_params=True),
    Bad("batch-real-float", ("condense.batch_real: 8.5 is not of type 'integer'",), edit={"condense.batch_real": 8.5},
        names_params=True),
    Bad("mirrors-string", ("data.mirrors: '/srv/data' is not of type 'array'",), edit={"data.mirrors": "/srv/data"},
        names_params=True),
    Bad("loops-not-a-pair", ("condense.loops.1: 1 is not of type 'array'",), edit={"condense.loops": {1: 1}},
        names_params=True),
    # a device this machine lacks: an error at the stage's start (check-params, maybe on a head node, warns)
    Bad("cuda-without-cuda", ("runtime.device is 'cuda' but torch.cuda.is_available() is False on this machine; "
                              "use 'auto' or 'cpu'",), edit={"runtime.device": "cuda"}, setup=_no_cuda,
        names_params=True),
    # NaN / inf (JSON Schema bounds let them through; config rejects them)
    Bad("lr-img-nan", ("condense.lr_img: nan is not a finite number",), setup=_raw_params(
        yaml.safe_dump(tiny_params()).replace("batch_real: 8", "batch_real: 8\n  lr_img: .nan")), names_params=True),
    Bad("lr-net-inf", ("condense.lr_net: inf is not a finite number",), edit={"condense.lr_net": math.inf},
        names_params=True),
    # unknown names
    Bad("unknown-dataset-in-params", ("experiment.datasets[1]: unknown name 'MNSIT'; valid: MNIST",),
        edit={"experiment.datasets": ["MNIST", "MNSIT"]}, names_params=True),
    Bad("unknown-model", ("condense.model: unknown name 'ConvNot'; valid: ConvNet",), edit={"condense.model": "ConvNot"},
        names_params=True),
    Bad("unknown-distance", ("condense.distance: unknown name 'l2'; valid: ours, improved",),
        edit={"condense.distance": "l2"}, names_params=True),
    Bad("unknown-method", ("experiment.methods[1]: unknown name 'herd'; valid: DC, M, MD, MDO, MDA, DSA, DM, random, herding, "
                           "kcenter, forgetting",),
        edit={"experiment.methods": ["DC", "herd"]}, names_params=True),
    Bad("coreset-method-without-whole-set", ("coresets: methods herding select from a model trained on the whole set",),
        edit={"experiment.methods": ["DC", "herding"], "coresets": _DELETE}, names_params=True),
    Bad("unknown-init", ("condense.init: 'zeros' is not one of noise, real",), edit={"condense.init": "zeros"},
        names_params=True),
    Bad("unknown-eval-model", ("evaluate.model: unknown name 'ResNet19'",), stage="evaluate",
        edit={"evaluate.model": "ResNet19"}, names_params=True),
    Bad("unknown-dataset-on-command-line", ("--dataset 'MNSIT': not planned by this file (datasets: MNIST)",),
        args={"--dataset": "MNSIT"}, names_params=True),
    Bad("unknown-dataset-to-prepare", ("unknown dataset 'MNSIT'; valid: MNIST, FashionMNIST",), stage="prepare_data",
        args={"--dataset": "MNSIT"}),
    # IPC without a loop schedule, impossible budgets
    Bad("ipc-without-loop-schedule", ("condense.loops: IPC 7 has no outer/inner loop schedule",),
        edit={"experiment.ipcs": [1, 7], "condense.iterations": {1: 12, 7: 2}, "evaluate.epochs": {1: 5, 7: 5},
              "evaluate.epochs_augmented": {1: 5, 7: 5}}, names_params=True),
    Bad("ipc-on-command-line-not-planned", ("--ipc 7 --method 'DC': not planned for MNIST",), args={"--ipc": "7"},
        names_params=True),
    Bad("train-subset-below-ipc", ("data.train_subset: 5 images per class cannot hold IPC 10",),
        edit={"data.train_subset": 5, "experiment.ipcs": [1, 10], "condense.iterations": {1: 12, 10: 2},
              "condense.loops": {1: [1, 1], 10: [10, 50]}, "evaluate.epochs": {1: 5, 10: 5},
              "evaluate.epochs_augmented": {1: 5, 10: 5}}, names_params=True),
    Bad("ipc-larger-than-a-class", ("experiment.ipcs: IPC 6000 is more than MNIST's smallest class holds: 5421 "
                                     "training images in class 5; use at most 5421 images per class",),
        edit=_AT_IPC_6000, names_params=True, line="error: {params}: invalid parameters:"),
    Bad("ipc-larger-than-a-class-at-selection", ("experiment.ipcs: IPC 6000 is more than MNIST's smallest class",),
        stage="select_coreset", edit=_AT_IPC_6000, names_params=True, line="error: {params}: invalid parameters:"),
    # an output folder that cannot be made (a read-only or full one: tests/test_full_disk.py, on a tmpfs)
    Bad("output-folder-is-a-file", ("{tmp}/results is a file, not a folder",), setup=_file_in_the_way("--out"),
        line="error: {tmp}/results/MNIST: the output folder cannot be made: {tmp}/results is a file, not a folder; "
             "move it away or write elsewhere, then rerun (nothing was started)"),
    Bad("score-output-folder-is-a-file", ("{tmp}/results is a file, not a folder",), stage="score",
        setup=_file_in_the_way("--out"),
        line="error: {tmp}/results/MNIST: the output folder cannot be made: {tmp}/results is a file, not a folder; "
             "move it away or write elsewhere, then rerun (nothing was started)"),
    # the file edited while its run goes: a job planned from other values is refused at its start
    Bad("params-edited-after-planning", ("{params}: changed after this run was planned (values 0123456789abcdef then, ",
                                         " now); its jobs must all use one version: restore the file, or stop the run "
                                         "and start it again to plan from the new values"),
        setup=_planned_from_other_values, names_params=True),
    # missing and corrupt data
    Bad("missing-mirror", ("dataset MNIST not found offline, and data.download is false",
                           "{tmp}/no-such-env-mirror  (does not exist)", "{tmp}/no-such-params-mirror  (does not exist)",
                           "How to get it: set data.download: true"), stage="download", setup=_no_mirror),
    Bad("truncated-idx-file", ("{tmp}/mirror/MNIST/raw/t10k-labels-idx1-ubyte: checksum mismatch",
                               "truncated or corrupt; replace it"), stage="download", setup=_truncated_idx),
    Bad("truncated-gz-file", ("{tmp}/mirror/MNIST/raw/t10k-labels-idx1-ubyte.gz: unreadable or truncated",
                              "replace it with a fresh copy"), stage="download", setup=_truncated_gz),
    Bad("garbage-prepared-npz", ("{tmp}/prepared/MNIST.npz: not a readable .npz artifact", "rerun the stage"),
        setup=lambda ctx: _prepared_copy(ctx, b"previous artifact, not an npz" * 8),
        line="error: {tmp}/prepared/MNIST.npz: not a readable .npz artifact (not a zip of arrays); delete it and "
             "rerun the stage"),  # not numpy's advice to load it as a pickle
    Bad("truncated-prepared-npz", ("{tmp}/prepared/MNIST.npz: not a readable .npz artifact", "rerun the stage"),
        setup=lambda ctx: _prepared_copy(ctx, _small_npz_bytes()[:300])),
    Bad("prepared-npz-without-metadata", ("{tmp}/prepared/MNIST.npz.json: metadata of the prepared dataset is "
                                          "missing", "rerun prepare_data"),
        setup=lambda ctx: _prepared_copy(ctx, None, with_json=False)),
    Bad("pickle-as-train-set", ("{tmp}/trainset/DC_set0.npz: refused: it holds pickled Python objects",),
        stage="evaluate", setup=_pickled_train_set,
        line="error: {tmp}/trainset/DC_set0.npz: refused: it holds pickled Python objects, which can carry code and "
             "are never loaded; delete it and rerun the stage that writes it"),
    Bad("score-raw-pickle-as-pt", ("{tmp}/scored/res.pt: refused: it holds pickled Python objects",), stage="score",
        setup=_pickled_score_set(raw=True),
        line="error: {tmp}/scored/res.pt: refused: it holds pickled Python objects, which can carry code and are never "
             "loaded; save the set with safetensors, or as an .npz of images and labels"),
    Bad("score-pt-carrying-code", ("{tmp}/scored/res.pt: refused: it holds pickled Python objects",), stage="score",
        setup=_pickled_score_set(raw=False), line="error: {tmp}/scored/res.pt: refused: it holds pickled Python objects (it names "
                                       "posix.system), which can carry code and are never loaded; save the set with "
                                       "safetensors, or as an .npz of images and labels"),
    # artifacts of the wrong kind or of another dataset: named, with what was expected, before any model trains
    Bad("train-set-of-unknown-keys", ("{tmp}/trainset/DC_set0.npz: has arrays x, y, expected images and labels (a "
                                      "condensed set) or indices (a coreset)",), stage="evaluate",
        setup=_train_set("DC_set0.npz", x=np.zeros((10, 1, 28, 28), np.float32), y=np.arange(10))),
    Bad("train-set-of-another-image-shape", ("{tmp}/trainset/DC_set0.npz: float32 images of shape (10, 3, 32, 32) "
                                             "(N, C, H, W); the prepared MNIST has 1x28x28 images and labels 0..9: "
                                             "rerun the stage that wrote it",), stage="evaluate",
        setup=_train_set("DC_set0.npz", images=np.zeros((10, 3, 32, 32), np.float32), labels=np.arange(10))),
    Bad("train-set-labels-out-of-range", ("{tmp}/trainset/DC_set0.npz: labels 5..14; the prepared MNIST has 1x28x28 "
                                          "images and labels 0..9",), stage="evaluate",
        setup=_train_set("DC_set0.npz", images=np.zeros((10, 1, 28, 28), np.float32), labels=np.arange(5, 15))),
    Bad("train-set-holding-nan", ("{tmp}/trainset/DC_set0.npz: 1 of 7840 pixel values are not finite",),
        stage="evaluate", setup=_train_set("DC_set0.npz", images=_one_pixel(math.nan), labels=np.arange(10)),
        line="error: {tmp}/trainset/DC_set0.npz: 1 of 7840 pixel values are not finite (1 nan, 0 inf); the prepared "
             "MNIST has 1x28x28 images and labels 0..9: rerun the stage that wrote it"),
    Bad("train-set-holding-inf", ("{tmp}/trainset/DC_set0.npz: 1 of 7840 pixel values are not finite",),
        stage="evaluate", setup=_train_set("DC_set0.npz", images=_one_pixel(-math.inf), labels=np.arange(10)),
        line="error: {tmp}/trainset/DC_set0.npz: 1 of 7840 pixel values are not finite (0 nan, 1 inf); the prepared "
             "MNIST has 1x28x28 images and labels 0..9: rerun the stage that wrote it"),
    Bad("train-set-label-below-zero", ("{tmp}/trainset/DC_set0.npz: labels -1..8;",), stage="evaluate",
        setup=_train_set("DC_set0.npz", images=np.zeros((10, 1, 28, 28), np.float32), labels=np.arange(-1, 9)),
        line="error: {tmp}/trainset/DC_set0.npz: labels -1..8; the prepared MNIST has 1x28x28 images and labels "
             "0..9: rerun the stage that wrote it"),
    Bad("coreset-indices-out-of-range", ("{tmp}/trainset/random_set0.npz: indices 0..1000000 into 200 training images;",),
        stage="evaluate", setup=_train_set("random_set0.npz", indices=np.array([0, 5, 10**6]))),
    # `dcpipe score`: the same checks and the same one line, before any network trains
    Bad("score-unknown-dataset", ("--dataset: unknown dataset 'mnist'; valid: MNIST, FashionMNIST",), stage="score",
        setup=_no_prepared_option, args={"--dataset": "mnist"},
        line="error: --dataset: unknown dataset 'mnist'; valid: MNIST, FashionMNIST, SVHN, CIFAR10, CIFAR100, "
             "CIFAR10_subset, USPS, MNIST_RGB32, USPS_RGB32"),
    Bad("score-dataset-not-prepared", ("make it first: snakemake",), stage="score", setup=_no_prepared_option,
        line="error: data/prepared/MNIST.npz: prepared MNIST not found; make it first: snakemake --cores 1 "
             "--config params={params} data/prepared/MNIST.npz"),
    Bad("score-entry-of-an-npz", ("--entry 0: applies to the authors' res_*.pt files",), stage="score",
        args={"--entry": "0"}, line="error: --entry 0: applies to the authors' res_*.pt files (a list of [images, "
                                    "labels] pairs); {tmp}/scored/DC_set0.npz holds one set: drop --entry"),
    Bad("score-set-holding-nan", ("1 of 7840 pixel values are not finite (1 nan, 0 inf)",), stage="score",
        setup=_scored_set(images=_one_pixel(math.nan), labels=np.arange(10)),
        line="error: {tmp}/scored/DC_set0.npz: 1 of 7840 pixel values are not finite (1 nan, 0 inf); MNIST has "
             "1x28x28 images and labels 0..9"),
    Bad("evidence-without-its-array", ("{tmp}/evidence/features.npz: has arrays counts, expected features; rerun the "
                                       "stage that writes it",), stage="select_coreset", setup=_evidence),
    Bad("corrupt-checkpoint", ("checkpoint {art}/DC_set0.npz.ckpt.safetensors is unreadable",
                               "delete it to start afresh"), setup=_checkpoint(lambda: b"half a checkpoint")),
    Bad("checkpoint-of-other-settings", ("checkpoint {art}/DC_set0.npz.ckpt.safetensors was written with other "
                                         "settings; delete it to start afresh",), setup=_checkpoint(_foreign_checkpoint)),
]


def _existing_artifacts(stage: str, art: Path) -> list[Path]:
    names = {"condense": ["DC_set0.npz", "DC_set0.npz.json", "DC_set0_loss.csv"],
             "evaluate": ["DC_set0.json"], "prepare_data": ["MNIST.npz", "MNIST.npz.json"], "download": ["MNIST.json"],
             "select_coreset": ["herding_set0.npz", "herding_set0.npz.json"], "score": ["DC_set0.score.json"]}[stage]
    for n in names:
        (art / n).write_bytes(b"previous artifact " + n.encode())
    return [art / n for n in names]


def _base_args(stage: str, ctx: Ctx, outputs: list[Path]) -> dict:
    common = {"--params": str(ctx.params_file), "--dataset": "MNIST"}
    if stage == "prepare_data":
        return {**common, "--raw": str(ctx.tmp / "raw/MNIST.json"), "--out": str(outputs[0])}
    if stage == "download":
        return {**common, "--out": str(outputs[0])}
    if stage == "score":  # a valid condensed set, scored on the real MNIST
        path = ctx.tmp / "scored" / "DC_set0.npz"
        path.parent.mkdir()
        np.savez(path, images=np.full((10, 1, 28, 28), -0.4, np.float32), labels=np.arange(10))
        return {"PATH": str(path), **common, "--prepared": str(ctx.mnist), "--out": str(outputs[0])}
    job = {**common, "--ipc": "1", "--set": "0", "--prepared": str(ctx.mnist)}
    if stage == "condense":
        return {**job, "--out": str(outputs[0]), "--loss": str(outputs[2])}
    if stage == "select_coreset":  # herding, from valid whole-set features of the 10 x 20 training images
        features = ctx.tmp / "evidence_ok" / "features.npz"
        features.parent.mkdir()
        np.savez(features, features=np.zeros((200, 8), np.float32))
        return {**job, "--method": "herding", "--out": str(outputs[0]), "--evidence": str(features)}
    train_set = ctx.tmp / "trainset_ok" / "DC_set0.npz"  # a valid condensed set, for the evaluate cases
    train_set.parent.mkdir()
    np.savez(train_set, images=np.zeros((10, 1, 28, 28), np.float32), labels=np.arange(10))
    Path(str(train_set) + ".json").write_text("{}")
    return {**job, "--method": "DC", "--train-set": str(train_set), "--out": str(outputs[0])}


def _command(stage: str, args: dict) -> list[str]:
    """A stage script with its options, or `dcpipe score PATH` with its options."""
    options = [x for key, value in args.items() if key != "PATH" for x in (key, value)]
    if stage == "score":
        return [sys.executable, "-m", "dcpipe.cli", "score", args["PATH"], *options]
    return [sys.executable, str(SCRIPTS / f"{stage}.py"), *options]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_a_bad_input_fails_before_work_with_a_clear_error_and_leaves_artifacts(case, tmp_path, prepared, mirrors):
    art = tmp_path / "art"
    art.mkdir()
    outputs = _existing_artifacts(case.stage, art)
    params = tiny_params(**{"experiment.datasets": ["MNIST"], "experiment.ipcs": [1],
                            "data.mirrors": [str(m) for m in mirrors]})
    ctx = Ctx(tmp=tmp_path, mnist=prepared("MNIST"), mirrors=mirrors, params=params,
              params_file=tmp_path / "params.yaml", args={}, env=stage_env(), art=art)
    ctx.args = _base_args(case.stage, ctx, outputs)
    for key, value in case.edit.items():
        _set(ctx.params, key, value)
    ctx.args.update(case.args)
    if case.setup:
        case.setup(ctx)
    if ctx.write_params:
        ctx.params_file.write_text(yaml.safe_dump(ctx.params))
    before = snapshot(art)

    r = subprocess.run(_command(case.stage, ctx.args), cwd=tmp_path, env=ctx.env, capture_output=True, text=True, timeout=180)
    out = r.stdout + r.stderr

    assert r.returncode == 2, out                          # (a) a non-zero exit, the one for a user error
    assert "Traceback" not in out, out                     # a clear message, not a stack trace
    assert "error: " in r.stderr, out
    fill = {"params": str(ctx.params_file), "tmp": str(tmp_path), "art": str(art), "mnist": str(ctx.mnist)}
    for fragment in case.expect:                           # (b) the message says what is wrong, where
        assert fragment.format(**fill) in r.stderr, out
    if case.names_params:
        assert f"error: {ctx.args['--params']}: " in r.stderr, out
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out                           # one error line (a config error's keys follow it)
    assert "Warning" not in out, out                       # and no library warning before it
    if case.line:
        assert errors[0] == case.line.format(**fill), out
    assert snapshot(art) == before                         # (c) existing artifacts untouched, no temporaries,
    assert not [p for p in (tmp_path / "data/raw").rglob("*") if p.is_file()], out  # no staged source copy
    assert not PROGRESS_LINE.search(out), out              # (d) it failed before the first iteration / model
    assert all(check() for check in ctx.after), out


def test_the_bad_input_table_covers_every_category():
    ids = {c.id for c in BAD_INPUTS}
    assert len(BAD_INPUTS) >= 20 and len(ids) == len(BAD_INPUTS)
    assert {"condense", "evaluate", "download", "prepare_data", "select_coreset", "score"} == {c.stage for c in BAD_INPUTS}
    for needed in ("typo-condense-key", "seed-string", "unknown-dataset-in-params", "unknown-model",
                   "unknown-distance", "unknown-method", "ipc-without-loop-schedule", "train-subset-below-ipc",
                   "missing-mirror", "truncated-idx-file", "garbage-prepared-npz", "pickle-as-train-set",
                   "lr-img-nan", "duplicate-key", "cuda-without-cuda", "train-set-of-another-image-shape",
                   "train-set-labels-out-of-range", "evidence-without-its-array", "train-set-holding-nan",
                   "train-set-holding-inf", "duplicate-key-in-a-flow-mapping",
                   "duplicate-section-key-in-a-flow-mapping", "score-unknown-dataset", "score-pt-carrying-code",
                   "score-raw-pickle-as-pt", "empty-params-file", "train-set-label-below-zero",
                   "score-entry-of-an-npz", "score-dataset-not-prepared", "ipc-larger-than-a-class",
                   "ipc-larger-than-a-class-at-selection", "params-edited-after-planning",
                   "output-folder-is-a-file", "score-output-folder-is-a-file"):
        assert needed in ids


@pytest.mark.parametrize("dotted, value, line", [
    ("experiment.ipcs", [1, 600], None),  # MNIST's classes hold 5421 or more
    ("experiment.datasets", ["USPS"], "  experiment.ipcs: IPC 600 is more than USPS's smallest class holds: 542 "
                                      "training images in class 8; use at most 542 images per class"),
    ("continual", {"tasks": ["SVHN", "USPS", "MNIST"], "memories": ["herding"], "memory_per_class": 543},
     "  continual.memory_per_class: IPC 543 is more than USPS's smallest class holds: 542 training images in class "
     "8; use at most 542 images per class"),
    ("nas", {"dataset": "CIFAR10_subset", "validation": 400, "ipc": 330},
     "  nas.ipc: IPC 330 is more than CIFAR10_subset's smallest class holds: 329 training images (about, once "
     "nas.validation holds 400 images out) in class 1; use at most 329 images per class"),
], ids=["fits", "usps", "continual-memory", "nas-search-split"])
def test_an_ipc_is_checked_against_the_smallest_class_of_its_dataset(dotted, value, line):
    """The class counts are the datasets' known training splits (DatasetSpec.train_class_counts): no data read."""
    from dcpipe.config.checks import class_sizes

    params = tiny_params(**{"data.train_subset": None, "experiment.ipcs": [1, 600]})
    if dotted in ("nas", "continual"):  # the smoke test's continual section; of nas, the keys the check reads
        params["experiment"]["ipcs"] = [1]
        value = {**copy.deepcopy(SMOKE["continual"]), **value} if dotted == "continual" else value
    _set(params, dotted, value)
    assert class_sizes(params) == ([line] if line else [])
    params["data"]["train_subset"] = 20  # then train_subset bounds the IPC, and its own check says so
    assert class_sizes(params) == []


def _set_with_a_non_finite_pixel(path: Path, value: float) -> Path:
    """A condensed MNIST set (_one_pixel), with its .json beside it as a stage writes it."""
    from dcpipe.data import rgb32_name

    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=_one_pixel(value), labels=np.arange(10))
    Path(str(path) + ".json").write_text(f'{{"dataset": "{rgb32_name("MNIST")}", "ipc": 10, "seed": 0, '
                                         '"config": {"iterations": 1}}')
    return path


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_a_set_holding_nan_or_inf_is_refused_by_every_reader_before_training(value, tmp_path, prepared, monkeypatch):
    """evaluate, evaluate_cross, continual's DC memory and score read a condensed set: each refuses one holding a
    non-finite pixel before any network trains, and nothing is written under data/eval (or beside the result)."""
    from dcpipe import continual as cl_mod, score as score_mod
    from dcpipe.config import validate_params
    from dcpipe.errors import ArtifactError
    from dcpipe.jobs import continual_job, evaluate_job, score_job
    from dcpipe.stages import evaluate as evaluate_mod
    from dcpipe.stages.continual import continual
    from dcpipe.stages.evaluate_cross import evaluate_cross
    from dcpipe.stages.score import score as score_file

    def train(*args, **kwargs):
        raise AssertionError("a network trained on a set holding a non-finite pixel")

    for module, name in ((evaluate_mod, "train_models"), (evaluate_mod, "train_models_batched"),
                         (score_mod, "train_models"), (cl_mod, "run")):
        monkeypatch.setattr(module, name, train)
    params = tiny_params(**{"continual": copy.deepcopy(SMOKE["continual"]), "condense.iterations": {1: 12, 10: 1},
                            "condense.loops": {1: [1, 1], 10: [2, 2]}})
    validate_params(params)  # valid parameters (and their IPC tables keyed as a loaded file's)
    mnist = prepared("MNIST")
    bad = _set_with_a_non_finite_pixel(tmp_path / "data/condensed/MNIST/ipc1/DC_set0.npz", value)
    out = tmp_path / "data/eval"
    kind = "nan" if math.isnan(value) else "inf"
    problem = f"1 of 7840 pixel values are not finite ({int(kind == 'nan')} nan, {int(kind == 'inf')} inf)"
    stage_message = f"{bad}: {problem}; the prepared MNIST has 1x28x28 images and labels 0..9: rerun the stage that wrote it"
    readers = {
        "evaluate": (lambda: evaluate_mod.evaluate(evaluate_job(params, "MNIST", 1, "DC", 0), mnist, bad,
                                                   out / "MNIST/ipc1/DC_set0.json"), stage_message),
        "evaluate_cross": (lambda: evaluate_cross(evaluate_job(params, "MNIST", 1, "DC", 0, "LeNet"), mnist, bad,
                                                  out / "cross/DC_set0_on_LeNet.json"), stage_message),
        "continual": (lambda: continual(continual_job(params, 0), [mnist, mnist], [bad], out / "continual/run0.json"),
                      stage_message),
        "score": (lambda: score_file(score_job(params, "MNIST"), bad, mnist, out / "score/DC_set0.json"),
                  f"{bad}: {problem}; MNIST has 1x28x28 images and labels 0..9"),
    }
    for reader, (run, message) in readers.items():
        with pytest.raises(ArtifactError) as refused:
            run()
        assert str(refused.value) == message, reader                       # refused before `train` ran
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file() and "condensed" not in p.parts]


def test_an_evaluation_resumes_after_its_finished_models(tmp_path, prepared):
    """Evaluation jobs checkpoint finished models: a killed group retrains only the rest and ends identical."""
    from dcpipe.io import read_json, write_json
    from dcpipe.jobs import evaluate_job, set_job
    from dcpipe.stages.evaluate import evaluate
    from dcpipe.stages.select_coreset import select_coreset

    params = tiny_params()
    # auto, not bf16: an explicit bf16 test pass over MNIST's 10,000 images runs ~40x slower on CPUs without native
    # bf16 (the AVX2-only machines CI can be given); the resume logic under test does not depend on precision
    params["evaluate"].update(models_per_set=2, epochs={"1": 2}, epochs_augmented={"1": 2}, test_precision="auto")
    src = prepared("MNIST")
    coreset = tmp_path / "random_set0.npz"
    select_coreset(set_job(params, "MNIST", 1, "random", 0), src, coreset)
    full, resumed = tmp_path / "full.json", tmp_path / "resumed.json"
    evaluate(evaluate_job(params, "MNIST", 1, "random", 0), src, coreset, full)
    ref = read_json(full)
    # a "killed" run that finished model 0 only, with a poisoned value to prove it is reused, not recomputed
    fp = {"seed": ref["seed"], "model": ref["model"], "train_config": ref["train_config"],
          "n_train_images": ref["n_train_images"]}
    write_json(str(resumed) + ".partial.json", {"fingerprint": fp, "done": [0.123]})
    evaluate(evaluate_job(params, "MNIST", 1, "random", 0), src, coreset, resumed)
    got = read_json(resumed)["accuracies"]
    assert got[0] == 0.123 and got[1:] == ref["accuracies"][1:]
    assert not (tmp_path / "resumed.json.partial.json").exists()


# --- 4. artifacts are readable by the group sharing a data folder ----------------------------------------------

@pytest.fixture
def umask():
    """Set the process umask for one test (restored after it)."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def test_an_artifact_is_created_group_readable_under_umask_022(tmp_path, umask):
    from dcpipe.io import write_json

    umask(0o022)
    out = tmp_path / "new" / "folder" / "result.json"
    write_json(out, {"ok": True})
    assert out.stat().st_mode & 0o777 == 0o644 and out.stat().st_mode & 0o040  # group- (and world-) readable
    assert out.parent.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in out.parent.iterdir()] == ["result.json"]  # no temporary left


def test_an_artifact_keeps_to_a_private_umask(tmp_path, umask):
    from dcpipe.io import atomic_path

    umask(0o077)
    out = tmp_path / "private.npz"
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"x")
    assert out.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_checkpoint_takes_an_artifacts_mode_so_the_group_can_resume_the_job(tmp_path, umask, mask, mode):
    import torch

    from dcpipe.condense import CondenseConfig, load_checkpoint, save_checkpoint

    umask(mask)
    cfg = CondenseConfig(ipc=1, iterations=4)
    syn = torch.randn(10, 1, 28, 28, requires_grad=True)
    opt = torch.optim.SGD([syn], lr=0.1, momentum=0.5)
    ckpt = tmp_path / "DC_set0.npz.ckpt.safetensors"
    save_checkpoint(ckpt, syn, opt, 2, [0.5, 0.25], [1, 1], cfg, seed=0)
    assert ckpt.stat().st_mode & 0o777 == mode                 # as write_json's artifacts: 0666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == [ckpt.name]  # no temporary left
    resumed = torch.zeros_like(syn, requires_grad=True)
    assert load_checkpoint(ckpt, resumed, torch.optim.SGD([resumed], lr=0.1, momentum=0.5), cfg, 0)[0] == 2
    assert torch.equal(resumed, syn)


# --- 5. data no mirror holds: warned about by check-params and dry runs, a real run stops before any job ---------

@pytest.fixture(scope="module")
def svhn_workdir(tmp_path_factory):
    """A copy of the workflow whose plan needs SVHN, with DCPIPE_DATA_MIRRORS an empty folder (no data faked)."""
    wd = tmp_path_factory.mktemp("svhn")
    for name in ("Snakefile", "workflow", "reports/records"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, wd / name)
    (wd / "empty-mirror").mkdir()
    p = tiny_params(**{"experiment.datasets": ["SVHN"], "experiment.methods": ["DC"], "coresets": _DELETE,
                       "evaluate.augment_datasets": [], "data.mirrors": [], "data.download": False})
    (wd / "params.yaml").write_text(yaml.safe_dump(p))
    return wd


def _run_in(wd: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = stage_env(DCPIPE_DATA_MIRRORS=str(wd / "empty-mirror"))
    return subprocess.run(list(cmd), cwd=wd, env=env, capture_output=True, text=True, timeout=120)


def _says_what_is_missing(text: str, wd: Path) -> bool:
    return all(f in text for f in (
        "params.yaml: the plan needs datasets that no mirror holds, so their download jobs cannot run:",
        "dataset SVHN not found offline, and data.download is false.",
        "Needed files: SVHN/train_32x32.mat, SVHN/test_32x32.mat", f"    - {wd}/empty-mirror\n",
        "How to get it: set data.download: true (downloads 246.3 MB from http://ufldl.stanford.edu/housenumbers/)"))


def test_check_params_warns_about_data_no_mirror_holds_and_still_passes(svhn_workdir):
    r = _run_in(svhn_workdir, sys.executable, "-m", "dcpipe.cli", "check-params", "params.yaml")
    assert r.returncode == 0, r.stderr                     # the parameters themselves are valid
    assert r.stderr.startswith("warning: params.yaml: the plan needs datasets"), r.stderr
    assert _says_what_is_missing(r.stderr, svhn_workdir), r.stderr
    assert r.stdout == "params.yaml: ok\n"


def test_check_params_local_makes_missing_data_an_error_for_runs_on_this_machine(svhn_workdir):
    r = _run_in(svhn_workdir, sys.executable, "-m", "dcpipe.cli", "check-params", "--local", "params.yaml")
    assert r.returncode == 2 and r.stdout == "", r.stdout + r.stderr
    assert r.stderr.startswith("error: params.yaml: the plan needs datasets"), r.stderr
    assert _says_what_is_missing(r.stderr, svhn_workdir), r.stderr


def test_check_params_only_warns_about_cuda_a_head_node_may_lack(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(tiny_params(**{"runtime.device": "cuda", "experiment.datasets": ["MNIST"]})))
    r = subprocess.run([sys.executable, "-m", "dcpipe.cli", "check-params", str(f)], capture_output=True, text=True,
                       env=stage_env(CUDA_VISIBLE_DEVICES=""), timeout=120)
    assert r.returncode == 0, r.stderr
    assert (f"warning: {f}: runtime.device is 'cuda' but torch.cuda.is_available() is False on this machine; use "
            f"'auto' or 'cpu'") in r.stderr


def test_a_dry_run_warns_about_data_no_mirror_holds_and_still_shows_the_plan(svhn_workdir):
    r = _run_in(svhn_workdir, "snakemake", "-n", "--cores", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning: params.yaml: the plan needs datasets" in r.stderr and _says_what_is_missing(r.stderr, svhn_workdir)
    assert re.search(r"^download\s+1$", r.stdout, re.M) and re.search(r"^prepare_data\s+1$", r.stdout, re.M), r.stdout
    assert "This was a dry-run" in r.stdout, r.stdout
    assert not (svhn_workdir / "logs").exists()


def test_a_real_run_stops_before_any_job_when_a_mirror_lacks_planned_data(svhn_workdir):
    r = _run_in(svhn_workdir, "snakemake", "--cores", "1")
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "error: params.yaml: the plan needs datasets" in r.stderr and _says_what_is_missing(r.stderr, svhn_workdir)
    assert "Traceback" not in out and "warning:" not in out, out
    assert not (svhn_workdir / "logs").exists() and not (svhn_workdir / "data").exists()  # no job started


@pytest.fixture(scope="module")
def cuda_workdir(tmp_path_factory, mirrors):
    """A copy of the workflow whose parameters ask for runtime.device: cuda, the data in the local mirror."""
    wd = tmp_path_factory.mktemp("cuda")
    for name in ("Snakefile", "workflow", "reports/records"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, wd / name)
    p = tiny_params(**{"experiment.datasets": ["MNIST"], "experiment.methods": ["DC"], "coresets": _DELETE,
                       "evaluate.augment_datasets": [], "data.mirrors": [str(m) for m in mirrors],
                       "data.download": False, "runtime.device": "cuda"})
    (wd / "params.yaml").write_text(yaml.safe_dump(p))
    return wd


CUDA_AT_PLANNING = ("params.yaml: runtime.device is 'cuda' but torch.cuda.is_available() is False on this machine; "
                    "use 'auto' or 'cpu'; if the GPU jobs run on another host that has CUDA (a cluster job), run "
                    "snakemake there or pass --no-hooks (each GPU job still checks at its start)")


def test_a_dry_run_on_a_machine_without_cuda_warns_and_shows_the_plan(cuda_workdir):
    r = subprocess.run(["snakemake", "-n", "--cores", "1"], cwd=cuda_workdir, capture_output=True, text=True,
                       env=stage_env(CUDA_VISIBLE_DEVICES=""), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"warning: {CUDA_AT_PLANNING}\n" in r.stderr, r.stderr
    assert re.search(r"^condense\s+1$", r.stdout, re.M) and "This was a dry-run" in r.stdout, r.stdout


def test_a_real_run_on_a_machine_without_cuda_stops_before_any_job(cuda_workdir):
    r = subprocess.run(["snakemake", "--cores", "1"], cwd=cuda_workdir, capture_output=True, text=True,
                       env=stage_env(CUDA_VISIBLE_DEVICES=""), timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert [line for line in r.stderr.splitlines() if line.startswith("error: ")] == [f"error: {CUDA_AT_PLANNING}"], out
    assert "Traceback" not in out
    assert not (cuda_workdir / "logs").exists() and not (cuda_workdir / "data").exists()  # no job started


def test_snakemake_reports_a_bad_parameter_file_as_one_error_line(svhn_workdir):
    (svhn_workdir / "twice.yaml").write_text("seed: 0\n" + (svhn_workdir / "params.yaml").read_text())
    r = _run_in(svhn_workdir, "snakemake", "-n", "--cores", "1", "--config", "params=twice.yaml")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "error: twice.yaml: duplicate key 'seed' at line" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert 'File "' not in r.stderr, r.stderr  # not Snakemake's traceback of the Snakefile


def test_the_data_check_covers_continual_tasks_and_the_nas_dataset_once_per_source(tmp_path, monkeypatch):
    from dcpipe import plan
    from dcpipe.config import load_params

    paper = load_params(ROOT / "config/paper.yaml")
    planned = plan.prepared_datasets(paper)
    assert {"MNIST_RGB32", "USPS_RGB32", paper["nas"]["dataset"]} <= set(planned)
    assert not [d for d in planned if d.endswith("_nas")]  # the search split is made by nas_split, not prepared
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DCPIPE_DATA_MIRRORS", str(tmp_path))
    paper["data"]["mirrors"] = []
    plans = plan.fetch_plans(paper)
    assert sorted(p.dataset for p in plans) == sorted({d.removesuffix("_RGB32") for d in planned})  # MNIST once
    assert {p.where for p in plans} == {"download"}


def test_a_prepared_dataset_needs_no_source_files(tmp_path, monkeypatch):
    """A unit test with a fake prepared dataset: only the presence of data/prepared/SVHN.npz(.json) matters."""
    from dcpipe.plan import fetch_plans

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DCPIPE_DATA_MIRRORS", str(tmp_path))
    p = tiny_params(**{"experiment.datasets": ["SVHN"], "experiment.methods": ["DC"], "coresets": _DELETE,
                       "data.mirrors": [], "data.download": False})
    assert [(x.dataset, x.where) for x in fetch_plans(p)] == [("SVHN", "missing")]
    (tmp_path / "data/prepared").mkdir(parents=True)
    for name in ("SVHN.npz", "SVHN.npz.json"):
        (tmp_path / "data/prepared" / name).write_bytes(b"fake")
    assert fetch_plans(p) == []
    assert [x.dataset for x in fetch_plans(p, ["SVHN"])] == ["SVHN"]  # asked explicitly: its sources
