"""Stage download: one dataset's files, checked, into data/raw (from data/raw itself, a mirror or the URLs)."""

from __future__ import annotations

from pathlib import Path

from .. import fetch
from ..jobs import DownloadJob


def download(job: DownloadJob, out: Path) -> None:
    manifest = fetch.fetch(job.dataset, out.parent, list(job.mirrors), job.bases, job.download)
    fetch.write_manifest(out, manifest)  # last: the manifest exists only once every file it lists is in place and checked
