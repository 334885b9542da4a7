"""The report, as a specification. Whole-report tests build it from FAKE pipeline results (tests/report_fakes.py:
made-up accuracies in the stages' file formats, no training), which is what makes them take seconds."""

import builtins
import html as html_module
import io
import json
import re
from pathlib import Path

import pytest

from dcpipe import paper
from dcpipe.report.collect import Inputs, UndeclaredInput
from dcpipe.report_files import report_inputs, report_outputs, section_keys
from dcpipe.report.section import Budget, Section, stat
from dcpipe.report.summary import OUTSIDE, REPRODUCED, protocol_budget, status
from tests.report_fakes import declared_files, fake_params, write_fake_run

PAPER = protocol_budget("FashionMNIST", synthetic=True)


def test_the_papers_protocol_is_K_1000_five_sets_of_twenty_models_and_300_epochs_1000_on_MNIST():
    assert PAPER == Budget(iterations=1000, sets=5, models=20, epochs=300)
    assert protocol_budget("MNIST", synthetic=True).epochs == 1000 == paper.protocol_epochs("MNIST")
    assert protocol_budget("FashionMNIST", synthetic=False).iterations is None  # coresets are not condensed


def test_a_cell_at_the_papers_protocol_inside_mean_pm_2_std_is_reproduced_and_outside_it_is_not():
    assert status(70.4, (70.5, 0.6), PAPER, PAPER) == REPRODUCED
    assert status(71.7, (70.5, 0.6), PAPER, PAPER) == REPRODUCED  # 2 std = 1.2 points
    assert status(71.8, (70.5, 0.6), PAPER, PAPER) == OUTSIDE


def test_a_cell_at_K_80_is_a_reduced_budget_whatever_its_accuracy():
    cheap = Budget(iterations=80, sets=1, models=3, epochs=300)
    for accuracy in (70.5, 20.0, 99.0):
        assert status(accuracy, (70.5, 0.6), cheap, PAPER) == "reduced budget: K = 80, 1 set × 3 models, 300 epochs"
    fewer_models = Budget(iterations=1000, sets=5, models=19, epochs=300)
    assert status(70.5, (70.5, 0.6), fewer_models, PAPER).startswith("reduced budget")


def test_a_cell_that_did_not_run_says_why():
    assert status(None, (31.2, 1.4), None, PAPER, "SVHN not available offline") == \
        "not run here: SVHN not available offline"
    assert status(None, (31.2, 1.4), None, PAPER) == "not run here: not in this parameter file"


def test_a_single_model_cell_names_its_one_model_and_never_shows_pm_0():
    assert stat(78.34, 0.0, 1) == "78.3 (1 model)"
    assert stat(78.34, 0.41, 3) == "78.3 ± 0.4"
    assert stat(float("nan"), 0.0, 0) == "–"


def test_a_section_refuses_rows_wider_or_narrower_than_its_header():
    with pytest.raises(ValueError, match="cells"):
        Section("k", "title", "note", ["a", "b"], [["1", "2", "3"]])


def test_the_inputs_object_refuses_a_file_the_rule_does_not_declare(tmp_path):
    params, _ = fake_params(tmp_path)
    with pytest.raises(UndeclaredInput, match="not among the report rule's inputs"):
        Inputs(params).json("data/eval/somewhere_else.json")


