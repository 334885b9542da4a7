"""The typed job of each stage, built once from the validated parameters: a stage reads its job and never the
params dict (the dict's keys are read in config, nowhere else: here from its typed sections and configs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .condense_config import CondenseConfig
from .config import (augment_datasets, batched, condense_config, continual_config, data_sources, evaluation_model_for,
                     models_per_set, nas_train_config, nas_whole_config, proxy_train_config, runtime, score_config,
                     sections, train_config, wholeset_config)
from .continual_config import ContinualConfig, Setting
from .score_config import ScoreConfig
from .fetch import mirror_dirs
from .nas_space import Arch
from .plan import nas_shard
from .registry import Entry, entry
from .seeding import derive_seed
from .train_config import TrainConfig


@dataclass(frozen=True)
class Env:
    device: str                # runtime.device: auto | cpu | cuda
    log_every: int             # a plain progress line every this many steps (off a terminal)
    train_subset: int | None   # data.train_subset: the first n training images per class (smoke runs)


def env(params) -> Env:
    r = runtime(params)
    return Env(r.device, r.log_every, sections(params).train_subset)


@dataclass(frozen=True)
class SetJob:
    """One set of a (dataset, ipc, method) cell: its condensation, selection or evaluation."""
    env: Env
    dataset: str
    ipc: int
    method: str
    index: int
    seed: int                  # the set's own seed: its condensation or selection

    @property
    def name(self) -> str:
        return f"{self.dataset} ipc{self.ipc} {self.method} set{self.index}"


def set_job(params, dataset: str, ipc: int, method: str, index: int) -> SetJob:
    return SetJob(env(params), dataset, ipc, method, index, derive_seed(sections(params).seed, dataset, ipc, method, index))


@dataclass(frozen=True)
class CondenseJob:
    """One synthetic set (or a coreset: select_coreset's job) of a method, built in or plug-in, through the door."""
    set: SetJob
    method: Entry              # the registry's entry: what runs (dcpipe.door), with what kind
    settings: dict = field(compare=False)  # the function's `settings`: a built-in's resolved CondenseConfig

    @property
    def cfg(self) -> CondenseConfig | None:
        """A built-in condensation's config (None for a plug-in's own settings)."""
        return CondenseConfig(**self.settings) if self.method.builtin and self.method.kind == "synthetic" else None


def condense_job(params, dataset: str, ipc: int, method: str, index: int) -> CondenseJob:
    e = method_entry(method)
    if not e.builtin:
        return CondenseJob(set_job(params, dataset, ipc, method, index), e, dict(e.settings))
    # with the dataset: the D variants' distance per dataset and IPC, the NAS DC proxy's own K
    return CondenseJob(set_job(params, dataset, ipc, method, index), e,
                       asdict(condense_config(params, ipc, method, dataset)))


def select_job(params, dataset: str, ipc: int, method: str, index: int, evidence: str | None = None) -> CondenseJob:
    """A coreset: a built-in's selector and the whole-set stage's evidence file, or a plug-in's own settings."""
    e = method_entry(method)
    settings = {**e.settings, "evidence": evidence} if e.builtin else dict(e.settings)
    return CondenseJob(set_job(params, dataset, ipc, method, index), e, settings)


def method_entry(method: str) -> Entry:
    """The registry entry that runs a cell's sets: its own, or (a study cell's name, e.g. L-intra or X-MLP) the one
    condensation every study cell is a setting of."""
    return entry(method) or entry("DC")


@dataclass(frozen=True)
class EvaluateJob:
    set: SetJob
    cfg: TrainConfig           # the evaluation protocol (epochs, optimiser, augmentation, test pass)
    models: int                # fresh models trained on the set
    model: str                 # their architecture
    seed: int                  # the models' seed (model i depends on (seed, i) alone)
    batched: str               # evaluate.batched: on | off | auto


def evaluate_job(params, dataset: str, ipc: int, method: str, index: int, model: str | None = None) -> EvaluateJob:
    """The set's own evaluation network, or (a cross study's evaluate_cross) the evaluation network `model`."""
    seed = derive_seed(sections(params).seed, "evaluate", dataset, ipc, method, index)
    if model is None:
        model = evaluation_model_for(params, method)
    else:
        seed = derive_seed(seed, "on", model)  # each evaluation network of a set draws its own models
    return EvaluateJob(set_job(params, dataset, ipc, method, index), train_config(params, dataset, ipc, method),
                       models_per_set(params, method), model, seed, batched(params))


@dataclass(frozen=True)
class WholesetJob:
    env: Env
    dataset: str
    model: str
    seed: int                  # the group's: network `net` is drawn from (seed, net)
    cfg: TrainConfig
    net: int                   # which of coresets.whole_models networks (coreset set k selects from network k)


def wholeset_job(params, dataset: str, model: str, net: int) -> WholesetJob:
    return WholesetJob(env(params), dataset, model, derive_seed(sections(params).seed, "wholeset", dataset, model),
                       wholeset_config(params, dataset), net)


@dataclass(frozen=True)
class OptimalRandomJob:
    env: Env
    dataset: str
    ipc: int
    model: str
    seed: int
    cfg: TrainConfig
    coresets: int              # random coresets ranked
    models_per_coreset: int


def optimal_random_job(params, dataset: str, ipc: int) -> OptimalRandomJob:
    s = sections(params)
    spec = s.coresets.optimal_random
    return OptimalRandomJob(env(params), dataset, ipc, evaluation_model_for(params, "random"),
                            derive_seed(s.seed, "optimal_random", dataset, ipc), train_config(params, dataset, ipc),
                            spec.coresets, spec.models_per_coreset)


@dataclass(frozen=True)
class ContinualJob:
    env: Env
    run: int
    seed: int
    cfg: ContinualConfig
    settings: tuple[Setting, ...]
    tasks: tuple[str, ...]


def continual_job(params, run: int) -> ContinualJob:
    cfg, settings = continual_config(params)
    s = sections(params)
    return ContinualJob(env(params), run, derive_seed(s.seed, "continual", run), cfg, tuple(settings), s.continual.tasks)


@dataclass(frozen=True)
class NasJob:
    """One NAS stage's job (the split, a proxy shard or a ground-truth shard)."""
    env: Env
    dataset: str
    base_seed: int
    validation: int            # held-out training images
    ipc: int                   # proxy images per class
    proxies: tuple[str, ...]
    repeats: int               # runs per architecture and proxy
    whole_repeats: int         # ground-truth runs per architecture
    best_repeats: int          # runs of each proxy's best-ranked architecture
    top: int                   # the top k of each proxy that the ground truth trains
    shards: int
    ground_truth_shards: int
    batched: bool
    architectures: tuple[int, ...]  # a proxy shard's architectures (space indices); () for the other stages
    proxy: TrainConfig         # proxy training (proxy_config: early stopping's steps)
    whole: TrainConfig         # ground-truth training
    # the resolved nas section, trainings and seed: a checkpoint is reused only while these are unchanged (io.resumable)
    fingerprint: dict = field(compare=False)

    def arch_seed(self, proxy: str, arch: Arch) -> int:
        """The seed of an architecture's networks trained on a proxy (or "whole": the ground truth)."""
        return derive_seed(self.base_seed, "nas", self.dataset, proxy, arch.name)

    def proxy_config(self, proxy: str, n_proxy_images: int) -> TrainConfig:
        return proxy_train_config(self.proxy, proxy, n_proxy_images)

    @property
    def validation_seed(self) -> int:
        return derive_seed(self.base_seed, "nas", self.dataset, "validation")


def nas_job(params, shard: int | None = None) -> NasJob:
    s = sections(params)
    n, proxy, whole = s.nas, nas_train_config(params, "", 0), nas_whole_config(params)
    return NasJob(env(params), n.dataset, s.seed, n.validation, n.ipc, n.proxies, n.repeats, n.whole_repeats,
                  n.best_repeats, n.top, n.shards, n.ground_truth_shards, n.batched,
                  tuple(nas_shard(params, shard)) if shard is not None else (), proxy, whole,
                  {"nas": asdict(n), "proxy": asdict(proxy), "whole": asdict(whole), "seed": s.seed})


@dataclass(frozen=True)
class DownloadJob:
    dataset: str
    mirrors: tuple                  # the local mirror folders searched, in order ($DCPIPE_DATA_MIRRORS first)
    bases: tuple[str, ...] | None   # data.urls of this dataset (None: the official URLs)
    download: bool                  # data.download: fetch from the URLs what no mirror holds


def download_job(params, dataset: str) -> DownloadJob:
    d = data_sources(params)
    return DownloadJob(dataset, tuple(mirror_dirs(d.mirrors)), d.bases(dataset), d.download)


@dataclass(frozen=True)
class ScoreJob:
    """`dcpipe score` of one external set (and the score rule's job): the fixed protocol for its dataset."""
    env: Env
    dataset: str
    seed: int                  # the protocol's networks: base seed and dataset only, the same for every file
    cfg: ScoreConfig


def score_job(params, dataset: str) -> ScoreJob:
    return ScoreJob(env(params), dataset, derive_seed(sections(params).seed, "score", dataset), score_config(params, dataset))


__all__ = ["ContinualJob", "CondenseJob", "Env", "EvaluateJob", "NasJob", "OptimalRandomJob", "DownloadJob", "ScoreJob",
           "SetJob", "WholesetJob", "augment_datasets", "condense_job", "continual_job", "env", "evaluate_job", "nas_job",
           "optimal_random_job", "download_job", "score_job", "select_job", "set_job", "wholeset_job"]
