"""Reading a parameter file: YAML 1.2 as a parameter file needs it, then validate once (config.checks).

Validation runs before any job starts (the Snakefile and `dcpipe check-params` call `load_params`), so a typo
fails in a second with the key and the file named, not three hours into a run.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from ..errors import ParamsError
from ..registry import declare
from .checks import CHECKS


def _schema() -> dict:
    return yaml.safe_load(resources.files("dcpipe").joinpath("params.schema.yaml").read_text())


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key, at: yaml.Mark, first: yaml.Mark):
        here, there = f"line {at.line + 1}", f"line {first.line + 1}"
        if at.line == first.line:  # a flow mapping, `{threads: 1, threads: 2}`: the columns tell them apart
            here, there = f"{here}, column {at.column + 1}", f"column {first.column + 1}"
        super().__init__(f"duplicate key {key!r} at {here} (first at {there}); keep one of them")


class ParamsLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader with two YAML 1.2 behaviours a parameter file needs:

    - a key given twice in one mapping, block or flow style, is an error (PyYAML keeps the last value, so a
      pasted-in second `lr_img:` or `{1: 3, 1: 30}` would silently override the first);
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
                    seen = first.setdefault(key, key_node)
                except TypeError:
                    continue  # an unhashable key: SafeLoader's own error says so
                if seen is not key_node:
                    raise DuplicateKeyError(key, key_node.start_mark, seen.start_mark)
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


def read_yaml(text: str, name: str | None = None):
    """Parse a parameter file's text (every loader of parameters goes through here); `name`, the file's, is the
    one a syntax error gives (PyYAML's own for text is `<unicode string>`)."""
    loader = ParamsLoader(text)
    if name:
        loader.name = name
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_params(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: parameter file not found")
    try:
        params = read_yaml(path.read_text(), str(path))
    except DuplicateKeyError as e:
        raise ParamsError(f"{path}: {e}") from e
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from e
    validate_params(params, str(path))
    # A relative mirror means a folder beside the parameter file, wherever the command runs.
    params["data"]["mirrors"] = [m if Path(m).expanduser().is_absolute() else str((path.parent / m).resolve())
                                 for m in params["data"]["mirrors"]]
    return params


IPC_MAPS = (("condense", "iterations"), ("condense", "loops"), ("condense", "init"), ("evaluate", "epochs"),
            ("evaluate", "epochs_augmented"), ("evaluate", "epochs_dsa"))


def _normalise(params):
    """YAML reads `{1: 100}` with integer keys; the schema (JSON) and lookups use strings."""
    tables = [params.get(section) for section, _ in IPC_MAPS]
    studies = params.get("studies")
    tables += list(studies.values()) if isinstance(studies, dict) else []
    for table in tables:
        for key in ("iterations", "loops", "init", "epochs", "epochs_augmented", "epochs_dsa"):
            if isinstance(table, dict) and isinstance(table.get(key), dict):
                table[key] = {str(k): v for k, v in table[key].items()}
    by_dataset = (params.get("condense") or {}).get("variant_distance") if isinstance(params.get("condense"), dict) else None
    if isinstance(by_dataset, dict):  # {dataset: {ipc: distance}}
        for d, by_ipc in by_dataset.items():
            if isinstance(by_ipc, dict):
                by_dataset[d] = {str(k): v for k, v in by_ipc.items()}
    per_method = params["condense"].get("method_iterations") if isinstance(params.get("condense"), dict) else None
    for method, table in (per_method.items() if isinstance(per_method, dict) else []):
        if isinstance(table, dict):
            per_method[method] = {str(k): v for k, v in table.items()}


def validate_params(params, where: str = "params") -> None:
    """The schema (types, ranges, keys), then every named check of config.checks."""
    sections = "a mapping of sections such as seed, data, experiment"
    if params is None:
        raise ParamsError(f"{where}: empty; expected {sections}")
    if not isinstance(params, dict):
        raise ParamsError(f"{where}: expected {sections}, got a {type(params).__name__}")
    _normalise(params)
    errors = sorted(_Validator(_schema()).iter_errors(params), key=lambda e: list(e.path))
    # JSON Schema bounds are comparisons, and every comparison with nan is false: `lr_img: .nan` passes
    # `exclusiveMinimum: 0` (and `.inf` passes it too). No parameter may be non-finite.
    non_finite = [f"  {key}: {value!r} is not a finite number" for key, value in _non_finite(params)]
    if errors or non_finite:
        lines = []
        for e in errors:
            key = ".".join(map(str, e.absolute_path)) or "(top level)"
            msg = e.message
            if _whole_float_for_an_integer(e):
                msg = f"{e.instance!r} is not a whole number written as one; write {int(e.instance)}"
            if e.validator == "additionalProperties":
                allowed = sorted(e.schema.get("properties", {}))
                msg += f" (valid keys: {', '.join(allowed)})"
            lines.append(f"  {key}: {msg}")
        lines += non_finite
        raise ParamsError(f"{where}: invalid parameters:\n" + "\n".join(lines))
    # the plug-ins first: the checks below read method names, theirs included
    plugin_problems = declare(params.get("plugins"), Path(where).parent if where != "params" else Path.cwd(), where)
    if plugin_problems:  # one `error:` line each, naming the plug-in and the fix
        raise ParamsError("\nerror: ".join(f"{where}: {p.strip()}" for p in plugin_problems))
    problems = [line for check in CHECKS for line in check(params)]
    if problems:
        raise ParamsError(f"{where}: invalid parameters:\n" + "\n".join(problems))


# JSON Schema's integer is any number with a zero fraction, so `sets: 1.0` would pass and reach range() or a tensor
# shape as a float, a TypeError inside a job. A parameter file writes a whole number as one.
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=(
    jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))))


