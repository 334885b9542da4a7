"""External distilled sets scored under the fixed `score:` protocol (dcpipe score), beside the sets made here."""

from __future__ import annotations

import pandas as pd

from ... import artifacts, plan
from ...config import methods as experiment_methods
from ..collect import Inputs, cell
from ..section import Section, number, stat


def _interval(ci) -> str:
    return "–" if ci is None else f"[{ci[0]:.1f}, {ci[1]:.1f}]"


def score_section(inputs: Inputs, summary: pd.DataFrame) -> Section:
    rows, metrics, seen = [], {}, set()
    protocol = None
    for f in plan.score_jobs(inputs.params):
        r = inputs.json(artifacts.SCORE.format(name=f["name"]))
        protocol = r["protocol"]
        per_class = sorted(set(r["images_per_class"]))
        ipc = str(per_class[0]) if len(per_class) == 1 else f"{min(per_class)}–{max(per_class)}"
        s = r["set"]
        random = r.get("random_real")
        rows.append([f["name"], f["dataset"], ipc, stat(s["mean"], s["std"], s["n"]), _interval(s["ci95"]),
                     "–" if random is None else stat(random["mean"], random["std"], random["n"]),
                     number(r.get("gap_to_random"), "+.1f"), number(r["wall_seconds"], ".0f")])
        metrics[f["name"]] = {"mean": s["mean"], "std": s["std"], "ci95": s["ci95"],
                              "gap_to_random": r.get("gap_to_random"), "wall_seconds": r["wall_seconds"]}
        if len(per_class) == 1:
            seen.add((f["dataset"], per_class[0]))
    for d, i in sorted(seen):  # the sets made here, at their own evaluation protocol
        for m in experiment_methods(inputs.params):
            c = cell(summary, d, i, m)
            if c is not None:
                rows.append([f"this pipeline: {m}", d, str(i), stat(c["mean"], c["std"], c["n_models"]), "–", "–",
                             "–", "–"])
    how = ("" if protocol is None else
           f"{protocol['models']} fresh {protocol['model']} networks, {protocol['train']['epochs']} epochs (lr x0.1 "
           f"half-way), augmentation {protocol['train']['dsa'] or ('crop/scale/rotate' if protocol['train']['augment'] else 'none')}; ")
    note = ("External sets scored by `dcpipe score` under one fixed protocol: " + how + "only the final network "
            "is tested, once (no epoch picked on the test set). 95% CI: t-interval of the mean. Random real: the "
            "same protocol on random real training images, as many per class; gap: set minus random real, in "
            "points. Rows 'this pipeline': the sets made here at the same dataset and IPC, at the evaluate "
            "section's protocol, not the score protocol.")
    return Section("score", "Scored sets (dcpipe score)", note,
                   ["Set", "Dataset", "IPC", "Accuracy (%)", "95% CI", "Random real (%)", "Gap (points)",
                    "Wall (s)"], rows, metrics=metrics)
