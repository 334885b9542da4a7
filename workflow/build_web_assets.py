#!/usr/bin/env python3
"""Build the report's offline JavaScript from pinned npm packages (workflow/npm_assets.py: `npm pack` into
.dcpipe/npm/, files read out of the tarballs; nothing is loaded from a CDN when a page is viewed):

- src/dcpipe/report/static/tablesort.min.js: tablesort's minified build followed by its number sorter, under a
  one-line comment naming the package, its version and licence. Package data that the report inlines into its
  pages to make `table.sortable` tables sortable; ignored by git (generated).
- .dcpipe/web/axe.min.js: axe-core, for the accessibility check of tests/test_browser.py (test-only).

Run by `make setup` (target web-assets); by hand:

    python3 workflow/build_web_assets.py [--force] [--tablesort PATH] [--axe PATH] [--cache DIR]

Idempotent: files that exist and carry the pinned versions are kept (--force rebuilds them). Without npm (or when
the registry is unreachable) it writes nothing, prints what to do (install node/npm, e.g. `apt-get install npm`,
and rerun) and exits 0: the report then shows its tables unsorted with a note, and the browser test's
accessibility check skips (fails under CI=true).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from npm_assets import ERRORS, inlinable, npm_missing, npm_pack, package_json, read_member, specs

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"tablesort": "5.7.1", "axe-core": "4.14.1"}
# in tablesort's tarball: the core, then the sorter for numeric columns (it calls Tablesort.extend, so it comes second)
TABLESORT_FILES = ("package/dist/tablesort.min.js", "package/dist/sorts/tablesort.number.min.js")
AXE_FILE = "package/axe.min.js"
TABLESORT_OUT = ROOT / "src/dcpipe/report/static/tablesort.min.js"
AXE_OUT = ROOT / ".dcpipe/web/axe.min.js"
CACHE = ROOT / ".dcpipe/npm"


def tablesort_header(licence: str = "") -> str:
    """The first line of the tablesort file; without `licence`, the prefix that says which version it holds."""
    head = f"/*! tablesort@{PACKAGES['tablesort']} "
    if not licence:
        return head
    files = " + ".join(f.removeprefix("package/") for f in TABLESORT_FILES)
    return head + f"({licence} licence, https://github.com/tristen/tablesort): {files} from npm, " \
                  "concatenated by workflow/build_web_assets.py */"


def axe_header() -> str:
    """How axe.min.js starts (its own banner), at the pinned version."""
    return f"/*! axe v{PACKAGES['axe-core']}\n"


def current(path: Path, head: str) -> bool:
    if not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read(len(head)) == head


def tablesort_js(tarball: Path) -> str:
    parts = []
    for member in TABLESORT_FILES:
        js = inlinable(read_member(tarball, member), f"{tarball.name}'s {member}").strip()
        parts.append(js if js.endswith(";") else js + ";")
    return "\n".join([tablesort_header(package_json(tarball).get("license", "unknown")), *parts]) + "\n"


def axe_js(tarball: Path) -> str:
    js = read_member(tarball, AXE_FILE)
    if not js.startswith(axe_header()):
        raise ValueError(f"{tarball.name}'s {AXE_FILE} does not start with {axe_header().strip()!r}")
    return js


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def build(tablesort: Path = TABLESORT_OUT, axe: Path = AXE_OUT, cache: Path = CACHE, force: bool = False) -> bool:
    """Write the two files unless current; True when both are there at the pinned versions."""
    wanted = {name: path for name, path, head in (("tablesort", tablesort, tablesort_header()),
                                                   ("axe-core", axe, axe_header()))
              if force or not current(path, head)}
    if not wanted:
        print(f"{tablesort}, {axe}: current ({specs(PACKAGES)})")
        return True
    pinned = {name: PACKAGES[name] for name in wanted}
    error = npm_missing()
    if error is None:
        try:
            tarballs = npm_pack(pinned, cache)
            texts = {name: (tablesort_js if name == "tablesort" else axe_js)(tarballs[name]) for name in wanted}
        except ERRORS as e:
            error = f"npm pack {specs(pinned)} failed ({e})"
    if error is not None:
        print(f"note: {error}: {', '.join(map(str, wanted.values()))} not written, so the report's tables are not "
              "sortable (it says so) and the browser test's accessibility check skips.\n"
              "      Install node and npm (Debian: apt-get install npm) and rerun `make setup` "
              "(or python3 workflow/build_web_assets.py).", file=sys.stderr)
        return False
    for name, path in wanted.items():
        write(path, texts[name])
        print(f"wrote {path} ({name}@{PACKAGES[name]}, {path.stat().st_size // 1024} KiB)")
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tablesort", type=Path, default=TABLESORT_OUT, help="where tablesort goes (package data)")
    ap.add_argument("--axe", type=Path, default=AXE_OUT, help="where axe-core goes (test-only)")
    ap.add_argument("--cache", type=Path, default=CACHE, help="npm tarballs (shared with build_plots_template.py)")
    ap.add_argument("--force", action="store_true", help="rebuild even when the files are current")
    ap.add_argument("--offline-only", action="store_true", help="exit 1 when the files could not be built")
    args = ap.parse_args(argv)
    ok = build(args.tablesort, args.axe, args.cache, args.force)
    return 1 if args.offline_only and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
