"""A killed condensation or evaluation resumes bit-identically, and a diverging run stops cleanly keeping its
last good checkpoint: the real stage scripts on real MNIST from the local mirror."""
from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.stage_runs import ROOT, SCRIPTS, stage_env, tiny_params


# --- SIGKILL at several points, resume, compare bit for bit ------------------------------------------------

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


# --- a diverging run stops and keeps its last good checkpoint ---------------------------------------------

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



def test_an_evaluation_resumes_after_its_finished_models(tmp_path, prepared):
    """Evaluation jobs checkpoint finished models: a killed group retrains only the rest and ends identical."""
    from dcpipe.io import read_json, write_json
    from dcpipe.jobs import evaluate_job, select_job, set_job
    from dcpipe.stages.evaluate import evaluate
    from dcpipe.stages.select_coreset import select_coreset

    params = tiny_params()
    # auto, not bf16: an explicit bf16 test pass over MNIST's 10,000 images runs ~40x slower on CPUs without native
    # bf16 (the AVX2-only machines CI can be given); the resume logic under test does not depend on precision
    params["evaluate"].update(models_per_set=2, epochs={"1": 2}, epochs_augmented={"1": 2}, test_precision="auto")
    src = prepared("MNIST")
    coreset = tmp_path / "random_set0.npz"
    select_coreset(select_job(params, "MNIST", 1, "random", 0), src, coreset)
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
