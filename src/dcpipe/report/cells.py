"""A page per set (dataset × IPC × method × set), reports/cells/<...>.html, linked from every number of the report
that comes from it: the set's images, its matching-loss curve, the histogram of the accuracies of the networks
trained on it, the budget it ran at beside the paper's, and the artifacts it was read from with their md5 (DVC's
hash, so a page can be checked against dvc.lock)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import artifacts, plan
from ..methods import parse
from .collect import Inputs, budget_of, cell
from .section import CELL_PAGE, Comparison, Details, Section, stat
from .sections.figures import plt, save
from .sections.main import source_table
from .summary import protocol_budget

IMAGES_SHOWN = 10  # per class: the grids of the main page show as many


@dataclass
class CellPage:
    """One set's page: its title, the sections it shows (the same Section objects as the main page's) and its
    figures, relative to reports/cells/."""

    name: str
    title: str
    back: str
    sections: list[Section]
    figures: list[tuple[str, str]]  # (src, alt)
    siblings: list[tuple[str, str]]  # (href, label) of the other sets of the cell


def page_name(job: dict) -> str:
    return Path(CELL_PAGE.format(**job)).stem


def set_file(job: dict) -> str:
    return artifacts.train_set(job["dataset"], job["ipc"], job["method"], job["set"])


def set_files(params) -> list[str]:
    """Every set a page shows (the report rule declares them)."""
    return sorted({set_file(j) for j in plan.set_jobs(params)})


def md5(inputs: Inputs, path: str) -> str:
    h = hashlib.md5()
    with open(inputs.path(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def set_images(inputs: Inputs, job: dict, prepared: dict) -> np.ndarray:
    """The set's images in [0, 1], (n, C, H, W), at most IMAGES_SHOWN per class, class by class."""
    z = inputs.npz(set_file(job))
    d = job["dataset"]
    if "images" in z:
        x, y = z["images"], z["labels"]
    else:  # a coreset: indices into the prepared training split
        if d not in prepared:
            prepared[d] = inputs.npz(artifacts.PREPARED.format(dataset=d))
        x, y = prepared[d]["x_train"][z["indices"]], z["labels"]
    meta = inputs.json(artifacts.PREPARED.format(dataset=d) + ".json")
    mean = np.asarray(meta["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(meta["std"], dtype=np.float32).reshape(1, -1, 1, 1)
    x = np.clip(x * std + mean, 0, 1)
    keep = np.concatenate([np.flatnonzero(y == c)[:IMAGES_SHOWN] for c in np.unique(y)])
    return x[keep], y[keep]


def image_grid(x: np.ndarray, y: np.ndarray, out: Path) -> Path:
    import torch  # heavy and needed by the grids alone
    from torchvision.utils import save_image

    per_class = max(np.bincount(y))
    rows = []
    for c in np.unique(y):
        xs = torch.as_tensor(x[y == c])
        pad = torch.ones(per_class - len(xs), *xs.shape[1:])
        rows.append(torch.cat([xs, pad]))
    grid = torch.cat(rows)
    scale = max(1, 56 // grid.shape[-1])  # small images drawn at least 56 px
    grid = torch.nn.functional.interpolate(grid, scale_factor=scale, mode="nearest")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, out, nrow=per_class, padding=2, pad_value=1.0)
    return out


def curves(losses: pd.DataFrame, accuracies: dict[str, list[float]], out: Path) -> Path | None:
    """The matching loss per outer iteration (synthetic sets) and the histogram of the test accuracies of the
    networks trained on the set, side by side."""
    panels = int(not losses.empty) + int(bool(accuracies))
    if not panels:
        return None
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3), squeeze=False)
    axes = list(axes[0])
    if not losses.empty:
        ax = axes.pop(0)
        ax.plot(losses.iteration, losses.loss, marker="o" if len(losses) < 20 else None, color="#1f5f99")
        ax.set_xlabel("outer iteration")
        ax.set_ylabel("matching loss")
        ax.set_title("matching loss", fontsize=9)
    if accuracies:
        ax = axes.pop(0)
        ax.hist(list(accuracies.values()), bins=10, stacked=True, label=list(accuracies), edgecolor="white")
        ax.set_xlabel("test accuracy (%)")
        ax.set_ylabel("networks")
        ax.set_title(f"{sum(map(len, accuracies.values()))} trained networks", fontsize=9)
        if len(accuracies) > 1:
            ax.legend(fontsize=7, title="evaluated on", title_fontsize=7)
    fig.subplots_adjust(left=0.1 / panels + 0.04, right=0.97, bottom=0.17, top=0.88, wspace=0.3)
    return save(fig, out, dpi=100, tight=False)  # one per page: the fixed layout saves most of their time


