"""The grammar of method names: every name a table cell, an artifact path and a rule's wildcard carry.

    DC | M | MD | MDO | MDA            a named variant of condensation (follow-up Table 3)
    DSA | DM                           the authors' successors: siamese augmentation, distribution matching
    random | herding | kcenter | forgetting    a coreset of real images (DC Table 1)
    L-<level>                          levels study (follow-up Table 1), multi-level options at d1, fixed steps
    D-<distance>                       distances study (follow-up Table 2), multi-level loss
    T-<distance>-<model>               traditional distances (DC Table T11), learned and tested on <model>
    R-<model>                          resources study (DC Table T15): DC on <model>, its time and memory
    V-<variant>                        variants study (follow-up Table 3) on its own budget
    <X|XA|XP|XN|XD|XW>-<model>         cross studies (DC Table 2, T6-T10): condensed with <model>

`parse` is the only decoder of these names; the rules' wildcard patterns are generated from the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import registry
from .condense_config import LEVELS, SUCCESSORS, VARIANTS
from .coreset_names import CORESETS, EVIDENCE
from .errors import ParamsError
from .distances import is_distance
from .model_names import evaluation_model, is_model_name

# The main experiment's methods: synthetic-set variants, the successors, then coresets.
MAIN = tuple(VARIANTS) + tuple(SUCCESSORS) + CORESETS
# Ablation studies: each value becomes a cell named "<prefix>-<value>[-<model>]".
ABLATION_STUDIES = {"levels": "L", "distances": "D", "traditional": "T", "variants": "V", "resources": "R"}
# Cross studies: condense with each of `models`, train each of `eval_models` on every set; cells
# "<prefix>-<condensation model>", one evaluation per (set, evaluation model).
CROSS_STUDIES = {"crossarch": "X", "activation": "XA", "pooling": "XP", "normalization": "XN", "depth": "XD",
                 "width": "XW"}
STUDIES = {**ABLATION_STUDIES, **CROSS_STUDIES}
_STUDY_OF_PREFIX = {p: s for s, p in STUDIES.items()}
# O and A change the network's inner updates, which IPC 1 (T = 1) never makes (follow-up Table 3: "-").
_NEEDS_INNER_UPDATES = ("MDO", "MDA")
# DC appendix A: "we set ηS to 0.01 for synthesizing data with MLP" (Table 2); T11 keeps 0.1 for MLP with the
# traditional distances.
_MLP_LR_IMG = 0.01

_NAME = r"[A-Za-z0-9_]+"
_VALUE = r"[A-Za-z0-9_.+\-]+"
# Wildcard patterns of the rules (Snakemake regexes): synthetic sets (condense), coresets (select_coreset) and
# the cross studies' sets (evaluate_cross).
CROSS_PATTERN = "(?:" + "|".join(sorted(CROSS_STUDIES.values(), key=len, reverse=True)) + f")-{_NAME}"
SYNTHETIC_PATTERN = "|".join((*VARIANTS, *SUCCESSORS)) + f"|[{''.join(ABLATION_STUDIES.values())}]-{_VALUE}|{CROSS_PATTERN}"
CORESET_PATTERN = "|".join(CORESETS)


def synthetic_pattern() -> str:
    """The condense rule's method wildcard: the built-in synthetic names and grammar, and the plug-ins that make
    sets (kind synthetic or file) of the loaded parameter file and installed packages."""
    names = [n for n, e in registry.plugins().items() if e.kind != "coreset"]
    return "|".join([SYNTHETIC_PATTERN, *names])


def coreset_pattern() -> str:
    """The select_coreset rule's method wildcard: the built-in coresets and the coreset plug-ins."""
    return "|".join([CORESET_PATTERN, *(n for n, e in registry.plugins().items() if e.kind == "coreset")])


