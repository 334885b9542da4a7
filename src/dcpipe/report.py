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
    from .config import CROSS_STUDIES

    out = []
    cells = paths.study_cells(params)
    for study, spec in params.get("studies", {}).items():
        if study in CROSS_STUDIES:
            continue  # cross_tables
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


def speed_tables(out_dir: Path):
    """reports/records/bench.json (`dcpipe bench`) and reports/records/run.json (the timed default job), when present: measured
    by hand on a given machine, not by the DAG, so each table names the command and commit that produced it."""
    out = []
    bench, run = Path(out_dir) / "records" / "bench.json", Path(out_dir) / "records" / "run.json"
    if bench.exists():
        b = read_json(bench)
        def micro(k):  # the microbenchmark of the pass's own precision (older files: fp32 only)
            return b.get("conv_microbenchmark_" + k[-4:], b["conv_microbenchmark_fp32"])["gflop_per_s"]
        rows = [[k.replace("_", " "), f"{b[k]['gflop_per_s']:.0f}", f"{b[k]['gflop_per_s'] / micro(k):.2f}",
                 f"{b[k]['seconds']:.2f}"] for k in ("conv_microbenchmark_fp32", "conv_microbenchmark_bf16",
                                                    "real_gradient_pass_fp32", "real_gradient_pass_bf16",
                                                    "test_pass_fp32", "test_pass_bf16") if k in b]
        for k in sorted(k for k in b if k.startswith("evaluate_ipc") and "ipc" in b[k]):  # older files: skipped
            e = b[k]
            rows.append([f"evaluate IPC {e['ipc']}: s/model fp32 one by one → one by one ({e['test_precision']} test) "
                         f"→ batched", "", "", f"{e['one_by_one_fp32_seconds_per_model']:.1f} → "
                         f"{e['one_by_one_seconds_per_model']:.1f} → {e['batched_seconds_per_model']:.1f}"])
        for k in sorted(k for k in b if k.startswith("condense_ipc") and isinstance(b[k], dict)):
            rows.append([f"condense IPC {k[12:]}: s per outer iteration (real batch {b[k]['batch_real']}/class, "
                         f"loops {b[k]['loops']}, real pass {b[k].get('real_precision', 'fp32')})", "", "",
                         f"{b[k]['seconds_per_iteration']:.2f}"])
        if "allocator" in b:
            a = b["allocator"]
            rows.append([f"{a['what']}: glibc default → freed memory kept ({a['speedup']:.2f}×)", "", "",
                         f"{a['glibc_default_seconds']:.2f} → {a['keep_freed_memory_seconds']:.2f}"])
        if "class_gradients" in b:
            c = b["class_gradients"]
            rows.append([f"real gradients of {c.get('classes', 10)} classes: loop → vmap ({c['vmap_speedup']:.2f}×)",
                         "", "", f"{c['loop_seconds']:.2f} → {c['vmap_seconds']:.2f}"])
        out.append(("Speed: where the time goes", f"`{b.get('command', 'dcpipe bench')}` on {b['threads']} threads, "
                    f"{b['device']}, commit {b['provenance'].get('git_commit', '?')[:8]}; GFLOP/s counted by "
                    "torch.utils.flop_counter, ratio against the conv microbenchmark of the same run and precision.",
                    ["measurement", "GFLOP/s", "of conv microbenchmark", "seconds"], rows))
    if run.exists():
        r = read_json(run)
        history = r.get("history", [r])
        same = r.get("same_params_comparison")
        same = (f" Same parameters before and after the speed work ({same['what']}): {same['before']['seconds']} s at "
                f"{same['before']['commit']} → {same['after']['seconds']} s at {same['after']['commit']} "
                f"({same['speedup']:.2f}×), accuracies {same['accuracies']}." if same else "")
        out.append(("Speed: the default main job end to end", "Wall time of the whole default job from a fresh "
                    "clone (set-up included), as recorded in reports/records/run.json; each row ran its own commit's "
                    "params.yaml." + same,
                    ["commit", "command", "jobs", "wall clock"],
                    [[h["commit"][:8], h["command"], str(h.get("snakemake_jobs", "")), h["wall_clock"]]
                     for h in history]))
    headline = Path(out_dir) / "records" / "headline.json"
    if headline.exists():
        h = read_json(headline)
        rows = [[f"set {s['set']}", f"{s['mean']:.1f} ± {s['std']:.1f}", str(s["models"]),
                 f"{s['condense_wall_seconds'] / 60:.1f}", f"{s['condense_seconds_per_iteration']:.2f}",
                 f"{s['evaluate_wall_seconds'] / 60:.1f}"] for s in h["sets"]]
        rows.append(["all (paper: 70.5 ± 0.6)", f"{h['accuracy_mean']:.1f} ± {h['accuracy_std']:.1f}",
                     str(h["n_models"]), "", "", ""])
        departures = "; ".join(f"{k}: {v}" for k, v in h["departures_from_paper"].items())
        out.append(("Speed: the FashionMNIST IPC-1 headline run", f"{h['what']}: {h['wall_clock_snakemake']} wall "
                    f"(`{h['command']}`, commit {h['commit'][:8]}, {h['machine']}). Departures: {departures}.",
                    ["set", "accuracy % (mean ± std)", "models", "condense min", "s / iteration", "evaluate min"],
                    rows))
    return out


