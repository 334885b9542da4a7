"""The jobs of a parameter file (what the rules generate and the report reads), the downloads they need, and the
check of one job. Imported by the Snakefile and every stage's start: nothing here trains or plots (the report rule's
files: report_files)."""

from __future__ import annotations

import math
from pathlib import Path

from . import artifacts
from . import fetch, registry
from .config import condensed_memory_sets, continual_config, data_sources, runtime as runtime_of, score_files, sections
from .datasets import DATASETS, dataset_spec, rgb32_name  # DATASETS: the rules' too
from .errors import ParamsError
from .methods import cell_name, parse
from .model_names import evaluation_model
from .nas_space import EARLY_STOPPING, shard, stratified_sample, subspace
from .runtime import CUDA_ELSEWHERE, device_problem
from .seeding import derive_seed
from .sources import SOURCES, mb  # SOURCES: the rules' too


def wholeset_model(params) -> str:
    return evaluation_model(sections(params).budget.evaluation_model)


def whole_models(params) -> int:
    """Networks trained on the whole set (coresets.whole_models; 1 where the file has no coresets section)."""
    c = sections(params).coresets
    return c.whole_models if c else 1


def evidence_network(params, index) -> int:
    """The whole-set network coreset set `index` selects from. DC section 3.1 runs each baseline 5 times, so set
    k comes from network k: its own features and its own forgetting trace. With one network (the CPU default)
    every set comes from network 0, and herding's and k-center's sets are then identical."""
    return int(index) % whole_models(params)


def evidence(params, dataset: str, method: str, index=0) -> list[str]:
    """The whole-set artifact set `index` of a coreset method selects from ([] for random and synthetic sets)."""
    kind = parse(method).evidence
    return [artifacts.EVIDENCE[kind].format(dataset=dataset, model=wholeset_model(params),
                                            net=evidence_network(params, index))] if kind else []


def wholeset_jobs(params) -> list[dict]:
    """(dataset, model, net) of every whole-set training: coresets.whole_models networks of each experiment
    dataset when the parameter file has a `coresets` section (Table 1's whole-dataset column and the
    features/counts of the coreset methods), and of each dataset of the IPC sweep (DC Figure 3's relative
    accuracy)."""
    if not sections(params).coresets:
        return []
    datasets = dict.fromkeys(sections(params).experiment.datasets + tuple(ipc_sweep_datasets(params)))
    return [dict(dataset=d, model=wholeset_model(params), net=k) for d in datasets for k in range(whole_models(params))]


def optimal_random_jobs(params) -> list[dict]:
    """(dataset, ipc) of the optimal random selection (DC Table T12), when coresets.optimal_random is set."""
    s = sections(params)
    spec = s.coresets and s.coresets.optimal_random
    if not spec:
        return []
    return [dict(dataset=d, ipc=i) for d in spec.datasets or s.experiment.datasets for i in spec.ipcs or s.experiment.ipcs]


def study_cells(params) -> list[dict]:
    """(study, dataset, ipc, value, model, method) of every ablation cell. Studies run on their own budget
    (iterations, models per set), so their cells never share sets with the main table."""
    cells = []
    for spec in sections(params).studies:
        if spec.cross:
            continue  # cross_cells
        for d in spec.datasets:
            for i in spec.ipcs:
                for v in spec.values or [None]:  # resources (T15): one cell per model, no values
                    for m in spec.models or [None]:
                        name = cell_name(spec.name, v, m)
                        if not m and not spec.own_budget:
                            name = parse(name).same_as_variant()  # same budget: share the main table's set
                        cells.append(dict(study=spec.name, dataset=d, ipc=i, value=v, model=m, method=name))
    return cells


def ipc_sweep_cells(params) -> list[dict]:
    """(dataset, ipc, method) of DC Figure 3's sweep over images per class (the ipc_sweep section). Its cells
    run on the main experiment's budget, so where they meet the main table (IPC 1, 10, 50) they are its cells."""
    spec = sections(params).ipc_sweep
    if not spec:
        return []
    return [dict(dataset=d, ipc=i, method=m) for d in spec.datasets for i in spec.ipcs for m in spec.methods]