def test_the_rule_declares_the_records_and_every_input_kind(tmp_path):
    params, _ = fake_params(tmp_path)
    files = report_inputs(params)
    assert set(files["records"]) == {f"reports/records/{n}.json" for n in ("bench", "run", "headline")}
    assert all(files[k] for k in ("evals", "synthetic_meta", "losses", "cross", "nas", "continual", "wholeset"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A whole report built from FAKE results of the default params.yaml (+ T12), every open() recorded."""
    root = tmp_path_factory.mktemp("report")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    params, _ = fake_params(root)
    write_fake_run(params, root)
    opened = []
    real_open = builtins.open

    def spy(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, Path)) and "r" in mode and "+" not in mode:
            opened.append(Path(file).resolve())
        return real_open(file, mode, *args, **kwargs)

    mp.setattr(builtins, "open", spy)
    mp.setattr(io, "open", spy)  # pathlib reads through io.open
    from dcpipe.report import build_report

    inputs = Inputs(params)
    try:
        build_report(params, "params.yaml", Path("reports"), inputs)
    finally:
        mp.undo()
    yield {"root": root, "params": params, "inputs": inputs, "opened": opened,
           "html": (root / "reports/index.html").read_text(), "md": (root / "reports/index.md").read_text()}


def test_every_file_the_report_opens_is_a_declared_input_of_the_rule(built):
    root, declared = built["root"], declared_files(built["params"])
    project_files = {str(p.relative_to(root)) for p in built["opened"]
                     if p.is_relative_to(root) and not str(p.relative_to(root)).startswith(("reports/figures",))}
    project_files.discard("params.yaml")  # read by load_params before the build, not by the report
    project_files.discard(".snakemake/pip-deployments")  # Snakemake's own state directory, listed by its API
    assert project_files and project_files <= declared, project_files - declared
    assert set(built["inputs"].opened) <= declared


def test_the_build_writes_exactly_the_declared_outputs(built):
    root, out = built["root"], report_outputs(built["params"])
    written = {str(p.relative_to(root)) for p in (root / "reports").rglob("*")
               if p.is_file() and not {"records", "figures", "cells"} & set(p.parts)}
    declared = {out["md"], out["html"], out["table"], out["cross"], *out["metrics"], *out["tables"], *out["plots"]}
    assert written == declared
    figures = {p.name for p in (root / out["figures"]).iterdir()}
    assert {"matching_loss.png", "continual.png", "nas_F5.png", "cross_crossarch_MNIST_ipc1.png",
            "synthetic_FashionMNIST_ipc1.png", "ours_vs_paper.png"} <= figures


def test_the_html_shows_no_markdown_and_no_python_values(built):
    html = re.sub(r"<script>.*?</script>", "", built["html"], flags=re.DOTALL)  # tablesort's code, our filters
    for raw in ("`", "**", "{'"):
        assert raw not in html, raw
    for word in ("None", "nan", "True", "False"):
        assert not re.search(rf"\b{word}\b", html), word
    assert not re.search(r"\[\d", html), "a Python list printed raw"
    assert "img { max-width: 100%; height: auto;" in html and 'class="table-scroll"' in html


def test_the_setting_spells_per_ipc_values_as_prose(built):
    assert "K = 80 (IPC 1), 3 (IPC 10) iterations" in built["html"]


def test_no_single_model_cell_of_ours_shows_pm_0(built):
    assert "(1 model)" in built["md"]
    # ours is left of " / ": a '± 0.0' there would be one model's missing spread (the paper's 99.6 ± 0.0 is fine)
    assert not re.search(r"± 0\.0 /", built["md"])


def test_the_summary_comes_first_and_judges_only_cells_at_the_papers_protocol(built):
    md = built["md"]
    assert md.index("## What is reproduced") < md.index("## Results: test accuracy")
    summary = md[md.index("## What is reproduced"):md.index("## Results: test accuracy")]
    rows = [r for r in summary.splitlines() if r.startswith("| ") and not r.startswith("| Table")]
    # the committed runs at the protocol, the coreset protocol run (5 selections x 20), the headline (DC: K = 1000,
    # 5 x 20, 300 epochs), the MNIST DC protocol run and the MD protocol run (the follow-up's 2 x 50), are the cells
    # judged; each line names the settings where it departs from the paper
    coresets = "(protocol run fmnist_coresets; departs in coresets.whole_epochs, evaluate.test_precision)"
    assert [r for r in rows if r.endswith(f"| {REPRODUCED} |  |")] == [
        f"| DC Table 1 (protocol run) | FashionMNIST | 1 | random {coresets} | 49.3 ± 7.5 | 51.4 ± 3.8 | reproduced |  |",
        f"| DC Table 1 (protocol run) | FashionMNIST | 1 | herding {coresets} | 66.8 ± 0.9 | 67.0 ± 1.9 | reproduced |  |",
        f"| DC Table 1 (protocol run) | FashionMNIST | 1 | kcenter {coresets} | 66.6 ± 0.8 | 66.9 ± 1.8 | reproduced |  |",
        "| Follow-up Table 3 (protocol run) | FashionMNIST | 1 | MD (protocol run fmnist_md; departs in "
        "condense.batch_real, condense.real_precision, evaluate.test_precision) | 71.4 ± 0.7 | 71.4 ± 0.6 | reproduced |  |",
        "| DC Table 1 (protocol run) | MNIST | 1 | DC (protocol run mnist_dc) | 92.3 ± 0.4 | 91.7 ± 0.5 | reproduced |  |",
        "| DC Table 1 (headline run) | FashionMNIST | 1 | DC (departs in condense.batch_real, "
        "condense.inner_precision, condense.real_precision, evaluate.test_precision, evaluate.train_precision) "
        "| 70.3 ± 0.6 | 70.5 ± 0.6 | reproduced |  |"]
    # a reduced cell's status is its kind; the budget it ran at has its own column (in the HTML: its colour)
    assert "| DC Table 1 | FashionMNIST | 1 | DC |" in summary and \
        "| reduced budget | K = 80, 1 set × 3 models, 300 epochs |" in summary
    # a protocol run with fewer models than the paper's is shown, and not judged
    assert "| MNIST | 1 | herding (protocol run mnist_coresets; departs in coresets.whole_epochs, " \
        "evaluate.models_per_set, evaluate.test_precision) | 90.4 ± 1.0 | 89.2 ± 1.6 | reduced budget | 5 sets × 4 " \
        "models, 1000 epochs |" in summary
    assert "| not run here | SVHN not available offline |" in summary
    assert all(re.search(r"\| (reproduced|outside the paper's band|reduced budget|not run here) \| [^|]* \|$", r)
               for r in rows)


def test_every_table_names_the_budget_its_cells_ran_at(built):
    md = built["md"]
    for title in ("## Results: test accuracy", "## DC Table 1:", "## Follow-up Table 1", "## Follow-up Table 3",
                  "## DC Table T11", "## DC Table 2", "## DC Table T12", "## DC Table 4", "## Continual learning"):
        start = md.index(title)
        section = md[start:md.index("\n## ", start + 1)]
        # a caption ("Budget(s): ...") or a Budget column, naming K or the sets (runs, architectures) x models
        assert re.search(r"Budgets?\b.*?(K = \d+|\d+ [a-z ]+ × \d+ models?)", section, re.DOTALL), title


def test_each_section_has_rows_as_wide_as_its_header_and_a_table_file(built):
    root = built["root"]  # every Section checked its rows' widths when it was built (Section.__post_init__)
    for key in section_keys(built["params"]):
        f = root / f"reports/tables/{key}.json"
        assert f.stat().st_size < 20_000, key
        json.loads(f.read_text())
    assert json.loads((root / "reports/tables/summary.json").read_text())["provenance"]["run_utc"].endswith("+00:00")


def test_every_metrics_file_is_one_evaluated_cell_of_one_schema(built):
    root, params = built["root"], built["params"]
    files = sorted((root / "reports/metrics").iterdir())
    assert [f"reports/metrics/{f.name}" for f in files] == sorted(report_outputs(params)["metrics"])
    values = {f.stem: json.loads(f.read_text()) for f in files}
    assert {tuple(sorted(v)) for v in values.values()} == {("mean", "models", "paper", "paper_std", "std")}
    main = json.loads((root / "reports/tables/main.json").read_text())
    for name, v in values.items():
        if name in main:  # the main table's cells: the same mean, std and models, rounded
            assert v["mean"] == round(main[name]["mean"], 2) and v["models"] == main[name]["n_models"], name
        assert 0 <= v["mean"] <= 100 and v["models"] >= 1 and v["mean"] == round(v["mean"], 2), name
    ref = paper.reference("FashionMNIST", 1, "DC")
    assert (values["FashionMNIST_ipc1_DC"]["paper"], values["FashionMNIST_ipc1_DC"]["paper_std"]) == ref
    assert values["FashionMNIST_whole"]["paper"] == paper.WHOLE_DATASET["FashionMNIST"][0]


def test_plot_csvs_are_tidy_long_format_with_named_columns(built):
    import pandas as pd

    plots = built["root"] / "reports/plots"
    loss = pd.read_csv(plots / "matching_loss.csv")
    assert list(loss.columns) == ["dataset", "ipc", "method", "set", "iteration", "loss"]
    assert set(loss.method) >= {"DC", "V-MDA"}
    acc = pd.read_csv(plots / "accuracy_vs_ipc.csv")
    assert list(acc.columns) == ["dataset", "method", "ipc", "ours_mean", "ours_std", "ours_models", "paper_mean",
                                 "paper_std"]
    models = pd.read_csv(plots / "model_accuracies.csv")
    assert list(models.columns) == ["dataset", "ipc", "method", "set", "model", "accuracy"]
    assert len(models[(models.dataset == "FashionMNIST") & (models.ipc == 1) & (models.method == "DC")]) == 3


def test_provenance_is_the_working_tree_the_process_runs_in(tmp_path, monkeypatch):
    import subprocess

    from dcpipe.io import provenance

    monkeypatch.chdir(tmp_path)  # not a checkout: unknown, not "clean"
    assert provenance()["git_commit"] is None and provenance()["git_dirty"] is None
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"],
                   check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert provenance()["git_commit"] == head and provenance()["git_dirty"] is False


def test_provenance_names_the_machine_that_timed_the_record():
    import torch

    from dcpipe.io import cpu_model, provenance

    p = provenance()
    assert p["cpu"] == cpu_model() and p["cpu"]  # never empty: /proc/cpuinfo's model name, else platform's
    # torch.backends.cpu.get_cpu_capability's documented values
    assert p["cpu_capability"] in {"DEFAULT", "VSX", "Z VECTOR", "NO AVX", "AVX2", "AVX512", "SVE256"}
    assert p["gpu"] == (torch.cuda.get_device_name() if torch.cuda.is_available() else None)


def test_the_default_job_section_states_the_same_machine_before_and_after_from_the_record():
    from dcpipe.report.sections.speed import run_section

    record = json.loads(Path("reports/records/run.json").read_text())
    ba = record["before_after"]
    # the speed-up is the record's own arithmetic on the two wall clocks it states, never a typed-in number
    assert ba["speedup"] == pytest.approx(ba["before"]["seconds"] / ba["after"]["seconds"], abs=0.005)
    assert ba["before"]["commit"] != ba["after"]["commit"]
    note = run_section(record).note
    assert f"{ba['before']['wall_clock']} at {ba['before']['commit'][:8]}" in note
    assert f"{ba['after']['wall_clock']} at {ba['after']['commit'][:8]} ({ba['speedup']:.2f}×)" in note


# The page as a results site: the first screen, status-coloured paper tables, a page per set


def _section_html(html: str, key: str) -> str:
    start = html.index(f'<section id="{key}">')
    return html[start:html.index("</section>", start)]


def test_the_first_screen_counts_every_status_of_the_summary_and_draws_ours_against_the_paper(built):
    html, md = built["html"], built["md"]
    summary = md[md.index("## What is reproduced"):md.index("## Results: test accuracy")]
    statuses = re.findall(r"\| (reproduced|outside the paper's band|reduced budget|not run here) \| [^|]* \|$",
                          summary, re.MULTILINE)
    badges = dict((html_module.unescape(label), int(n)) for n, label in re.findall(
        r'<a class="st-[a-z-]+" href="#summary" data-status="[^"]+"><strong>(\d+)</strong> ([^<]+)</a>', html))
    assert badges == {s: statuses.count(s) for s in ("reproduced", "outside the paper's band", "reduced budget",
                                                     "not run here")}
    assert html.index('id="status-badges"') < html.index('id="ours-vs-paper"') < html.index('<section id="summary">')
    assert (built["root"] / "reports/figures/ours_vs_paper.png").stat().st_size > 10_000
    # the figure draws the cells with a number of ours and of the paper's (accuracies), not the NAS or continual rows
    alt = re.search(r'<img src="figures/ours_vs_paper.png" alt="Ours against the paper for (\d+) cells', html)
    assert alt and 50 < int(alt[1]) < sum(badges.values())


def test_a_paper_table_colours_each_cell_by_status_with_its_budget_on_hover_not_in_its_text(built):
    table1 = _section_html(built["html"], "table1")
    cell = re.search(r'<td class="st-reduced num" title="K = 80, 1 set × 3 models, 300 epochs" data-sort="[\d.]+">'
                     r'<a href="cells/FashionMNIST_ipc1_DC_set0.html">([^<]+)</a></td>', table1)
    assert cell, "FashionMNIST IPC 1 DC: amber, its budget on hover, linked to its set's page"
    assert re.fullmatch(r"\d+\.\d ± \d+\.\d / 70\.5 ± 0\.6", cell[1])  # ours / paper, and nothing else
    assert "<details>" in table1 and "Budgets of the cells" in table1  # every budget, folded under the table


def test_every_number_links_to_its_sets_page_and_every_set_has_one(built):
    from dcpipe.plan import set_jobs
    from dcpipe.report.cells import page_name

    root = built["root"]
    pages = {p.stem for p in (root / "reports/cells").glob("*.html")}
    assert pages == {page_name(j) for j in set_jobs(built["params"])}
    links = set(re.findall(r'href="(cells/[^"]+)"', built["html"]))
    assert links and all((root / "reports" / h).is_file() for h in links)
    main = _section_html(built["html"], "main")
    numbers = re.findall(r"<td[^>]*>(?:<a [^>]*>)?(\d+\.\d[^<]*)", main)
    linked = re.findall(r'<td[^>]*><a href="cells/[^"]+">\d+\.\d', main)
    assert numbers and len(linked) == len(numbers)


def test_a_set_page_shows_its_images_curves_budget_against_the_paper_and_artifacts_with_their_md5(built):
    import hashlib

    root = built["root"]
    page = (root / "reports/cells/FashionMNIST_ipc1_DC_set0.html").read_text()
    for img in ("img/FashionMNIST_ipc1_DC_set0.png", "img/FashionMNIST_ipc1_DC_set0_curves.png"):
        assert f'src="{img}"' in page and (root / "reports/cells" / img).stat().st_size > 500
    assert re.search(r"<td>condensation iterations K</td><td class=\"num\">80</td><td class=\"num\">1000</td>"
                     r"<td>departs</td>", page)
    assert '<a href="../index.html">dcpipe report</a>' in page
    for path in ("data/synthetic/FashionMNIST/ipc1/DC_set0.npz", "data/eval/FashionMNIST/ipc1/DC_set0.json"):
        md5 = hashlib.md5((root / path).read_bytes()).hexdigest()
        assert f"<td>{path}</td><td>{md5}</td>" in page, path
    # a coreset's page shows the training images its indices pick
    assert (root / "reports/cells/img/MNIST_ipc10_herding_set0.png").is_file()


def test_provenance_is_folded_and_no_paragraph_is_a_wall_of_text(built):
    html = built["html"]
    assert re.search(r"<details>\s*<summary>Provenance: commit, machine, versions</summary>", html)
    protocol = _section_html(html, "protocol_runs")
    assert protocol.count("<summary>Run ") == len(built["inputs"].files["protocol_records"]) > 0
    paragraphs = [re.sub(r"<[^>]+>", "", p) for p in re.findall(r"<p[^>]*>(.*?)</p>", html, re.DOTALL)]
    assert max(map(len, paragraphs)) < 1000, max(paragraphs, key=len)[:200]


def test_the_summary_splits_each_cell_into_the_columns_it_is_filtered_by():
    from dcpipe.report.summary import split_label

    assert split_label("FashionMNIST, IPC 10, DC") == ["FashionMNIST", "10", "DC"]
    assert split_label("MNIST, IPC 1, C MLP, T LeNet") == ["MNIST", "1", "C MLP, T LeNet"]
    assert split_label("SVHN, IPC 1, 10, 50 (15 cells)") == ["SVHN", "1, 10, 50", "15 cells"]
    assert split_label("Spearman ρ, top 10, DC") == ["", "", "Spearman ρ, top 10, DC"]


def test_numbers_with_their_spread_align_right_and_prose_budgets_and_hashes_do_not():
    from dcpipe.report.section import Cell

    assert all(Cell(t).numeric for t in ("70.3 ± 0.6", "68.0 (1 model) / 67.0 ± 1.9", "77% / 75%", "10", "–", "5×10^4"))
    assert not any(Cell(t).numeric for t in ("1 set × 3 models, 300 epochs", "9306c6d80fa88a72", "K = 80", "DC"))


def test_the_figure_puts_recorded_runs_in_one_panel_and_a_study_in_its_tables():
    from dcpipe.report.first_screen import RUNS, panels
    from dcpipe.report.section import Comparison

    cells = [Comparison(t, "FashionMNIST, IPC 10, MD", "1", "2", "reduced budget: K = 1", (70.0, 1.0), (71.4, 0.6))
             for t in ("Follow-up Table 3 (variants study)", "Follow-up Table 3 (protocol run)",
                       "DC Table 1 (headline run)", "DC Table 4")]
    cells.append(Comparison("DC Table 4", "Spearman", "0.5", "0.79", "reduced budget: x"))  # not an accuracy
    assert {t: len(g) for t, g in panels(cells).items()} == {"Follow-up Table 3 (variants study)": 1, RUNS: 2,
                                                             "DC Table 4": 1}
