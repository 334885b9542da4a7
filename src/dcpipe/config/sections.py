"""The sections of a parameter file as frozen, typed configs (`sections(params)`), each key's default in its field:
what a file leaves out gets that default, the same one params.yaml's silence gives. plan, jobs and report read
these and never the params dict. The library's own configs (CondenseConfig, TrainConfig, ContinualConfig) are
built by config.settings from CONDENSE / EVALUATE / CONTINUAL below: a parameter file's defaults of those."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..condense_config import CondenseConfig
from ..continual_config import ContinualConfig
from ..methods import CROSS_STUDIES, MAIN
from ..nas_space import WIDTHS
from ..train_config import TrainConfig

# The library's defaults, but for precision, which a parameter file leaves to the device ("auto": bf16 autocast
# where the CPU/GPU runs it natively, else fp32; dcpipe.precision). The library's own fp32 stays the reference
# that its tests and the benches' baselines compare against.
CONDENSE = replace(CondenseConfig(), real_precision="auto", inner_precision="auto")
EVALUATE = replace(TrainConfig(), test_precision="auto", train_precision="auto")
CONTINUAL = replace(ContinualConfig(), precision="auto")

# DC Figure 3 plots DC against herding ("outperforms the coreset method - Herding by a large margin").
IPC_SWEEP_METHODS = ("DC", "herding")


def _typed(cls, spec: dict, **extra):
    """cls from a section's keys (lists as tuples); a key the section leaves out takes the field's default."""
    keys = {f.name: spec[f.name] for f in fields(cls) if f.name in spec and f.name not in extra}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in keys.items()}, **extra)


@dataclass(frozen=True)
class Experiment:
    datasets: tuple[str, ...]
    ipcs: tuple[int, ...]
    sets: int = 1                         # synthetic sets / coresets per dataset and IPC (paper: 5)
    methods: tuple[str, ...] = MAIN       # the main table's methods (default: every one)


@dataclass(frozen=True)
class Study:
    """One studies entry (an ablation or a cross study); a budget key left out (None) is the main table's."""
    name: str
    datasets: tuple[str, ...]
    ipcs: tuple[int, ...]
    values: tuple[str, ...] = ()          # ablation values (resources, T15: none, one cell per model)
    models: tuple[str, ...] = ()          # condensation networks
    eval_models: tuple[str, ...] = ()     # cross studies: networks trained on each set
    iterations: dict | None = None        # K per IPC (default: condense.iterations)
    models_per_set: int | None = None     # default: evaluate.models_per_set
    sets: int | None = None               # default: experiment.sets
    epochs: dict | None = None            # cross studies: epochs per IPC (default: evaluate's)
    init: str | None = None               # cross studies: default condense.init

    @property
    def cross(self) -> bool:
        return self.name in CROSS_STUDIES

    @property
    def own_budget(self) -> bool:
        """Whether its cells run on a budget of their own (so they never share the main table's sets)."""
        return (self.iterations, self.models_per_set, self.sets) != (None, None, None)


@dataclass(frozen=True)
class IpcSweep:
    datasets: tuple[str, ...]
    ipcs: tuple[int, ...]
    methods: tuple[str, ...] = IPC_SWEEP_METHODS


@dataclass(frozen=True)
class OptimalRandom:
    coresets: int                          # random coresets ranked (paper: 1000)
    models_per_coreset: int = 1
    datasets: tuple[str, ...] | None = None  # default: the experiment's
    ipcs: tuple[int, ...] | None = None      # default: the experiment's


@dataclass(frozen=True)
class Coresets:
    whole_epochs: int
    whole_models: int = 1                  # networks trained on the whole set
    models_per_set: int | None = None      # evaluation models per coreset (default: evaluate.models_per_set)
    optimal_random: OptimalRandom | None = None


@dataclass(frozen=True)
class Continual:
    """What the continual section plans (its ContinualConfig: config.settings.continual_config)."""
    tasks: tuple[str, ...]
    runs: int
    memories: tuple[str, ...]
    distillation: tuple[bool, ...]
    iterations: int                        # training steps per stage
    finetune_iterations: int               # balanced fine-tuning steps per stage
    condensed_sets: int | None = None      # DC memories per task (default: one per run)

    @property
    def memory_sets(self) -> int:
        return self.condensed_sets or self.runs


@dataclass(frozen=True)
class Nas:
    dataset: str
    validation: int
    ipc: int
    proxies: tuple[str, ...]
    architectures: int | str               # a stratified sample of this many, or "all"
    shards: int
    epochs: int
    repeats: int
    whole_epochs: int
    whole_repeats: int
    best_repeats: int
    top: int
    batched: bool
    ground_truth_shards: int
    widths: tuple[int, ...] = WIDTHS       # the ConvNet widths searched (default: every one)
    condense_iterations: int | None = None  # K of the DC proxy set (default: condense.iterations at nas.ipc)


@dataclass(frozen=True)
class Budget:
    """The main table's budget as the condense and evaluate sections write it (per IPC), for the report."""
    condense_model: str
    iterations: dict                       # condense.iterations: K per IPC
    loops: dict                            # condense.loops: [T, ς_θ] per IPC
    init: str | dict                       # condense.init, or per IPC
    batch_real: int
    evaluation_model: str                  # evaluate.model
    models_per_set: int
    epochs: dict                           # evaluate.epochs per IPC
    epochs_augmented: dict                 # evaluate.epochs_augmented (default: epochs)


@dataclass(frozen=True)
class Sections:
    """A parameter file's planning sections, typed; None where the file has no such section."""
    seed: int
    experiment: Experiment
    budget: Budget
    train_subset: int | None               # data.train_subset: the first n training images per class
    variant_distance: dict                 # condense.variant_distance: dataset -> IPC -> distance
    studies: tuple[Study, ...]
    ipc_sweep: IpcSweep | None
    coresets: Coresets | None
    continual: Continual | None
    nas: Nas | None

    def study(self, name: str) -> Study | None:
        return next((s for s in self.studies if s.name == name), None)


def sections(params) -> Sections:
    """The typed sections of validated parameters."""
    # (a report test's parameters may hold only the sections it reads)
    c, cond, ev = params.get("coresets"), params.get("condense", {}), params.get("evaluate", {})
    budget = Budget(cond.get("model", CONDENSE.model), cond.get("iterations"), cond.get("loops"),
                    cond.get("init", CONDENSE.init), cond.get("batch_real", CONDENSE.batch_real), ev.get("model"),
                    ev.get("models_per_set"), ev.get("epochs"), ev.get("epochs_augmented", ev.get("epochs")))
    coresets = c and _typed(Coresets, c, **({"optimal_random": _typed(OptimalRandom, c["optimal_random"])}
                                            if c.get("optimal_random") else {}))
    return Sections(
        seed=params["seed"], experiment=_typed(Experiment, params["experiment"]),
        budget=budget,
        train_subset=params.get("data", {}).get("train_subset"),
        variant_distance=cond.get("variant_distance", {}),
        studies=tuple(_typed(Study, spec, name=name) for name, spec in params.get("studies", {}).items()),
        ipc_sweep=_typed(IpcSweep, params["ipc_sweep"]) if params.get("ipc_sweep") else None,
        coresets=coresets or None,
        continual=_typed(Continual, params["continual"]) if params.get("continual") else None,
        nas=_typed(Nas, params["nas"]) if params.get("nas") else None)
