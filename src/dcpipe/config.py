"""params.yaml: load, validate (schema + names + budgets) and turn into the library's config objects.

Validation runs before any job starts (the Snakefile and `dcpipe check-params` call `load_params`), so a typo
fails in a second with the key and the file named, not three hours into a run.
"""

from __future__ import annotations

import math
import re
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from .condense import LEVELS, LOOPS, VARIANTS, CondenseConfig
from .data import DATASETS
from .matching import DISTANCES, is_distance
from .models import MODEL_NAMES, evaluation_model, is_model_name
from .paths import CORESET_METHODS, EVIDENCE_FILE
from .train import TrainConfig
METHODS = tuple(VARIANTS) + CORESET_METHODS  # synthetic-set variants (DC, M, MD, MDO, MDA), then coresets
# Ablation studies: each value becomes a condensation method named "<prefix>-<value>[-<model>]".
STUDIES = {"levels": "L", "distances": "D", "traditional": "T", "variants": "V"}
# Cross studies (DC Table 2 and appendix T6-T10): condense with each of `models`, train each of `eval_models` on
# every set. Cells are named "<prefix>-<condensation model>"; each set has one evaluation per evaluation model.
CROSS_STUDIES = {"crossarch": "X", "activation": "XA", "pooling": "XP", "normalization": "XN", "depth": "XD",
                 "width": "XW"}
STUDIES.update(CROSS_STUDIES)


class ParamsError(ValueError):
    pass


def _schema() -> dict:
    return yaml.safe_load(resources.files("dcpipe").joinpath("params.schema.yaml").read_text())


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key, line: int, first_line: int):
        super().__init__(f"duplicate key {key!r} at line {line} (first at line {first_line}); keep one of them")


class ParamsLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader with two YAML 1.2 behaviours a parameter file needs:

    - a key given twice in one mapping is an error (PyYAML keeps the last value, so a pasted-in second
      `lr_img:` would silently override the first);
    - `1e-3` is a float: YAML 1.1's float pattern requires a dot, so PyYAML reads it as the string '1e-3',
      which the schema then rejects as "not of type 'number'".
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *defaults` is meant to be overridden by the keys beside it
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:
                    continue  # an unhashable key: SafeLoader's own error says so
                if seen != key_node.start_mark.line + 1:
                    raise DuplicateKeyError(key, key_node.start_mark.line + 1, seen)
        return super().construct_mapping(node, deep)


# YAML 1.2's float pattern (the dot optional when there is an exponent), the one PyYAML lacks.
ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def read_yaml(text: str):
    """Parse a parameter file's text (every loader of parameters goes through here)."""
    return yaml.load(text, Loader=ParamsLoader)  # noqa: S506 (a SafeLoader subclass)


def load_params(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: parameter file not found")
    try:
        params = read_yaml(path.read_text())
    except DuplicateKeyError as e:
        raise ParamsError(f"{path}: {e}") from e
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from e
    validate_params(params, str(path))
    return params


IPC_MAPS = (("condense", "iterations"), ("condense", "loops"), ("condense", "init"), ("evaluate", "epochs"),
            ("evaluate", "epochs_augmented"))


def _normalise(params):
    """YAML reads `{1: 100}` with integer keys; the schema (JSON) and lookups use strings."""
    tables = [params.get(section) for section, _ in IPC_MAPS]
    studies = params.get("studies")
    tables += list(studies.values()) if isinstance(studies, dict) else []
    for table in tables:
        for key in ("iterations", "loops", "init", "epochs", "epochs_augmented"):
            if isinstance(table, dict) and isinstance(table.get(key), dict):
                table[key] = {str(k): v for k, v in table[key].items()}


def validate_params(params, where: str = "params") -> None:
    if not isinstance(params, dict):
        raise ParamsError(f"{where}: expected a mapping of sections, got {type(params).__name__}")
    _normalise(params)
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(params), key=lambda e: list(e.path))
    # JSON Schema bounds are comparisons, and every comparison with nan is false: `lr_img: .nan` passes
    # `exclusiveMinimum: 0` (and `.inf` passes it too). No parameter may be non-finite.
    non_finite = [f"  {key}: {value!r} is not a finite number" for key, value in _non_finite(params)]
    if errors or non_finite:
        lines = []
        for e in errors:
            key = ".".join(map(str, e.absolute_path)) or "(top level)"
            msg = e.message
            if e.validator == "additionalProperties":
                allowed = sorted(e.schema.get("properties", {}))
                msg += f" (valid keys: {', '.join(allowed)})"
            lines.append(f"  {key}: {msg}")
        lines += non_finite
        raise ParamsError(f"{where}: invalid parameters:\n" + "\n".join(lines))
    problems = []

    def check_name(key, value, valid, ok=None):
        if not (ok(value) if ok else value in valid):
            problems.append(f"  {key}: unknown name {value!r}; valid: {', '.join(valid)}")

    exp, cond, ev = params["experiment"], params["condense"], params["evaluate"]
    for i, d in enumerate(exp["datasets"]):
        check_name(f"experiment.datasets[{i}]", d, DATASETS)
    for i, m in enumerate(exp.get("methods", METHODS)):
        check_name(f"experiment.methods[{i}]", m, METHODS)
    for i, d in enumerate(ev.get("augment_datasets", [])):
        check_name(f"evaluate.augment_datasets[{i}]", d, DATASETS)
    check_name("condense.model", cond["model"], MODEL_NAMES, is_model_name)
    check_name("evaluate.model", ev["model"], MODEL_NAMES, is_model_name)
    check_name("condense.distance", cond.get("distance", "ours"), DISTANCES, is_distance)
    init = cond.get("init", "noise")
    for key, value in (init.items() if isinstance(init, dict) else [(None, init)]):
        if value not in ("noise", "real"):
            problems.append(f"  condense.init{'' if key is None else '.' + key}: {value!r} is not one of noise, real")
    all_ipcs = set(exp["ipcs"])
    for study, spec in params.get("studies", {}).items():
        if study in CROSS_STUDIES:
            all_ipcs |= set(spec["ipcs"])
            problems += _cross_study_problems(study, spec)
            continue
        for i, d in enumerate(spec["datasets"]):
            check_name(f"studies.{study}.datasets[{i}]", d, DATASETS)
        all_ipcs |= set(spec["ipcs"])
        for i, v in enumerate(spec["values"]):
            if study == "levels":
                check_name(f"studies.levels.values[{i}]", v, LEVELS)
            elif study == "variants":
                pass  # checked below
            else:
                check_name(f"studies.{study}.values[{i}]", v, DISTANCES, is_distance)
        for i, m in enumerate(spec.get("models", [])):
            check_name(f"studies.{study}.models[{i}]", m, MODEL_NAMES, is_model_name)
        for key in ("iterations",):
            for i in spec["ipcs"]:
                if key in spec and str(i) not in spec[key]:
                    problems.append(f"  studies.{study}.{key}: no entry for IPC {i}")
        if study == "variants":
            for i, v in enumerate(spec["values"]):
                check_name(f"studies.variants.values[{i}]", v, VARIANTS)
        if study == "traditional" and not spec.get("models"):
            problems.append("  studies.traditional.models: list the architectures (DC Table T11)")
    for ipc in sorted(all_ipcs):
        if str(ipc) not in cond["loops"]:
            problems.append(f"  condense.loops: IPC {ipc} has no outer/inner loop schedule (paper: "
                            f"{', '.join(f'{k}: {list(v)}' for k, v in LOOPS.items())})")
        tables = [("condense.iterations", cond["iterations"]), ("evaluate.epochs", ev["epochs"])]
        if isinstance(cond.get("init"), dict):
            tables.append(("condense.init", cond["init"]))
        for key, table in tables:
            if str(ipc) not in table:
                problems.append(f"  {key}: no entry for IPC {ipc}")
        if ev.get("augment_datasets") and str(ipc) not in ev.get("epochs_augmented", {}):
            problems.append(f"  evaluate.epochs_augmented: no entry for IPC {ipc}")
    if "nas" in params:
        problems += nas_problems(params)
    needs_wholeset = sorted(set(exp.get("methods", METHODS)) & set(EVIDENCE_FILE))
    if needs_wholeset and "coresets" not in params:
        problems.append(f"  coresets: methods {', '.join(needs_wholeset)} select from a model trained on the whole "
                        "set; add a coresets section (whole_epochs, whole_models)")
    if "forgetting" in exp.get("methods", METHODS) and params.get("coresets", {}).get("whole_epochs", 2) < 2:
        problems.append("  coresets.whole_epochs: forgetting events need at least 2 epochs (presentations)")
    for i, d in enumerate(params.get("coresets", {}).get("optimal_random", {}).get("datasets", [])):
        check_name(f"coresets.optimal_random.datasets[{i}]", d, DATASETS)
    for ipc in params.get("coresets", {}).get("optimal_random", {}).get("ipcs", []):
        if str(ipc) not in ev["epochs"]:
            problems.append(f"  coresets.optimal_random.ipcs: evaluate.epochs has no entry for IPC {ipc}")
    subset = params["data"].get("train_subset")
    if subset and max(all_ipcs) > subset:
        problems.append(f"  data.train_subset: {subset} images per class cannot hold IPC {max(all_ipcs)}")
    problems += _continual_problems(params)
    if problems:
        raise ParamsError(f"{where}: invalid parameters:\n" + "\n".join(problems))


def _continual_problems(params) -> list[str]:
    """Names and budgets of the continual section (DC paper section 3.2)."""
    from .data import DataError, dataset_spec, rgb32_name
    from .models import build_model

    c = params.get("continual")
    if not c:
        return []
    problems = []
    for i, t in enumerate(c["tasks"]):
        if t not in DATASETS:
            problems.append(f"  continual.tasks[{i}]: unknown name {t!r}; valid: {', '.join(DATASETS)}")
            continue
        try:
            rgb32_name(t)
        except DataError as e:
            problems.append(f"  continual.tasks[{i}]: {e}")
    classes = {dataset_spec(t).num_classes for t in c["tasks"] if t in DATASETS}
    if len(classes) > 1:
        problems.append(f"  continual.tasks: the tasks must share one label space, got {sorted(classes)} classes")
    model = c.get("model", "ConvNet")
    if not is_model_name(model):
        problems.append(f"  continual.model: unknown name {model!r}; valid: {', '.join(MODEL_NAMES)}")
    elif not hasattr(build_model(model, 3, 10, (32, 32)), "features"):
        problems.append(f"  continual.model: {model} has no `features` block for herding; use a ConvNet, LeNet, "
                        f"AlexNet or VGG11")
    ipc = c.get("memory_per_class", 10)
    if "DC" in c["memories"]:  # the DC memory is condensed with the condense section's settings at this IPC
        cond = params["condense"]
        for key, table in (("loops", cond["loops"]), ("iterations", cond["iterations"])) + (
                (("init", cond["init"]),) if isinstance(cond.get("init"), dict) else ()):
            if str(ipc) not in table:
                problems.append(f"  condense.{key}: no entry for IPC {ipc} (continual.memory_per_class, DC memory)")
    subset = params["data"].get("train_subset")
    if subset and ipc > subset:
        problems.append(f"  data.train_subset: {subset} images per class cannot hold a memory of {ipc} per class")
    return problems


def continual_config(params):
    """The ContinualConfig and the settings ({herding, DC} x {with, without distillation}) of the parameters."""
    from .continual import ContinualConfig, Setting

    c = params["continual"]
    keys = {k: c[k] for k in ContinualConfig.__dataclass_fields__ if k in c}
    settings = [Setting(m, kd) for kd in c["distillation"] for m in c["memories"]]
    return ContinualConfig(**keys), settings


def nas_problems(params) -> list[str]:
    """Names and sizes of the nas section (DC section 3.2) that the schema cannot check."""
    from .nas import EARLY_STOPPING, WIDTHS, subspace

    nas, cond, problems = params["nas"], params["condense"], []
    if nas["dataset"] not in DATASETS:
        problems.append(f"  nas.dataset: unknown name {nas['dataset']!r}; valid: {', '.join(DATASETS)}")
    for i, p in enumerate(nas["proxies"]):
        if p not in METHODS + (EARLY_STOPPING,):
            problems.append(f"  nas.proxies[{i}]: unknown name {p!r}; valid: {', '.join(METHODS + (EARLY_STOPPING,))}")
        elif p in VARIANTS:
            for key in ("iterations", "loops"):
                if str(nas["ipc"]) not in cond[key]:
                    problems.append(f"  condense.{key}: no entry for IPC {nas['ipc']} (nas.ipc, proxy {p})")
    try:
        space = subspace(nas.get("widths", WIDTHS))
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


def _cross_study_problems(study: str, spec: dict) -> list[str]:
    problems = []
    for key, valid in (("datasets", DATASETS), ("models", MODEL_NAMES), ("eval_models", MODEL_NAMES)):
        for i, name in enumerate(spec[key]):
            ok = name in valid if key == "datasets" else is_model_name(name)
            if not ok:
                problems.append(f"  studies.{study}.{key}[{i}]: unknown name {name!r}; valid: {', '.join(valid)}")
    for key in ("iterations", "epochs"):
        for i in spec["ipcs"]:
            if key in spec and str(i) not in spec[key]:
                problems.append(f"  studies.{study}.{key}: no entry for IPC {i}")
    return problems


def _non_finite(node, path=()):
    if isinstance(node, float) and not math.isfinite(node):
        yield ".".join(map(str, path)) or "(top level)", node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _non_finite(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _non_finite(v, (*path, i))


def check_job(params, where: str = "params", dataset: str | None = None, ipc: int | None = None,
              method: str | None = None, model: str | None = None) -> None:
    """A stage's command-line names must be ones the parameter file plans: only those were validated (loop
    schedule, iterations, epochs, budget). The Snakefile and dvc.yaml only generate such jobs; this catches a
    hand-run stage with a typo before it reads any data."""
    from .paths import continual_condensed, continual_datasets, cross_plan, nas_proxy_jobs, plan

    jobs = {(j["dataset"], j["ipc"], j["method"])
            for j in plan(params) + continual_condensed(params) + nas_proxy_jobs(params) + cross_plan(params)}
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
    if problems:
        raise ParamsError(f"{where}: this job is not part of the experiment:\n" + "\n".join(problems))


def methods(params) -> list[str]:
    return list(params["experiment"].get("methods", METHODS))


def method_settings(method: str) -> dict:
    """CondenseConfig overrides of a synthetic-set method: a named variant (DC, M, MD, MDO, MDA) or a study cell
    "L-<level>" (follow-up Table 1), "D-<distance>" (its Table 2, multi-level), "T-<distance>-<model>" (DC T11)."""
    if method in VARIANTS:
        return dict(VARIANTS[method])
    kind, _, rest = method.partition("-")
    if kind == "V" and rest in VARIANTS:
        return dict(VARIANTS[rest])
    if kind == "L" and rest in LEVELS:
        return {"level": rest, "distance": "ours", "inner_steps": "fixed"}
    if kind == "D" and is_distance(rest):
        return {"level": "multilevel", "distance": rest, "inner_steps": "fixed"}
    if kind == "T":
        dist, _, model = rest.partition("-")
        if is_distance(dist) and is_model_name(model):
            out = {"level": "intra", "distance": dist, "inner_steps": "fixed", "model": model}
            if model == "MLP" and dist == "ours":
                out["lr_img"] = 0.01  # DC appendix A; T11 keeps 0.1 for MLP with the traditional distances
            return out
    if kind in CROSS_STUDIES.values() and is_model_name(rest):
        out = {"level": "intra", "distance": "ours", "inner_steps": "fixed", "model": rest}
        if rest == "MLP":
            out["lr_img"] = 0.01  # DC appendix A: "we set ηS to 0.01 for synthesizing data with MLP" (Table 2)
        return out
    raise ParamsError(f"unknown method {method!r}; valid: {', '.join(METHODS)}, L-<level>, D-<distance>, "
                      f"T-<distance>-<model>, V-<variant>, "
                      f"<{'|'.join(CROSS_STUDIES.values())}>-<model>")


def study_name(method: str) -> str | None:
    """The study a method's cell belongs to (None for the main experiment's methods)."""
    prefix = method.partition("-")[0]
    return next((s for s, p in STUDIES.items() if p == prefix), None) if method not in METHODS else None


def study_of(params, method: str) -> dict:
    """The studies-section entry a method belongs to ({} for the main experiment's methods)."""
    name = study_name(method)
    return params.get("studies", {}).get(name, {}) if name else {}


def condense_config(params, ipc: int, method: str = "DC") -> CondenseConfig:
    c = params["condense"]
    keys = {k: v for k, v in c.items() if k not in ("iterations", "loops")}
    if isinstance(keys.get("init"), dict):
        keys["init"] = keys["init"][str(ipc)]
    keys.update(method_settings(method))
    if "init" in study_of(params, method):  # a cross study on a few iterations starts from real images
        keys["init"] = study_of(params, method)["init"]
    outer, inner = c["loops"][str(ipc)]
    iterations = study_of(params, method).get("iterations", c["iterations"])[str(ipc)]
    return CondenseConfig(ipc=ipc, iterations=iterations, outer_loop=outer, inner_loop=inner, **keys)


def wholeset_config(params, dataset: str) -> TrainConfig:
    """Whole-set training: the evaluation's optimiser, batch and augmentation, with its own epoch budget."""
    return train_config(params, dataset, None, epochs=params["coresets"]["whole_epochs"])


def models_per_set(params, method: str) -> int:
    if method in EVIDENCE_FILE and "models_per_set" in params.get("coresets", {}):
        return params["coresets"]["models_per_set"]  # the CPU default's budget for herding/k-center/forgetting
    return study_of(params, method).get("models_per_set", params["evaluate"]["models_per_set"])


def evaluation_model_for(params, method: str) -> str:
    """Networks trained on a set: the evaluate model, except in T11 where sets are learned and tested on one
    architecture (DC appendix: "for simplicity")."""
    if method not in CORESET_METHODS and "model" in method_settings(method):
        return evaluation_model(method_settings(method)["model"])
    return evaluation_model(params["evaluate"]["model"])


def train_config(params, dataset: str, ipc: int | None, method: str | None = None,
                 epochs: int | None = None) -> TrainConfig:
    """The evaluation protocol for a set of `ipc` images per class, or for `epochs` epochs (the whole set); a
    cross study may set its own `epochs` (CPU budget), which then holds with and without augmentation."""
    e = params["evaluate"]
    aug = dataset in e.get("augment_datasets", [])
    epochs = epochs or (e["epochs_augmented"] if aug else e["epochs"])[str(ipc)]
    if method is not None and "epochs" in study_of(params, method):
        epochs = study_of(params, method)["epochs"][str(ipc)]
    keys = {k: e[k] for k in ("lr", "momentum", "weight_decay", "batch", "test_batch", "test_precision") if k in e}
    return TrainConfig(epochs=epochs, augment=aug, **keys)
