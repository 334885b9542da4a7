"""The door every method goes through, built-in or plug-in: call its function with the plugin signature inside the
set's seed, and check what it returns (dcpipe.sets) before anything is written. A plug-in's exception keeps its own
traceback in the job's log and ends the job with one line naming the plug-in; a built-in's is a bug and keeps its
traceback as it is."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import Data
from .io import file_md5
from .runtime import Progress
from .errors import ArtifactError, DataError, MethodError, NonFiniteError, OutputError, ParamsError
from .plugin import Checkpoint, RealData
from .registry import Entry, resolve
from .set_files import load_set
from .sets import check_indices, check_set

log = logging.getLogger("dcpipe")
OURS = (ParamsError, DataError, ArtifactError, NonFiniteError, OutputError, MethodError)  # already one clear line


@dataclass
class Synthetic:
    images: torch.Tensor
    labels: torch.Tensor
    soft: torch.Tensor | None
    curves: dict              # per-iteration lists the method reported ({"matching_loss": [...], ...}), maybe {}


def real_data(d: Data) -> RealData:
    return RealData(d.name, d.x_train, d.y_train, d.num_classes, d.channels, tuple(d.im_size), tuple(d.mean),
                    tuple(d.std))


@contextlib.contextmanager
def seeded(seed: int):
    """torch (CPU and CUDA), numpy's and Python's global generators seeded from the set's seed, and restored after:
    a method that draws from any of them gives a bit-identical set on a rerun."""
    np_state, py_state = np.random.get_state(), random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def call(e: Entry, d: Data, ipc: int, seed: int, device, settings: dict, progress, checkpoint: Checkpoint | None):
    """The entry's function called with the method keywords (dcpipe.plugin), inside the set's seed."""
    fn = resolve(e)
    with seeded(seed):
        try:
            return fn(data=real_data(d), ipc=ipc, seed=seed, device=torch.device(device), settings=settings,
                      progress=progress, checkpoint=checkpoint)
        except OURS:
            raise
        except Exception as x:
            if e.builtin:
                raise
            log.exception("the plug-in %s (%s) raised:", e.name, e.target)  # its own traceback, into the job log
            raise MethodError(f"{_where(e)}: raised {type(x).__name__}: {x}; its traceback is in this job's "
                              f"log") from None


def _where(e: Entry) -> str:
    return f"method {e.name}" + ("" if e.builtin else f" ({e.target})")


NOT_WRITTEN = "; nothing was written"


def synthesise(e: Entry, d: Data, ipc: int, seed: int, device, settings: dict, progress,
               checkpoint: Checkpoint | None) -> Synthetic:
    """A synthetic set from a method, checked: (images, labels[, curves]) with `ipc` images of each class."""
    out = call(e, d, ipc, seed, device, settings, progress, checkpoint)
    where = _where(e)
    if not isinstance(out, (tuple, list)) or len(out) not in (2, 3):
        raise MethodError(f"{where}: returned a {type(out).__name__}; a synthetic method returns (images, labels) "
                          f"or (images, labels, curves){NOT_WRITTEN}")
    images, labels = (_array(v, where, what) for v, what in zip(out[:2], ("images", "labels")))
    curves = dict(out[2]) if len(out) == 3 and out[2] else {}
    soft = None
    if labels.ndim == 2 and np.issubdtype(labels.dtype, np.floating):  # one distribution per image
        soft, labels = labels, labels.argmax(axis=1) if len(labels) else labels[:, 0].astype(np.int64)
    s = check_set(images, labels, d, where, ipc=ipc, soft=soft, fix=NOT_WRITTEN)
    return Synthetic(s.images, s.labels, s.soft, curves)


def select(e: Entry, d: Data, ipc: int, seed: int, device, settings: dict, progress,
           checkpoint: Checkpoint | None) -> torch.Tensor:
    """A coreset from a method, checked: `ipc` distinct training indices of each class, in class order."""
    out = call(e, d, ipc, seed, device, settings, progress, checkpoint)
    where = _where(e)
    if isinstance(out, dict) and "indices" in out:  # DeepCore's select() returns {"indices": ..., "weights": ...}
        out = out["indices"]
    if isinstance(out, (list, tuple)):
        if len(out) != d.num_classes:
            raise MethodError(f"{where}: returned {len(out)} index lists; a coreset method returns one per class "
                              f"({d.num_classes}){NOT_WRITTEN}")
        parts = [_array(v, where, f"indices of class {c}").reshape(-1) for c, v in enumerate(out)]
        for c, part in enumerate(parts):
            own = d.y_train.cpu().numpy()[part[(part >= 0) & (part < len(d.y_train))].astype(np.int64)]
            if (own != c).any():
                raise MethodError(f"{where}: its list for class {c} holds images of class(es) "
                                  f"{', '.join(map(str, sorted(set(own[own != c].tolist()))))}{NOT_WRITTEN}")
        idx = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    else:
        idx = _array(out, where, "indices")
    return check_indices(idx, d, where, ipc=ipc, fix=NOT_WRITTEN)


def read_file(e: Entry, d: Data, ipc: int, index: int) -> Synthetic:
    """A finished set of a `kind: file` entry, read by `dcpipe score`'s loaders and checked like a method's output."""
    path = e.file_for(d.name, ipc, index)
    found = load_set(path)
    s = check_set(found.images, found.labels, d, path, pixels=e.pixels, ipc=ipc, soft=found.soft, fix=NOT_WRITTEN)
    return Synthetic(s.images, s.labels, s.soft, {})


def _array(value, where: str, what: str) -> np.ndarray:
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    if isinstance(value, (np.ndarray, list, tuple)):
        return np.asarray(value)
    raise MethodError(f"{where}: {what} is a {type(value).__name__}; return a tensor or an array{NOT_WRITTEN}")


class StepProgress:
    """The plug-in's progress callback (step, total, value) on the stage's progress bar, made at its first call
    (only the method knows its total). It records which steps this process ran: a resumed run's time covers
    only those."""

    def __init__(self, name: str, log_every: int):
        self.name, self.every, self.bar, self.ran = name, log_every, None, []

    def __call__(self, step: int, total: int, value: float | None = None) -> None:
        if self.bar is None:
            self.bar = Progress(total, self.name, self.every)
        self.ran.append(step)
        self.bar(step, value)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def plugin_record(e, dataset: str, ipc: int, index: int) -> dict:
    """What made a plug-in's set: its entry, and the md5 of the code (or the file) it came from."""
    source = e.file_for(dataset, ipc, index) if e.kind == "file" else e.source()
    return {"name": e.name, "kind": e.kind, "target": e.target, "origin": e.origin, "settings": e.settings,
            "source": source, "source_md5": source_md5(Path(source)) if source else None}


def source_md5(path: Path) -> str:
    """A file's md5, or a folder's (MTT's two tensors): the md5 of its files' names and md5s, in name order."""
    if path.is_file():
        return file_md5(path)
    return hashlib.md5("".join(f"{p.name}:{file_md5(p)}\n" for p in sorted(path.iterdir()) if p.is_file())
                       .encode()).hexdigest()
