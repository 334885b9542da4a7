"""Artifacts: atomic writes, tensors as .npz/safetensors, metadata as JSON. Nothing is ever unpickled."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import platform
import re
import secrets
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes

from . import __version__
from .errors import ArtifactError, OutputError
from .precision import native_bf16


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to `path`; rename it over `path` only if the block succeeds.

    A reader therefore sees the old file or the complete new one, never a half-written one.
    A full file system or a folder that cannot be written raises OutputError naming `path` (not the temporary),
    and the old file stays as it was: a checkpoint being replaced is kept whole.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # directories: 0777 & ~umask, like any mkdir
        tmp = _create_temp(path.parent, f".{path.name}.", ".tmp" + path.suffix)
        yield Path(tmp)
        os.replace(tmp, path)
    except Exception as e:
        reason = unwritable_reason(e, (None, tmp, str(path), str(path.parent)))
        if reason:
            raise OutputError(f"{path}: could not be written: {reason}; {_FIX[reason]}, then rerun the job (files "
                              f"already written, checkpoints included, are kept)") from e
        raise
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


# The write faults a user can fix, by errno, and what to do about each.
_UNWRITABLE = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "permission denied"}
_FIX = {"no space left on device": "free space on its file system", "disk quota exceeded": "free space within your quota",
        "read-only file system": "write it to a writable file system",
        "permission denied": "make its folder writable for this user, or write it elsewhere"}


def unwritable_reason(e: BaseException, paths=(None,)) -> str | None:
    """Why a write failed, where it is a fault of the output's file system (full, read-only, not ours) met on one of
    `paths` (an OSError's filename; None: a write or close, which names no file). Libraries that write files
    themselves say it in words: safetensors' SafetensorError "No space left on device", torch.save's RuntimeError."""
    if isinstance(e, OSError) and e.errno in _UNWRITABLE:
        return _UNWRITABLE[e.errno] if e.filename in paths else None
    if not isinstance(e, OSError) and "No space left on device" in str(e):
        return _UNWRITABLE[errno.ENOSPC]
    return None


def check_writable(folder: str | os.PathLike) -> None:
    """Before a job's work: can a file be created in `folder` (made if missing), with room for it? A read-only or
    foreign folder, or a full file system, raises OutputError naming the folder, so no work is done for nothing."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        st = os.statvfs(folder)
        if (st.f_bfree if os.geteuid() == 0 else st.f_bavail) == 0:  # root may use the reserved blocks
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        probe = _create_temp(folder, ".dcpipe-write-check.", ".tmp")
        try:
            with open(probe, "wb") as f:
                f.write(b"x")
        finally:
            os.unlink(probe)
    except (FileExistsError, NotADirectoryError) as e:  # a file where a folder of the path should be
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), e.filename)
        raise OutputError(f"{folder}: the output folder cannot be made: {blocker} is a file, not a folder; move "
                          f"it away or write elsewhere, then rerun (nothing was started)") from None
    except OSError as e:
        reason = _UNWRITABLE.get(e.errno)
        if reason is None:
            raise
        raise OutputError(f"{folder}: the output folder cannot be written: {reason}; {_FIX[reason]}, then rerun "
                          f"(nothing was started)") from None


def _create_temp(folder: Path, prefix: str, suffix: str) -> str:
    """A new empty file with mode 0666 & ~umask, as open() would create it. Not tempfile.mkstemp: its 0600
    would make every artifact private to its writer, unreadable by the group sharing a data folder."""
    for _ in range(100):
        tmp = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the kernel applies the umask
        except FileExistsError:
            continue
        return str(tmp)
    raise FileExistsError(f"{folder}: no free temporary name for {prefix}*{suffix}")


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries atomic_path(`path`) left behind when its process was killed (SIGKILL skips
    `finally`). Call it only for outputs the calling job owns (Snakemake and DVC run one job per output)."""
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.") + r"[A-Za-z0-9_]+" + re.escape(".tmp" + path.suffix))
    stale = [p for p in path.parent.glob(".*") if pattern.fullmatch(p.name)] if path.parent.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text())


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_npz(path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def write_safetensors(path, tensors: dict, metadata: dict | None = None) -> None:
    """Tensors as a safetensors file, atomically, with an artifact's mode (0666 & ~umask). Not safetensors'
    save_file: it creates its file 0600, so a checkpoint or weights file in a shared data folder would be
    unreadable to the group (another user could not resume the job)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(safetensors_bytes(tensors, metadata=metadata))


