"""Artifact locations: path templates only, used by the rules, the stages, the report and the tests."""

from .methods import parse

# The download job's manifest of one dataset's checked files, which sit beside it under data/raw.
RAW = "data/raw/{dataset}.json"
PREPARED = "data/prepared/{dataset}.npz"
CORESET = "data/coreset/{dataset}/ipc{ipc}/{method}_set{set}.npz"
SYNTHETIC = "data/synthetic/{dataset}/ipc{ipc}/{method}_set{set}.npz"
LOSS = "data/synthetic/{dataset}/ipc{ipc}/{method}_set{set}_loss.csv"
EVAL = "data/eval/{dataset}/ipc{ipc}/{method}_set{set}.json"
CONTINUAL = "data/continual/run{run}.json"
# A cross study's set trained on a named network (DC Table 2, T6-T10): one file per (set, evaluation model).
EVAL_ON = "data/eval/{dataset}/ipc{ipc}/{method}_set{set}_on-{model}.json"
# The whole-set stage (one job per dataset, evaluation model and network `net`): the trained network, the
# penultimate features of every training image (herding, k-center), per-sample forgetting counts, and its test
# accuracy (the whole-dataset column). Coreset set k selects from network k (plan.evidence_network).
WHOLESET_MODEL = "data/wholeset/{dataset}/{model}/net{net}/model.safetensors"
WHOLESET_FEATURES = "data/wholeset/{dataset}/{model}/net{net}/features.npz"
WHOLESET_FORGETTING = "data/wholeset/{dataset}/{model}/net{net}/forgetting.npz"
WHOLESET_RESULT = "data/wholeset/{dataset}/{model}/net{net}/result.json"
OPTIMAL_RANDOM = "data/optimal_random/{dataset}/ipc{ipc}.json"
# Neural architecture search (DC section 3.2): proxy results per shard, whole-training-set ground truth.
NAS_SHARD = "data/nas/{dataset}/shard{shard}.json"
NAS_GROUND_TRUTH = "data/nas/{dataset}/ground_truth{shard}.json"
# `dcpipe score` of an external set named in params score.files
SCORE = "data/score/{name}.json"

# The whole-set artifact of each kind of evidence a coreset method selects from (methods.Method.evidence).
EVIDENCE = {"features": WHOLESET_FEATURES, "counts": WHOLESET_FORGETTING}


def train_set(dataset: str, ipc, method: str, set) -> str:  # noqa: A002 (the wildcard's name)
    tmpl = SYNTHETIC if parse(method).synthetic else CORESET
    return tmpl.format(dataset=dataset, ipc=ipc, method=method, set=set)


def search_dataset(dataset: str) -> str:
    """Name of the prepared variant whose training split excludes the NAS validation images."""
    return f"{dataset}_nas"
