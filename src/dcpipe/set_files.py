"""Reading a distilled set from a file, made by anyone: .npz, .safetensors, the authors' `res_*.pt` (a dict whose
`data` is a list of [images, labels]), or MTT's and DATM's folder of `images_best.pt` and `labels_best.pt`. Nothing
is unpickled (torch.load(weights_only=True)). `dcpipe score` and a `kind: file` plug-in cell (dcpipe.door) read sets
here, and check them with dcpipe.sets."""

from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_safetensors

from .errors import ArtifactError, ParamsError
from .io import read_npz, refused_pickle

FORMATS = (".npz", ".safetensors", ".pt", ".pth")
# MTT and DATM save their best set as two tensors in one run folder (DATM: its Normal/ subfolder)
TRAJECTORY_FILES = ("images_best.pt", "labels_best.pt")


@dataclass(frozen=True)
class LoadedSet:
    """A distilled set as its file holds it: images, class labels, soft labels ([N, classes] probabilities, each
    row's argmax its label; None where the set has hard labels only), and what was read."""
    images: np.ndarray
    labels: np.ndarray
    soft: np.ndarray | None
    source: str


def trajectory_folder(path: str | Path) -> Path | None:
    """The run folder of MTT's or DATM's saved set, where `path` is that folder or its images_best.pt."""
    path = Path(path)
    if path.is_dir():
        return path
    return path.parent if path.name == TRAJECTORY_FILES[0] else None


def load_set(path: str | Path, entry: int = -1) -> LoadedSet:
    """The distilled set a file (or MTT's/DATM's folder) holds. `entry`: which [images, labels] pair of a
    `res_*.pt` (the authors save one per experiment; DC-BENCH scores the last, as the default here)."""
    path = Path(path)
    folder = trajectory_folder(path)
    if folder is not None:
        return load_trajectory_set(folder)
    if path.suffix not in FORMATS:
        raise ParamsError(f"{path}: unknown set format {path.suffix or '(none)'!r}; valid: {', '.join(FORMATS)}, or "
                          f"MTT's/DATM's folder of {' and '.join(TRAJECTORY_FILES)}")
    if not path.is_file():
        raise ParamsError(f"{path}: no such file")
    if path.suffix == ".npz":
        z = read_npz(path, ("images", "labels"))
        return LoadedSet(z["images"], z["labels"], z.get("soft_labels"), "npz")
    if path.suffix == ".safetensors":
        try:
            t = load_safetensors(str(path))
        except (SafetensorError, OSError) as e:
            raise ArtifactError(f"{path}: not a readable safetensors file ({e})") from e
        if not {"images", "labels"} <= set(t):
            raise ArtifactError(f"{path}: has tensors {', '.join(sorted(t)) or '(none)'}, expected images and labels")
        return LoadedSet(t["images"], t["labels"], t.get("soft_labels"), "safetensors")
    obj = torch_load(path, "save the set with safetensors, or as an .npz of images and labels")
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, (list, tuple)) or not data or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(torch.is_tensor(t) for t in p) for p in data):
        raise ArtifactError(f"{path}: expected the authors' res_*.pt layout, a dict whose 'data' is a list of "
                            f"[images, labels] tensor pairs")
    if not -len(data) <= entry < len(data):
        raise ParamsError(f"{path}: entry {entry} out of range; it holds {len(data)} [images, labels] pairs")
    images, labels = data[entry]
    return LoadedSet(as_array(images), as_array(labels), None, f"res_*.pt entry {entry % len(data)} of {len(data)}")


def load_trajectory_set(folder: Path) -> LoadedSet:
    """MTT's or DATM's images_best.pt ([N, C, H, W]) and labels_best.pt: MTT's class indices [N], or DATM's
    learned soft labels [N, classes], logits that its evaluation softmaxes (its SoftCrossEntropy), as here."""
    images, labels = (torch_load(folder / name, "save the tensors alone (torch.save(t.detach().cpu(), ...))")
                      for name in TRAJECTORY_FILES)
    for name, t in zip(TRAJECTORY_FILES, (images, labels)):
        if not torch.is_tensor(t):
            raise ArtifactError(f"{folder / name}: holds a {type(t).__name__}, expected one tensor (MTT's/DATM's "
                                f"{name})")
    if labels.ndim == 1 and not labels.is_floating_point():
        return LoadedSet(as_array(images), as_array(labels), None, "MTT/DATM images_best.pt, labels_best.pt")
    if labels.ndim == 2 and labels.is_floating_point():
        soft = torch.softmax(labels.detach().double(), 1).float()
        return LoadedSet(as_array(images), soft.argmax(1).numpy(), soft.numpy(),
                         "MTT/DATM images_best.pt, labels_best.pt (DATM's soft-label logits, softmaxed)")
    raise ArtifactError(f"{folder / TRAJECTORY_FILES[1]}: {labels.dtype} labels of shape {tuple(labels.shape)}; "
                        f"expected class indices [N] (MTT) or soft-label logits [N, classes] (DATM)")


def torch_load(path: Path, fix: str):
    """A torch file's tensors (and plain containers), never its code: a file that names anything else is refused."""
    if not path.is_file():
        raise ParamsError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # its note on a raw pickle's protocol names torch's internal file: noise
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        named = re.search(r"GLOBAL (\S+)", str(e))  # what torch's weights_only unpickler refused to import
        raise refused_pickle(path, fix, f"it names {named.group(1)}" if named else None) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise ArtifactError(f"{path}: not a readable torch file ({e})") from e


def as_array(t: torch.Tensor) -> np.ndarray:
    """A saved tensor as numpy: detached (MTT and DATM save their optimised leaf tensors), floats as float32."""
    t = t.detach()
    return (t.float() if t.is_floating_point() else t).numpy()