def ipc_sweep_datasets(params) -> list[str]:
    spec = sections(params).ipc_sweep
    return list(spec.datasets) if spec else []


def sets_of(params, method: str) -> int:
    """Sets per cell: experiment.sets, or a study's own `sets` (the follow-up evaluates 2 sets x 50 networks)."""
    s, study = sections(params), parse(method).study
    e = registry.entry(method)
    if e and e.kind == "file" and "{set}" not in e.template:
        return 1  # a finished set made elsewhere: one per cell unless its template names {set}
    own = s.study(study) if study else None
    return own.sets if own and own.sets else s.experiment.sets


def cells(params) -> list[tuple[str, int, str]]:
    """Every (dataset, ipc, method) the experiment, its studies and the IPC sweep evaluate, without duplicates."""
    e = sections(params).experiment
    jobs = [(d, i, m) for d in e.datasets for i in e.ipcs for m in e.methods]
    jobs += [(c["dataset"], c["ipc"], c["method"]) for c in study_cells(params) + ipc_sweep_cells(params)]
    return [(d, i, m) for d, i, m in dict.fromkeys(jobs) if parse(m).applies_at(i)]


def plan(params) -> list[dict]:
    """Every (dataset, ipc, method, set) of the cells: sets_of(method) sets each."""
    return [dict(dataset=d, ipc=i, method=m, set=s) for d, i, m in cells(params) for s in range(sets_of(params, m))]


def score_jobs(params) -> list[dict]:
    """The external sets of score.files, one job each (name, path, dataset, entry, pixels)."""
    return score_files(params)


def score_outputs(params) -> list[str]:
    return [artifacts.SCORE.format(name=f["name"]) for f in score_jobs(params)]


def continual_datasets(params) -> list[str]:
    """The prepared datasets of the continual tasks, in the shared 32x32 RGB format (datasets.rgb32_name)."""
    c = sections(params).continual
    return [rgb32_name(t) for t in c.tasks] if c else []


def continual_condensed(params, run: int | None = None) -> list[dict]:
    """Condensation jobs of the DC rehearsal memory: one set per task and `condensed_sets` index, made by the
    condense rule like any other synthetic set (the plan's settings at IPC = memory_per_class). Every task is
    condensed but the last one, whose memory no later stage uses. With `run`, the sets that run uses, in task
    order: run r uses set r mod condensed_sets."""
    c = sections(params).continual
    if not c or "DC" not in c.memories:
        return []
    n_sets = condensed_memory_sets(params)
    sets = range(n_sets) if run is None else [run % n_sets]
    ipc = continual_config(params)[0].memory_per_class
    return [dict(dataset=d, ipc=ipc, method="DC", set=s) for d in continual_datasets(params)[:-1] for s in sets]


def continual_results(params) -> list[str]:
    c = sections(params).continual
    return [artifacts.CONTINUAL.format(run=r) for r in range(c.runs)] if c else []


def nas_candidates(params) -> list[int]:
    """The architectures this parameter file searches: all of nas.widths' (sub)space (720 with every width), or
    a stratified sample of nas.architectures of them."""
    s = sections(params)
    factors = subspace(s.nas.widths)
    n = math.prod(len(v) for v in factors.values()) if s.nas.architectures == "all" else s.nas.architectures
    return stratified_sample(n, derive_seed(s.seed, "nas", "sample"), factors)


def nas_shard(params, k: int) -> list[int]:
    """Shard k's architectures (space indices)."""
    return shard(nas_candidates(params), k, sections(params).nas.shards)


def nas_proxy_jobs(params) -> list[dict]:
    """The coreset / condensed sets NAS trains on: built by the ordinary stages from the search split (the
    prepared variant without the validation images), set 0 at nas.ipc."""
    nas = sections(params).nas
    if not nas:
        return []
    return [dict(dataset=artifacts.search_dataset(nas.dataset), ipc=nas.ipc, method=p, set=0)
            for p in nas.proxies if p != EARLY_STOPPING]


