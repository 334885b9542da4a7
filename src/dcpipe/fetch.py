"""Get a dataset's files into data/raw, each checked against its known checksum before anything reads it.

Where they come from, in order: the copies already in data/raw; the local mirrors ($DCPIPE_DATA_MIRRORS, then
params data.mirrors); the official URLs, or the site's own ones in params data.urls. A source whose copy is bad
(a checksum mismatch, a stalled server) is logged in one line and the next one tried. The transfer is
dcpipe.transfer's (requests, which obeys HTTPS_PROXY), the unpacking pooch's. Every copy is made and checked in a
private folder beside data/raw (data/.download/<dataset>) and moved in only once checked, so an interrupted or
corrupt transfer leaves nothing under data/raw; a rerun clears that folder and starts again."""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pooch
import requests

from . import transfer
from .errors import DataError
from .io import read_json, write_json
from .sources import CHECKSUMS, Remote, mb, source

log = logging.getLogger(__name__)
pooch.get_logger().setLevel(logging.WARNING)  # it logs each file it unpacks: fetch logs one line per file itself

RETRIES = 2          # further tries of one URL after a transient failure (connection, 5xx, checksum)
BACKOFF_S = 1.0      # the wait before retry k is BACKOFF_S * 2**k


class DownloadError(DataError):
    """No URL gave a file with the right checksum; the message is the dataset's whole block."""


@dataclass(frozen=True)
class Plan:
    """What fetching one dataset will do, found without reading any file's content (a planning check)."""
    dataset: str
    where: str      # "raw" (already in data/raw), "mirror", "download" or "missing" (download off, no mirror)
    detail: str     # the mirror folder, or the host downloaded from
    bytes: int = 0  # to download


