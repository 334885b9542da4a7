"""The DC paper's Figure 4: continual learning with a herding or DC-condensed rehearsal memory, with and without
distillation (accuracy after each stage), as a bar chart and its numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ... import paper, plan
from ...config import continual_config, sections
from ..collect import Inputs
from ..section import Budget, Comparison, Section, stat
from ..summary import status, why_not_run
from .figures import plt, save, sns


def continual_frame(inputs: Inputs) -> pd.DataFrame:
    """One row per run, setting and stage: the accuracy (%) on all tasks seen so far."""
    rows = []
    for path in plan.continual_results(inputs.params):
        r = inputs.json(path)
        for s in r["settings"]:
            for t, stage in enumerate(s["stages"]):
                rows.append({"run": r["run"], "setting": s["name"], "memory": s["memory"],
                             "distillation": s["distillation"], "stage": f"T{t + 1}", "task": r["tasks"][t],
                             "accuracy": 100 * stage["accuracy"], "test_images": stage["test_images"],
                             "dc_iterations": ", ".join(map(str, sorted({m["iterations"]
                                                                         for m in r["condensed_sets"]})))})
    return pd.DataFrame(rows)


def bar_chart(df: pd.DataFrame, tasks: list[str], out: Path) -> Path:
    stages = list(dict.fromkeys(df["stage"]))
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(stages), 3.6))
    sns.barplot(data=df, x="stage", y="accuracy", hue="setting", capsize=0.1, ax=ax,
                errorbar=lambda a: (a.mean() - a.std(ddof=0), a.mean() + a.std(ddof=0)))  # the table's std
    ax.set_ylim(max(0.0, df["accuracy"].min() - 10), 100)
    ax.set_xlabel(" → ".join(f"T{i + 1} {t}" for i, t in enumerate(tasks)))
    ax.set_ylabel("accuracy (%) on all tasks so far")
    ax.set_title(f"Continual learning, {df['run'].nunique()} run(s), mean ± std", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    return save(fig, out)


def continual_section(inputs: Inputs, fig_dir: Path) -> Section:
    c, cfg = sections(inputs.params).continual, continual_config(inputs.params)[0]
    df = continual_frame(inputs)
    stages = list(dict.fromkeys(df["stage"]))
    tasks = list(c.tasks)
    runs = int(df["run"].nunique())
    figure = bar_chart(df, tasks, Path(fig_dir) / "continual.png")

    g = df.groupby(["setting", "stage"], sort=False)["accuracy"]
    stats = g.agg(mean="mean").join(g.std(ddof=0).rename("std")).reset_index()
    sizes = df.groupby("stage", sort=False)["test_images"].first()
    header = ["Setting"] + [f"T{i + 1}: +{t} ({sizes[s]:,} test images)" for i, (s, t) in enumerate(zip(stages, tasks))]
    header += [f"paper ({' → '.join(paper.CONTINUAL_SEQUENCE)}), text only"]
    rows, comparisons = [], []
    metrics = {"tasks": " → ".join(tasks), "runs": runs, "settings": {}}
    for name in dict.fromkeys(df["setting"]):
        cells = stats[stats.setting == name].set_index("stage")
        rows.append([name] + [stat(cells.loc[s, "mean"], cells.loc[s, "std"], runs, unit="run") for s in stages]
                    + ["–"])
        metrics["settings"][name] = {s: {"mean": round(cells.loc[s, "mean"], 2), "std": round(cells.loc[s, "std"], 2)}
                                     for s in stages}
    seq = " → ".join(tasks)
    dc_k = df["dc_iterations"].iloc[0]
    budget = Budget(int(dc_k) if dc_k.isdigit() else None, runs, None, None, unit="run",
                    setting=f"{seq}, {c.iterations} + {c.finetune_iterations} steps per stage")
    p = paper.CONTINUAL_PROTOCOL
    protocol = Budget(p["dc_iterations"], p["runs"], None, None, unit="run",
                      setting=f"{' → '.join(p['tasks'])}, {p['iterations']} + {p['finetune_iterations']} steps "
                              "per stage")
    missing = [t for t in paper.CONTINUAL_SEQUENCE if t not in tasks]
    # DC minus herding, paired by run (both continue from the same stage-1 model, same batches and test images)
    for kd in dict.fromkeys(df["distillation"]):
        pair = df[df.distillation == kd].pivot_table(index=["run", "stage"], columns="memory", values="accuracy")
        if {"DC", "herding"} <= set(pair.columns):
            diff = (pair["DC"] - pair["herding"]).groupby(level="stage", sort=False)
            d = diff.agg("mean").to_frame("mean").join(diff.std(ddof=0).rename("std"))
            margin = paper.CONTINUAL_T3_MARGIN[bool(kd)]
            claim = f"DC ahead at T3 by {margin}" if margin is not None else "DC ahead at T3 (margin not stated)"
            label = f"DC − herding, {'with' if kd else 'without'} KD"
            rows.append([label] + [f"{d.loc[s, 'mean']:+.1f} ± {d.loc[s, 'std']:.1f}" for s in stages] + [claim])
            last = stages[-1]
            ours = f"{d.loc[last, 'mean']:+.1f} ± {d.loc[last, 'std']:.1f} at {last} ({seq})"
            published = f"+{margin} at T3" if margin is not None else "ahead at T3 (margin not stated)"
            comparisons.append(Comparison(
                "DC Figure 4", f"{label}, last stage", ours, published,
                status(None, None, None, None, f"the paper's sequence needs {missing[0]} ({why_not_run(missing[0])})") if missing
                else status(d.loc[last, "mean"], (margin, None), budget, protocol)))
    note = (f"Sequence: {seq}"
            + ("" if tasks == list(paper.CONTINUAL_SEQUENCE) else
               f" (the paper's is {' → '.join(paper.CONTINUAL_SEQUENCE)}; SVHN is not available offline here)")
            + f". Accuracy (%) after each stage on {cfg.test_per_task:,} random test images of every task "
            f"seen so far, mean ± std over {runs} run(s). E2E learner ({cfg.model}), memory "
            f"{cfg.memory_per_class} img/cls per earlier task, {cfg.iterations} training + "
            f"{cfg.finetune_iterations} balanced fine-tuning iterations per stage (paper: 5,000 + 500). "
            f"DC memory condensed with K = {dc_k} iteration(s) (paper: 1,000), herding over "
            f"{cfg.herding_candidates or 'all'} image(s) per class. Stage 1 has no memory and no teacher: all "
            "settings share its model. DC − herding: paired by run. The paper's Figure 4 bar heights are not in its "
            f"text; the last column gives what the text states. Budget: {budget.text()}.")
    return Section("continual", "Continual learning (DC paper Figure 4)", note, header, rows, figures=[figure],
                   metrics=metrics, comparisons=comparisons)
