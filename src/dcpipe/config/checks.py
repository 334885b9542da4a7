"""What the schema cannot say about a parameter file: names, budgets per IPC, sizes that must agree. Each check
is one small function of the (schema-valid) parameters returning its problems, one line each; load.validate_params
runs every one of CHECKS, in order, and reports all their problems together."""

from __future__ import annotations

import math
from pathlib import Path

from ..condense_config import LEVELS, LOOPS, VARIANTS, CondenseConfig
from ..datasets import DATASETS, dataset_spec, rgb32_name
from ..errors import DataError
from ..distances import DISTANCES, is_distance
from ..methods import CROSS_STUDIES, MAIN, parse
from ..registry import plugins
from ..model_names import MODEL_NAMES, has_features, is_model_name
from ..nas_space import EARLY_STOPPING, subspace
from ..score_config import ZCA_REFUSED, ScoreConfig
from ..sources import SOURCES
from .sections import CONDENSE, Coresets, Experiment
from .settings import augment_datasets, continual_config, dsa_methods, ipc_sweep_methods, methods, nas_widths


def _unknown(key, value, valid, ok=None) -> list[str]:
    if ok(value) if ok else value in valid:
        return []
    return [f"  {key}: unknown name {value!r}; valid: {', '.join(valid)}"]


def _each(key, values, valid, ok=None) -> list[str]:
    return [line for i, v in enumerate(values) for line in _unknown(f"{key}[{i}]", v, valid, ok)]


def _missing_ipcs(key, table, ipcs, why="") -> list[str]:
    return [f"  {key}: no entry for IPC {i}{why}" for i in ipcs if str(i) not in table]


def all_ipcs(params) -> set[int]:
    """Every IPC some set is condensed or selected at: the experiment's, its studies' and the IPC sweep's."""
    return set(params["experiment"]["ipcs"]).union(*(s["ipcs"] for s in params.get("studies", {}).values()),
                                                   params.get("ipc_sweep", {}).get("ipcs", []))


def names(params) -> list[str]:
    exp, cond, ev = params["experiment"], params["condense"], params["evaluate"]
    problems = (_each("experiment.datasets", exp["datasets"], DATASETS) + _each("experiment.methods", methods(params), MAIN + tuple(plugins()))
                + _each("evaluate.augment_datasets", augment_datasets(params), DATASETS)
                + _unknown("condense.model", cond.get("model", CONDENSE.model), MODEL_NAMES, is_model_name)
                + _unknown("evaluate.model", ev["model"], MODEL_NAMES, is_model_name)
                + _unknown("condense.distance", cond.get("distance", CondenseConfig.distance), DISTANCES, is_distance))
    problems += [line for d in params["data"].get("urls", {}) for line in _unknown("data.urls", d, SOURCES)]
    sweep = params.get("ipc_sweep", {})
    problems += (_each("ipc_sweep.datasets", sweep.get("datasets", []), DATASETS)
                 + _each("ipc_sweep.methods", ipc_sweep_methods(params), MAIN + tuple(plugins())))
    for d, by_ipc in cond.get("variant_distance", {}).items():
        problems += _unknown("condense.variant_distance", d, DATASETS)
        problems += [line for i, dist in by_ipc.items()
                     for line in _unknown(f"condense.variant_distance.{d}.{i}", dist, DISTANCES, is_distance)]
    init = cond.get("init", CondenseConfig.init)
    for key, value in (init.items() if isinstance(init, dict) else [(None, init)]):
        if value not in ("noise", "real"):
            problems.append(f"  condense.init{'' if key is None else '.' + key}: {value!r} is not one of noise, real")
    return problems


def cross_studies(params) -> list[str]:
    problems = []
    for study, spec in params.get("studies", {}).items():
        if study not in CROSS_STUDIES:
            continue
        problems += _each(f"studies.{study}.datasets", spec["datasets"], DATASETS)
        for key in ("models", "eval_models"):
            problems += _each(f"studies.{study}.{key}", spec[key], MODEL_NAMES, is_model_name)
        for key in ("iterations", "epochs"):
            if key in spec:
                problems += _missing_ipcs(f"studies.{study}.{key}", spec[key], spec["ipcs"])
    return problems


