"""`dvc plots show`: dvc.yaml's top-level plots (dcpipe.dvcgen.PLOTS, templates in .dvc/plots/) draw the report's
plot data (reports/plots/*.csv, fake here), and the page DVC writes with .dvc/config's html_template (built by
workflow/build_plots_template.py, `make setup`) loads nothing from the network."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import run

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / ".dcpipe/dvc_plots_template.html"
PLOT_IDS = {"matching_loss", "accuracy_vs_ipc", "model_accuracies"}
# the columns agreed with the report (its reports/plots/*.csv)
COLUMNS = {
    "matching_loss": ["dataset", "ipc", "method", "set", "iteration", "loss"],
    "accuracy_vs_ipc": ["dataset", "method", "ipc", "ours_mean", "ours_std", "paper_mean", "paper_std"],
    "model_accuracies": ["dataset", "ipc", "method", "set", "model", "accuracy"],
}
REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//", re.I)


def offline_template() -> Path | None:
    """The offline plots template (built as `make setup` does when it is missing); None when npm can't build it."""
    res = subprocess.run([sys.executable, str(ROOT / "workflow/build_plots_template.py"), "--offline-only"],
                         capture_output=True, text=True)
    return TEMPLATE if res.returncode == 0 else None


def require_offline_template() -> Path:
    template = offline_template()
    if template is None:
        reason = "the offline plots template could not be built (npm missing or unreachable): run `make setup`"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return template


def write_fake_plot_data(reports: Path) -> None:
    rows = {
        "matching_loss": [[d, ipc, m, s, it, round(ipc * 4.0 / (1 + it) + 0.1 * s, 4)] for d in ("FashionMNIST", "MNIST")
                          for ipc in (1, 10) for m in ("DC", "MDA") for s in (0, 1) for it in range(0, 20, 5)],
        "accuracy_vs_ipc": [[d, m, ipc, 60 + ipc / 2, 0.5, *(("", "") if m == "herding" and ipc == 50 else (61 + ipc / 2, 0.8))]
                            for d in ("FashionMNIST", "MNIST") for m in ("DC", "random", "herding") for ipc in (1, 10, 50)],
        "model_accuracies": [["FashionMNIST", ipc, m, s, k, round(60 + ipc + s - k * 0.3, 2)] for ipc in (1, 10)
                             for m in ("DC", "random") for s in range(3) for k in range(4)],
    }
    (reports / "plots").mkdir(parents=True, exist_ok=True)
    for name, table in rows.items():
        with open(reports / "plots" / f"{name}.csv", "w", newline="") as f:
            csv.writer(f).writerows([COLUMNS[name], *table])


def plots_project(base: Path, template: Path | None = None) -> Path:
    """A DVC project with the committed plot definitions, templates and config, and fake plot data."""
    base.mkdir(parents=True, exist_ok=True)
    run(["dvc", "init", "--no-scm", "-q"], base)
    shutil.copy(ROOT / ".dvc/config", base / ".dvc/config")
    shutil.copytree(ROOT / ".dvc/plots", base / ".dvc/plots", dirs_exist_ok=True)
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    (base / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, sort_keys=False))
    write_fake_plot_data(base / "reports")
    if template is not None:
        (base / ".dcpipe").mkdir(exist_ok=True)
        shutil.copy(template, base / ".dcpipe" / template.name)
    return base


def render_plots_page(base: Path) -> Path:
    """`dvc plots show` with .dvc/config's html_template: the page's path."""
    run(["dvc", "plots", "show", "-o", "dvc_plots"], base)
    return base / "dvc_plots/index.html"


def test_the_committed_plots_are_dvcgens_and_use_the_agreed_columns():
    from dcpipe.dvcgen import PLOTS

    assert yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"] == PLOTS
    for plot in PLOTS:
        (name, spec), = plot.items()
        (path, y), = spec["y"].items()
        assert path == f"reports/plots/{name}.csv" and {spec["x"], y} <= set(COLUMNS[name])
        template = json.loads((ROOT / ".dvc/plots" / f"{spec['template']}.json").read_text())
        assert "<DVC_METRIC_DATA>" in json.dumps(template)
    config = (ROOT / ".dvc/config").read_text()
    # DVC resolves a relative html_template against .dvc/
    assert re.search(r"html_template\s*=\s*\.\./\.dcpipe/dvc_plots_template\.html", config)


def test_dvc_plots_show_lists_the_three_plots(tmp_path):
    base = plots_project(tmp_path / "project")
    shown = json.loads(run(["dvc", "plots", "show", "--json"], base).stdout)
    assert not shown.get("errors"), shown["errors"]
    assert PLOT_IDS <= set(shown["data"])
    for plot_id in PLOT_IDS:
        (plot,) = shown["data"][plot_id]
        assert plot["type"] == "vega"
        values = plot["content"]["data"]["values"]
        assert values and set(COLUMNS[plot_id]) <= set(values[0])
        assert "<DVC_METRIC" not in json.dumps(plot["content"]), f"{plot_id}: an anchor left unfilled"


def test_the_plots_page_loads_no_script_from_the_network(tmp_path):
    template = require_offline_template()
    page = render_plots_page(plots_project(tmp_path / "project", template)).read_text()
    assert not REMOTE_SCRIPT.findall(page), REMOTE_SCRIPT.findall(page)
    assert "GENERATED by workflow/build_plots_template.py" in page  # .dvc/config's template, not DVC's page
    for library in ("vega", "vega-lite", "vega-embed"):
        assert f"<!-- {library} " in page  # inlined
    assert page.count("vegaEmbed(") >= len(PLOT_IDS)


def test_without_npm_the_template_says_it_needs_the_network(tmp_path):
    out = tmp_path / "t.html"
    res = subprocess.run([sys.executable, str(ROOT / "workflow/build_plots_template.py"), "--out", str(out)],
                         capture_output=True, text=True, env={**os.environ, "PATH": str(tmp_path)})
    assert res.returncode == 0 and "npm is not installed" in res.stderr and "make setup" in res.stderr
    assert "cdn.jsdelivr.net" in out.read_text() and "{plot_divs}" in out.read_text()


def test_the_report_stage_declares_no_stage_level_plots():
    """Only the three top-level plots are drawn: a stage-level entry for a plot CSV would be drawn a second time
    with DVC's default template (row number against one column), which means nothing."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert not [name for name, stage in stages.items() if "plots" in stage]
    assert "reports/plots/matching_loss.csv" in stages["report"]["outs"]  # cached: a DVC remote carries it
    assert "reports/metrics/FashionMNIST_ipc1_DC.json" in stages["report"]["metrics"]
    assert "reports/tables/main.json" in stages["report"]["outs"]  # per-table detail: a plain output
