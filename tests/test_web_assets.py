"""workflow/build_web_assets.py (`make setup`): tablesort (package data the report inlines) and axe-core (the browser
test's accessibility check) from pinned npm packages; without npm it writes nothing and says what to do."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "workflow/build_web_assets.py"


def build(tmp_path: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--tablesort", str(tmp_path / "static/tablesort.min.js"),
                           "--axe", str(tmp_path / "web/axe.min.js"), *args],
                          capture_output=True, text=True, env=env)


def test_without_npm_nothing_is_written_and_it_says_what_to_do(tmp_path):
    res = build(tmp_path, "--cache", str(tmp_path / "npm"), env={**os.environ, "PATH": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert "npm is not installed" in res.stderr and "make setup" in res.stderr and "not sortable" in res.stderr
    assert not (tmp_path / "static").exists() and not (tmp_path / "web").exists()


def test_the_pinned_builds_are_written_once(tmp_path):
    """From the npm cache shared with the plots template (.dcpipe/npm/; fetched once with `npm pack`)."""
    res = build(tmp_path, "--offline-only")
    if res.returncode != 0:
        reason = f"npm could not fetch tablesort and axe-core: {res.stderr.strip()[-300:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    tablesort, axe = tmp_path / "static/tablesort.min.js", tmp_path / "web/axe.min.js"
    text = tablesort.read_text()
    first = text.splitlines()[0]
    assert first.startswith("/*! tablesort@5.7.1 (MIT licence") and first.endswith("*/")
    assert text.index("window.Tablesort=") < text.index('Tablesort.extend("number"')  # the core, then the sorter
    assert "</script" not in text.lower()  # the report inlines it
    assert axe.read_text().startswith("/*! axe v4.14.1\n")
    stamps = tablesort.stat().st_mtime_ns, axe.stat().st_mtime_ns
    again = build(tmp_path, "--offline-only")
    assert again.returncode == 0 and "current" in again.stdout
    assert (tablesort.stat().st_mtime_ns, axe.stat().st_mtime_ns) == stamps

    tablesort.write_text(text.replace("tablesort@5.7.1", "tablesort@5.6.0", 1))  # another version: rebuilt
    res = build(tmp_path, "--offline-only")
    assert res.returncode == 0 and "wrote" in res.stdout and tablesort.read_text() == text
    assert axe.stat().st_mtime_ns == stamps[1]
