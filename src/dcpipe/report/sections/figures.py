"""The figure-only parts of the report (synthetic images, matching loss) and the seeds table; also the one place
that sets matplotlib up and saves a figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ... import artifacts  # noqa: E402
from ...config import methods as experiment_methods, sections  # noqa: E402
from ...io import atomic_path  # noqa: E402
from ..collect import Inputs  # noqa: E402
from ..section import Section  # noqa: E402

__all__ = ["plt", "sns", "save", "synthetic_images_section", "matching_loss_section", "seeds_section"]


def save(fig, out: Path, dpi: int = 120, tight: bool = True) -> Path:
    """`tight` crops to the drawn artists (its layout pass is most of a small figure's save time)."""
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight" if tight else None, format="png")
    plt.close(fig)
    return Path(out)


def image_grid(inputs: Inputs, dataset: str, ipc: int, out: Path) -> Path:
    import torch  # heavy and needed by the image grids alone
    from torchvision.utils import make_grid

    meta = inputs.json(artifacts.PREPARED.format(dataset=dataset) + ".json")
    z = inputs.npz(artifacts.SYNTHETIC.format(dataset=dataset, ipc=ipc, method="DC", set=0))
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
    return save(fig, out)


def synthetic_images_section(inputs: Inputs, fig_dir: Path) -> Section:
    e = sections(inputs.params).experiment
    figures = [image_grid(inputs, d, i, Path(fig_dir) / f"synthetic_{d}_ipc{i}.png") for d in e.datasets for i in e.ipcs]
    return Section("synthetic_images", "Synthetic images", "Set 0 of DC per dataset and IPC, one row per class "
                   "(at most 10 images per row shown).", [], [], figures=figures, metrics={"grids": len(figures)})


def matching_loss_section(losses: pd.DataFrame, fig_dir: Path) -> Section:
    """The matching loss of every DC set of the main table (all methods' losses are in plots/matching_loss.csv)."""
    dc = losses[losses.method == "DC"]
    df = dc.assign(run=[f"{d} ipc{i} set{s}" for d, i, s in dc[["dataset", "ipc", "set"]].values])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.lineplot(data=df, x="iteration", y="loss", hue="run", ax=ax)
    ax.set_ylabel("matching loss (per class and outer step)")
    ax.set_xscale("symlog")
    png = save(fig, Path(fig_dir) / "matching_loss.png")
    last = df.sort_values("iteration").groupby("run").last()
    return Section("matching_loss", "Matching loss", "DC's gradient-matching loss per outer iteration, one line "
                   "per dataset, IPC and set; the values of every condensation are in plots/matching_loss.csv.",
                   [], [], figures=[png], metrics={r: {"final_loss": round(float(v), 4)}
                                                   for r, v in last["loss"].items()})


def seeds_section(evaluations: pd.DataFrame, params) -> Section:
    seeds = (evaluations.groupby(["dataset", "ipc", "method", "set"], sort=False)[["seed", "eval_seed"]].first()
             .reset_index())
    rows = [[r.dataset, str(r.ipc), r.method, str(r.set), str(r.seed), str(r.eval_seed)] for r in seeds.itertuples()]
    planned, seed = set(experiment_methods(params)), sections(params).seed
    return Section("seeds", "Seeds", f"Every seed derives from the base seed {seed} (dcpipe.seeding): "
                   "the seed of each set (its selection or condensation) and of the networks trained on it.",
                   ["Dataset", "IPC", "Method", "Set", "Set seed", "Evaluation seed"], rows,
                   metrics={"base_seed": seed, "sets": len(rows),
                            "main_table_sets": int(seeds.method.isin(planned).sum())})
