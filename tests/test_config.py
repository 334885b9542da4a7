"""params.yaml is validated before any work: each bad input gets a clear error naming the key and the file."""
import copy
from pathlib import Path

import pytest
import yaml

from tests.conftest import DELETE, set_dotted

from dcpipe.config import ParamsError, condense_config, load_params, train_config

ROOT = Path(__file__).resolve().parents[1]
GOOD = yaml.safe_load((ROOT / "params.yaml").read_text())


_set, _DELETE = set_dotted, DELETE

BAD = [
    ("seed", "zero", "seed: 'zero' is not of type 'integer'"),
    ("seed", -1, "seed: -1 is less than the minimum"),
    ("experiment.datasets", ["FashionMNIST", "MNSIT"], "experiment.datasets[1]: unknown name 'MNSIT'; valid: MNIST"),
    ("experiment.datasets", [], "experiment.datasets: [] should be non-empty"),
    ("experiment.ipcs", [1, 7], "condense.loops: IPC 7 has no outer/inner loop schedule"),
    ("experiment.ipcs", ["one"], "experiment.ipcs.0: 'one' is not of type 'integer'"),
    ("experiment.sets", 0, "experiment.sets: 0 is less than the minimum of 1"),
    ("experiment.methods", ["DC", "herd"], "experiment.methods[1]: unknown name 'herd'; valid: DC, M, MD, MDO, MDA, DSA, DM, random"),
    ("experiment.colour", "blue", "experiment: Additional properties are not allowed ('colour' was unexpected)"),
    ("condense.model", "ConvNot", "condense.model: unknown name 'ConvNot'; valid: ConvNet"),
    ("condense.distance", "l2", "condense.distance: unknown name 'l2'; valid: ours, improved, d1, d2"),
    ("condense.lr_img", "0.1", "condense.lr_img: '0.1' is not of type 'number'"),
    ("condense.lr_img", 0, "condense.lr_img: 0 is less than or equal to the minimum of 0"),
    ("condense.init", "zeros", "condense.init: 'zeros' is not one of noise, real"),
    ("condense.init", {1: "noise", 10: "zero"}, "condense.init.10: 'zero' is not one of noise, real"),
    ("condense.iterations", {1: 100}, "condense.iterations: no entry for IPC 10"),
    ("condense.loops", {1: [1, 1], 10: [10]}, "condense.loops.10: [10] is too short"),
    ("condense.batch_real", 0, "condense.batch_real: 0 is less than the minimum of 1"),
    ("condense.iteratons", 5, "condense: Additional properties are not allowed ('iteratons' was unexpected)"),
    ("evaluate.model", "ResNet19", "evaluate.model: unknown name 'ResNet19'"),
    ("evaluate.models_per_set", 2.5, "evaluate.models_per_set: 2.5 is not of type 'integer'"),
    ("evaluate.epochs", {1: 300}, "evaluate.epochs: no entry for IPC 10"),
    ("evaluate.augment_datasets", ["MNIST", "EMNIST"], "evaluate.augment_datasets[1]: unknown name 'EMNIST'"),
    ("evaluate", _DELETE, "(top level): 'evaluate' is a required property"),
    ("data.mirrors", "../shared/data", "data.mirrors: '../shared/data' is not of type 'array'"),
    ("data.train_subset", 5, "data.train_subset: 5 images per class cannot hold IPC 10"),
    ("runtime.device", "tpu", "runtime.device: 'tpu' is not one of ['auto', 'cpu', 'cuda']"),
]


@pytest.mark.parametrize("key,value,message", BAD, ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD])
def test_bad_parameters_fail_early_with_the_key_and_the_file(tmp_path, key, value, message):
    doc = copy.deepcopy(GOOD)
    _set(doc, key, value)
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(ParamsError) as e:
        load_params(f)
    assert str(f) in str(e.value)
    assert message in str(e.value)


def test_unknown_keys_list_the_valid_ones(tmp_path):
    doc = copy.deepcopy(GOOD)
    doc["condense"]["lr_image"] = 0.1
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(ParamsError, match=r"valid keys: .*lr_img"):
        load_params(f)


def test_not_yaml_and_missing_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("seed: [0\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(f)
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "absent.yaml")


def test_a_key_given_twice_is_an_error_naming_it_and_both_lines(tmp_path):
    f = tmp_path / "p.yaml"
    text = yaml.safe_dump(GOOD)
    f.write_text(text.replace("  batch_real: ", "  batch_real: 32\n  batch_real: ", 1))  # PyYAML keeps the last
    line = text[:text.index("  batch_real: ")].count("\n") + 1
    with pytest.raises(ParamsError) as e:
        load_params(f)
    assert str(e.value) == f"{f}: duplicate key 'batch_real' at line {line + 1} (first at line {line}); keep one of them"