CROSS_TITLES = {
    "crossarch": ("DC Table 2: cross-architecture generalisation",
                  "Rows C: the network that condensed the set (BatchNorm with statistics of real data for VGG11BN "
                  "and ResNet18BN_AP, stride-2 convolutions as stride 1 + average pooling in ResNet18BN_AP; image "
                  "lr 0.01 for MLP; DC appendix A). Columns T: the network trained on it (instance norm in VGG11 and "
                  "ResNet18)."),
    "activation": ("DC Table T6: cross-activation", "AS / AR / AL: sigmoid / ReLU / LeakyReLU(0.01) ConvNet."),
    "pooling": ("DC Table T7: cross-pooling", "NP / MP / AP: no / max / average pooling ConvNet."),
    "normalization": ("DC Table T8: cross-normalisation",
                      "NN / BN / LN / IN / GN: none / batch / layer / instance / group(4) norm ConvNet; BatchNorm "
                      "uses real-data statistics while condensing and batch statistics when trained on the set."),
    "depth": ("DC Table T9: cross-depth", "D1..D4: ConvNet with 1..4 blocks."),
    "width": ("DC Table T10: cross-width", "W32..W256: ConvNet with 32..256 filters per block."),
}
CROSS_COLUMNS = ["study", "dataset", "ipc", "condense_model", "eval_model", "mean", "std", "n_models", "paper_mean",
                 "paper_std", "seconds_per_model"]


def collect_cross(params) -> pd.DataFrame:
    """One row per trained network of the cross studies (DC Table 2, T6-T10)."""
    rows = []
    for job in paths.cross_plan(params):
        r = read_json(paths.EVAL_ON.format(**job))
        for i, acc in enumerate(r["accuracies"]):
            rows.append({"study": job["study"], "dataset": job["dataset"], "ipc": job["ipc"],
                         "condense_model": job["condense_model"], "eval_model": job["model"], "set": job["set"],
                         "model_index": i, "accuracy": 100 * acc, "wall_seconds": r["wall_seconds"] / len(r["accuracies"])})
    return pd.DataFrame(rows, columns=["study", "dataset", "ipc", "condense_model", "eval_model", "set",
                                       "model_index", "accuracy", "wall_seconds"])