def ablation_studies(params) -> list[str]:
    problems = []
    valid = {"levels": (LEVELS, None), "variants": (VARIANTS, None)}
    for study, spec in params.get("studies", {}).items():
        if study in CROSS_STUDIES:
            continue
        problems += _each(f"studies.{study}.datasets", spec["datasets"], DATASETS)
        if study not in ("variants", "resources"):  # variants' values are checked last, as the whole list of
            # named variants; resources (T15) has no values, one cell per model
            problems += _each(f"studies.{study}.values", spec["values"], *valid.get(study, (DISTANCES, is_distance)))
        problems += _each(f"studies.{study}.models", spec.get("models", []), MODEL_NAMES, is_model_name)
        if "iterations" in spec:
            problems += _missing_ipcs(f"studies.{study}.iterations", spec["iterations"], spec["ipcs"])
        if study == "variants":
            problems += _each("studies.variants.values", spec["values"], VARIANTS)
        if study in ("traditional", "resources") and not spec.get("models"):
            problems.append(f"  studies.{study}.models: list the architectures (DC Table {'T11' if study == 'traditional' else 'T15'})")
    return problems


def budgets_per_ipc(params) -> list[str]:
    """Every IPC has an outer/inner loop schedule, iterations, epochs (and the tables that are per IPC)."""
    cond, ev, problems = params["condense"], params["evaluate"], []
    for ipc in sorted(all_ipcs(params)):
        if str(ipc) not in cond["loops"]:
            problems.append(f"  condense.loops: IPC {ipc} has no outer/inner loop schedule (paper: "
                            f"{', '.join(f'{k}: {list(v)}' for k, v in LOOPS.items())})")
        tables = [("condense.iterations", cond["iterations"]), ("evaluate.epochs", ev["epochs"])]
        if isinstance(cond.get("init"), dict):
            tables.append(("condense.init", cond["init"]))
        for key, table in tables:
            problems += _missing_ipcs(key, table, [ipc])
        if augment_datasets(params):
            problems += _missing_ipcs("evaluate.epochs_augmented", ev.get("epochs_augmented", {}), [ipc])
        if dsa_methods(params):
            problems += _missing_ipcs("evaluate.epochs_dsa", ev.get("epochs_dsa", {}), [ipc])
    return problems


def successors(params) -> list[str]:
    """condense.method_iterations and evaluate.dsa_methods name synthetic methods, with a K for every IPC."""
    problems = []
    synthetic = [m for m in MAIN if parse(m).synthetic]
    for method, table in params["condense"].get("method_iterations", {}).items():
        problems += _unknown("condense.method_iterations", method, synthetic)
        problems += _missing_ipcs(f"condense.method_iterations.{method}", table, sorted(all_ipcs(params)))
    problems += _each("evaluate.dsa_methods", dsa_methods(params), synthetic)
    return problems


def nas(params) -> list[str]:
    """Names and sizes of the nas section (DC section 3.2)."""
    if "nas" not in params:
        return []
    nas, cond, problems = params["nas"], params["condense"], []
    problems += _unknown("nas.dataset", nas["dataset"], DATASETS)
    proxies = MAIN + (EARLY_STOPPING,)
    for i, p in enumerate(nas["proxies"]):
        problems += _unknown(f"nas.proxies[{i}]", p, proxies)
        if p in VARIANTS:
            for key in ("iterations", "loops"):
                problems += _missing_ipcs(f"condense.{key}", cond[key], [nas["ipc"]], f" (nas.ipc, proxy {p})")
    try:
        space = subspace(nas_widths(params))
    except ValueError as e:
        return problems + [f"  nas.widths: {e}"]
    size = math.prod(len(v) for v in space.values())
    n = size if nas["architectures"] == "all" else nas["architectures"]
    if n > size:
        problems.append(f"  nas.architectures: {n} is more than the {size} architectures of widths {list(space['width'])}")
    if nas["shards"] > n:
        problems.append(f"  nas.shards: {nas['shards']} shards for {n} architectures would leave some empty")
    if nas["best_repeats"] < nas["whole_repeats"]:
        problems.append("  nas.best_repeats: must be at least nas.whole_repeats")
    return problems