def test_a_merge_key_may_be_overridden_beside_it():
    from dcpipe.config import read_yaml

    assert read_yaml("base: &b {lr: 1, momentum: 0.5}\nmine:\n  <<: *b\n  lr: 2\n")["mine"] == {"lr": 2, "momentum": 0.5}


@pytest.mark.parametrize("text,value", [("1e-3", 0.001), ("5E2", 500.0), ("+2e+1", 20.0), ("1.5e-3", 0.0015),
                                        ("10", 10), ("'1e-3'", "1e-3")])
def test_an_exponent_without_a_dot_is_a_number(tmp_path, text, value):
    doc = copy.deepcopy(GOOD)
    doc["condense"]["lr_img"] = "@"
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(doc).replace("'@'", text))
    if isinstance(value, str):  # quoted: still a string, still rejected by the schema
        with pytest.raises(ParamsError, match="condense.lr_img: '1e-3' is not of type 'number'"):
            load_params(f)
        return
    got = load_params(f)["condense"]["lr_img"]
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("name", ["params.yaml", "config/paper.yaml", ".test/params.yaml"])
def test_shipped_parameter_files_are_valid(name):
    load_params(ROOT / name)


def test_the_paper_file_holds_the_papers_protocol():
    p = load_params(ROOT / "config/paper.yaml")
    assert p["experiment"]["sets"] * p["evaluate"]["models_per_set"] == 100
    for ipc in (1, 10, 50):
        c = condense_config(p, ipc)
        assert (c.iterations, c.lr_img, c.lr_net, c.batch_real) == (1000, 0.1, 0.01, 256)
        assert c.loops() == {1: (1, 1), 10: (10, 50), 50: (50, 10)}[ipc]
        assert train_config(p, "FashionMNIST", ipc).epochs == 300
        mnist = train_config(p, "MNIST", ipc)
        assert mnist.epochs == 1000 and mnist.augment
    assert set(p["experiment"]["datasets"]) >= {"MNIST", "FashionMNIST", "SVHN", "CIFAR10"}


STUDY_BAD = [
    ({"levels": {"datasets": ["FashionMNIST"], "ipcs": [1], "values": ["intraclass"]}},
     "studies.levels.values[0]: unknown name 'intraclass'; valid: intra, inter, multilevel, interleaved"),
    ({"distances": {"datasets": ["FashionMNIST"], "ipcs": [1], "values": ["d5"]}},
     "studies.distances.values[0]: unknown name 'd5'"),
    ({"traditional": {"datasets": ["MNIST"], "ipcs": [1], "values": ["mse"]}},
     "studies.traditional.models: list the architectures"),
    ({"variants": {"datasets": ["MNIST"], "ipcs": [1], "values": ["MDX"]}},
     "studies.variants.values[0]: unknown name 'MDX'; valid: DC, M, MD, MDO, MDA"),
    ({"variants": {"datasets": ["MNIST"], "ipcs": [7], "values": ["M"]}},
     "condense.loops: IPC 7 has no outer/inner loop schedule"),
    ({"levels": {"datasets": ["MNIST"], "ipcs": [1], "values": ["inter"], "iterations": {10: 3}}},
     "studies.levels.iterations: no entry for IPC 1"),
    ({"level": {"datasets": ["MNIST"], "ipcs": [1], "values": ["inter"]}},
     "studies: Additional properties are not allowed ('level' was unexpected)"),
    ({"crossarch": {"datasets": ["MNIST"], "ipcs": [1], "models": ["ConvNet", "VGG16"], "eval_models": ["MLP"]}},
     "studies.crossarch.models[1]: unknown name 'VGG16'; valid: ConvNet, ConvNetW32"),
    ({"depth": {"datasets": ["MNIST"], "ipcs": [1], "models": ["ConvNetD1"], "eval_models": ["ConvNetD5"]}},
     "studies.depth.eval_models[0]: unknown name 'ConvNetD5'; valid: ConvNet"),
    ({"width": {"datasets": ["MNIST"], "ipcs": [1], "models": ["ConvNetW32"]}},
     "studies.width: 'eval_models' is a required property"),
    ({"pooling": {"datasets": ["MNIST"], "ipcs": [1], "models": ["ConvNetNP"], "eval_models": ["ConvNetNP"],
                  "epochs": {10: 5}}},
     "studies.pooling.epochs: no entry for IPC 1"),
    ({"crossarch": {"datasets": ["MNIST"], "ipcs": [1], "models": ["MLP"], "eval_models": ["MLP"], "values": ["x"]}},
     "studies.crossarch: Additional properties are not allowed ('values' was unexpected)"),
]