def nas_outputs(params) -> list[str]:
    """Every NAS result file (the report's inputs)."""
    nas = sections(params).nas
    if not nas:
        return []
    return ([artifacts.NAS_SHARD.format(dataset=nas.dataset, shard=k) for k in range(nas.shards)]
            + [artifacts.NAS_GROUND_TRUTH.format(dataset=nas.dataset, shard=g) for g in range(nas.ground_truth_shards)])


def cross_cells(params) -> list[dict]:
    """(study, dataset, ipc, model, method) of every condensation of the cross studies: one per condensation
    model, named "<prefix>-<model>" (prefixes: methods.CROSS_STUDIES)."""
    return [dict(study=spec.name, dataset=d, ipc=i, model=m, method=cell_name(spec.name, None, m))
            for spec in sections(params).studies if spec.cross
            for d in spec.datasets for i in spec.ipcs for m in spec.models]


def cross_plan(params) -> list[dict]:
    """Every evaluation of the cross studies: each set of each cell trained on each evaluation model once,
    (dataset, ipc, method, set, model) with model the evaluation network (EVAL_ON), plus study and
    condense_model for the report."""
    s = sections(params)
    return [dict(dataset=c["dataset"], ipc=c["ipc"], method=c["method"], set=k, model=e, study=c["study"],
                 condense_model=c["model"])
            for c in cross_cells(params) for k in range(s.experiment.sets) for e in s.study(c["study"]).eval_models]


def set_jobs(params) -> list[dict]:
    """Every (dataset, ipc, method, set) some stage condenses or selects."""
    return plan(params) + continual_condensed(params) + nas_proxy_jobs(params) + cross_plan(params)


def prepared_datasets(params) -> list[str]:
    """Every dataset the prepare_data rule makes for this plan: those of the experiment, its studies, the whole-set
    and optimal-random stages, the continual tasks and the NAS dataset (whose search split nas_split makes from
    it). fetch_plans says where their files will come from, before any work."""
    # from the cells (each has a set), not set_jobs, which lists every set: millions for `sets: 100000`
    names = {d for d, _, _ in cells(params)} | {j["dataset"] for j in cross_cells(params) + nas_proxy_jobs(params)
                                                 + wholeset_jobs(params) + optimal_random_jobs(params)}
    names |= set(continual_datasets(params)) | {f["dataset"] for f in score_jobs(params)}
    if nas := sections(params).nas:
        names.discard(artifacts.search_dataset(nas.dataset))
        names.add(nas.dataset)
    return sorted(names)


def source_dataset(dataset: str) -> str:
    """The dataset whose downloaded files `dataset` is prepared from (MNIST for MNIST_RGB32)."""
    return dataset_spec(dataset).variant_of or dataset


def fetch_plans(params, datasets: list[str] | None = None) -> list[fetch.Plan]:
    """What each download job of `datasets` (source datasets) will do, found from file names alone (fetch.plan). By
    default the plan's download jobs that will run: those of the prepared datasets not prepared yet (.npz and .json
    under the working directory) whose manifest (artifacts.RAW) is not there yet."""
    if datasets is None:
        todo = [d for d in prepared_datasets(params) if not (
            Path(artifacts.PREPARED.format(dataset=d)).is_file()
            and Path(artifacts.PREPARED.format(dataset=d) + ".json").is_file())]
        datasets = [d for d in dict.fromkeys(map(source_dataset, todo)) if not Path(artifacts.RAW.format(dataset=d)).is_file()]
    d = data_sources(params)
    raw = Path(artifacts.RAW).parent
    return [fetch.plan(name, raw, fetch.mirror_dirs(d.mirrors), d.bases(name), d.download) for name in sorted(datasets)]