def coresets(params) -> list[str]:
    problems, spec = [], params.get("coresets", {})
    needs_wholeset = sorted(m for m in (set(methods(params)) | set(ipc_sweep_methods(params))) & set(MAIN)
                            if parse(m).evidence)
    if needs_wholeset and "coresets" not in params:
        problems.append(f"  coresets: methods {', '.join(needs_wholeset)} select from a model trained on the whole "
                        "set; add a coresets section (whole_epochs, whole_models)")
    n, sets = spec.get("whole_models", Coresets.whole_models), params["experiment"].get("sets", Experiment.sets)
    if needs_wholeset and 1 < n < sets:
        problems.append(f"  coresets.whole_models: {n} networks for {sets} sets; set k selects from whole-set network "
                        f"k, so give 1 (every set from network 0) or at least {sets}")
    if "forgetting" in methods(params) and spec.get("whole_epochs", 2) < 2:
        problems.append("  coresets.whole_epochs: forgetting events need at least 2 epochs (presentations)")
    optimal = spec.get("optimal_random", {})
    problems += _each("coresets.optimal_random.datasets", optimal.get("datasets", []), DATASETS)
    problems += [f"  coresets.optimal_random.ipcs: evaluate.epochs has no entry for IPC {i}"
                 for i in optimal.get("ipcs", []) if str(i) not in params["evaluate"]["epochs"]]
    return problems


def train_subset(params) -> list[str]:
    subset, ipc = params["data"].get("train_subset"), max(all_ipcs(params))
    if subset and ipc > subset:
        return [f"  data.train_subset: {subset} images per class cannot hold IPC {ipc}"]
    return []


def _larger_than_a_class(key: str, dataset: str, ipc: int, held_out: int = 0) -> list[str]:
    """IPC `ipc` of `dataset` against its smallest class (DatasetSpec.train_class_counts); `held_out` training
    images removed at random first (the NAS search split), which leave about that share of each class."""
    if dataset not in DATASETS or not dataset_spec(dataset).train_class_counts:
        return []
    spec = dataset_spec(dataset)
    label, n = spec.smallest_class()
    where = ""
    if held_out:
        n = n * max(0, sum(spec.train_class_counts) - held_out) // sum(spec.train_class_counts)
        where = f" (about, once nas.validation holds {held_out} images out)"
    if ipc <= n:
        return []
    return [f"  {key}: IPC {ipc} is more than {dataset}'s smallest class holds: {n} training images{where} in class "
            f"{label}; use at most {n} images per class"]


def class_sizes(params) -> list[str]:
    """Every set draws IPC images per class from the training split (with data.train_subset null, all of it): an
    IPC larger than the dataset's smallest class cannot be selected or condensed."""
    if params["data"].get("train_subset"):
        return []  # train_subset's own check bounds the IPC
    exp, problems = params["experiment"], []
    wanted = [("experiment.ipcs", d, i) for d in exp["datasets"] for i in exp["ipcs"]]
    for study, spec in params.get("studies", {}).items():
        wanted += [(f"studies.{study}.ipcs", d, i) for d in spec.get("datasets", []) for i in spec.get("ipcs", [])]
    sweep = params.get("ipc_sweep", {})
    wanted += [("ipc_sweep.ipcs", d, i) for d in sweep.get("datasets", []) for i in sweep.get("ipcs", [])]
    optimal = params.get("coresets", {}).get("optimal_random", {})
    wanted += [("coresets.optimal_random.ipcs", d, i) for d in optimal.get("datasets", []) for i in optimal.get("ipcs", [])]
    if params.get("continual"):  # each earlier task's memory: memory_per_class images of each of its classes
        memory = continual_config(params)[0].memory_per_class
        wanted += [("continual.memory_per_class", t, memory) for t in params["continual"]["tasks"][:-1]]
    seen = set()
    for key, dataset, ipc in wanted:
        if (key, dataset, ipc) not in seen:
            seen.add((key, dataset, ipc))
            problems += _larger_than_a_class(key, dataset, ipc)
    if "nas" in params:
        nas = params["nas"]
        problems += _larger_than_a_class("nas.ipc", nas["dataset"], nas["ipc"], nas.get("validation", 0))
    return problems


