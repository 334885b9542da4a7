"""The library's typed configs, built from validated parameters: the one place that reads a section's keys and
fills in their defaults. A default lives in the dataclass it configures (here, config.sections, or the library's
config), and where a parameter file's default departs from the library's, in CONDENSE / EVALUATE / CONTINUAL."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..artifacts import search_dataset
from ..condense_config import CondenseConfig
from ..continual_config import ContinualConfig, Setting
from ..dsa_strategies import AUTO, strategy_for
from ..methods import parse
from ..nas_space import EARLY_STOPPING
from ..score_config import ScoreConfig
from ..train_config import TrainConfig
from .sections import CONDENSE, CONTINUAL, EVALUATE, Experiment, IpcSweep, Nas, sections


@dataclass(frozen=True)
class Runtime:
    threads: int = 1         # torch threads per job
    device: str = "auto"     # auto | cpu | cuda
    log_every: int = 10      # a plain progress line every this many steps (off a terminal)
    fused: bool = True       # ConvNet's instance norm -> ReLU -> avg pool as one op (dcpipe.fused)


def runtime(params) -> Runtime:
    return Runtime(**params.get("runtime", {}))


@dataclass(frozen=True)
class DataSources:
    mirrors: tuple[str, ...] = ()   # local folders searched after $DCPIPE_DATA_MIRRORS (absolute: config.load)
    download: bool = True           # fetch what no mirror holds from the official URLs (or `urls`)
    urls: tuple[tuple[str, tuple[str, ...]], ...] = ()  # per dataset, base URLs that replace the official ones

    def bases(self, dataset: str) -> tuple[str, ...] | None:
        return dict(self.urls).get(dataset)


def data_sources(params) -> DataSources:
    d = params["data"]
    return DataSources(tuple(d["mirrors"]), d.get("download", DataSources.download),
                       tuple((k, tuple(v)) for k, v in sorted(d.get("urls", {}).items())))


def methods(params) -> list[str]:
    """The main experiment's methods (default: every one)."""
    return list(params["experiment"].get("methods", Experiment.methods))


def ipc_sweep_methods(params) -> list[str]:
    """The methods of DC Figure 3's sweep over images per class ([] without an ipc_sweep section)."""
    spec = params.get("ipc_sweep")
    return list(spec.get("methods", IpcSweep.methods)) if spec else []


def study_of(params, method: str) -> dict:
    """The studies-section entry a method belongs to ({} for the main experiment's methods)."""
    study = parse(method).study
    return params.get("studies", {}).get(study, {}) if study else {}


def variant_distance(params, dataset: str, ipc: int) -> str:
    """The distance of the D variants (MD, MDO, MDA) on one dataset and IPC: the follow-up's eq. 9 (d1 + d2,
    "improved"), except where condense.variant_distance names another (its footnote 5: d1 + 0.1 d2 for CIFAR-10
    at 50 images per class)."""
    return params["condense"].get("variant_distance", {}).get(dataset, {}).get(str(ipc), "improved")


def condense_config(params, ipc: int, method: str = "DC", dataset: str | None = None) -> CondenseConfig:
    """The condensation of one cell. With `dataset`: the D variants' distance of that dataset and IPC, and the
    NAS DC proxy's own K (nas.condense_iterations) on the NAS search split."""
    c, study = params["condense"], study_of(params, method)
    keys = {k: v for k, v in c.items() if k not in ("iterations", "loops", "variant_distance", "method_iterations")}
    if isinstance(keys.get("init"), dict):
        keys["init"] = keys["init"][str(ipc)]
    keys.update(parse(method).settings)
    if dataset is not None and keys.get("distance") == "improved":
        keys["distance"] = variant_distance(params, dataset, ipc)
    if "init" in study:  # a cross study on a few iterations starts from real images
        keys["init"] = study["init"]
    outer, inner = c["loops"][str(ipc)]
    # a method's own K (DM: 20,000 in its paper), else the condense section's
    iterations = study.get("iterations", c.get("method_iterations", {}).get(method, c["iterations"]))[str(ipc)]
    nas = params.get("nas", {})
    if dataset is not None and nas and dataset == search_dataset(nas["dataset"]) and "condense_iterations" in nas:
        iterations = nas["condense_iterations"]  # DC section 3.2: the proxy set is condensed with K = 500
    return replace(CONDENSE, ipc=ipc, iterations=iterations, outer_loop=outer, inner_loop=inner, **keys)


def augment_datasets(params) -> list[str]:
    """The datasets whose evaluation trains with crop/scale/rotate (DC appendix A: MNIST)."""
    return params["evaluate"].get("augment_datasets", [])


# evaluate's keys that are TrainConfig's (its optimiser, batches and test pass); the epochs are per IPC.
_TRAIN_KEYS = ("lr", "momentum", "weight_decay", "batch", "test_batch", "test_precision", "train_precision")