@dataclass(frozen=True)
class Method:
    name: str
    kind: str                      # "synthetic" (condensed) or "coreset" (selected real images)
    study: str | None = None       # the studies entry the cell belongs to (None: the main experiment's)
    # CondenseConfig overrides of a synthetic set (a dict, so left out of == and the hash of a frozen Method)
    settings: dict = field(default_factory=dict, compare=False)
    variant: str | None = None     # the named variant a DC/M/MD/MDO/MDA or V-<variant> name spells
    evidence: str | None = None    # the whole-set artifact a coreset selects from (coreset_names.EVIDENCE's keyword)
    plugin: bool = False           # a plug-in's cell (dcpipe.registry): its own settings, the main table's protocol

    @property
    def synthetic(self) -> bool:
        return self.kind == "synthetic"

    @property
    def model(self) -> str | None:
        """The architecture a study cell is condensed with (and, in T11, learned and tested on)."""
        return self.settings.get("model")

    def evaluation_model(self, default: str) -> str:
        """Networks trained on the set: `default` (evaluate.model), except in T11 and the cross studies' own
        architecture (DC appendix: sets learned and tested on one architecture "for simplicity")."""
        return evaluation_model(self.model or default)

    def applies_at(self, ipc: int) -> bool:
        return not (self.variant in _NEEDS_INNER_UPDATES and int(ipc) == 1)

    def same_as_variant(self) -> str:
        """The named variant whose settings equal this cell's, if any (L-intra is DC, D-d1 is M, D-d1+d2 is MD,
        V-MDA is MDA): a cell on the main table's budget shares that variant's sets."""
        s = dict(self.settings)
        s["distance"] = {"d1": "ours", "d1+d2": "improved"}.get(s.get("distance"), s.get("distance"))
        return next((v for v, vs in VARIANTS.items() if vs == s), self.name)


def _cell(name: str, study: str, settings: dict, variant: str | None = None) -> Method:
    return Method(name, "synthetic", study, settings, variant)


def _on_model(dist: str, model: str) -> dict:
    out = {"level": "intra", "distance": dist, "inner_steps": "fixed", "model": model}
    if model == "MLP" and dist == "ours":
        out["lr_img"] = _MLP_LR_IMG
    return out


def parse(name: str) -> Method:
    """The method a name spells; a ParamsError listing the grammar for anything else."""
    found = registry.entry(name)
    if found and not found.builtin:
        return Method(name, "coreset" if found.kind == "coreset" else "synthetic", None, {}, plugin=True)
    if name in VARIANTS:
        return Method(name, "synthetic", None, dict(VARIANTS[name]), name)
    if name in SUCCESSORS:
        return Method(name, "synthetic", None, dict(SUCCESSORS[name]))
    if name in CORESETS:
        return Method(name, "coreset", None, {}, None, EVIDENCE.get(name))
    prefix, _, rest = name.partition("-")
    study = _STUDY_OF_PREFIX.get(prefix)
    if prefix == "V" and rest in VARIANTS:
        return _cell(name, study, dict(VARIANTS[rest]), rest)
    if prefix == "L" and rest in LEVELS:
        return _cell(name, study, {"level": rest, "distance": "ours", "inner_steps": "fixed"})
    if prefix == "D" and is_distance(rest):
        return _cell(name, study, {"level": "multilevel", "distance": rest, "inner_steps": "fixed"})
    if prefix == "T":
        dist, _, model = rest.partition("-")
        if is_distance(dist) and is_model_name(model):
            return _cell(name, study, _on_model(dist, model))
    if prefix in ("R", *CROSS_STUDIES.values()) and is_model_name(rest):
        return _cell(name, study, _on_model("ours", rest))
    raise ParamsError(f"unknown method {name!r}; valid: {', '.join(MAIN + tuple(registry.plugins()))}, L-<level>, D-<distance>, "
                      f"T-<distance>-<model>, V-<variant>, R-<model>, <{'|'.join(CROSS_STUDIES.values())}>-<model>")


def cell_name(study: str, value: str, model: str | None = None) -> str:
    """The method name of an ablation study's cell, or (value None) of a cross study's."""
    return "-".join([STUDIES[study]] + [v for v in (value, model) if v])