def _whole_float_for_an_integer(e: jsonschema.ValidationError) -> bool:
    """A float such as 1.0 where the schema wants an integer: the error itself, or one of a oneOf's alternatives
    (nas.architectures: an integer or "all")."""
    if not (isinstance(e.instance, float) and e.instance.is_integer()):
        return False
    def wants_integer(x):
        return x.validator == "type" and "integer" in (x.validator_value if isinstance(x.validator_value, list)
                                                       else [x.validator_value])
    return wants_integer(e) or any(wants_integer(x) and not x.relative_path for x in e.context)


def _non_finite(node, path=()):
    if isinstance(node, float) and not math.isfinite(node):
        yield ".".join(map(str, path)) or "(top level)", node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _non_finite(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _non_finite(v, (*path, i))




# The parameters a Snakemake run was planned from, as `<digest> <file>`: common.smk's onstart sets it (kept where the
# environment already has it, so a cluster job's own Snakemake, which reads the file again, still holds the head
# node's plan), and every stage compares the file it loads at its start (stages.start.start_stage). A file
# edited while its run goes would otherwise give the jobs still to start values the plan (its reruns, its outputs'
# names) never saw; such a job is refused, one line, before any work. Comments and layout may change freely.
PLANNED_PARAMS = "DCPIPE_PLANNED_PARAMS"


def params_digest(params) -> str:
    """A digest of the loaded parameters' values (not of the file's text)."""
    def canonical(v):
        if isinstance(v, dict):
            return {str(k): canonical(x) for k, x in v.items()}
        return [canonical(x) for x in v] if isinstance(v, (list, tuple)) else v
    return hashlib.sha256(json.dumps(canonical(params), sort_keys=True, default=str).encode()).hexdigest()[:16]


def planned_params(params, path) -> str:
    return f"{params_digest(params)} {Path(path).resolve()}"


def check_planned(params, path, planned: str | None) -> None:
    """ParamsError where `planned` (PLANNED_PARAMS of the run) names this file with other values than it has now."""
    digest, _, planned_path = (planned or "").partition(" ")
    if not planned or Path(planned_path) != Path(path).resolve() or digest == params_digest(params):
        return
    raise ParamsError(f"{path}: changed after this run was planned (values {digest} then, {params_digest(params)} "
                      f"now); its jobs must all use one version: restore the file, or stop the run and start it "
                      f"again to plan from the new values")