@pytest.mark.parametrize("studies,message", STUDY_BAD, ids=[m[:40] for _, m in STUDY_BAD])
def test_bad_studies_fail_early(tmp_path, studies, message):
    doc = copy.deepcopy(GOOD)
    doc["studies"] = studies
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(ParamsError) as e:
        load_params(f)
    assert message in str(e.value)


def test_study_cells_resolve_to_the_follow_ups_settings():
    from dcpipe.config import condense_config, evaluation_model_for, models_per_set
    from dcpipe.methods import parse

    p = load_params(ROOT / "params.yaml")
    assert parse("L-inter").settings == {"level": "inter", "distance": "ours", "inner_steps": "fixed"}
    assert parse("D-d1+d3").settings["level"] == "multilevel"
    assert parse("T-mse-LeNet").settings["model"] == "LeNet" and evaluation_model_for(p, "T-mse-LeNet") == "LeNet"
    assert parse("T-ours-MLP").settings["lr_img"] == 0.01  # DC appendix A: MLP condenses with 0.01
    assert condense_config(p, 10, "V-MDA").inner_steps == "adaptive"
    assert condense_config(p, 1, "L-inter").iterations == p["studies"]["levels"]["iterations"]["1"]
    assert models_per_set(p, "L-inter") == p["studies"]["levels"]["models_per_set"]
    assert models_per_set(p, "DC") == p["evaluate"]["models_per_set"]


def test_the_plan_skips_O_and_A_at_one_image_per_class_and_shares_equal_cells():
    from dcpipe import plan

    p = load_params(ROOT / "config/paper.yaml")
    jobs = plan.plan(p)
    assert not [j for j in jobs if j["method"] in ("MDO", "MDA") and j["ipc"] == 1]
    # the follow-up's tables run at its own 2 sets x 50 networks: cells of their own
    assert {"L-intra", "D-d1", "V-DC", "V-MDA"} <= {j["method"] for j in jobs}
    assert len(jobs) == len({(j["dataset"], j["ipc"], j["method"], j["set"]) for j in jobs})
    # on the main table's budget a cell shares its set: L-intra is DC, D-d1 is M, D-d1+d2 is MD, V-MDA is MDA
    for study in ("levels", "distances", "variants"):
        for key in ("sets", "models_per_set"):
            p["studies"][study].pop(key)
    methods = {j["method"] for j in plan.plan(p)}
    assert not methods & {"L-intra", "L-multilevel", "D-d1", "D-d1+d2", "V-DC", "V-MDA"}


def test_every_speed_switch_can_be_turned_off(tmp_path):
    """The speed switches (fusion, bf16 of each pass) are named parameters: all off is the fp32 eager code."""
    from dcpipe import fused
    from dcpipe.config import continual_config, runtime
    from dcpipe.runtime import setup

    doc = yaml.safe_load((ROOT / "params.yaml").read_text())
    default = load_params(ROOT / "params.yaml")  # the defaults: fused, bf16 where native
    assert runtime(default).fused is True and train_config(default, "MNIST", 1).train_precision == "auto"
    doc.setdefault("runtime", {})["fused"] = False
    doc["condense"].update(real_precision="fp32", inner_precision="fp32")
    doc["evaluate"].update(train_precision="fp32", test_precision="fp32")
    doc["continual"]["precision"] = "fp32"
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(doc))
    params = load_params(f)
    before = fused.enabled()
    try:
        setup(runtime(params).threads, fused=runtime(params).fused)
        assert not fused.enabled()
    finally:
        fused.set_enabled(before)
    c = condense_config(params, 1)
    t = train_config(params, "FashionMNIST", 1)
    assert (c.real_precision, c.inner_precision, t.train_precision, t.test_precision) == ("fp32",) * 4
    assert continual_config(params)[0].precision == "fp32"
    doc["evaluate"]["train_precision"] = "fp16"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(ParamsError, match="train_precision"):
        load_params(f)


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "config").glob("*.yaml")))
def test_every_parameter_file_of_config_validates(path):
    """The protocol files are run by hand in their own checkouts, hours after they were written: each one must
    pass the schema and the cross-field checks here, before anyone spends that time."""
    params = load_params(ROOT / path)
    assert params["experiment"]["datasets"] and params["experiment"]["methods"]
