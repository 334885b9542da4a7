"""The plug-in door: a method of your own is checked before any work (it imports, it is a function, its signature fits
its kind, its name is its own) and after its call (its output fits the cell) with one `error:` line naming it, and
nothing is written from a bad one. The plug-ins here are tiny files written by the tests; the data is real MNIST."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.stage_runs import SCRIPTS, stage_env, tiny_params

ROOT = Path(__file__).resolve().parents[1]

# A plug-in file: good methods, and one bad in each way a method can be.
PLUGIN = textwrap.dedent('''
    import torch

    def _real(data, ipc):
        x = torch.cat([data.images[data.indices_of(c)[:ipc]] for c in range(data.classes)])
        return x, torch.arange(data.classes).repeat_interleave(ipc)

    def good(data, ipc, seed, device, settings, progress, checkpoint):
        x, y = _real(data, ipc)
        progress(0, 1, 0.5)
        return x + settings["noise"] * torch.randn_like(x), y

    def soft(data, ipc, seed, device, settings, progress, checkpoint):
        x, y = _real(data, ipc)
        p = torch.full((len(y), data.classes), 0.5 / (data.classes - 1))
        p[torch.arange(len(y)), y] = 0.5
        return x, p

    def first(data, ipc, seed, device, settings, progress, checkpoint):
        return [data.indices_of(c)[torch.randperm(len(data.indices_of(c)))[:ipc]] for c in range(data.classes)]

    def wrong_signature(x, y):
        return x, y

    def raises(data, ipc, seed, device, settings, progress, checkpoint):
        return helper_that_fails(data)

    def helper_that_fails(data):
        raise ValueError("the plug-in's own bug")

    def wrong_count(data, ipc, seed, device, settings, progress, checkpoint):
        x, y = _real(data, ipc + 1)
        return x, y

    def wrong_shape(data, ipc, seed, device, settings, progress, checkpoint):
        x, y = _real(data, ipc)
        return x[:, :, :14, :14], y

    def nan(data, ipc, seed, device, settings, progress, checkpoint):
        x, y = _real(data, ipc)
        x[0, 0, 0, 0] = float("nan")
        return x, y

    def out_of_range(data, ipc, seed, device, settings, progress, checkpoint):
        x, y = _real(data, ipc)
        return x, y + 1

    def soft_not_summing(data, ipc, seed, device, settings, progress, checkpoint):
        x, y = _real(data, ipc)
        return x, torch.nn.functional.one_hot(y, data.classes).float() * 0.9
''')


@pytest.fixture
def plugin_dir(tmp_path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "mine.py").write_text(PLUGIN)
    return folder


def params_with(tmp_path: Path, plugins: dict, methods: list[str]) -> Path:
    p = tiny_params(**{"experiment.datasets": ["MNIST"], "experiment.methods": methods})
    p["plugins"] = plugins
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p, sort_keys=False))
    return path


def run(cmd, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=stage_env(), capture_output=True, text=True, timeout=600)


def errors(res) -> list[str]:
    return [line for line in (res.stdout + res.stderr).splitlines() if line.startswith("error:")]


# --- found at planning: one line each, before any job ------------------------------------------------------------

@dataclass(frozen=True)
class AtPlanning:
    name: str
    entry: dict
    line: str


PLANNING = [
    AtPlanning("missing-module", {"kind": "synthetic", "target": "nowhere:good", "path": "plugins"},
               "error: {params}: plugins.Mine: target nowhere:good cannot be resolved (path plugins): "
               "ModuleNotFoundError: No module named 'nowhere'; fix the target or path"),
    AtPlanning("missing-function", {"kind": "synthetic", "target": "mine:absent", "path": "plugins"},
               "error: {params}: plugins.Mine: target mine:absent cannot be resolved (path plugins): AttributeError: "
               "module 'mine' has no attribute 'absent'; fix the target or path"),
    AtPlanning("wrong-signature", {"kind": "synthetic", "target": "mine:wrong_signature", "path": "plugins"},
               "error: {params}: plugins.Mine: mine:wrong_signature(x, y) does not take a synthetic method's keywords "
               "(data, ipc, seed, device, settings, progress, checkpoint); see docs/plugins.md"),
    AtPlanning("name-clash-with-a-built-in", {"kind": "synthetic", "target": "mine:good", "path": "plugins"},
               "error: {params}: plugins.DM: DM is a built-in method's name; give the plug-in another name"),
    AtPlanning("file-template-matching-no-file", {"kind": "file", "template": "sets/{dataset}_ipc{ipc}.npz"},
               "error: {params}: invalid parameters:"),
]


@pytest.mark.parametrize("case", PLANNING, ids=lambda c: c.name)
def test_a_broken_plugin_is_refused_at_planning_with_one_line_and_no_job_starts(case, tmp_path, plugin_dir):
    name = "DM" if "built-in" in case.name else "Mine"
    params = params_with(tmp_path, {name: case.entry}, ["DC", name])
    check = run([sys.executable, "-m", "dcpipe.cli", "check-params", str(params)], cwd=tmp_path)
    assert check.returncode == 2 and errors(check)[0] == case.line.format(params=params), check.stderr
    if case.name.startswith("file"):
        assert f"plugins.Mine: template {tmp_path}/sets/{{dataset}}_ipc{{ipc}}.npz matches no file for MNIST at IPC 1" \
               in check.stderr.replace(str(tmp_path.resolve()), str(tmp_path)) or "matches no file" in check.stderr
    dry = run(["snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
               "--config", f"params={params}"], cwd=ROOT)
    assert dry.returncode != 0 and errors(dry)[0] == case.line.format(params=params)
    assert "Traceback" not in dry.stdout + dry.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "logs").exists()  # no job started


# --- found after the call: one line, nothing written ------------------------------------------------------------

AFTER_CALL = {
    "an-exception-inside": ("raises", "error: method Mine (mine:raises): raised ValueError: the plug-in's own bug; its "
                                      "traceback is in this job's log"),
    "the-wrong-count-per-class": ("wrong_count", "error: method Mine (mine:wrong_count): images per class "
                                                 "[2, 2, 2, 2, 2, 2, 2, 2, 2, 2], expected 1 of each class (IPC 1); "
                                                 "the prepared MNIST has 1x28x28 images and labels 0..9; nothing was "
                                                 "written"),
    "the-wrong-shape": ("wrong_shape", "error: method Mine (mine:wrong_shape): float32 images of shape (10, 1, 14, 14) "
                                       "(N, C, H, W); the prepared MNIST has 1x28x28 images and labels 0..9; nothing "
                                       "was written"),
    "nan": ("nan", "error: method Mine (mine:nan): 1 of 7840 pixel values are not finite (1 nan, 0 inf); the prepared "
                   "MNIST has 1x28x28 images and labels 0..9; nothing was written"),
    "labels-out-of-range": ("out_of_range", "error: method Mine (mine:out_of_range): labels 1..10; the prepared MNIST "
                                            "has 1x28x28 images and labels 0..9; nothing was written"),
    "soft-rows-not-summing-to-1": ("soft_not_summing", "error: method Mine (mine:soft_not_summing): 10 soft-label rows "
                                                       "do not sum to 1 (row 0 sums to 0.9); apply a softmax to logits; "
                                                       "the prepared MNIST has 1x28x28 images and labels 0..9; nothing "
                                                       "was written"),
}


def condense_cmd(params: Path, prepared: Path, out: Path, method: str = "Mine") -> list[str]:
    return [sys.executable, str(SCRIPTS / "condense.py"), "--params", str(params), "--dataset", "MNIST", "--ipc", "1",
            "--method", method, "--set", "0", "--prepared", str(prepared), "--out", str(out),
            "--loss", str(out.with_name("loss.csv"))]


@pytest.mark.parametrize("case", list(AFTER_CALL))
def test_a_bad_output_or_an_exception_is_one_line_and_nothing_is_written(case, tmp_path, plugin_dir, prepared):
    function, line = AFTER_CALL[case]
    params = params_with(tmp_path, {"Mine": {"kind": "synthetic", "target": f"mine:{function}", "path": "plugins"}},
                         ["DC", "Mine"])
    out = tmp_path / "data/synthetic/MNIST/ipc1/Mine_set0.npz"
    res = run(condense_cmd(params, prepared("MNIST"), out))
    assert res.returncode == 2 and errors(res) == [line]
    if case == "an-exception-inside":  # the user's own traceback, down to their own line
        assert "Traceback" in res.stderr and 'raise ValueError("the plug-in\'s own bug")' in res.stderr
        assert "in helper_that_fails" in res.stderr
    assert not [p for p in out.parent.iterdir() if p.is_file()] if out.parent.exists() else True


# --- a good plug-in: its set, reproducible, through the same code as DC's --------------------------------------

def test_a_plugin_set_is_bit_identical_on_a_rerun_and_records_its_source(tmp_path, plugin_dir, prepared):
    """The door seeds torch, numpy and random from the set's seed: `good` draws noise from torch's global RNG."""
    params = params_with(tmp_path, {"Mine": {"kind": "synthetic", "target": "mine:good", "path": "plugins",
                                             "settings": {"noise": 0.1}}}, ["DC", "Mine"])
    sets = []
    for k in range(2):
        out = tmp_path / f"run{k}/Mine_set0.npz"
        res = run(condense_cmd(params, prepared("MNIST"), out))
        assert res.returncode == 0, res.stderr
        with np.load(out) as z:
            sets.append((z["images"], z["labels"]))
    assert np.array_equal(sets[0][0], sets[1][0]) and np.array_equal(sets[0][1], sets[1][1])
    meta = yaml.safe_load((tmp_path / "run0/Mine_set0.npz.json").read_text())
    assert meta["plugin"]["source"].endswith("plugins/mine.py") and len(meta["plugin"]["source_md5"]) == 32
    assert meta["config"] == {"noise": 0.1} and meta["labels"] == "hard"


def test_soft_labels_and_a_coreset_plugin_are_written_as_the_pipeline_reads_them(tmp_path, plugin_dir, prepared):
    from dcpipe.data import load
    from dcpipe.sets import read_set

    params = params_with(tmp_path, {"Soft": {"kind": "synthetic", "target": "mine:soft", "path": "plugins"},
                                    "First": {"kind": "coreset", "target": "mine:first", "path": "plugins"}},
                         ["DC", "Soft", "First"])
    soft = tmp_path / "Soft_set0.npz"
    assert run(condense_cmd(params, prepared("MNIST"), soft, "Soft")).returncode == 0
    coreset = tmp_path / "First_set0.npz"
    res = run([sys.executable, str(SCRIPTS / "select_coreset.py"), "--params", str(params), "--dataset", "MNIST",
               "--ipc", "1", "--method", "First", "--set", "0", "--prepared", str(prepared("MNIST")),
               "--out", str(coreset)])
    assert res.returncode == 0, res.stderr
    d = load(prepared("MNIST"), "cpu", 20)
    s = read_set(soft, d)
    assert s.soft is not None and s.soft.shape == (10, 10) and s.labels.tolist() == list(range(10))
    c = read_set(coreset, d)
    assert c.soft is None and c.labels.tolist() == list(range(10))


def test_the_builtins_are_entries_of_the_same_registry_and_run_through_the_same_door():
    from dcpipe import registry
    from dcpipe.config import validate_params
    from dcpipe.jobs import condense_job, select_job

    p = tiny_params()
    validate_params(p)
    assert {"DC", "M", "MD", "MDO", "MDA", "DSA", "DM", "random", "herding", "kcenter", "forgetting"} <= set(registry.BUILTINS)
    assert condense_job(p, "MNIST", 1, "DC", 0).method.target == registry.BUILTIN_TARGETS["synthetic"]
    assert select_job(p, "MNIST", 1, "herding", 0, "f.npz").settings == {"selector": "herding", "evidence": "f.npz"}


def test_a_set_made_elsewhere_is_a_cell_read_by_score_s_loaders_and_checked(tmp_path, prepared):
    """A `kind: file` entry: MTT's images_best.pt / labels_best.pt in a folder per cell become that cell's set, checked
    like any method's output (here: fake tensors standing for a distilled set, on the real prepared MNIST)."""
    import torch

    from dcpipe.data import load

    d = load(prepared("MNIST"), "cpu", 20)
    folder = tmp_path / "sets/mtt/MNIST_ipc1"
    folder.mkdir(parents=True)
    torch.save(d.x_train[[int(d.class_indices()[c][0]) for c in range(10)]].clone(), folder / "images_best.pt")
    torch.save(torch.arange(10), folder / "labels_best.pt")
    params = params_with(tmp_path, {"MTT": {"kind": "file", "template": "sets/mtt/{dataset}_ipc{ipc}"}}, ["DC", "MTT"])
    check = run([sys.executable, "-m", "dcpipe.cli", "check-params", str(params)], cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    out = tmp_path / "MTT_set0.npz"
    res = run(condense_cmd(params, prepared("MNIST"), out, "MTT"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    with np.load(out) as z:
        assert np.array_equal(z["images"], d.x_train[[int(d.class_indices()[c][0]) for c in range(10)]].numpy())
    meta = yaml.safe_load(out.with_name("MTT_set0.npz.json").read_text())
    assert meta["plugin"]["kind"] == "file" and meta["plugin"]["source"].endswith("sets/mtt/MNIST_ipc1")
    torch.save(torch.arange(10) % 9, folder / "labels_best.pt")  # class 9 missing: refused, nothing rewritten
    before = out.read_bytes()
    res = run(condense_cmd(params, prepared("MNIST"), out, "MTT"), cwd=tmp_path)
    assert res.returncode == 2 and errors(res)[0].startswith(f"error: sets/mtt/MNIST_ipc1: no image of class(es) 9")
    assert out.read_bytes() == before


def test_a_plugin_using_the_checkpoint_helper_resumes_after_sigkill_bit_identical(tmp_path, prepared):
    """examples/plugins/dm_variant.py through the condense stage, killed with SIGKILL once its first checkpoint is
    on disk, then rerun: the set equals an uninterrupted run's, as DC's does (tests/test_resume.py)."""
    import signal
    import time

    examples = ROOT / "examples/plugins"
    params = params_with(tmp_path, {"DMV": {"kind": "synthetic", "target": "dm_variant:synthesise",
                                            "path": str(examples),
                                            "settings": {"iterations": 40, "lr_img": 1.0, "batch_real": 16,
                                                         "checkpoint_every": 5}}}, ["DC", "DMV"])
    mnist = prepared("MNIST")
    whole, killed = tmp_path / "whole/DMV_set0.npz", tmp_path / "killed/DMV_set0.npz"
    assert run(condense_cmd(params, mnist, whole, "DMV")).returncode == 0
    ckpt = Path(str(killed) + ".ckpt.safetensors")
    proc = subprocess.Popen(condense_cmd(params, mnist, killed, "DMV"), cwd=ROOT, env=stage_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not ckpt.exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    if proc.returncode == 0:
        pytest.fail("the run finished before the kill landed: raise settings.iterations")
    assert ckpt.exists() and not killed.exists()
    res = run(condense_cmd(params, mnist, killed, "DMV"))
    assert res.returncode == 0, res.stderr
    steps = [int(n) for n in re.findall(r"condense MNIST ipc1 DMV set0 (\d+)/40", res.stderr)]
    assert steps and steps[0] > 1 and len(steps) < 40  # resumed after its checkpoint, not started again
    with np.load(whole) as a, np.load(killed) as b:
        assert np.array_equal(a["images"], b["images"]) and np.array_equal(a["labels"], b["labels"])
    assert not ckpt.exists()  # removed once the set is written
