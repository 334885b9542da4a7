"""Bad inputs fail before any work with one clear `error:` line while existing artifacts stay as they were: the
real stage scripts (and `dcpipe score`) on real MNIST, one table row per case."""
from __future__ import annotations

import copy
import gzip
import hashlib
import math
import os
import pickle
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml

from tests.stage_runs import PROGRESS_LINE, SCRIPTS, SMOKE, _DELETE, _set, snapshot, stage_env, tiny_params


# --- bad inputs: a clear error before any work, existing artifacts untouched --------------------------------

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


def _score_out(make: Callable[[Ctx], Path]):
    """A score case whose --out is the path `make` returns (after making what it needs), relative to the working
    folder where it is under data/; the set scored stays as it was."""
    def setup(ctx):
        out = make(ctx)
        ctx.args["--out"] = str(out.relative_to(ctx.tmp) if out.is_relative_to(ctx.tmp / "data") else out)
        scored, content = Path(ctx.args["PATH"]), Path(ctx.args["PATH"]).read_bytes()
        ctx.after.append(lambda: scored.read_bytes() == content)
    return setup


def _link_to_the_set(ctx) -> Path:
    (ctx.tmp / "link.npz").symlink_to(ctx.args["PATH"])
    return ctx.tmp / "link.npz"


def _in_data(rel: str, prepared_there: bool = False):
    """A file data/<rel> of the working folder (the pipeline's data/); with prepared_there, a link to the real
    prepared MNIST that is also the --prepared of the case."""
    def make(ctx) -> Path:
        path = ctx.tmp / "data" / rel
        path.parent.mkdir(parents=True)
        if prepared_there:
            path.symlink_to(ctx.mnist)
            Path(str(path) + ".json").symlink_to(str(ctx.mnist) + ".json")
            ctx.args["--prepared"] = str(path.relative_to(ctx.tmp))
        else:
            path.write_bytes(b"an artifact of the pipeline")
        return path
    return make


def _notes(ctx) -> Path:
    (ctx.tmp / "notes.txt").write_text("a file that is not a score result\n")
    return ctx.tmp / "notes.txt"


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
    # a whole number written as a float: JSON Schema's integer accepts 1.0, range() and tensor shapes do not
    Bad("integer-written-as-a-float", ("\n  experiment.sets: 1.0 is not a whole number written as one; write 1\n",),
        edit={"experiment.sets": 1.0}, names_params=True, line="error: {params}: invalid parameters:"),
    Bad("threads-written-as-a-float", ("\n  runtime.threads: 1.0 is not a whole number written as one; write 1\n",),
        edit={"runtime.threads": 1.0}, names_params=True, line="error: {params}: invalid parameters:"),
    Bad("batch-real-written-as-a-float", ("\n  condense.batch_real: 16.0 is not a whole number written as one; "
                                          "write 16\n",), edit={"condense.batch_real": 16.0}, names_params=True),
    Bad("iterations-written-as-a-float", ("\n  condense.iterations.1: 4.0 is not a whole number written as one; "
                                          "write 4\n",), edit={"condense.iterations": {1: 4.0}}, names_params=True),
    Bad("models-per-set-written-as-a-float", ("\n  evaluate.models_per_set: 1.0 is not a whole number written as "
                                              "one; write 1\n",), stage="evaluate",
        edit={"evaluate.models_per_set": 1.0}, names_params=True),
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
        line="error: {tmp}/scored/DC_set0.npz: 1 of 7840 pixel values are not finite (1 nan, 0 inf); the prepared MNIST has "
             "1x28x28 images and labels 0..9"),
    # `dcpipe score --out`: nothing its 1 KB of JSON would replace, refused before any network trains
    Bad("score-out-is-the-set", ("is the set being scored",), stage="score",
        setup=_score_out(lambda ctx: Path(ctx.args["PATH"])),
        line="error: --out {tmp}/scored/DC_set0.npz: is the set being scored ({tmp}/scored/DC_set0.npz), which the "
             "result would replace; name another file, e.g. --out DC_set0.npz.score.json"),
    Bad("score-out-links-to-the-set", ("is the set being scored",), stage="score", setup=_score_out(_link_to_the_set),
        line="error: --out {tmp}/link.npz: is the set being scored ({tmp}/scored/DC_set0.npz), which the result "
             "would replace; name another file, e.g. --out DC_set0.npz.score.json"),
    Bad("score-out-is-the-prepared-dataset", ("is the prepared dataset",), stage="score",
        setup=_score_out(_in_data("prepared/MNIST.npz", prepared_there=True)),
        line="error: --out data/prepared/MNIST.npz: is the prepared dataset (data/prepared/MNIST.npz), which the "
             "result would replace; name another file, e.g. --out DC_set0.npz.score.json"),
    Bad("score-out-under-data", ("under the pipeline's data/ folder",), stage="score",
        setup=_score_out(_in_data("synthetic/MNIST/ipc1/DC_set0.npz")),
        line="error: --out data/synthetic/MNIST/ipc1/DC_set0.npz: is under the pipeline's data/ folder, whose files "
             "its jobs write and read; name another file, e.g. --out DC_set0.npz.score.json"),
    Bad("score-out-not-a-score-result", ("pass --force to replace it",), stage="score", setup=_score_out(_notes),
        line="error: --out {tmp}/notes.txt: exists and is not a score result; name another file, e.g. --out "
             "DC_set0.npz.score.json, or pass --force to replace it"),
    Bad("score-out-is-a-folder", ("is a folder",), stage="score", setup=_score_out(lambda ctx: ctx.art),
        line="error: --out {art}: is a folder; name a file, e.g. --out {art}/DC_set0.npz.score.json"),
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
    for n in names:  # (a score result is recognised as one: dcpipe score replaces no other file)
        (art / n).write_bytes(b'{"set": {}, "protocol": {}, "accuracies": [], "previous": "artifact"}' if stage == "score"
                              else b"previous artifact " + n.encode())
    return [art / n for n in names]


