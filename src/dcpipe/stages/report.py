"""Stage report: reports/ (Markdown and HTML pages, per-table metrics, plot data, figures) from the rule's declared
inputs, built by the report package (dcpipe.report) one layer below the stages."""

from __future__ import annotations

from pathlib import Path

from ..report import build_report


def report(params, params_file: str, out_dir: Path) -> None:
    build_report(params, params_file, out_dir)
