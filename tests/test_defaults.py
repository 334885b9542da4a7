"""One source of every default: a key a parameter file leaves out takes the default of config.sections (and of
CONDENSE / EVALUATE / CONTINUAL for the library's configs), so a minimal file resolves to params.yaml's settings
wherever params.yaml is silent, and params.yaml states only what differs."""

from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import yaml

from dcpipe.config import (condense_config, continual_config, data_sources, load_params, runtime, score_config,
                           sections, train_config)
from dcpipe.config.sections import CONDENSE, CONTINUAL, EVALUATE, Coresets, Experiment, IpcSweep, Nas, Study
from dcpipe.config.settings import DataSources, Runtime
from dcpipe.score import ScoreConfig

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml")
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture(scope="module")
def minimal(tmp_path_factory):
    """Datasets and IPCs, and only what the schema and checks require: per-IPC budgets, the continual section's
    own, the whole-set epochs of the default methods' coresets."""
    c = PARAMS["continual"]
    doc = {"seed": 0, "data": {"mirrors": []},
           "experiment": {"datasets": PARAMS["experiment"]["datasets"], "ipcs": PARAMS["experiment"]["ipcs"]},
           "condense": {k: PARAMS["condense"][k] for k in ("iterations", "loops")},
           "evaluate": {k: PARAMS["evaluate"][k] for k in ("model", "models_per_set", "epochs")},
           "coresets": {"whole_epochs": PARAMS["coresets"]["whole_epochs"]},
           "continual": {k: c[k] for k in ("tasks", "runs", "memories", "distillation", "iterations",
                                           "finetune_iterations")}}
    path = tmp_path_factory.mktemp("minimal") / "params.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_params(path)


def _silent_fields(ours, theirs, written: dict, derived=()):
    """The fields params.yaml leaves out (not in `written`, not derived per job) whose values differ."""
    return {f.name: (getattr(ours, f.name), getattr(theirs, f.name)) for f in fields(ours)
            if f.name not in written and f.name not in derived and getattr(ours, f.name) != getattr(theirs, f.name)}


def test_a_minimal_file_resolves_to_params_yaml_where_params_yaml_is_silent(minimal):
    for ipc in PARAMS["experiment"]["ipcs"]:
        assert not _silent_fields(condense_config(minimal, ipc), condense_config(PARAMS, ipc), RAW["condense"],
                                  ("ipc", "iterations", "outer_loop", "inner_loop"))
        for d in PARAMS["experiment"]["datasets"]:
            assert not _silent_fields(train_config(minimal, d, ipc), train_config(PARAMS, d, ipc), RAW["evaluate"],
                                      ("epochs", "augment"))
    assert not _silent_fields(continual_config(minimal)[0], continual_config(PARAMS)[0], RAW["continual"])
    assert runtime(minimal) == runtime(PARAMS) and "runtime" not in RAW
    assert not _silent_fields(data_sources(minimal), data_sources(PARAMS), RAW["data"])
    assert sections(minimal).train_subset == sections(PARAMS).train_subset
    assert not _silent_fields(sections(minimal).experiment, sections(PARAMS).experiment, RAW["experiment"])
    assert "score" not in RAW and score_config(minimal, "MNIST") == score_config(PARAMS, "MNIST")


def _defaults(cls_or_instance) -> dict:
    if not isinstance(cls_or_instance, type):
        return {f.name: getattr(cls_or_instance, f.name) for f in fields(cls_or_instance)}
    return {f.name: f.default for f in fields(cls_or_instance) if f.default is not MISSING}


def _same(value, default) -> bool:
    return value == default or (isinstance(value, list) and tuple(value) == default)


def test_params_yaml_sets_no_key_to_its_default():
    sections_ = {"runtime": Runtime, "data": {**_defaults(DataSources), "urls": {}, "train_subset": None},
                 "experiment": Experiment, "coresets": Coresets, "condense": CONDENSE, "evaluate": EVALUATE,
                 "continual": {**_defaults(CONTINUAL), "condensed_sets": RAW["continual"]["runs"]},
                 "ipc_sweep": IpcSweep, "nas": Nas, "score": {**_defaults(ScoreConfig), "epochs": EVALUATE.epochs,
                                                               "augment": "none", "files": []}}
    found = []
    for section, spec in sections_.items():
        defaults = spec if isinstance(spec, dict) else _defaults(spec)
        found += [f"{section}.{k}" for k, v in RAW.get(section, {}).items() if k in defaults and _same(v, defaults[k])]
    study = _defaults(Study)
    found += [f"studies.{s}.{k}" for s, spec in RAW.get("studies", {}).items() for k, v in spec.items()
              if k in study and _same(v, study[k])]
    assert not found, f"params.yaml states defaults: {found}"


def test_params_yaml_comments_are_short():
    long = [n for n, line in enumerate((ROOT / "params.yaml").read_text().splitlines(), 1) if len(line) > 100]
    assert not long, f"params.yaml lines over 100 characters: {long}"
