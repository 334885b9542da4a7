"""Artifact locations: one place, used by the Snakefile, the report and the tests."""

PREPARED = "data/prepared/{dataset}.npz"
CORESET = "data/coreset/{dataset}/ipc{ipc}/{method}_set{set}.npz"
SYNTHETIC = "data/synthetic/{dataset}/ipc{ipc}/{method}_set{set}.npz"
LOSS = "data/synthetic/{dataset}/ipc{ipc}/{method}_set{set}_loss.csv"
EVAL = "data/eval/{dataset}/ipc{ipc}/{method}_set{set}.json"
CONTINUAL = "data/continual/run{run}.json"
# A cross study's set trained on a named network (DC Table 2, T6-T10): one file per (set, evaluation model).
EVAL_ON = "data/eval/{dataset}/ipc{ipc}/{method}_set{set}_on-{model}.json"
# The whole-set stage (one per dataset and evaluation model): the trained network, the penultimate features of
# every training image (herding, k-center), per-sample forgetting counts, and the whole-dataset accuracy.
WHOLESET_MODEL = "data/wholeset/{dataset}/{model}/model.safetensors"
WHOLESET_FEATURES = "data/wholeset/{dataset}/{model}/features.npz"
WHOLESET_FORGETTING = "data/wholeset/{dataset}/{model}/forgetting.npz"
WHOLESET_RESULT = "data/wholeset/{dataset}/{model}/result.json"
OPTIMAL_RANDOM = "data/optimal_random/{dataset}/ipc{ipc}.json"

# The one list of coreset methods (config.METHODS, the rules and coreset.SELECTORS follow it), and the whole-set
# artifact each one reads (coreset.EVIDENCE names the keyword it arrives as).
CORESET_METHODS = ("random", "herding", "kcenter", "forgetting")
EVIDENCE_FILE = {"herding": WHOLESET_FEATURES, "kcenter": WHOLESET_FEATURES, "forgetting": WHOLESET_FORGETTING}


def is_synthetic(method: str) -> bool:
    return method not in CORESET_METHODS


def train_set(dataset: str, ipc, method: str, set) -> str:  # noqa: A002 (the wildcard's name)
    tmpl = SYNTHETIC if is_synthetic(method) else CORESET
    return tmpl.format(dataset=dataset, ipc=ipc, method=method, set=set)


def wholeset_model(params) -> str:
    from .models import evaluation_model

    return evaluation_model(params["evaluate"]["model"])


def evidence(params, dataset: str, method: str) -> list[str]:
    """The whole-set artifact a coreset method selects from ([] for random and synthetic sets)."""
    tmpl = EVIDENCE_FILE.get(method)
    return [tmpl.format(dataset=dataset, model=wholeset_model(params))] if tmpl else []


def wholeset_jobs(params) -> list[dict]:
    """(dataset, model) of every whole-set training: each experiment dataset when the parameter file has a
    `coresets` section (Table 1's whole-dataset column and the features/counts of the coreset methods)."""
    if "coresets" not in params:
        return []
    return [dict(dataset=d, model=wholeset_model(params)) for d in params["experiment"]["datasets"]]


def optimal_random_jobs(params) -> list[dict]:
    """(dataset, ipc) of the optimal random selection (DC Table T12), when coresets.optimal_random is set."""
    spec = params.get("coresets", {}).get("optimal_random")
    if not spec:
        return []
    e = params["experiment"]
    return [dict(dataset=d, ipc=i) for d in spec.get("datasets", e["datasets"]) for i in spec.get("ipcs", e["ipcs"])]


def not_applicable(method: str, ipc: int) -> bool:
    """O and A change the network's inner updates, which IPC 1 (T = 1) never makes (follow-up Table 3: "-")."""
    return method.removeprefix("V-") in ("MDO", "MDA") and int(ipc) == 1


def study_cells(params) -> list[dict]:
    """(study, dataset, ipc, value, model, method) of every ablation cell. Studies run on their own budget
    (iterations, models per set), so their cells never share sets with the main table."""
    from .config import CROSS_STUDIES, STUDIES

    cells = []
    for study, spec in params.get("studies", {}).items():
        if study in CROSS_STUDIES:
            continue  # cross_cells
        for d in spec["datasets"]:
            for i in spec["ipcs"]:
                for v in spec["values"]:
                    for m in spec.get("models", [None]):
                        name = f"{STUDIES[study]}-{v}" + (f"-{m}" if m else "")
                        if not m and not ({"iterations", "models_per_set"} & set(spec)):
                            name = same_as_variant(name)  # same budget: share the main table's set
                        cells.append(dict(study=study, dataset=d, ipc=i, value=v, model=m, method=name))
    return cells


def same_as_variant(method: str) -> str:
    """The named variant (DC, M, MD, MDO, MDA) whose settings equal a study cell's, if any: L-intra is DC,
    D-d1 is M, D-d1+d2 is MD, V-MDA is MDA."""
    from .condense import VARIANTS
    from .config import method_settings

    s = method_settings(method)
    s["distance"] = {"d1": "ours", "d1+d2": "improved"}.get(s["distance"], s["distance"])
    return next((v for v, vs in VARIANTS.items() if vs == s), method)


