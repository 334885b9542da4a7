"""Artifact locations: one place, used by the Snakefile, the report and the tests."""

PREPARED = "data/prepared/{dataset}.npz"
CORESET = "data/coreset/{dataset}/ipc{ipc}/{method}_set{set}.npz"
SYNTHETIC = "data/synthetic/{dataset}/ipc{ipc}/{method}_set{set}.npz"
LOSS = "data/synthetic/{dataset}/ipc{ipc}/{method}_set{set}_loss.csv"
EVAL = "data/eval/{dataset}/ipc{ipc}/{method}_set{set}.json"

SYNTHETIC_METHODS = ("DC",)


def train_set(dataset: str, ipc, method: str, set) -> str:  # noqa: A002 (the wildcard's name)
    tmpl = SYNTHETIC if method in SYNTHETIC_METHODS else CORESET
    return tmpl.format(dataset=dataset, ipc=ipc, method=method, set=set)


def plan(params) -> list[dict]:
    """Every (dataset, ipc, method, set) the experiment evaluates."""
    from .config import methods

    e = params["experiment"]
    return [dict(dataset=d, ipc=i, method=m, set=s) for d in e["datasets"] for i in e["ipcs"]
            for m in methods(params) for s in range(e["sets"])]
