"""reports/: a page that opens offline (Markdown and HTML) with the Table-1-style results, the synthetic images
and the matching loss, plus metrics.json (for `dvc metrics show`) and table1.csv (for `dvc plots`)."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from . import paper, paths  # noqa: E402
from .io import atomic_path, provenance, read_json, read_npz, write_json  # noqa: E402

log = logging.getLogger("dcpipe")


def collect(params) -> pd.DataFrame:
    rows = []
    for job in paths.plan(params):
        r = read_json(paths.EVAL.format(**job))
        for i, acc in enumerate(r["accuracies"]):
            rows.append({**job, "model_index": i, "accuracy": 100 * acc, "seed": r["train_set_meta"]["seed"],
                         "eval_seed": r["seed"], "epochs": r["train_config"]["epochs"],
                         "wall_seconds": r["wall_seconds"] / len(r["accuracies"])})
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    g = df.groupby(["dataset", "ipc", "method"], sort=False)["accuracy"]
    out = g.agg(mean="mean", n_models="count").reset_index()
    out["std"] = g.std(ddof=0).values  # the papers' std over all models
    return out


def _pm(v) -> str:
    return "–" if v is None or pd.isna(v[0]) else f"{v[0]:.1f} ± {v[1]:.1f}"


def _ours(summary, dataset, ipc, method):
    r = summary[(summary.dataset == dataset) & (summary.ipc == int(ipc)) & (summary.method == method)]
    return None if r.empty else (r["mean"].iloc[0], r["std"].iloc[0])


def main_table(summary, params):
    """DC Table 1 / follow-up Table 3 style: one row per dataset and IPC, 'ours / paper' per method."""
    methods = methods_of(params)
    header = ["Dataset", "IPC"] + methods
    rows = []
    for d in params["experiment"]["datasets"]:
        for i in params["experiment"]["ipcs"]:
            rows.append([d, str(i)] + ["n/a" if paths.not_applicable(m, i) else
                                       f"{_pm(_ours(summary, d, i, m))} / {_pm(paper.reference(d, i, m))}"
                                       for m in methods])
    return header, rows


TABLE1_COLUMNS = (("random", "Random"), ("herding", "Herding"), ("kcenter", "K-Center"), ("forgetting", "Forgetting"),
                  ("DC", "DC"))


def wholeset_results(params) -> dict:
    """{dataset: (mean, std) in %} of the whole-set stage (Table 1's whole-dataset column)."""
    out = {}
    for job in paths.wholeset_jobs(params):
        r = read_json(paths.WHOLESET_RESULT.format(**job))
        out[job["dataset"]] = (100 * r["mean"], 100 * r["std"], len(r["accuracies"]), r["train_config"]["epochs"])
    return out


def coreset_table(summary, params):
    """DC Table 1: Random / Herding / K-Center / Forgetting / DC / whole dataset, ours / paper."""
    planned = set(methods_of(params))
    cols = [(m, name) for m, name in TABLE1_COLUMNS if m in planned]
    whole = wholeset_results(params)
    header = ["Dataset", "IPC"] + [name for _, name in cols] + (["Whole dataset"] if whole else [])
    rows = []
    for d in params["experiment"]["datasets"]:
        for i in params["experiment"]["ipcs"]:
            row = [d, str(i)] + [f"{_pm(_ours(summary, d, i, m))} / {_pm(paper.table1(d, i, m))}" for m, _ in cols]
            if whole:
                row.append(f"{_pm(whole.get(d, (None,))[:2])} / {_pm(paper.WHOLE_DATASET.get(d))}")
            rows.append(row)
    note = ("ours / paper. Herding and k-center pick in the penultimate-feature space (l2) of a network trained on "
            "the whole training set, forgetting the most forgotten samples of that training (never-learnt first); "
            "herding and k-center are deterministic given the features.")
    if whole:
        w = next(iter(whole.values()))
        note += (f" Whole dataset: {w[2]} model(s) trained {w[3]} epochs on all training images (paper: budget "
                 f"not stated); mean ± std over models (± 0.0 from a single model is no measured spread).")
    return header, rows, note


def optimal_random_table(params):
    """DC Table T12: mean ± std of the best 100%, 10% and 1% of N random coresets (paper: N = 1000)."""
    header = ["Dataset", "IPC", "N", "Top N (all)", "Top 10%", "Top 1%"]
    rows = []
    for job in paths.optimal_random_jobs(params):
        r = read_json(paths.OPTIMAL_RANDOM.format(**job))
        ref = paper.T12.get(job["dataset"], {}).get(int(job["ipc"]), {})
        rows.append([job["dataset"], str(job["ipc"]), str(r["coresets"])]
                    + [f"{_pm((100 * t['mean'], 100 * t['std']))} (n={t['n']}) / {_pm(ref.get(t['fraction']))}"
                       for t in r["top"]])
    return header, rows


def cost_table(params):
    """Condensation cost per synthetic method: network updates and seconds per outer iteration."""
    header = ["Dataset", "IPC", "Method", "network updates / iteration", "seconds / iteration", "iterations"]
    rows = []
    for job in paths.plan(params):
        if job["set"] == 0 and paths.is_synthetic(job["method"]) and (
                job["method"] in methods_of(params) or job["method"].startswith("V-")):
            m = read_json(paths.SYNTHETIC.format(**job) + ".json")
            rows.append([job["dataset"], str(job["ipc"]), job["method"], f"{m.get('net_updates_per_iteration', 0):.0f}",
                         f"{m.get('seconds_per_iteration', float('nan')):.1f}", str(m["config"]["iterations"])])
    return header, rows


def study_tables(summary, params):
    """Follow-up Tables 1 (levels) and 2 (distances) and DC Table T11, as (title, note, header, rows)."""
    out = []
    cells = paths.study_cells(params)
    for study, spec in params.get("studies", {}).items():
        mine = [c for c in cells if c["study"] == study]
        if study == "traditional":
            header = ["Dataset", "IPC", "Distance"] + spec["models"]
            rows = [[d, str(i), v] + [f"{_pm(_ours(summary, d, i, next(c['method'] for c in mine if (c['dataset'], c['ipc'], c['value'], c['model']) == (d, i, v, m))))}"
                                      f" / {_pm(paper.T11.get(v, {}).get(m) if d == 'MNIST' and i == 1 else None)}"
                                      for m in spec["models"]]
                    for d in spec["datasets"] for i in spec["ipcs"] for v in spec["values"]]
            out.append(("DC Table T11: distance × architecture (learned and tested on the same network)",
                        "ours / paper (MNIST, 1 img/cls). mse: squared Euclidean, cos: cosine, both over the whole "
                        "flattened gradient; ours: per output channel (eq. 10).", header, rows))
            continue
        header = ["Dataset", "IPC"] + spec["values"]
        rows = []
        for d in spec["datasets"]:
            for i in spec["ipcs"]:
                def ref(v):
                    if study == "levels":
                        return paper.LEVELS.get(d, {}).get(int(i), {}).get(v)
                    if study == "variants":
                        return paper.reference(d, i, v)
                    return None

                def cell(v):
                    if study == "variants" and paths.not_applicable(v, i):
                        return "n/a"
                    m = next(c["method"] for c in mine if (c["dataset"], c["ipc"], c["value"]) == (d, i, v))
                    return f"{_pm(_ours(summary, d, i, m))} / {_pm(ref(v))}"
                rows.append([d, str(i)] + [cell(v) for v in spec["values"]])
        if study == "variants":
            out.append(("Follow-up Table 3: DC against its M / MD / MDO / MDA variants",
                        "ours / paper. M: multi-level loss, D: angle + magnitude distance (d1 + d2), O: update the "
                        "network until the real loss rises, A: adaptive steps (eq. 12). Cost: see the table above.",
                        header, rows))
        elif study == "levels":
            out.append(("Follow-up Table 1: what to match (intra-class, inter-class, interleaved, multi-level)",
                        "ours / paper; angle-only distance, fixed inner steps, λ = number of classes.", header, rows))
        else:
            rows.append(["paper: SVHN", "1"] + [_pm(paper.DISTANCES_SVHN_IPC1.get(v)) for v in spec["values"]])
            out.append(("Follow-up Table 2: distance functions (multi-level matching)",
                        "ours; the paper reports SVHN at 1 img/cls only (last row), and SVHN is not available "
                        "offline here, so the rows above are the datasets we have.", header, rows))
    return out


def image_grid(params, dataset, ipc, out: Path) -> Path:
    meta = read_json(paths.PREPARED.format(dataset=dataset) + ".json")
    z = read_npz(paths.SYNTHETIC.format(dataset=dataset, ipc=ipc, method="DC", set=0))
    x = torch.as_tensor(z["images"])
    m = torch.tensor(meta["mean"]).view(1, -1, 1, 1)
    s = torch.tensor(meta["std"]).view(1, -1, 1, 1)
    x = (x * s + m).clamp(0, 1)
    # one row per class, ipc images per row (at most 10 shown)
    x = x.view(meta["num_classes"], ipc, *x.shape[1:])[:, :10].reshape(-1, *x.shape[1:])
    grid = make_grid(x, nrow=min(ipc, 10), padding=1, pad_value=1.0).permute(1, 2, 0).numpy()
    fig, ax = plt.subplots(figsize=(max(2, 0.5 * min(ipc, 10)) + 0.5, 5.5))
    ax.imshow(grid.squeeze(), cmap="gray" if grid.shape[2] == 1 or grid.ndim == 2 else None)
    ax.set_axis_off()
    ax.set_title(f"{dataset}, {ipc} img/cls (set 0)\nrows: classes 0–{meta['num_classes'] - 1}", fontsize=8)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return out


def loss_plot(params, out: Path) -> Path:
    frames = []
    for job in paths.plan(params):
        if job["method"] == "DC":
            f = pd.read_csv(paths.LOSS.format(**job))
            frames.append(f.assign(run=f"{job['dataset']} ipc{job['ipc']} set{job['set']}"))
    df = pd.concat(frames)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.lineplot(data=df, x="iteration", y="matching_loss", hue="run", ax=ax)
    ax.set_ylabel("matching loss (per class and outer step)")
    ax.set_xscale("symlog")
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return out


def md_table(header, rows) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def html_table(header, rows) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def methods_of(params):
    from .config import methods

    return [m for m in methods(params)]


def build_report(params, params_file: str, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    methods = methods_of(params)
    df = collect(params)
    summary = summarise(df)

    metrics = {}
    for r in summary.itertuples():
        metrics.setdefault(r.dataset, {}).setdefault(f"ipc{r.ipc}", {})[r.method] = {
            "mean": round(r.mean, 2), "std": round(r.std, 2), "n_models": int(r.n_models)}
    write_json(out_dir / "metrics.json", metrics)
    table = summary.assign(paper_mean=[(paper.reference(d, i, m) or (np.nan, np.nan))[0] for d, i, m in
                                       summary[["dataset", "ipc", "method"]].values],
                           paper_std=[(paper.reference(d, i, m) or (np.nan, np.nan))[1] for d, i, m in
                                      summary[["dataset", "ipc", "method"]].values])
    with atomic_path(out_dir / "table1.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.2f")

    figures = []
    for d in params["experiment"]["datasets"]:
        for i in params["experiment"]["ipcs"]:
            if "DC" in methods:
                figures.append(image_grid(params, d, i, fig_dir / f"synthetic_{d}_ipc{i}.png"))
    loss_png = loss_plot(params, fig_dir / "matching_loss.png") if "DC" in methods else None

    sections = [("Results: test accuracy (%)", "Each cell: ours / paper, mean ± std over all models of all sets "
                 "(DC paper Table 1; M/MD/MDO/MDA: the follow-up's Table 3; n/a: O and A change nothing at 1 img/cls).",
                 *main_table(summary, params))]
    if any(paths.is_synthetic(m) for m in methods):
        sections.append(("Condensation cost", "Network updates and wall time per outer iteration (the follow-up: "
                         "190 instead of 450 updates at 10 img/cls, 25–30% less time).", *cost_table(params)))
    if paths.wholeset_jobs(params) or set(methods) & set(paths.EVIDENCE_FILE):
        header, rows, note = coreset_table(summary, params)
        sections.append(("DC Table 1: coreset baselines, DC and the whole dataset", note, header, rows))
        for d, w in wholeset_results(params).items():
            metrics.setdefault(d, {})["whole_dataset"] = {"mean": round(w[0], 2), "std": round(w[1], 2),
                                                          "n_models": w[2]}
        write_json(out_dir / "metrics.json", metrics)
    if paths.optimal_random_jobs(params):
        sections.append(("DC Table T12: optimal random selection",
                         "ours / paper. N random coresets, ranked by the test accuracy they train to, as the paper "
                         "ranks them: an oracle's pick (selected on the test set), an upper bound on random "
                         "selection rather than a usable method.", *optimal_random_table(params)))
    sections += study_tables(summary, params)

    prov = provenance()
    cond, ev = params["condense"], params["evaluate"]
    seeds = df.groupby(["dataset", "ipc", "method", "set"], sort=False)[["seed", "eval_seed"]].first().reset_index()
    seed_rows = [[r.dataset, str(r.ipc), r.method, str(r.set), str(r.seed), str(r.eval_seed)] for r in seeds.itertuples()]
    seed_header = ["Dataset", "IPC", "Method", "Set", "Set seed", "Evaluation seed"]
    setting = (f"Parameters: `{params_file}` (base seed {params['seed']}). Condensation: {cond['model']}, K = "
               f"{cond['iterations']} iterations per IPC, loops [T, ς_θ] = {cond['loops']}, real batch "
               f"{cond.get('batch_real', 256)}/class, init {cond.get('init', 'noise')}. Evaluation: "
               f"{ev['models_per_set']} fresh {ev['model']} models per set × {params['experiment']['sets']} set(s), "
               f"epochs {ev['epochs']} (augmented datasets {ev.get('augment_datasets', [])}: "
               f"{ev.get('epochs_augmented', {})}), whole test set. Paper protocol: K = 1000, 5 sets × 20 models, "
               f"300 epochs (MNIST: 1000 with augmentation).")
    versions = ", ".join(f"{k} {v}" for k, v in prov.items())

    md = ["# dcpipe report", "", setting, "", f"Produced by: {versions}.", ""]
    page = []
    for title, note, header, rows in sections:
        md += [f"## {title}", "", note, "", md_table(header, rows), ""]
        page.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(note)}</p>{html_table(header, rows)}")
    md += ["## Synthetic images", ""] + [f"![{p.stem}](figures/{p.name})" for p in figures]
    if loss_png:
        md += ["", "## Matching loss", "", f"![matching loss](figures/{loss_png.name})"]
    md += ["", "## Seeds", "", md_table(seed_header, seed_rows), ""]
    with atomic_path(out_dir / "index.md") as tmp:
        tmp.write_text("\n".join(md) + "\n")

    imgs = "".join(f'<img src="figures/{p.name}" alt="{p.stem}">' for p in figures)
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>dcpipe report</title><style>
body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img{{max-height:420px;margin:4px}}</style></head><body>
<h1>dcpipe report</h1><p>{html.escape(setting)}</p><p>Produced by: {html.escape(versions)}.</p>
{"".join(page)}
<h2>Synthetic images</h2>{imgs}
{f'<h2>Matching loss</h2><img src="figures/{loss_png.name}">' if loss_png else ''}
<h2>Seeds</h2>{html_table(seed_header, seed_rows)}</body></html>"""
    with atomic_path(out_dir / "index.html") as tmp:
        tmp.write_text(doc)
    log.info("report written to %s", out_dir)
