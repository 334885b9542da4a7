"""How many jobs a parameter file plans, rule by rule, counted from its cells (dataset, IPC, method) and their
numbers of sets without listing each set, so that `dcpipe check-params` can say it in a second even for a plan
nobody meant (`sets: 100000`: millions of jobs, which Snakemake would plan for hours before its first line)."""

from __future__ import annotations

from . import plan
from .config import sections
from .methods import parse

# Snakemake plans a few hundred jobs a second (docs/pipeline.md, "Planning time"): past this many, `snakemake -n`
# is silent for minutes, so check-params warns.
LARGE_PLAN = 50_000


def job_counts(params) -> dict[str, int]:
    """Jobs per rule of a run from scratch: the job stats of Snakemake's dry run in a fresh checkout (`all`
    included), rules without jobs left out."""
    s = sections(params)
    evaluated = {cell: plan.sets_of(params, cell[2]) for cell in plan.cells(params)}
    made = dict(evaluated)  # cell -> its sets 0..n-1, each one condense or select_coreset job
    others = [((j["dataset"], j["ipc"], j["method"]), j["set"] + 1)
              for j in plan.continual_condensed(params) + plan.nas_proxy_jobs(params)]
    others += [((c["dataset"], c["ipc"], c["method"]), s.experiment.sets) for c in plan.cross_cells(params)]
    for cell, n in others:
        made[cell] = max(made.get(cell, 0), n)
    # whole-set networks: those of wholeset_jobs, and those a coreset's evidence names (set k: network k), the NAS
    # search split's herding proxy among them
    networks = {j["dataset"]: plan.whole_models(params) for j in plan.wholeset_jobs(params)}
    for (dataset, _, method), n in made.items():
        if parse(method).evidence:
            networks[dataset] = max(networks.get(dataset, 0), min(n, plan.whole_models(params)))
    prepared = plan.prepared_datasets(params)
    counts = {
        "download": len({plan.source_dataset(d) for d in prepared}),
        "prepare_data": len(prepared),
        "nas_split": 1 if s.nas else 0,
        "condense": sum(n for cell, n in made.items() if parse(cell[2]).synthetic),
        "select_coreset": sum(n for cell, n in made.items() if not parse(cell[2]).synthetic),
        "evaluate": sum(evaluated.values()),
        "evaluate_cross": sum(s.experiment.sets * len(s.study(c["study"]).eval_models) for c in plan.cross_cells(params)),
        "wholeset": sum(networks.values()),
        "optimal_random": len(plan.optimal_random_jobs(params)),
        "continual": len(plan.continual_results(params)),
        "nas_shard": s.nas.shards if s.nas else 0,
        "nas_ground_truth": s.nas.ground_truth_shards if s.nas else 0,
        "score": len(plan.score_jobs(params)),
        "report": 1,
        "all": 1,
    }
    return {rule: n for rule, n in counts.items() if n}


def large_plan_message(params) -> str | None:
    """A plan of more than LARGE_PLAN jobs, with its count and its largest rules (None for a smaller one)."""
    counts = job_counts(params)
    total = sum(counts.values())
    if total <= LARGE_PLAN:
        return None
    largest = ", ".join(f"{rule} {n:,}" for rule, n in sorted(counts.items(), key=lambda x: -x[1])[:3])
    return (f"the plan has {total:,} jobs ({largest}), more than {LARGE_PLAN:,}: Snakemake alone would take minutes "
            f"to plan them before its first line (docs/pipeline.md, Planning time); check experiment.sets and the "
            f"studies' sets")