def _optimiser(params) -> dict:
    return {k: params["evaluate"][k] for k in _TRAIN_KEYS if k in params["evaluate"]}


def train_config(params, dataset: str, ipc: int | None, method: str | None = None,
                 epochs: int | None = None) -> TrainConfig:
    """The evaluation protocol for a set of `ipc` images per class, or for `epochs` epochs (the whole set); a
    cross study may set its own `epochs` (CPU budget), which then holds with and without augmentation."""
    e = params["evaluate"]
    aug = dataset in augment_datasets(params)
    dsa = method in dsa_methods(params)
    table = e["epochs_dsa"] if dsa else e["epochs_augmented"] if aug else e["epochs"]
    epochs = epochs or table[str(ipc)]
    if method is not None and "epochs" in study_of(params, method):
        epochs = study_of(params, method)["epochs"][str(ipc)]
    if dsa:  # DSA augmentation replaces crop/scale/rotate, as in the authors' code
        return replace(EVALUATE, epochs=epochs, dsa=strategy_for(AUTO, dataset), **_optimiser(params))
    return replace(EVALUATE, epochs=epochs, augment=aug, **_optimiser(params))


def dsa_methods(params) -> list[str]:
    """The methods whose sets train with DSA augmentation at evaluation (the DSA and DM papers: their own)."""
    return params["evaluate"].get("dsa_methods", [])


def wholeset_config(params, dataset: str) -> TrainConfig:
    """Whole-set training: the evaluation's optimiser, batch and augmentation, with its own epoch budget."""
    return train_config(params, dataset, None, epochs=params["coresets"]["whole_epochs"])


def models_per_set(params, method: str) -> int:
    if parse(method).evidence and "models_per_set" in params.get("coresets", {}):
        return params["coresets"]["models_per_set"]  # the CPU default's budget for herding/k-center/forgetting
    return study_of(params, method).get("models_per_set", params["evaluate"]["models_per_set"])


def evaluation_model_for(params, method: str) -> str:
    return parse(method).evaluation_model(params["evaluate"]["model"])


def batched(params) -> str:
    """evaluate.batched: on | off | auto (on CUDA only; measured slower than the loop on a 2-core CPU)."""
    return params["evaluate"].get("batched", "auto")


def continual_config(params) -> tuple[ContinualConfig, list[Setting]]:
    """The ContinualConfig and the settings ({herding, DC} x {with, without distillation}) of the parameters."""
    c = params["continual"]
    keys = {k: c[k] for k in ContinualConfig.__dataclass_fields__ if k in c}
    settings = [Setting(m, kd) for kd in c["distillation"] for m in c["memories"]]
    return replace(CONTINUAL, **keys), settings


def condensed_memory_sets(params) -> int:
    """Condensed DC memories per task, shared by the runs round-robin (default: one per run)."""
    return sections(params).continual.memory_sets


def nas_train_config(params, proxy: str, n_proxy_images: int) -> TrainConfig:
    """Proxy training: nas.epochs epochs (paper: 100) with the evaluation optimiser."""
    return proxy_train_config(replace(EVALUATE, epochs=params["nas"]["epochs"], **_optimiser(params)), proxy,
                              n_proxy_images)


def proxy_train_config(cfg: TrainConfig, proxy: str, n_proxy_images: int) -> TrainConfig:
    """Early stopping trains on the whole training set for the same number of SGD steps as a set of
    n_proxy_images (DC section 3.2); the other proxies train `cfg` as it is."""
    if proxy == EARLY_STOPPING:
        return replace(cfg, steps=cfg.epochs * math.ceil(n_proxy_images / cfg.batch))
    return cfg


def nas_widths(params) -> tuple[int, ...]:
    """The ConvNet widths searched (default: every one of the space)."""
    return tuple(params["nas"].get("widths", Nas.widths))


def nas_whole_config(params) -> TrainConfig:
    return replace(EVALUATE, epochs=params["nas"]["whole_epochs"], **_optimiser(params))


def score_config(params, dataset: str) -> ScoreConfig:
    """The fixed protocol of `dcpipe score` (the `score:` section): its own model, models, epochs and augmentation
    (none | crop_scale_rotate | dsa), the evaluation's optimiser and lr schedule (x0.1 half-way)."""
    s = params.get("score", {})
    augment = s.get("augment", "none")
    train = replace(EVALUATE, epochs=s.get("epochs", EVALUATE.epochs), augment=augment == "crop_scale_rotate",
                    dsa=strategy_for(AUTO, dataset) if augment == "dsa" else None, **_optimiser(params))
    return replace(ScoreConfig(), train=train, **{k: s[k] for k in ("model", "models", "random_baseline") if k in s})


def score_files(params) -> list[dict]:
    """The external sets the pipeline scores as jobs: {name, path, dataset, entry, pixels} each."""
    return [{"entry": -1, "pixels": "normalised", **f} for f in params.get("score", {}).get("files", [])]