def plan(params) -> list[dict]:
    """Every (dataset, ipc, method, set) the experiment and its studies evaluate, without duplicates."""
    from .config import methods

    e = params["experiment"]
    jobs = [(d, i, m) for d in e["datasets"] for i in e["ipcs"] for m in methods(params) if not not_applicable(m, i)]
    jobs += [(c["dataset"], c["ipc"], c["method"]) for c in study_cells(params) if not not_applicable(c["method"], c["ipc"])]
    seen, out = set(), []
    for d, i, m in jobs:
        if (d, i, m) not in seen:
            seen.add((d, i, m))
            out += [dict(dataset=d, ipc=i, method=m, set=s) for s in range(e["sets"])]
    return out


def continual_datasets(params) -> list[str]:
    """The prepared datasets of the continual tasks, in the shared 32x32 RGB format (data.rgb32_name)."""
    from .data import rgb32_name

    return [rgb32_name(t) for t in params.get("continual", {}).get("tasks", [])]


def continual_condensed(params, run: int | None = None) -> list[dict]:
    """Condensation jobs of the DC rehearsal memory: one set per task and `condensed_sets` index, made by the
    condense rule like any other synthetic set (the plan's settings at IPC = memory_per_class). Every task is
    condensed but the last one, whose memory no later stage uses. With `run`, the sets that run uses, in task
    order: run r uses set r mod condensed_sets."""
    c = params.get("continual")
    if not c or "DC" not in c["memories"]:
        return []
    n_sets = c.get("condensed_sets", c["runs"])
    sets = range(n_sets) if run is None else [run % n_sets]
    ipc = c.get("memory_per_class", 10)
    return [dict(dataset=d, ipc=ipc, method="DC", set=s) for d in continual_datasets(params)[:-1] for s in sets]


def prepared_datasets(params) -> list[str]:
    """Every dataset the prepare_data rule makes for this plan: those of the experiment, its studies, the whole-set
    and optimal-random stages, the continual tasks and the NAS dataset (whose search split nas_split makes from
    it). data.missing_datasets checks their source files before any work."""
    from .nas import search_dataset

    jobs = plan(params) + continual_condensed(params) + nas_proxy_jobs(params) + cross_plan(params)
    names = {j["dataset"] for j in jobs + wholeset_jobs(params) + optimal_random_jobs(params)}
    names |= set(continual_datasets(params))
    if params.get("nas"):
        names.discard(search_dataset(params["nas"]["dataset"]))
        names.add(params["nas"]["dataset"])
    return sorted(names)


def continual_results(params) -> list[str]:
    c = params.get("continual")
    return [CONTINUAL.format(run=r) for r in range(c["runs"])] if c else []
# Neural architecture search (DC section 3.2): proxy results per shard, whole-training-set ground truth.
NAS_SHARD = "data/nas/{dataset}/shard{shard}.json"
NAS_GROUND_TRUTH = "data/nas/{dataset}/ground_truth{shard}.json"


def nas_proxy_jobs(params) -> list[dict]:
    """The coreset / condensed sets NAS trains on: built by the ordinary stages from the search split (the
    prepared variant without the validation images), set 0 at nas.ipc."""
    from .nas import EARLY_STOPPING, search_dataset

    nas = params.get("nas")
    if not nas:
        return []
    return [dict(dataset=search_dataset(nas["dataset"]), ipc=nas["ipc"], method=p, set=0)
            for p in nas["proxies"] if p != EARLY_STOPPING]


def nas_outputs(params) -> list[str]:
    """Every NAS result file (the report's inputs)."""
    nas = params.get("nas")
    if not nas:
        return []
    return ([NAS_SHARD.format(dataset=nas["dataset"], shard=k) for k in range(nas["shards"])]
            + [NAS_GROUND_TRUTH.format(dataset=nas["dataset"], shard=g) for g in range(nas["ground_truth_shards"])])
def cross_cells(params) -> list[dict]:
    """(study, dataset, ipc, model, method) of every condensation of the cross studies: one per condensation
    model, named "<prefix>-<model>" (prefixes: config.CROSS_STUDIES)."""
    from .config import CROSS_STUDIES

    return [dict(study=study, dataset=d, ipc=i, model=m, method=f"{CROSS_STUDIES[study]}-{m}")
            for study, spec in params.get("studies", {}).items() if study in CROSS_STUDIES
            for d in spec["datasets"] for i in spec["ipcs"] for m in spec["models"]]


def cross_plan(params) -> list[dict]:
    """Every evaluation of the cross studies: each set of each cell trained on each evaluation model once,
    (dataset, ipc, method, set, model) with model the evaluation network (EVAL_ON), plus study and
    condense_model for the report."""
    spec = params.get("studies", {})
    return [dict(dataset=c["dataset"], ipc=c["ipc"], method=c["method"], set=s, model=e, study=c["study"],
                 condense_model=c["model"])
            for c in cross_cells(params) for s in range(params["experiment"]["sets"])
            for e in spec[c["study"]]["eval_models"]]
