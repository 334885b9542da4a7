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
    out = g.agg(mean="mean", std="std", n_models="count").reset_index()
    out["std"] = g.std(ddof=0).values  # the paper's std over all models
    out["paper_mean"] = [(paper.table1(d, i, m) or (np.nan,))[0] for d, i, m in out[["dataset", "ipc", "method"]].values]
    out["paper_std"] = [(paper.table1(d, i, m) or (np.nan, np.nan))[1] for d, i, m in out[["dataset", "ipc", "method"]].values]
    return out


def _pm(m, s):
    return "–" if pd.isna(m) else f"{m:.1f} ± {s:.1f}"


def table_rows(summary: pd.DataFrame, methods: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["Dataset", "IPC"] + [f"{m} (ours)" for m in methods] + [f"{m} (paper)" for m in methods]
    rows = []
    for (d, i), grp in summary.groupby(["dataset", "ipc"], sort=False):
        by = grp.set_index("method")
        rows.append([d, str(i)] + [_pm(by.loc[m, "mean"], by.loc[m, "std"]) if m in by.index else "–" for m in methods]
                    + [_pm(by.loc[m, "paper_mean"], by.loc[m, "paper_std"]) if m in by.index else "–" for m in methods])
    return header, rows


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
        if job["method"] in paths.SYNTHETIC_METHODS:
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


def build_report(params, params_file: str, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    from .config import methods as methods_of

    methods = methods_of(params)
    df = collect(params)
    summary = summarise(df)
    header, rows = table_rows(summary, methods)

    metrics = {}
    for r in summary.itertuples():
        metrics.setdefault(r.dataset, {}).setdefault(f"ipc{r.ipc}", {})[r.method] = {
            "mean": round(r.mean, 2), "std": round(r.std, 2), "n_models": int(r.n_models)}
    write_json(out_dir / "metrics.json", metrics)
    with atomic_path(out_dir / "table1.csv") as tmp:
        summary.to_csv(tmp, index=False, float_format="%.2f")

    figures = []
    for d in params["experiment"]["datasets"]:
        for i in params["experiment"]["ipcs"]:
            if "DC" in methods:
                figures.append(image_grid(params, d, i, fig_dir / f"synthetic_{d}_ipc{i}.png"))
    loss_png = loss_plot(params, fig_dir / "matching_loss.png") if "DC" in methods else None

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
    md = [f"# dcpipe report\n", "Test accuracy (%) of ConvNets trained from scratch on each set: mean ± std over all "
          "models of all sets (DC paper Table 1 style), beside the paper's numbers.\n", md_table(header, rows), "",
          setting, "", f"Produced by: {versions}.", "", "## Synthetic images", ""]
    md += [f"![{p.stem}](figures/{p.name})" for p in figures]
    if loss_png:
        md += ["", "## Matching loss", "", f"![matching loss](figures/{loss_png.name})"]
    md += ["", "## Seeds", "", md_table(seed_header, seed_rows), ""]
    with atomic_path(out_dir / "index.md") as tmp:
        tmp.write_text("\n".join(md) + "\n")

    imgs = "".join(f'<img src="figures/{p.name}" alt="{p.stem}">' for p in figures)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>dcpipe report</title><style>
body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img{{max-height:420px;margin:4px}}</style></head><body>
<h1>dcpipe report</h1><p>Test accuracy (%) of ConvNets trained from scratch on each set: mean ± std over all models of
all sets (DC paper Table 1 style), beside the paper's numbers.</p>{html_table(header, rows)}
<p>{html.escape(setting)}</p><p>Produced by: {html.escape(versions)}.</p>
<h2>Synthetic images</h2>{imgs}
{f'<h2>Matching loss</h2><img src="figures/{loss_png.name}">' if loss_png else ''}
<h2>Seeds</h2>{html_table(seed_header, seed_rows)}</body></html>"""
    with atomic_path(out_dir / "index.html") as tmp:
        tmp.write_text(page)
    log.info("report written to %s", out_dir)
