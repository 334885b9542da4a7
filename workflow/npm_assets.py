"""Pinned JavaScript from the npm registry, for the set-up scripts (workflow/build_plots_template.py,
workflow/build_web_assets.py): `npm pack` fetches the published tarballs (checked by npm against the registry's
integrity hashes; no node_modules, no dependencies installed) into a cache folder (.dcpipe/npm/), and the files are
read straight out of them. Nothing here is loaded from a CDN at view time."""
from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

# what can go wrong fetching or reading a package: callers turn it into a note saying what to do
ERRORS = (subprocess.SubprocessError, OSError, tarfile.TarError, KeyError, ValueError)


def npm_missing() -> str | None:
    """Why npm cannot be used here, or None."""
    return "npm is not installed" if shutil.which("npm") is None else None


def specs(packages: dict[str, str]) -> str:
    """'name@version name@version' for messages."""
    return " ".join(f"{name}@{version}" for name, version in packages.items())


def npm_pack(packages: dict[str, str], cache: Path) -> dict[str, Path]:
    """{name: tarball} for the pinned `packages` ({name: version}) in `cache` (downloaded with `npm pack` when
    missing)."""
    cache.mkdir(parents=True, exist_ok=True)
    tarballs = {name: cache / f"{name}-{version}.tgz" for name, version in packages.items()}
    missing = [f"{name}@{packages[name]}" for name, path in tarballs.items() if not path.exists()]
    if missing:
        subprocess.run(["npm", "pack", "--silent", *missing], cwd=cache, check=True, stdout=subprocess.DEVNULL,
                       timeout=300)
    return tarballs


def read_member(tarball: Path, member: str) -> str:
    """The text of `member` (a path inside the tarball, e.g. 'package/dist/x.min.js')."""
    with tarfile.open(tarball) as tar:
        f = tar.extractfile(member)
        if f is None:
            raise KeyError(f"{tarball.name}: {member} is not a file")
        return f.read().decode("utf-8")


def package_json(tarball: Path) -> dict:
    return json.loads(read_member(tarball, "package/package.json"))


def inlinable(js: str, what: str) -> str:
    """`js` unchanged, after checking it can sit inside an inline <script> (no '</script', which would end it)."""
    if "</script" in js.lower():
        raise SystemExit(f"error: {what} contains '</script': cannot inline it")
    return js
