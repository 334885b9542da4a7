"""DC Table 4 (per proxy: the best-ranked architecture's test accuracy, Spearman over the top 10, search time,
storage) beside the paper's numbers, and the scatter plots of Figure F5."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ... import artifacts, nas as nas_mod, nas_space, paper
from ...config import nas_whole_config, sections
from ..collect import Inputs
from ..section import Budget, Comparison, Details, Section, number, words
from ..summary import status
from .figures import plt, save

PROXY_TITLES = {"random": "Random", "herding": "Herding", "DC": "Ours (DC)", nas_space.EARLY_STOPPING: "Early-stopping",
                "whole": "Whole dataset"}


def load(inputs: Inputs) -> tuple[list[dict], dict[int, dict], dict]:
    """(proxy rows of every candidate, ground-truth rows by space index, one shard's header)."""
    nas = sections(inputs.params).nas
    shard_files = [artifacts.NAS_SHARD.format(dataset=nas.dataset, shard=k) for k in range(nas.shards)]
    gt_files = [artifacts.NAS_GROUND_TRUTH.format(dataset=nas.dataset, shard=g) for g in range(nas.ground_truth_shards)]
    docs = {f: inputs.json(f) for f in shard_files + gt_files}
    gt = {r["index"]: r for f in gt_files for r in docs[f]["rows"]}
    header = dict(docs[gt_files[0]])
    # CPU seconds of each job (absent in results written before the stages recorded it)
    header["job_cpu_seconds"] = {f: docs[f].get("cpu_seconds") for f in shard_files + gt_files}
    rows = sorted((r for f in shard_files for r in docs[f]["rows"]), key=lambda r: r["index"])
    return rows, gt, header


def table4(inputs: Inputs) -> dict:
    """Per proxy (and the whole training set): the metrics of DC Table 4, with which numbers are estimates."""
    params = inputs.params
    nas = sections(params).nas
    rows, gt, gt_header = load(inputs)
    k = nas.top
    n_train = gt_header["n_train"]
    out = {}
    for p in nas.proxies:
        scores = nas_mod.proxy_scores(rows, p)
        chosen = nas_mod.top(scores, k)
        best = chosen[0]
        images = rows[0]["proxies"][p]["images"]
        steps = rows[0]["proxies"][p]["steps"]
        if p == nas_space.EARLY_STOPPING:  # the distinct images its steps can touch
            images = min(images, steps * nas_whole_config(params).batch)
        seconds = sum(r["proxies"][p]["train_seconds"] + r["proxies"][p]["val_seconds"] for r in rows)
        out[p] = {"best_arch": nas_space.SPACE[best].name, "best_test": 100 * float(np.mean(gt[best]["test"])),
                  "best_test_std": 100 * float(np.std(gt[best]["test"])), "best_runs": len(gt[best]["test"]),
                  "spearman": nas_mod.spearman([scores[i] for i in chosen], [gt[i]["val_mean"] for i in chosen]),
                  "top": [{"arch": nas_space.SPACE[i].name, "proxy_val": scores[i], "whole_val": gt[i]["val_mean"]}
                          for i in chosen],
                  "search_minutes": seconds / 60, "storage_images": images, "estimated": False}
    # Whole training set: the ground truth covers only the proxies' top-k union, so its best architecture is
    # the best of that union, and its search time for all candidates is estimated where not measured: an
    # architecture's early-stopping steps (same data, same batch) times the whole training's step count.
    whole_steps = math.ceil(n_train / nas_whole_config(params).batch) * nas.whole_epochs
    est, measured, ratios = 0.0, 0, []
    for r in rows:
        es = r["proxies"].get(nas_space.EARLY_STOPPING)
        per_run = (es["train_seconds"] / (nas.repeats * es["steps"]) * whole_steps) if es else None
        if r["index"] in gt:
            g = gt[r["index"]]
            t = g["train_seconds"] / g["runs"] * nas.whole_repeats
            measured += 1
            if per_run:
                ratios.append(per_run / (g["train_seconds"] / g["runs"]))
            est += t
        elif per_run is not None:
            est += per_run * nas.whole_repeats
        else:
            est = float("nan")
    gscores = {i: g["val_mean"] for i, g in gt.items()}
    wbest = nas_mod.top(gscores, 1)[0]
    out["whole"] = {"best_arch": nas_space.SPACE[wbest].name, "best_test": 100 * float(np.mean(gt[wbest]["test"])),
                    "best_test_std": 100 * float(np.std(gt[wbest]["test"])), "best_runs": len(gt[wbest]["test"]),
                    "spearman": 1.0, "search_minutes": est / 60, "storage_images": n_train,
                    "estimated": measured < len(rows), "measured_architectures": measured,
                    "estimate_over_measured": float(np.median(ratios)) if ratios else None}
    out["_setting"] = {"candidates": len(rows), "space": len(nas_space.SPACE), "ground_truth_architectures": len(gt),
                       "n_train": n_train, "n_validation": gt_header["n_validation"], "n_test": gt_header["n_test"],
                       "proxy_epochs": nas.epochs, "repeats": nas.repeats, "whole_epochs": nas.whole_epochs,
                       "whole_repeats": nas.whole_repeats, "best_repeats": nas.best_repeats, "top": k,
                       "batched": nas.batched, "job_cpu_seconds": gt_header["job_cpu_seconds"],
                       "seconds_per_architecture": {p: out[p]["search_minutes"] * 60 / len(rows) for p in nas.proxies}}
    return out


def scatter(t4: dict, params, out: Path) -> Path:
    """Figure F5: proxy against whole-training-set validation accuracy of each proxy's top k."""
    proxies = sections(params).nas.proxies
    fig, axes = plt.subplots(1, len(proxies), figsize=(3.2 * len(proxies), 3.0), squeeze=False)
    for ax, p in zip(axes[0], proxies):
        pts = t4[p]["top"]
        ax.scatter([q["proxy_val"] for q in pts], [q["whole_val"] for q in pts], s=18)
        ax.set_title(f"{PROXY_TITLES.get(p, p)}: Correlation = {t4[p]['spearman']:.2f}", fontsize=9)
        ax.set_xlabel("Proxy Dataset Performance", fontsize=8)
        ax.set_ylabel("Whole Dataset Performance", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return save(fig, out)


ROWS = (("Performance (%)", "best_test", ".1f", "performance", ".1f"),
        ("Correlation", "spearman", ".2f", "correlation", ".2f"),
        ("Time cost (min)", "search_minutes", ".1f", "time_min", ".1f"),
        ("Storage (imgs)", "storage_images", "d", "storage", "pow10"))


def nas_section(inputs: Inputs, fig_dir: Path) -> Section:
    params = inputs.params
    nas = sections(params).nas
    t4 = table4(inputs)
    s = t4["_setting"]
    cols = list(nas.proxies) + ["whole"]
    p = paper.NAS_PROTOCOL
    budget = Budget(None, s["candidates"], s["repeats"], s["proxy_epochs"], unit="architecture",
                    setting=nas.dataset)
    protocol = Budget(None, p["architectures"], p["repeats"], p["epochs"], unit="architecture", setting=p["dataset"])
    rows, comparisons = [], []
    for label, key, spec, paper_key, paper_spec in ROWS:
        row = [label]
        for c in cols:
            ours, theirs = t4[c][key], paper.TABLE4.get(c, {}).get(paper_key)
            mark = " (est.)" if key == "search_minutes" and t4[c].get("estimated") else ""
            row.append(f"{number(ours, spec)}{mark} / {number(theirs, paper_spec)}")
            if theirs is not None:
                comparisons.append(Comparison("DC Table 4", f"{label}, {PROXY_TITLES.get(c, c)}",
                                              number(ours, spec) + mark, number(theirs, paper_spec),
                                              status(ours, (theirs, None), budget, protocol)))
        rows.append(row)
    rows.append(["Best architecture", *[f"{t4[c]['best_arch'].removeprefix('ConvNet_')} ({t4[c]['best_runs']} runs)"
                                        for c in cols]])
    w = t4["whole"]
    widths = words(list(nas.widths))
    note = (f"ours / paper (CIFAR-10, 720 ConvNets, GTX 1080 Ti). Ours: {nas.dataset}, {s['candidates']} candidate "
            f"architectures. Budget: {budget.text()} (paper: {protocol.text()}). How each row is measured is folded "
            "below the table.")
    how = Details("How each row is measured", [
        ("candidates", f"{s['candidates']} ({'all' if s['candidates'] == 720 else 'a stratified sample'} of widths "
                       f"{widths}); {s['n_validation']} training images held out as validation, {s['n_train']} left for "
                       f"the proxies and whole-set training, {s['n_test']} test"),
        ("proxies", f"{nas.ipc} img/cls, {s['proxy_epochs']} epochs, {s['repeats']} run(s) per architecture; early "
                    "stopping: the whole training split for the same number of SGD steps"),
        ("performance", "mean test accuracy of the proxy's best-ranked architecture trained on the whole training "
                        f"split ({s['whole_epochs']} epochs)"),
        ("correlation", f"Spearman's rho between proxy and whole-split validation accuracy over the proxy's own top "
                        f"{s['top']} (the {s['top']} architectures with the highest validation accuracy after proxy "
                        "training, DC appendix A and Figure F5)"),
        ("ground truth", f"trained only for the {s['ground_truth_architectures']} architectures in some proxy's top "
                         f"{s['top']}, so the whole-dataset column's best is the best of those; its correlation is 1 "
                         "by definition"),
        ("time", f"measured wall-clock training + validation minutes for our {s['candidates']} candidates, 1 thread "
                 "per job (on a shared machine the job's CPU share inflates them; the jobs' CPU seconds are in "
                 "reports/tables/nas.json); the whole-dataset time is an estimate (est.) for the "
                 f"{s['candidates'] - w['measured_architectures']} candidates without ground truth, from each one's "
                 "measured early-stopping seconds per step times the whole training's steps (median "
                 f"estimate/measured on the others: {number(w['estimate_over_measured'], '.2f')})"),
        ("storage", "early stopping's: the distinct images its steps can touch"),
        ("repeats", "trained " + ("as a vmap batch" if s["batched"] else
                                  "one by one (vmap batching measured slower here)"))])
    png = scatter(t4, params, Path(fig_dir) / "nas_F5.png")
    cpu = [v for v in s["job_cpu_seconds"].values() if v is not None]
    metrics = {c: {k: t4[c][k] for k in ("best_arch", "best_test", "spearman", "search_minutes", "storage_images")}
               for c in cols}
    metrics["setting"] = {"candidates": s["candidates"], "ground_truth_architectures": s["ground_truth_architectures"],
                          "jobs_cpu_seconds": round(sum(cpu), 1) if cpu else None}
    return Section("nas", "DC Table 4: neural architecture search with proxy sets", note,
                   ["", *[PROXY_TITLES.get(c, c) for c in cols]], rows, figures=[png], metrics=metrics,
                   comparisons=comparisons, details=[how])