def summarise_cross(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (over all networks of all sets, as the paper) per (study, dataset, ipc, C, T), with the
    paper's number beside it."""
    keys = ["study", "dataset", "ipc", "condense_model", "eval_model"]
    if df.empty:
        return pd.DataFrame(columns=CROSS_COLUMNS)
    g = df.groupby(keys, sort=False)
    out = g["accuracy"].agg(mean="mean", n_models="count").reset_index()
    out["std"] = g["accuracy"].std(ddof=0).values
    out["seconds_per_model"] = g["wall_seconds"].mean().values
    ref = [paper.cross(*k) or (np.nan, np.nan) for k in out[keys].itertuples(index=False)]
    out["paper_mean"], out["paper_std"] = [r[0] for r in ref], [r[1] for r in ref]
    return out[CROSS_COLUMNS]


def _cross_cell(summary, study, dataset, ipc, c, t):
    r = summary[(summary.study == study) & (summary.dataset == dataset) & (summary.ipc == int(ipc))
                & (summary.condense_model == c) & (summary.eval_model == t)]
    return None if r.empty else (r["mean"].iloc[0], r["std"].iloc[0])


def cross_condense_seconds(params) -> dict:
    """Wall seconds per condensation iteration of each cross cell (set 0): {(study, dataset, ipc, C): seconds}."""
    return {(c["study"], c["dataset"], c["ipc"], c["model"]):
            read_json(paths.SYNTHETIC.format(**c, set=0) + ".json").get("seconds_per_iteration", float("nan"))
            for c in paths.cross_cells(params)}


def cross_tables(summary, params, seconds: dict | None = None):
    """One 'C \\ T' table per cross study, dataset and IPC: ours / paper, as (title, note, header, rows); with
    `seconds` (cross_condense_seconds) a last column gives each C's condensation cost."""
    from .config import CROSS_STUDIES

    out = []
    for study, spec in params.get("studies", {}).items():
        if study not in CROSS_STUDIES:
            continue
        title, note = CROSS_TITLES[study]
        for d in spec["datasets"]:
            for i in spec["ipcs"]:
                rows = [[c] + [f"{_pm(_cross_cell(summary, study, d, i, c, t))} / {_pm(paper.cross(study, d, i, c, t))}"
                               for t in spec["eval_models"]]
                        + ([f"{seconds[(study, d, i, c)]:.1f}"] if seconds else []) for c in spec["models"]]
                out.append((f"{title} ({d}, {i} img/cls)", f"ours / paper (MNIST, 1 img/cls only). {note}",
                            ["C \\ T"] + spec["eval_models"] + (["C: s / iteration"] if seconds else []), rows))
    return out


def cross_heatmap(summary, study: str, dataset: str, ipc: int, models, eval_models, out: Path) -> Path:
    """The C x T matrix of mean accuracies as a heat map (ours), beside the paper's where it has the cell."""
    def matrix(value):
        return pd.DataFrame([[value(c, t) for t in eval_models] for c in models], index=models, columns=eval_models,
                            dtype=float)

    ours = matrix(lambda c, t: (_cross_cell(summary, study, dataset, ipc, c, t) or (np.nan,))[0])
    theirs = matrix(lambda c, t: (paper.cross(study, dataset, ipc, c, t) or (np.nan,))[0])
    panels = [("ours", ours)] + ([("paper", theirs)] if theirs.notna().any().any() else [])
    size = 0.9 * len(eval_models) + 2
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), 0.6 * len(models) + 2), squeeze=False)
    for k, (ax, (name, m)) in enumerate(zip(axes[0], panels)):
        sns.heatmap(m, annot=True, fmt=".1f", cmap="viridis", vmin=0, vmax=100, cbar=False, ax=ax,
                    annot_kws={"fontsize": 8})
        ax.set_title(f"{name}: {CROSS_TITLES[study][0].split(':')[0]}, {dataset}, {ipc} img/cls", fontsize=9)
        ax.set_xlabel("T: network trained on the set")
        ax.set_ylabel("C: network that condensed the set" if k == 0 else "")
        ax.tick_params(axis="x", rotation=45)
        ax.tick_params(axis="y", rotation=0, labelleft=k == 0)  # the rows are the same networks
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return out


def cross_figures(summary, params, fig_dir: Path) -> list[Path]:
    from .config import CROSS_STUDIES

    return [cross_heatmap(summary, study, d, i, spec["models"], spec["eval_models"],
                          fig_dir / f"cross_{study}_{d}_ipc{i}.png")
            for study, spec in params.get("studies", {}).items() if study in CROSS_STUDIES
            for d in spec["datasets"] for i in spec["ipcs"]]


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


def nas_section(params, fig_dir: Path) -> dict | None:
    """DC Table 4 and Figure F5 when the parameter file has a nas section (dcpipe.nas_report)."""
    if not params.get("nas"):
        return None
    from .nas_report import section

    return section(params, fig_dir)


