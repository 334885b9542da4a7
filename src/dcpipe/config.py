"""params.yaml: load, validate (schema + names + budgets) and turn into the library's config objects.

Validation runs before any job starts (the Snakefile and `dcpipe check-params` call `load_params`), so a typo
fails in a second with the key and the file named, not three hours into a run.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from .condense import LOOPS, CondenseConfig
from .data import DATASETS
from .matching import DISTANCES
from .models import is_model_name, MODEL_NAMES
from .train import TrainConfig

METHODS = ("DC", "random")  # synthetic-set methods first, then coreset methods


class ParamsError(ValueError):
    pass


def _schema() -> dict:
    return yaml.safe_load(resources.files("dcpipe").joinpath("params.schema.yaml").read_text())


def load_params(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: parameter file not found")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from e
    validate_params(params, str(path))
    return params


IPC_MAPS = (("condense", "iterations"), ("condense", "loops"), ("evaluate", "epochs"), ("evaluate", "epochs_augmented"))


def _normalise(params):
    """YAML reads `{1: 100}` with integer keys; the schema (JSON) and lookups use strings."""
    for section, key in IPC_MAPS:
        table = params.get(section, {}) if isinstance(params.get(section), dict) else {}
        if isinstance(table.get(key), dict):
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
    check_name("condense.distance", cond.get("distance", "ours"), DISTANCES)
    for ipc in exp["ipcs"]:
        if str(ipc) not in cond["loops"]:
            problems.append(f"  condense.loops: IPC {ipc} has no outer/inner loop schedule (paper: "
                            f"{', '.join(f'{k}: {list(v)}' for k, v in LOOPS.items())})")
        for key, table in (("condense.iterations", cond["iterations"]), ("evaluate.epochs", ev["epochs"])):
            if str(ipc) not in table:
                problems.append(f"  {key}: no entry for IPC {ipc}")
        if ev.get("augment_datasets") and str(ipc) not in ev.get("epochs_augmented", {}):
            problems.append(f"  evaluate.epochs_augmented: no entry for IPC {ipc}")
    subset = params["data"].get("train_subset")
    if subset and max(exp["ipcs"]) > subset:
        problems.append(f"  data.train_subset: {subset} images per class cannot hold IPC {max(exp['ipcs'])}")
    if problems:
        raise ParamsError(f"{where}: invalid parameters:\n" + "\n".join(problems))


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
              method: str | None = None) -> None:
    """A stage's command-line names must be ones the parameter file plans: only those were validated (loop
    schedule, iterations, epochs, budget). The Snakefile and dvc.yaml only generate such jobs; this catches a
    hand-run stage with a typo before it reads any data."""
    e, problems = params["experiment"], []
    if dataset is not None and dataset not in e["datasets"]:
        problems.append(f"  --dataset {dataset!r}: not in experiment.datasets ({', '.join(e['datasets'])})")
    if ipc is not None and ipc not in e["ipcs"]:
        problems.append(f"  --ipc {ipc}: not in experiment.ipcs ({', '.join(map(str, e['ipcs']))})")
    if method is not None and method not in methods(params):
        problems.append(f"  --method {method!r}: not in experiment.methods ({', '.join(methods(params))})")
    if problems:
        raise ParamsError(f"{where}: this job is not part of the experiment:\n" + "\n".join(problems))


def methods(params) -> list[str]:
    return list(params["experiment"].get("methods", METHODS))


def condense_config(params, ipc: int) -> CondenseConfig:
    c = params["condense"]
    keys = {k: v for k, v in c.items() if k not in ("iterations", "loops")}
    outer, inner = c["loops"][str(ipc)]
    return CondenseConfig(ipc=ipc, iterations=c["iterations"][str(ipc)], outer_loop=outer, inner_loop=inner, **keys)


def train_config(params, dataset: str, ipc: int) -> TrainConfig:
    e = params["evaluate"]
    aug = dataset in e.get("augment_datasets", [])
    epochs = (e["epochs_augmented"] if aug else e["epochs"])[str(ipc)]
    keys = {k: e[k] for k in ("lr", "momentum", "weight_decay", "batch", "test_batch") if k in e}
    return TrainConfig(epochs=epochs, augment=aug, **keys)