def _starts_as_a_pickle(path) -> bool:
    """Whether a file opens with the PROTO opcode every pickle of protocol 2 or later (torch's, numpy's) starts with."""
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


def refused_pickle(path, fix: str, named: str | None = None) -> ArtifactError:
    """The error for a file that holds pickled objects: they can carry code, so they are never loaded, and the
    library's advice to load them anyway (numpy's allow_pickle, torch's weights_only=False) is not passed on."""
    what = f" ({named})" if named else ""
    return ArtifactError(f"{path}: refused: it holds pickled Python objects{what}, which can carry code and are "
                         f"never loaded; {fix}")


def read_npz(path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The arrays of an .npz artifact; `required` names the ones the caller reads (an ArtifactError naming the
    file and the expected keys, not a KeyError, when one is missing)."""
    # allow_pickle=False: an object array (or a crafted file) raises instead of executing code.
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise ArtifactError(f"{path}: not a readable .npz artifact ({e}); delete it and rerun the stage") from e
        # numpy takes whatever is neither a zip nor an .npy for a pickle, and advises loading it anyway: not passed on
        if "Object arrays" in str(e) or _starts_as_a_pickle(path):
            raise refused_pickle(path, "delete it and rerun the stage that writes it") from None
        raise ArtifactError(f"{path}: not a readable .npz artifact (not a zip of arrays); delete it and rerun the "
                            f"stage") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:  # BadZipFile: truncated or bad CRC
        raise ArtifactError(f"{path}: not a readable .npz artifact ({e}); delete it and rerun the stage") from e
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ArtifactError(f"{path}: has arrays {', '.join(sorted(arrays)) or '(none)'}, expected "
                            f"{', '.join(required)}; rerun the stage that writes it")
    return arrays


def cpu_model() -> str:
    """The processor's name: /proc/cpuinfo's "model name" on Linux, else what `platform` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def provenance() -> dict:
    """Versions and git commit recorded next to every artifact. The commit and dirty flag are those of the working
    tree the process runs in (its current directory), not of wherever the package happens to be installed from."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, cwd=Path.cwd()).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5,
                                    cwd=Path.cwd()).stdout.strip()) if commit else None  # no checkout: unknown
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {
        "dcpipe": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        # timings in a record depend on the machine: name the processor and the vector code torch dispatches to
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        # what each `auto` precision switch ran in (dcpipe.precision): bf16 where true, fp32 where false
        "bf16_native": native_bf16("cuda" if torch.cuda.is_available() else "cpu"),
    }


class Resumable:
    """The finished part of a job that checkpoints after each item (a trained model, an architecture, a
    setting) in `<out>.partial.json`: a killed job resumes after its last finished item. The items are kept
    only while the fingerprint (everything they depend on) is unchanged, so a resumed job ends bit-identical
    to an uninterrupted one."""

    def __init__(self, out, fingerprint: dict):
        self.path = Path(str(out) + ".partial.json")
        self.fingerprint = json.loads(json.dumps(fingerprint, default=_json_default))  # as read back
        saved = read_json(self.path) if self.path.exists() else {}
        self.done: list = saved["done"] if saved.get("fingerprint") == self.fingerprint else []

    def save(self, done: list) -> None:
        write_json(self.path, {"fingerprint": self.fingerprint, "done": done})

    def finish(self) -> None:
        """The output is written: the partial result is no longer needed."""
        self.path.unlink(missing_ok=True)


def resumable(out, fingerprint: dict) -> Resumable:
    return Resumable(out, fingerprint)


def file_md5(path) -> str:
    """The md5 of a file's bytes (DVC's hash of a file), read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
