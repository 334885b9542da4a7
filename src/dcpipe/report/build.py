"""Builds reports/ from the report rule's declared inputs: the page (index.md, index.html), its figures, one small
metrics file per evaluated cell (reports/metrics/<cell>.json, one schema, for `dvc metrics show`), each section's
detail (reports/tables/<key>.json; report.metrics) and tidy plot CSVs (reports/plots/*.csv, for `dvc plots`). It
writes exactly report_files.report_outputs(params): the figures, metrics, tables and plots folders are rebuilt whole, so
nothing from an earlier run with other parameters survives."""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from .. import paper
from ..config import augment_datasets, methods as experiment_methods, sections as parameter_sections
from ..io import atomic_path, provenance
from .collect import Inputs, cross_evaluations, evaluations, matching_losses, summarise
from .metrics import write_metrics
from ..report_files import report_outputs, section_keys
from .cells import cell_pages
from .first_screen import badges, figure_alt, ours_vs_paper
from .render import FirstScreen, render_cell_page, render_html, render_markdown
from .section import Details, Section, per_ipc, words
from .sections.continual import continual_section
from .sections.cross import condense_seconds, cross_sections, summarise_cross
from .sections.figures import matching_loss_section, seeds_section, synthetic_images_section
from .sections.main import cost_section, main_section
from .sections.nas import nas_section
from .sections.score import score_section
from .sections.protocol import protocol_sections
from .sections.speed import speed_sections
from .sections.studies import study_section, t11_section
from .sections.sweep import ipc_sweep_section, resources_section
from .sections.table1 import t12_section, table1_section
from .summary import summary_section

log = logging.getLogger("dcpipe")
VERSIONED_PACKAGES = ("torch", "numpy", "pandas", "matplotlib", "seaborn", "jinja2", "snakemake")


def build_sections(inputs: Inputs, fig_dir: Path, evals: pd.DataFrame, summary: pd.DataFrame,
                   cross: pd.DataFrame) -> list[Section]:
    """Every section in page order; the summary, first, gathers the comparisons of all the others."""
    params = inputs.params
    keys = section_keys(params)
    sections = [main_section(summary, params)]
    if "cost" in keys:
        sections.append(cost_section(inputs))
    if "table1" in keys:
        sections.append(table1_section(summary, inputs))
    if "t12" in keys:
        sections.append(t12_section(inputs))
    if "ipc_sweep" in keys:
        sections.append(ipc_sweep_section(summary, inputs))
    sections += [study_section(s, summary, params) for s in ("levels", "distances", "variants") if s in keys]
    if "traditional" in keys:
        sections.append(t11_section(summary, params))
    if "resources" in keys:
        sections.append(resources_section(summary, inputs))
    if "continual" in keys:
        sections.append(continual_section(inputs, fig_dir))
    if "nas" in keys:
        sections.append(nas_section(inputs, fig_dir))
    if "score" in keys:
        sections.append(score_section(inputs, summary))
    sections += cross_sections(cross, params, condense_seconds(inputs), fig_dir)
    sections += protocol_sections(inputs)
    sections += speed_sections(inputs)
    if "synthetic_images" in keys:
        sections += [synthetic_images_section(inputs, fig_dir),
                     matching_loss_section(matching_losses(inputs), fig_dir)]
    sections.append(seeds_section(evals, params))
    sections.insert(0, summary_section(sections))
    built = [s.key for s in sections]
    if built != keys:  # the rule declared report_files.section_keys' outputs: they must be what was built
        raise RuntimeError(f"report sections {built} differ from the declared {keys}")
    return sections


def setting_rows(params, params_file: str) -> list[tuple[str, str]]:
    """The main table's budget, one row per part (studies, coresets and cross tables name their own)."""
    s = parameter_sections(params)
    b, init = s.budget, s.budget.init
    loops = per_ipc({i: f"{t} × {k}" for i, (t, k) in b.loops.items()})
    augmented = augment_datasets(params)
    return [("parameters", f"{params_file} (base seed {s.seed})"),
            ("condensation", f"{b.condense_model}, K = {per_ipc(b.iterations)} iterations, loops T × ς_θ = {loops}, "
                             f"real batch {b.batch_real} per class, init "
                             f"{per_ipc(init) if isinstance(init, dict) else init}"),
            ("evaluation", f"{b.models_per_set} fresh {b.evaluation_model} model(s) per set × {s.experiment.sets} "
                           f"set(s), epochs {per_ipc(b.epochs)}"
                           + (f" ({words(augmented)}, augmented: {per_ipc(b.epochs_augmented)})" if augmented else "")
                           + ", whole test set"),
            ("paper protocol", f"K = {paper.PROTOCOL['iterations']}, {paper.PROTOCOL['sets']} sets × "
                               f"{paper.PROTOCOL['models_per_set']} models, {paper.PROTOCOL['epochs']} epochs (MNIST: "
                               f"{paper.PROTOCOL['epochs_augmented']}, augmented)")]


