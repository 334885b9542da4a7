"""Stage optimal_random: optimal random selection (DC appendix C, Table T12)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..coreset import random_select, rank_coresets
from ..io import provenance, resumable, write_json
from ..runtime import Progress
from ..seeding import derive_seed
from ..train import train_models
from ..jobs import OptimalRandomJob
from .common import device, load_data


def optimal_random(job: OptimalRandomJob, prepared: Path, out: Path) -> None:
    """N random coresets, each trained on by fresh models with the evaluation protocol, ranked by their mean TEST
    accuracy as the paper does ("selected by ranking their performance"; no validation split is mentioned), so
    the Top-k rows are an oracle's pick, an upper bound on random selection, not a method one could deploy.
    Resumes from the scores of finished coresets."""
    dataset, ipc, model, seed, cfg = job.dataset, job.ipc, job.model, job.seed, job.cfg
    n, m = job.coresets, job.models_per_coreset
    dev = device(job.env)
    d = load_data(job.env, prepared, dev)
    partial = resumable(out, {"seed": seed, "model": model, "train_config": cfg.__dict__, "models": m,
                              "n_train_images": len(d.y_train)})
    scores = partial.done[:n]
    bar = Progress(n, f"optimal random {dataset} ipc{ipc}", job.env.log_every)
    t0 = time.perf_counter()
    for j in range(len(scores), n):
        idx = random_select(d.y_train.cpu(), ipc, d.num_classes, derive_seed(seed, "coreset", j)).to(dev)
        accs = train_models(model, m, d.x_train[idx], d.y_train[idx], d.x_test, d.y_test, d.num_classes, cfg,
                            derive_seed(seed, "evaluate", j))
        scores.append(float(np.mean(accs)))
        partial.save(scores)
        bar(j, scores[-1])
    bar.close()
    best = int(np.argmax(scores))
    write_json(out, {"dataset": dataset, "ipc": ipc, "model": model, "seed": seed, "coresets": n,
                     "models_per_coreset": m, "ranked_by": "test accuracy (as the paper; an oracle)",
                     "train_config": cfg.__dict__, "scores": scores, "top": rank_coresets(scores),
                     "best": {"coreset": best, "seed": derive_seed(seed, "coreset", best), "score": scores[best]},
                     "wall_seconds": time.perf_counter() - t0, "provenance": provenance()})
    partial.finish()