def build_report(params, params_file: str, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    methods = methods_of(params)
    df = collect(params)
    summary = summarise(df)

    nas = nas_section(params, fig_dir)
    metrics = {"nas": nas["metrics"]} if nas else {}
    for r in summary.itertuples():
        metrics.setdefault(r.dataset, {}).setdefault(f"ipc{r.ipc}", {})[r.method] = {
            "mean": round(r.mean, 2), "std": round(r.std, 2), "n_models": int(r.n_models)}
    continual = continual_section(params, fig_dir)
    if continual:
        metrics["continual"] = continual[1]
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
    if continual:
        sections.append(continual[0])
    if nas:
        sections.append(nas["table"])
    cross = summarise_cross(collect_cross(params))
    with atomic_path(out_dir / "cross.csv") as tmp:
        cross.to_csv(tmp, index=False, float_format="%.2f")
    sections += cross_tables(cross, params, cross_condense_seconds(params))
    cross_pngs = cross_figures(cross, params, fig_dir)
    sections += speed_tables(out_dir)

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
    for title, note, header, rows, *figure in sections:  # a section may end with its figure
        md += [f"## {title}", "", note, "", md_table(header, rows), ""]
        md += [f"![{f.stem}](figures/{f.name})\n" for f in figure]
        page.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(note)}</p>{html_table(header, rows)}"
                    + "".join(f'<img src="figures/{f.name}" alt="{f.stem}">' for f in figure))
    if cross_pngs:
        md += ["## Cross-architecture heat maps", ""] + [f"![{p.stem}](figures/{p.name})" for p in cross_pngs] + [""]
    md += ["## Synthetic images", ""] + [f"![{p.stem}](figures/{p.name})" for p in figures]
    if loss_png:
        md += ["", "## Matching loss", "", f"![matching loss](figures/{loss_png.name})"]
    if nas:
        md += ["", "## DC Figure F5: proxy vs whole-dataset validation accuracy", "", f"![F5](figures/{nas['figure'].name})"]
    md += ["", "## Seeds", "", md_table(seed_header, seed_rows), ""]
    with atomic_path(out_dir / "index.md") as tmp:
        tmp.write_text("\n".join(md) + "\n")

    imgs = "".join(f'<img src="figures/{p.name}" alt="{p.stem}">' for p in figures)
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>dcpipe report</title><style>
body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img{{max-height:420px;margin:4px}}</style></head><body>
<h1>dcpipe report</h1><p>{html.escape(setting)}</p><p>Produced by: {html.escape(versions)}.</p>
{"".join(page)}
{"<h2>Cross-architecture heat maps</h2>" + "".join(f'<img src="figures/{p.name}" alt="{p.stem}">' for p in cross_pngs) if cross_pngs else ""}
<h2>Synthetic images</h2>{imgs}
{f'<h2>Matching loss</h2><img src="figures/{loss_png.name}">' if loss_png else ''}
{f'<h2>DC Figure F5</h2><img src="figures/{nas["figure"].name}">' if nas else ''}
<h2>Seeds</h2>{html_table(seed_header, seed_rows)}</body></html>"""
    with atomic_path(out_dir / "index.html") as tmp:
        tmp.write_text(doc)
    log.info("report written to %s", out_dir)


def continual_frame(params) -> pd.DataFrame:
    """One row per run, setting and stage: the accuracy (%) on all tasks seen so far."""
    rows = []
    for path in paths.continual_results(params):
        r = read_json(path)
        for s in r["settings"]:
            for t, stage in enumerate(s["stages"]):
                rows.append({"run": r["run"], "setting": s["name"], "memory": s["memory"],
                             "distillation": s["distillation"], "stage": f"T{t + 1}", "task": r["tasks"][t],
                             "accuracy": 100 * stage["accuracy"], "test_images": stage["test_images"],
                             "wall_seconds": r["wall_seconds"],
                             "dc_iterations": sorted({m["iterations"] for m in r["condensed_sets"]})})
    return pd.DataFrame(rows)


def continual_section(params, fig_dir: Path):
    """The DC paper's Figure 4 (accuracy after each stage, four settings) and its numbers, or None when the
    parameters have no continual section. Returns (section, metrics): section = (title, note, header, rows,
    figure) for the page, metrics for metrics.json."""
    if "continual" not in params:
        return None
    c = params["continual"]
    df = continual_frame(params)
    stages = list(dict.fromkeys(df["stage"]))
    tasks = list(c["tasks"])

    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(stages), 3.6))
    sns.barplot(data=df, x="stage", y="accuracy", hue="setting", capsize=0.1, ax=ax,
                errorbar=lambda a: (a.mean() - a.std(ddof=0), a.mean() + a.std(ddof=0)))  # the table's std
    low = max(0.0, df["accuracy"].min() - 10)
    ax.set_ylim(low, 100)
    ax.set_xlabel(" → ".join(f"T{i + 1} {t}" for i, t in enumerate(tasks)))
    ax.set_ylabel("accuracy (%) on all tasks so far")
    ax.set_title(f"Continual learning, {df['run'].nunique()} run(s), mean ± std", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    figure = fig_dir / "continual.png"
    with atomic_path(figure) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)

    g = df.groupby(["setting", "stage"], sort=False)["accuracy"]
    stats = g.agg(mean="mean").join(g.std(ddof=0).rename("std")).reset_index()
    sizes = df.groupby("stage", sort=False)["test_images"].first()
    header = ["Setting"] + [f"T{i + 1}: +{t} ({sizes[s]:,} test images)" for i, (s, t) in enumerate(zip(stages, tasks))]
    header += [f"paper ({' → '.join(paper.CONTINUAL_SEQUENCE)}), text only"]
    rows, metrics = [], {"tasks": tasks, "runs": int(df["run"].nunique()), "settings": {}}
    for name in dict.fromkeys(df["setting"]):
        cells = stats[stats.setting == name].set_index("stage")
        rows.append([name] + [_pm((cells.loc[s, "mean"], cells.loc[s, "std"])) for s in stages] + ["–"])
        metrics["settings"][name] = {s: {"mean": round(cells.loc[s, "mean"], 2), "std": round(cells.loc[s, "std"], 2)}
                                     for s in stages}
    # DC minus herding, paired by run (both continue from the same stage-1 model, same batches and test images)
    for kd in dict.fromkeys(df["distillation"]):
        pair = df[df.distillation == kd].pivot_table(index=["run", "stage"], columns="memory", values="accuracy")
        if {"DC", "herding"} <= set(pair.columns):
            diff = (pair["DC"] - pair["herding"]).groupby(level="stage", sort=False)
            d = diff.agg("mean").to_frame("mean").join(diff.std(ddof=0).rename("std"))
            margin = paper.CONTINUAL_T3_MARGIN[bool(kd)]
            claim = f"DC ahead at T3 by {margin}" if margin is not None else "DC ahead at T3 (margin not stated)"
            rows.append([f"DC − herding, {'with' if kd else 'without'} KD"]
                        + [f"{d.loc[s, 'mean']:+.1f} ± {d.loc[s, 'std']:.1f}" for s in stages] + [claim])
    seq = " → ".join(tasks)
    note = (f"Sequence: {seq}"
            + ("" if tasks == list(paper.CONTINUAL_SEQUENCE) else
               f" (the paper's is {' → '.join(paper.CONTINUAL_SEQUENCE)}; SVHN is not available offline here)")
            + f". Accuracy (%) after each stage on {c.get('test_per_task', 2000):,} random test images of every task "
            f"seen so far, mean ± std over {metrics['runs']} run(s). E2E learner ({c.get('model', 'ConvNet')}), "
            f"memory "
            f"{c.get('memory_per_class', 10)} img/cls per earlier task, {c['iterations']} training + "
            f"{c['finetune_iterations']} balanced fine-tuning iterations per stage (paper: 5,000 + 500). "
            f"DC memory condensed with K = {', '.join(map(str, df['dc_iterations'].iloc[0]))} iteration(s) "
            f"(paper: 1,000), herding over {c.get('herding_candidates') or 'all'} image(s) per class. Stage 1 has no memory and no teacher: all "
            "settings share its model. DC − herding: paired by run. The paper's Figure 4 bar heights are not in its "
            "text; the last column gives what the text states.")
    return (("Continual learning (DC paper Figure 4)", note, header, rows, figure), metrics)