def _tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (followed links too) -> a digest of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()} if folder.is_dir() else {}


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
    np.savez(train_set, images=np.full((10, 1, 28, 28), -0.4, np.float32), labels=np.arange(10))
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
    before, data_before = snapshot(art), _tree(tmp_path / "data")

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
    assert _tree(tmp_path / "data") == data_before, out    # nothing under the working folder's data/ changed,
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
                   "output-folder-is-a-file", "score-output-folder-is-a-file", "score-out-is-the-set",
                   "score-out-under-data", "score-out-not-a-score-result", "score-out-is-a-folder",
                   "integer-written-as-a-float"):
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


def _placed_set(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """A condensed MNIST set placed where a stage reads it, with its .json beside it as a stage writes it."""
    from dcpipe.datasets import rgb32_name

    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=images, labels=labels)
    Path(str(path) + ".json").write_text(f'{{"dataset": "{rgb32_name("MNIST")}", "ipc": 10, "seed": 0, '
                                         '"config": {"iterations": 1}}')
    return path


# A set that does not fit its dataset, as (images, labels, what the one check says).
_BROKEN_SETS = {
    "nan": (_one_pixel(math.nan), np.arange(10), "1 of 7840 pixel values are not finite (1 nan, 0 inf)"),
    "inf": (_one_pixel(math.inf), np.arange(10), "1 of 7840 pixel values are not finite (0 nan, 1 inf)"),
    "-inf": (_one_pixel(-math.inf), np.arange(10), "1 of 7840 pixel values are not finite (0 nan, 1 inf)"),
    "a-class-missing": (_one_pixel(-0.4), np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 8]), "no image of class(es) 9"),
    "unit-pixels": (np.full((10, 1, 28, 28), 0.5, np.float32), np.arange(10),
                    "pixel values 0.5..0.5 look unnormalised (0-1 or 0-255); declare its pixels as unit or uint8 to "
                    "have the dataset's mean/std applied"),
}


@pytest.mark.parametrize("fault", list(_BROKEN_SETS))
def test_a_broken_set_is_refused_by_every_reader_before_training(fault, tmp_path, prepared, monkeypatch):
    """evaluate, evaluate_cross, continual's DC memory, the NAS proxies and score read a set through one check
    (dcpipe.sets): each refuses a set with a non-finite pixel, a missing class or unnormalised pixels with the same
    line before any network trains, and nothing is written under data/eval (or beside the result)."""
    from dcpipe import continual as cl_mod, nas as nas_mod, score as score_mod
    from dcpipe.config import load_params, validate_params
    from dcpipe.errors import ArtifactError
    from dcpipe.jobs import continual_job, evaluate_job, nas_job, score_job
    from dcpipe.stages import evaluate as evaluate_mod, nas_shard as nas_shard_mod
    from dcpipe.stages.continual import continual
    from dcpipe.stages.evaluate_cross import evaluate_cross
    from dcpipe.stages.score import score as score_file
    from tests.conftest import ROOT

    def train(*args, **kwargs):
        raise AssertionError("a network trained on a broken set")

    for module, name in ((evaluate_mod, "train_models"), (evaluate_mod, "train_models_batched"),
                         (score_mod, "train_models"), (cl_mod, "run"), (nas_shard_mod, "train_and_score"),
                         (nas_mod, "train_and_score")):
        monkeypatch.setattr(module, name, train)
    params = tiny_params(**{"continual": copy.deepcopy(SMOKE["continual"]), "condense.iterations": {1: 12, 10: 1},
                            "condense.loops": {1: [1, 1], 10: [2, 2]}})
    validate_params(params)  # valid parameters (and their IPC tables keyed as a loaded file's)
    mnist = prepared("MNIST")
    images, labels, problem = _BROKEN_SETS[fault]
    bad = _placed_set(tmp_path / "data/condensed/MNIST/ipc1/DC_set0.npz", images, labels)
    out = tmp_path / "data/eval"
    stage_message = f"{bad}: {problem}; the prepared MNIST has 1x28x28 images and labels 0..9: rerun the stage that wrote it"
    # the NAS shard reads its validation split first (here: MNIST's test images stand in), then its proxies
    monkeypatch.setattr(nas_shard_mod, "load_validation", lambda path, dev: (None, None))
    nas = nas_job(load_params(ROOT / "params.yaml"), 0)
    readers = {
        "evaluate": (lambda: evaluate_mod.evaluate(evaluate_job(params, "MNIST", 1, "DC", 0), mnist, bad,
                                                   out / "MNIST/ipc1/DC_set0.json"), stage_message),
        "evaluate_cross": (lambda: evaluate_cross(evaluate_job(params, "MNIST", 1, "DC", 0, "LeNet"), mnist, bad,
                                                  out / "cross/DC_set0_on_LeNet.json"), stage_message),
        "continual": (lambda: continual(continual_job(params, 0), [mnist, mnist], [bad], out / "continual/run0.json"),
                      stage_message),
        "nas_proxies": (lambda: nas_shard_mod.nas_shard(nas, 0, mnist, {"DC": bad}, out / "nas/shard0.json"),
                        stage_message),
        "score": (lambda: score_file(score_job(params, "MNIST"), bad, mnist, out / "score/DC_set0.json"),
                  f"{bad}: {problem}; the prepared MNIST has 1x28x28 images and labels 0..9"),
    }
    for reader, (run, message) in readers.items():
        with pytest.raises(ArtifactError) as refused:
            run()
        assert str(refused.value) == message, reader                       # refused before `train` ran
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file() and "condensed" not in p.parts]