def mirror_dirs(configured: list[str] | None = None) -> list[Path]:
    """$DCPIPE_DATA_MIRRORS (':'-separated; relative to the working directory), then params data.mirrors
    (made absolute against the parameter file's folder when it was loaded)."""
    env = [p for p in os.environ.get("DCPIPE_DATA_MIRRORS", "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in env + list(configured or [])]


def _gunzips_to(path: Path, rel: str) -> bool:
    """Whether `path` is a gzipped copy of `rel`, a file stored plain under data/raw (a mirror's .gz)."""
    return path.suffix == ".gz" and not rel.endswith(".gz")


def checksum_problem(path: Path, rel: str) -> str | None:
    """None when `path` holds the known content of `rel`, else what is wrong (both hashes, or why unreadable)."""
    algorithm, want = CHECKSUMS[rel].split(":")
    try:
        with (gzip.open(path, "rb") if _gunzips_to(path, rel) else open(path, "rb")) as f:
            got = hashlib.file_digest(f, algorithm).hexdigest()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        return f"unreadable ({e})"
    return None if got == want else f"checksum mismatch: {algorithm} {got}, expected {want}"


# ---- the copies already in data/raw, and the local mirrors


def _in_raw(layout: tuple[str, ...], raw: Path) -> bool:
    return all((raw / rel).is_file() for rel in layout)


def _find(mirror: Path, rel: str, check_flat: bool) -> Path | None:
    """A file sits in torchvision's layout (<mirror>/MNIST/raw/...) or flat in the mirror, as Debian installs
    Fashion-MNIST, gzipped or not. MNIST and Fashion-MNIST share file names, so a flat copy counts only if its
    content matches (`check_flat`; the planning check looks at one file instead, _flat_copies_are)."""
    for c in (mirror / rel, mirror / f"{rel}.gz"):
        if c.is_file():
            return c
    name = Path(rel).name
    for c in (mirror / name, mirror / f"{name}.gz"):
        if c.is_file() and (not check_flat or checksum_problem(c, rel) is None):
            return c
    return None


def _flat_copies_are(mirror: Path, found: dict[str, Path]) -> bool:
    """Whether the flat copies among `found` are the right dataset's, judged by the smallest one (a labels file)."""
    flat = {rel: p for rel, p in found.items() if p.parent == mirror and "/" in rel}
    if not flat:
        return True
    rel = min(flat, key=lambda r: flat[r].stat().st_size)
    return checksum_problem(flat[rel], rel) is None


def in_mirror(layout: tuple[str, ...], mirrors: list[Path], quick: bool = False) -> tuple[Path, dict] | None:
    """The first mirror holding every file of `layout`, and where each one is; `quick` reads at most one small
    file per mirror (planning), otherwise flat copies are told apart by content."""
    for m in mirrors:
        if not m.is_dir():
            continue
        found = {rel: _find(m, rel, check_flat=not quick) for rel in layout}
        if all(found.values()) and (not quick or _flat_copies_are(m, found)):
            return m, found
    return None


class BadCopy(DataError):
    """A mirror's copy that is not the file (unreadable, truncated, or a checksum mismatch): the next source is tried."""


def _copy_in(found: dict[str, Path], work: Path) -> dict[str, Path]:
    """Copy mirror files into `work` (decompressing a .gz copy of a file stored plain) and check each."""
    shutil.rmtree(work, ignore_errors=True)  # an earlier mirror's bad copy
    out = {}
    for rel, src in found.items():
        dst = work / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            with (gzip.open(src, "rb") if _gunzips_to(src, rel) else open(src, "rb")) as fin, \
                    open(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ESTALE):  # ESTALE: removed on an NFS server while open here
                raise BadCopy(f"{src}: unreadable or truncated ({e}); replace it with a fresh copy") from e
            raise DataError(f"{src}: disappeared from the mirror while it was copied ({e.strerror}); check that the "
                            f"mirror is there (a network file system that went away?) and rerun the download job") from e
        except EOFError as e:
            raise BadCopy(f"{src}: unreadable or truncated ({e}); replace it with a fresh copy") from e
        problem = checksum_problem(dst, rel)
        if problem:
            raise BadCopy(f"{src}: {problem}: the file is truncated or corrupt; replace it with a fresh copy")
        out[rel] = dst
    return out


def _from_mirrors(name: str, layout: tuple[str, ...], mirrors: list[Path], work: Path,
                  bad: list[BadCopy]) -> tuple[Path, dict[str, Path]] | None:
    """The first mirror whose copies of `layout` are good, and the checked copies in `work`; each bad copy is
    logged, added to `bad`, and the next mirror tried."""
    left = list(mirrors)
    while hit := in_mirror(layout, left):
        left = left[left.index(hit[0]) + 1:]
        try:
            return hit[0], _copy_in(hit[1], work)
        except BadCopy as e:
            log.warning("%s: %s; trying the next source", name, e)
            bad.append(e)
    return None


# ---- the URLs


def _transient(e: BaseException) -> bool:
    if isinstance(e, requests.HTTPError) and e.response is not None:
        return e.response.status_code >= 500 or e.response.status_code == 429
    return not isinstance(e, requests.exceptions.InvalidURL)


def _unpack(remote: Remote, path: Path) -> dict[str, Path]:
    if remote.unpack == "gunzip":
        rel, = remote.gives
        return {rel: Path(pooch.Decompress(method="gzip", name=Path(rel).name)(str(path), "download", None))}
    if remote.unpack == "untar":
        pooch.Untar(members=list(remote.gives), extract_dir="untar")(str(path), "download", None)
        return {rel: path.parent / "untar" / rel for rel in remote.gives}
    rel, = remote.gives
    return {rel: path}


class _Bad(Exception):
    """A transfer that arrived but is not the file: truncated, corrupt archive, or a checksum mismatch."""


def _get(url: str, remote: Remote, work: Path) -> dict[str, Path]:
    """One try: download `url` into `work`, unpack it, and check every file it gives."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    transfer.download(url, work / remote.name)
    try:
        files = _unpack(remote, work / remote.name)
    except (OSError, EOFError, ValueError, KeyError) as e:  # gzip CRC, truncated tar, missing member
        raise _Bad(f"not a readable archive ({type(e).__name__}: {e})") from e
    for rel, p in files.items():
        problem = checksum_problem(p, rel)
        if problem:
            raise _Bad(f"{rel}: {problem}")
    return files


def _download(name: str, remote: Remote, bases: tuple[str, ...], work: Path,
              given_up: dict[str, str]) -> tuple[dict[str, Path], list]:
    """Try every base URL in order, retrying transient failures with back-off; (files, attempts). A base that
    stalled or timed out connecting is not retried, and `given_up` keeps it from the dataset's other files: its
    host would cost as long again for each."""
    attempts = []
    for base in bases:
        url = base.rstrip("/") + "/" + remote.name
        if base in given_up:
            attempts.append((url, given_up[base]))
            continue
        for k in range(RETRIES + 1):
            t0 = time.monotonic()
            try:
                files = _get(url, remote, work / remote.name)
            except (requests.RequestException, _Bad) as e:
                reason = f"checksum: {e}" if isinstance(e, _Bad) else transfer.describe(e)
                attempts.append((url, reason))
                log.warning("%s: %s from %s failed: %s", name, remote.name, url, reason)
                if isinstance(e, requests.Timeout):
                    given_up[base] = f"not tried after {url}: {reason}"
                elif (isinstance(e, _Bad) or _transient(e)) and k < RETRIES:
                    time.sleep(BACKOFF_S * 2 ** k)
                    continue
                break
            s = time.monotonic() - t0
            log.info("%s: %s (%s) from %s in %.1f s, checksum ok", name, remote.name, mb(remote.bytes), url, s)
            return files, attempts
    return {}, attempts


def failure_block(name: str, failed: list[tuple[Remote, list]]) -> str:
    """The offline block of one dataset: each file's URLs tried with their errors, its size, and the ways out."""
    src = source(name)
    lines = [f"{name} ({mb(sum(r.bytes for r in src.remotes))}) could not be downloaded:"]
    for remote, attempts in failed:
        lines.append(f"  {remote.name} ({mb(remote.bytes)}):")
        lines += [f"    {url}: {reason}" for url, reason in dict(attempts).items()]
    lines += ["  Two ways out:",
              f"    - a local mirror folder holding {', '.join(src.layouts[0])} (gzipped or not), named in "
              "$DCPIPE_DATA_MIRRORS or params data.mirrors;",
              f"    - your site's own HTTP mirror of {', '.join(r.name for r in src.remotes)}: params "
              f"data.urls: {{{name}: [\"https://your.site/path/\"]}}."]
    return "\n".join(lines)


# ---- the whole fetch, its plan, and the planning probe


def fetch(name: str, raw: Path, mirrors: list[Path], bases: tuple[str, ...] | None = None,
          download: bool = True) -> dict:
    """Make every file of one of `name`'s layouts present and checked under `raw`; return the manifest
    ({"dataset", "files": {rel: {"checksum", "bytes"}}}) that prepare_data reads. Logs where the files came from."""
    src = source(name)
    problems = {rel: checksum_problem(raw / rel, rel) for layout in src.layouts for rel in layout if (raw / rel).is_file()}
    good = {rel for rel, problem in problems.items() if problem is None}
    for layout in src.layouts:
        if set(layout) <= good:
            log.info("%s: %d files already in %s, checksums ok", name, len(layout), raw)
            return manifest(name, layout, raw)
    for rel, problem in problems.items():
        if problem:
            log.warning("%s: %s: %s; fetching it again", name, raw / rel, problem)
    work = raw.parent / ".download" / name
    shutil.rmtree(work, ignore_errors=True)  # a killed run's partial transfer
    try:
        bad: list[BadCopy] = []
        for layout in src.layouts:
            hit = _from_mirrors(name, layout, mirrors, work / "mirror", bad)
            if hit:
                _move_in(hit[1], raw)
                log.info("%s: %d files copied from mirror %s, checksums ok", name, len(hit[1]), hit[0])
                return manifest(name, layout, raw)
        if not download:
            raise bad[0] if bad else DataError(missing_message(name, mirrors))
        files, failed, given_up = {}, [], {}
        for remote in src.remotes:
            if set(remote.gives) <= good:
                continue  # only what is missing or bad in data/raw is fetched again
            got, attempts = _download(name, remote, bases or src.bases, work, given_up)
            if not got:
                failed.append((remote, attempts))
            files.update(got)
        if failed:
            raise DownloadError(failure_block(name, failed))
        _move_in(files, raw)
        return manifest(name, src.layouts[-1], raw)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            work.parent.rmdir()  # data/.download, once empty


def _move_in(files: dict[str, Path], raw: Path) -> None:
    for rel, p in files.items():
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, raw / rel)


def write_manifest(path: Path, manifest: dict) -> None:
    write_json(path, manifest)


def read_manifest(path: Path) -> dict:
    return read_json(path)


def manifest(name: str, layout: tuple[str, ...], raw: Path) -> dict:
    return {"dataset": name, "files": {rel: {"checksum": CHECKSUMS[rel], "bytes": (raw / rel).stat().st_size}
                                       for rel in layout}}


def missing_message(name: str, mirrors: list[Path]) -> str:
    src = source(name)

    def state(m: Path) -> str:
        return "" if m.is_dir() else "  (not a folder)" if m.exists() else "  (does not exist)"
    searched = "\n".join(f"  - {m}{state(m)}" for m in mirrors) or "  (none configured)"
    return (f"dataset {name} not found offline, and data.download is false.\nNeeded files: "
            f"{', '.join(src.layouts[0])}\nMirrors searched ($DCPIPE_DATA_MIRRORS, then params data.mirrors):\n"
            f"{searched}\nHow to get it: set data.download: true (downloads {mb(sum(r.bytes for r in src.remotes))} "
            f"from {', '.join(src.bases)}), or put the files in one of these mirrors")


def plan(name: str, raw: Path, mirrors: list[Path], bases: tuple[str, ...] | None, download: bool) -> Plan:
    src = source(name)
    if any(_in_raw(layout, raw) for layout in src.layouts):
        return Plan(name, "raw", str(raw))
    for layout in src.layouts:
        hit = in_mirror(layout, mirrors, quick=True)
        if hit:
            return Plan(name, "mirror", str(hit[0]))
    if not download:
        return Plan(name, "missing", "")
    hosts = ", ".join(dict.fromkeys(b.split("/")[2] if "://" in b else b for b in (bases or src.bases)))
    return Plan(name, "download", hosts, sum(r.bytes for r in src.remotes))


def probe(datasets: dict[str, tuple[str, ...] | None]) -> dict[str, str]:
    """{dataset: its offline block} for the datasets (name -> data.urls bases, None for the official ones) some
    file of which answers at none of its URLs: one request per URL (transfer.answers), all at once, no retries. For
    a run's start, so that an unreachable host stops it before any job."""
    tried = [(name, remote, base.rstrip("/") + "/" + remote.name) for name, bases in datasets.items()
             for remote in source(name).remotes for base in bases or source(name).bases]
    with ThreadPoolExecutor(max_workers=16) as pool:
        errors = list(pool.map(transfer.answers, [url for _, _, url in tried]))
    blocks = {}
    for name in datasets:
        failed = []
        for remote in source(name).remotes:
            attempts = [(url, e) for (n, r, url), e in zip(tried, errors) if (n, r) == (name, remote)]
            if all(e is not None for _, e in attempts):
                failed.append((remote, attempts))
        if failed:
            blocks[name] = failure_block(name, failed)
    return blocks
