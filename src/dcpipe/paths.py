"""Artifact locations: one place, used by the Snakefile, the report and the tests."""

PREPARED = "data/prepared/{dataset}.npz"
CORESET = "data/coreset/{dataset}/ipc{ipc}/{method}_set{set}.npz"
SYNTHETIC = "data/synthetic/{dataset}/ipc{ipc}/{method}_set{set}.npz"
LOSS = "data/synthetic/{dataset}/ipc{ipc}/{method}_set{set}_loss.csv"
EVAL = "data/eval/{dataset}/ipc{ipc}/{method}_set{set}.json"
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
    from .config import STUDIES

    cells = []
    for study, spec in params.get("studies", {}).items():
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
