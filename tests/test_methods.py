"""The grammar of method names (dcpipe.methods): what each name means, and that the rules' wildcard patterns
accept exactly the names it parses."""

import re

import pytest

from dcpipe.condense import VARIANTS
from dcpipe.errors import ParamsError
from dcpipe.methods import (CORESET_PATTERN, CORESETS, CROSS_PATTERN, CROSS_STUDIES, MAIN, SYNTHETIC_PATTERN,
                            cell_name, parse)


def test_the_main_methods_are_the_named_variants_the_successors_then_the_coresets():
    assert MAIN == ("DC", "M", "MD", "MDO", "MDA", "DSA", "DM", "random", "herding", "kcenter", "forgetting")
    assert all(parse(m).synthetic and parse(m).study is None for m in VARIANTS)
    assert all(parse(m).kind == "coreset" and not parse(m).settings for m in CORESETS)


def test_dsa_is_dc_plus_siamese_augmentation_and_dm_matches_distributions():
    dsa, dm = parse("DSA"), parse("DM")
    assert dsa.synthetic and dsa.settings == {**VARIANTS["DC"], "dsa": "auto", "init": "real"}
    assert dm.synthetic and dm.settings["objective"] == "distribution" and dm.settings["dsa"] == "auto"
    assert dm.settings["lr_img"] == 1.0 and dm.settings["init"] == "real"  # the DM paper's defaults
    assert re.fullmatch(SYNTHETIC_PATTERN, "DSA") and re.fullmatch(SYNTHETIC_PATTERN, "DM")


def test_a_coreset_names_the_whole_set_evidence_it_selects_from():
    assert {m: parse(m).evidence for m in CORESETS} == {"random": None, "herding": "features", "kcenter": "features",
                                                         "forgetting": "counts"}


@pytest.mark.parametrize("name, study, settings", [
    ("L-inter", "levels", {"level": "inter", "distance": "ours", "inner_steps": "fixed"}),
    ("D-d1+d3", "distances", {"level": "multilevel", "distance": "d1+d3", "inner_steps": "fixed"}),
    ("V-MDA", "variants", VARIANTS["MDA"]),
    ("T-mse-LeNet", "traditional", {"level": "intra", "distance": "mse", "inner_steps": "fixed", "model": "LeNet"}),
    ("T-ours-MLP", "traditional", {"level": "intra", "distance": "ours", "inner_steps": "fixed", "model": "MLP",
                                   "lr_img": 0.01}),  # DC appendix A: MLP condenses with eta_S = 0.01
    ("X-ConvNet", "crossarch", {"level": "intra", "distance": "ours", "inner_steps": "fixed", "model": "ConvNet"}),
    ("XN-ConvNetBN", "normalization", {"level": "intra", "distance": "ours", "inner_steps": "fixed",
                                       "model": "ConvNetBN"}),
])
def test_a_study_cell_names_its_study_and_its_condensation_settings(name, study, settings):
    m = parse(name)
    assert (m.kind, m.study, m.settings) == ("synthetic", study, settings)


def test_sets_are_trained_on_the_evaluate_model_except_where_a_cell_names_its_own():
    assert parse("DC").evaluation_model("ConvNetBN") == "ConvNet"  # BatchNorm swapped (DC appendix A)
    assert parse("T-mse-LeNet").evaluation_model("ConvNet") == "LeNet"  # T11: learned and tested on one model


def test_o_and_a_do_not_apply_at_one_image_per_class():
    assert [m for m in ("DC", "MD", "MDO", "MDA", "V-MDO", "V-MDA", "random") if not parse(m).applies_at(1)] == [
        "MDO", "MDA", "V-MDO", "V-MDA"]
    assert parse("MDA").applies_at(10)


def test_a_cell_with_a_variants_settings_is_that_variant():
    assert [parse(c).same_as_variant() for c in ("L-intra", "D-d1", "D-d1+d2", "V-MDA", "L-inter")] == [
        "DC", "M", "MD", "MDA", "L-inter"]


def test_cell_names_spell_the_grammar():
    assert cell_name("levels", "intra") == "L-intra"
    assert cell_name("traditional", "mse", "LeNet") == "T-mse-LeNet"
    assert cell_name("width", None, "ConvNetW32") == "XW-ConvNetW32"


@pytest.mark.parametrize("name", ["", "dc", "X-NoSuchNet", "L-nowhere", "T-mse", "Q-DC", "V-XYZ"])
def test_anything_else_is_an_error_that_lists_the_grammar(name):
    with pytest.raises(ParamsError, match="T-<distance>-<model>"):
        parse(name)


def test_the_rules_patterns_match_exactly_the_names_of_their_kind():
    synthetic = ["DC", "MDA", "L-intra", "D-d1+0.1d2", "T-cos-AlexNet", "V-MD"] + [
        cell_name(s, None, "LeNet") for s in CROSS_STUDIES]
    for name in synthetic:
        assert re.fullmatch(SYNTHETIC_PATTERN, name) and not re.fullmatch(CORESET_PATTERN, name)
    for name in CORESETS:
        assert re.fullmatch(CORESET_PATTERN, name) and not re.fullmatch(SYNTHETIC_PATTERN, name)
    assert [n for n in synthetic if re.fullmatch(CROSS_PATTERN, n)] == [cell_name(s, None, "LeNet") for s in CROSS_STUDIES]