def budget_section(summary: pd.DataFrame, job: dict, meta: dict | None) -> Section | None:
    """This cell's budget beside the paper's protocol for the table it belongs to; every other setting of the set
    (its config as recorded) folded below."""
    d, i, m = job["dataset"], int(job["ipc"]), job["method"]
    row = cell(summary, d, i, m)
    if row is None:
        return None
    ours = budget_of(row)
    method = parse(m)
    followup = method.study in ("levels", "distances", "variants") or source_table(m) == "Follow-up Table 3"
    theirs = protocol_budget(d, method.synthetic, m, followup=followup)
    fields = [("condensation iterations K", ours.iterations, theirs.iterations), ("sets", ours.sets, theirs.sets),
              ("networks trained per set", ours.models, theirs.models), ("training epochs", ours.epochs, theirs.epochs)]
    rows = [[name, "–" if a is None else str(a), "–" if b is None else str(b), "same" if a == b else "departs"]
            for name, a, b in fields if a is not None or b is not None]
    details = []
    if meta and meta.get("config"):
        details.append(Details("Every setting of this set, as recorded in its metadata",
                               [(k, str(v)) for k, v in sorted(meta["config"].items())]))
    return Section("budget", "Budget and departures from the paper",
                   "This cell's budget against the paper's protocol for its table (a reduced budget is never judged "
                   "against the paper's band). docs/params-notes.md gives the reason for each default's departure.",
                   ["setting", "this run", "paper", "same as the paper?"], rows, details=details)


def cell_pages(inputs: Inputs, summary: pd.DataFrame, evals: pd.DataFrame, losses: pd.DataFrame,
               comparisons: list[Comparison], out_dir: Path) -> list[CellPage]:
    """The pages of every set of the plan, their figures written under out_dir (reports/cells)."""
    params = inputs.params
    jobs = list({page_name(j): j for j in plan.set_jobs(params)}.values())
    cross = {}
    for j in plan.cross_plan(params):
        r = inputs.json(artifacts.EVAL_ON.format(**j))
        cross.setdefault(page_name(j), {})[j["model"]] = [100 * a for a in r["accuracies"]]
    by_href = {}
    for c in comparisons:
        by_href.setdefault(c.href, []).append(c)
    prepared, pages = {}, []
    for job in jobs:
        name, key = page_name(job), (job["dataset"], int(job["ipc"]), job["method"])
        synthetic = parse(job["method"]).synthetic
        mine = evals[(evals.dataset == key[0]) & (evals.ipc == key[1]) & (evals.method == key[2])
                     & (evals.set == job["set"])]
        accuracies = {"test set": list(mine.accuracy)} if not mine.empty else {}
        accuracies.update(cross.get(name, {}))
        loss = losses[(losses.dataset == key[0]) & (losses.ipc == key[1]) & (losses.method == key[2])
                      & (losses.set == job["set"])]
        figures = []
        x, y = set_images(inputs, job, prepared)
        image_grid(x, y, out_dir / "img" / f"{name}.png")
        figures.append((f"img/{name}.png", f"The {len(x)} images shown of {name}: one row per class"))
        if curves(loss, accuracies, out_dir / "img" / f"{name}_curves.png"):
            figures.append((f"img/{name}_curves.png", "Matching loss per outer iteration and histogram of the test "
                            "accuracies of the networks trained on this set"))
        sections = [result_section(job, accuracies, by_href.get(CELL_PAGE.format(**{**job, "set": 0}), []))]
        meta_file = set_file(job) + ".json" if synthetic else None
        meta = inputs.json(meta_file) if meta_file and meta_file in inputs.declared else None
        budget = budget_section(summary, job, meta)
        if budget:
            sections.append(budget)
        sections.append(artifacts_section(inputs, job, meta_file))
        siblings = [(f"{page_name({**job, 'set': s})}.html", f"set {s}") for s in
                    sorted({j["set"] for j in jobs if (j["dataset"], int(j["ipc"]), j["method"]) == key})]
        title = f"{job['dataset']}, IPC {job['ipc']}, {job['method']}, set {job['set']}"
        pages.append(CellPage(name, title, "../index.html", sections, figures, siblings))
    return pages


def result_section(job: dict, accuracies: dict[str, list[float]], comparisons: list[Comparison]) -> Section:
    rows = [[f"networks trained on this set, tested on the {'whole test set' if k == 'test set' else k}",
             stat(float(np.mean(v)), float(np.std(v)), len(v)), ", ".join(f"{a:.1f}" for a in v)]
            for k, v in accuracies.items()]
    for c in comparisons:
        rows.append([f"{c.table}: {c.cell} (all sets)", f"{c.ours} / paper {c.paper}", c.status])
    note = ("Test accuracy (%) of the networks trained on this set; the comparisons with the paper pool every set of "
            "the cell." if rows else "No network is trained on this set by this parameter file (it serves another "
            "stage: continual learning's memory or the NAS proxy).")
    return Section("result", "Result", note, ["networks", "mean ± std", "each network / status"], rows)


def artifacts_section(inputs: Inputs, job: dict, meta_file: str | None) -> Section:
    files = [set_file(job)] + ([meta_file] if meta_file and meta_file in inputs.declared else [])
    for path in (artifacts.LOSS.format(**job), artifacts.EVAL.format(**job)):
        if path in inputs.declared:
            files.append(path)
    files += sorted(f for f in inputs.declared if f.startswith(artifacts.EVAL.format(**job)[:-5] + "_on-"))
    rows = [[f, md5(inputs, f), f"{Path(inputs.path(f)).stat().st_size / 1024:,.1f} KB"] for f in files]
    return Section("artifacts", "Artifacts", "The files this page was built from (paths in the project), with their md5 "
                   "as DVC records it in dvc.lock.", ["path", "md5", "size"], rows)