def continual(params) -> list[str]:
    """Names and budgets of the continual section (DC paper section 3.2)."""
    c = params.get("continual")
    if not c:
        return []
    problems = []
    for i, t in enumerate(c["tasks"]):
        if t not in DATASETS:
            problems += _unknown(f"continual.tasks[{i}]", t, DATASETS)
            continue
        try:
            rgb32_name(t)
        except DataError as e:
            problems.append(f"  continual.tasks[{i}]: {e}")
    classes = {dataset_spec(t).num_classes for t in c["tasks"] if t in DATASETS}
    if len(classes) > 1:
        problems.append(f"  continual.tasks: the tasks must share one label space, got {sorted(classes)} classes")
    cfg, _ = continual_config(params)
    if not is_model_name(cfg.model):
        problems += _unknown("continual.model", cfg.model, MODEL_NAMES)
    elif not has_features(cfg.model):
        problems.append(f"  continual.model: {cfg.model} has no `features` block for herding; use a ConvNet, LeNet, "
                        f"AlexNet or VGG11")
    ipc = cfg.memory_per_class
    if "DC" in c["memories"]:  # the DC memory is condensed with the condense section's settings at this IPC
        cond = params["condense"]
        for key in ("loops", "iterations") + (("init",) if isinstance(cond.get("init"), dict) else ()):
            problems += _missing_ipcs(f"condense.{key}", cond[key], [ipc], " (continual.memory_per_class, DC memory)")
    subset = params["data"].get("train_subset")
    if subset and ipc > subset:
        problems.append(f"  data.train_subset: {subset} images per class cannot hold a memory of {ipc} per class")
    return problems


def score(params) -> list[str]:
    """The score section's model, datasets and file names (one job each: names must differ), and no ZCA."""
    s = params.get("score")
    if not s:
        return []
    problems = _unknown("score.model", s.get("model", ScoreConfig.model), MODEL_NAMES, is_model_name)
    files = s.get("files", [])
    problems += _each("score.files[].dataset", [f["dataset"] for f in files], DATASETS)
    names = [f["name"] for f in files]
    problems += [f"  score.files: name {n!r} is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    problems += [f"  score.files[{i}].pixels: zca: {ZCA_REFUSED}"
                 for i, f in enumerate(files) if f.get("pixels") == "zca"]
    return problems


def plugin_files(params) -> list[str]:
    """A `kind: file` plug-in's sets exist for every cell it is planned in (experiment, IPC sweep), before any work."""
    exp, sweep = params["experiment"], params.get("ipc_sweep", {})
    cells = [(d, i, m) for d in exp["datasets"] for i in exp["ipcs"] for m in methods(params)]
    cells += [(d, i, m) for d in sweep.get("datasets", []) for i in sweep.get("ipcs", []) for m in ipc_sweep_methods(params)]
    problems = []
    for d, i, m in dict.fromkeys(cells):
        e = plugins().get(m)
        if e and e.kind == "file":
            sets = range(exp.get("sets", Experiment.sets)) if "{set}" in e.template else [0]
            missing = [e.file_for(d, i, k) for k in sets if not Path(e.file_for(d, i, k)).exists()]
            if missing:
                problems.append(f"  plugins.{m}: template {e.template} matches no file for {d} at IPC {i} "
                                f"({', '.join(missing[:2])}{', ...' if len(missing) > 2 else ''}); put the set there "
                                f"or fix the template")
    return problems


CHECKS = (names, plugin_files, cross_studies, ablation_studies, budgets_per_ipc, successors, score, nas, coresets, train_subset,
          class_sizes, continual)