def provenance_record(params_file: str) -> dict:
    prov = provenance()
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"run_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "params_file": params_file,
            "git_commit": prov["git_commit"], "git_dirty": prov["git_dirty"], "dcpipe": prov["dcpipe"],
            "python": prov["python"], "device": prov["device"], "versions": versions}


def provenance_rows(p: dict) -> list[tuple[str, str]]:
    tree = {True: "with uncommitted changes", False: "clean", None: "state unknown"}[p["git_dirty"]]
    return [("built", p["run_utc"]), ("parameter file", p["params_file"]),
            ("commit", f"{p['git_commit'] or 'unknown (not a git checkout)'} ({tree})"),
            ("dcpipe", f"{p['dcpipe']} (Python {p['python']})"), ("device", p["device"]),
            *[(name, version) for name, version in p["versions"].items()]]


def lede(p: dict) -> str:
    commit = (p["git_commit"] or "no git")[:8] + (" + changes" if p["git_dirty"] else "")
    return f"{p['params_file']} · commit {commit} · {p['run_utc'][:16].replace('T', ' ')} UTC · {p['device']}"


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.4g")


def _fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def write_plots(out: Path, params, evals, summary, losses) -> None:
    main = summary[summary.method.isin(experiment_methods(params))]
    refs = [paper.reference(d, i, m) or (np.nan, np.nan) for d, i, m in main[["dataset", "ipc", "method"]].values]
    accuracy = pd.DataFrame({"dataset": main.dataset, "method": main.method, "ipc": main.ipc,
                             "ours_mean": main["mean"], "ours_std": main["std"], "ours_models": main.n_models,
                             "paper_mean": [r[0] for r in refs], "paper_std": [r[1] for r in refs]})
    _write_csv(accuracy, out / "accuracy_vs_ipc.csv")
    _write_csv(losses, out / "matching_loss.csv")
    _write_csv(evals[["dataset", "ipc", "method", "set", "model", "accuracy"]], out / "model_accuracies.csv")


def build_report(params, params_file: str, out_dir: Path = Path("reports"), inputs: Inputs | None = None) -> None:
    out_dir = Path(out_dir)
    outputs = report_outputs(params, str(out_dir))
    inputs = inputs or Inputs(params)
    fig_dir = _fresh_dir(Path(outputs["figures"]))
    metrics_dir, plots_dir = _fresh_dir(out_dir / "metrics"), _fresh_dir(out_dir / "plots")
    tables_dir = _fresh_dir(out_dir / "tables")
    evals = evaluations(inputs)
    summary = summarise(evals)
    cross = summarise_cross(cross_evaluations(inputs))
    sections = build_sections(inputs, fig_dir, evals, summary, cross)

    prov = provenance_record(params_file)
    write_metrics(metrics_dir, tables_dir, inputs, summary, sections, prov)
    write_plots(plots_dir, params, evals, summary, matching_losses(inputs))
    table = summary.assign(paper_mean=[(paper.reference(d, i, m) or (np.nan, np.nan))[0] for d, i, m in
                                       summary[["dataset", "ipc", "method"]].values],
                           paper_std=[(paper.reference(d, i, m) or (np.nan, np.nan))[1] for d, i, m in
                                      summary[["dataset", "ipc", "method"]].values])
    _write_csv(table, Path(outputs["table"]))
    _write_csv(cross, Path(outputs["cross"]))
    judged = sections[0].comparisons
    top = FirstScreen(lede(prov), badges(judged), str(ours_vs_paper(judged, fig_dir / "ours_vs_paper.png")
                                                     .relative_to(out_dir)),
                      figure_alt(judged), [Details("Run settings", setting_rows(params, params_file)),
                                           Details("Provenance: commit, machine, versions", provenance_rows(prov))])
    with atomic_path(outputs["md"]) as tmp:
        tmp.write_text(render_markdown(sections, top))
    with atomic_path(outputs["html"]) as tmp:
        tmp.write_text(render_html(sections, top))
    cells_dir = _fresh_dir(Path(outputs["cells"]))
    pages = cell_pages(inputs, summary, evals, matching_losses(inputs), judged, cells_dir)
    for page in pages:
        with atomic_path(cells_dir / f"{page.name}.html") as tmp:
            tmp.write_text(render_cell_page(page))
    log.info("report written to %s (%d sections, %d cell pages)", out_dir, len(sections), len(pages))