def missing_data_message(plans: list[fetch.Plan], params) -> str | None:
    """The plans that cannot run (download off, no mirror) as one block, for a `warning: ` (check-params, dry
    runs) or `error: ` prefix; None when there are none."""
    mirrors = fetch.mirror_dirs(data_sources(params).mirrors)
    body = "\n".join("  " + line for p in plans if p.where == "missing"
                     for line in fetch.missing_message(p.dataset, mirrors).splitlines())
    return f"the plan needs datasets that no mirror holds, so their download jobs cannot run:\n{body}" if body else None


def download_lines(plans: list[fetch.Plan]) -> list[str]:
    """One line per dataset the plan downloads: its size and hosts, then the total."""
    lines = [f"download: {p.dataset} {mb(p.bytes)} from {p.detail} into {Path(artifacts.RAW).parent}/"
             for p in plans if p.where == "download"]
    total = sum(p.bytes for p in plans if p.where == "download")
    return lines + ([f"download: {mb(total)} in all, once (kept in {Path(artifacts.RAW).parent}/)"] if len(lines) > 1 else [])


def unreachable_message(plans: list[fetch.Plan], params) -> str | None:
    """The offline blocks of the datasets to download whose URLs do not answer (fetch.probe), or None. The check
    itself may be wrong (a server that answers neither HEAD nor a ranged GET and still serves the file), so the
    last line says how to run without it."""
    d = data_sources(params)
    blocks = fetch.probe({p.dataset: d.bases(p.dataset) for p in plans if p.where == "download"})
    skip = ("If these URLs do serve the files, this check (a HEAD request, else a GET of the first byte) is wrong: "
            "skip it with `snakemake --no-hooks` (or `dvc repro` for `make dvc-repro`).")
    return "\n".join([*blocks.values(), skip]) if blocks else None


def check_job(params, where: str = "params", dataset: str | None = None, ipc: int | None = None,
              method: str | None = None, model: str | None = None, run: int | None = None,
              shard: int | None = None, ground_truth_shard: int | None = None) -> None:
    """A stage's command-line names must be ones the parameter file plans: only those were validated (loop
    schedule, iterations, epochs, budget). The Snakefile and dvc.yaml only generate such jobs; this catches a
    hand-run stage with a typo before it reads any data."""
    jobs = {(j["dataset"], j["ipc"], j["method"]) for j in set_jobs(params)}
    datasets = sorted({d for d, _, _ in jobs} | set(continual_datasets(params)))
    problems = []
    if dataset is not None and dataset not in datasets:
        problems.append(f"  --dataset {dataset!r}: not planned by this file (datasets: {', '.join(datasets)})")
    elif ipc is not None and method is not None and (dataset, ipc, method) not in jobs:
        planned = sorted(f"{i}/{m}" for d, i, m in jobs if d == dataset)
        problems.append(f"  --ipc {ipc} --method {method!r}: not planned for {dataset} (ipc/method: {', '.join(planned)})")
    elif model is not None:
        evals = sorted({j["model"] for j in cross_plan(params) if (j["dataset"], j["ipc"], j["method"]) == (dataset, ipc, method)})
        if model not in evals:
            problems.append(f"  --model {model!r}: not an evaluation model of {method} (planned: {', '.join(evals) or 'none'})")
    s = sections(params)
    runs = s.continual.runs if s.continual else 0
    if run is not None and not 0 <= run < runs:
        problems.append(f"  --run {run}: not planned (continual.runs = {runs})")
    for key, k in (("shards", shard), ("ground_truth_shards", ground_truth_shard)):
        n = getattr(s.nas, key) if s.nas else 0
        if k is not None and not 0 <= k < n:
            problems.append(f"  --shard {k}: nas.{key} is {n} (shards 0..{n - 1})")
    if problems:
        raise ParamsError(f"{where}: this job is not part of the experiment:\n" + "\n".join(problems))


def device_message(params) -> str | None:
    """runtime.device: cuda on a machine without CUDA (the Snakefile's start check), with the way out where the
    GPU jobs run on another host."""
    problem = device_problem(runtime_of(params).device)
    return f"{problem}; {CUDA_ELSEWHERE}" if problem else None
