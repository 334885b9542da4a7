"""The report rule's files, in one place: what it reads (the rule's `input:` and everything collect may open) and
what it writes (the rule's `output:`, which dvcgen turns into DVC outs, metrics and plots). Imported by the
Snakefile, so it stays free of heavy imports."""

from __future__ import annotations

from .. import paths

# Measurements made by hand (their commands inside), committed; the speed sections show them.
RECORDS = {name: f"reports/records/{name}.json" for name in ("bench", "run", "headline")}
OUT_DIR = "reports"
# Tidy long-format CSVs for `dvc plots` (one row per observation, named columns).
PLOTS = ("matching_loss", "accuracy_vs_ipc", "model_accuracies")


def _experiment_methods(params) -> list[str]:
    from ..config import methods

    return methods(params)


def report_inputs(params) -> dict[str, list[str]]:
    """Every file the report may open, by kind: the rule declares exactly these (`input: **report_inputs(P)`),
    and collect.Inputs refuses to open anything else."""
    plan, cross, e = paths.plan(params), paths.cross_plan(params), params["experiment"]
    synthetic = [j for j in plan if paths.is_synthetic(j["method"])]
    cross_sets = sorted({paths.SYNTHETIC.format(**j) for j in cross})
    return {
        "evals": [paths.EVAL.format(**j) for j in plan],
        # the images of the grids: set 0 of DC per dataset and IPC of the main table
        "synthetic": [paths.SYNTHETIC.format(dataset=d, ipc=i, method="DC", set=0) for d in e["datasets"]
                      for i in e["ipcs"] if "DC" in _experiment_methods(params)],
        "synthetic_meta": [paths.SYNTHETIC.format(**j) + ".json" for j in synthetic],
        "losses": [paths.LOSS.format(**j) for j in synthetic],
        "prepared_meta": sorted({paths.PREPARED.format(**j) + ".json" for j in plan}),
        "continual": paths.continual_results(params),
        "nas": paths.nas_outputs(params),
        "cross": [paths.EVAL_ON.format(**j) for j in cross],
        "cross_sets_meta": [s + ".json" for s in cross_sets],
        "wholeset": [paths.WHOLESET_RESULT.format(**j) for j in paths.wholeset_jobs(params)],
        "optimal_random": [paths.OPTIMAL_RANDOM.format(**j) for j in paths.optimal_random_jobs(params)],
        "records": list(RECORDS.values()),
    }


def section_keys(params) -> list[str]:
    """The report's sections in page order (each writes reports/metrics/<key>.json), known from the parameters
    alone so that the rule can declare every output before it runs."""
    from ..config import CROSS_STUDIES

    methods = _experiment_methods(params)
    studies = params.get("studies", {})
    keys = ["summary", "main"]
    if any(paths.is_synthetic(m) for m in methods) or "variants" in studies:
        keys.append("cost")
    if paths.wholeset_jobs(params) or set(methods) & set(paths.EVIDENCE_FILE):
        keys.append("table1")
    if paths.optimal_random_jobs(params):
        keys.append("t12")
    keys += [s for s in ("levels", "distances", "variants", "traditional") if s in studies]
    if params.get("continual"):
        keys.append("continual")
    if params.get("nas"):
        keys.append("nas")
    keys += [f"cross_{study}_{d}_ipc{i}" for study, spec in studies.items() if study in CROSS_STUDIES
             for d in spec["datasets"] for i in spec["ipcs"]]
    keys += [f"speed_{name}" for name in RECORDS]
    if "DC" in methods:
        keys += ["synthetic_images", "matching_loss"]
    keys.append("seeds")
    return keys


def report_outputs(params, out_dir: str = OUT_DIR) -> dict:
    """Every file the report writes (the rule's `output:`; reports/figures is a directory, rebuilt whole)."""
    return {
        "md": f"{out_dir}/index.md",
        "html": f"{out_dir}/index.html",
        "table": f"{out_dir}/table1.csv",
        "cross": f"{out_dir}/cross.csv",
        "metrics": [f"{out_dir}/metrics/{k}.json" for k in section_keys(params)],
        "plots": [f"{out_dir}/plots/{p}.csv" for p in PLOTS],
        "figures": f"{out_dir}/figures",
    }
