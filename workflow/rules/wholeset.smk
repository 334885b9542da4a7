# Whole-set training, once per dataset and evaluation model: the features and forgetting counts the coreset
# baselines select from, and Table 1's whole-dataset column. Optimal random selection (DC Table T12).
def _in_params(key):
    value = P
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


# The evaluation's optimiser settings, not its epochs or model counts (a change there must not retrain the whole
# set). DVC refuses a listed key that the file lacks (these have defaults in TrainConfig), so only present keys are
# listed; dvc.yaml is regenerated from the parameter file anyway.
WHOLESET_PARAMS = [k for k in ["seed", "data.train_subset", "coresets.whole_epochs", "coresets.whole_models",
                               "evaluate.lr", "evaluate.momentum", "evaluate.weight_decay", "evaluate.batch",
                               "evaluate.test_batch", "evaluate.test_precision", "evaluate.augment_datasets",
                               "runtime.device"] if _in_params(k)]


rule wholeset:
    input:
        paths.PREPARED,
    output:
        weights=paths.WHOLESET_MODEL,
        features=paths.WHOLESET_FEATURES,
        forgetting=paths.WHOLESET_FORGETTING,
        result=paths.WHOLESET_RESULT,
    params:
        dvc=WHOLESET_PARAMS,
        settings=settings(WHOLESET_PARAMS),
    log:
        "logs/wholeset/{dataset}_{model}.log",
    priority: 10  # the longest single jobs, and the coreset and NAS proxies wait for them
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=720,
    shell:
        "{RUN}/wholeset.py {SCRIPT_ARGS} --dataset {wildcards.dataset} --model {wildcards.model}"
        " --prepared {input} --weights {output.weights} --features {output.features}"
        " --forgetting {output.forgetting} --out {output.result} > {log} 2>&1"


OPTIMAL_RANDOM_PARAMS = ["seed", "data.train_subset", "coresets.optimal_random", "evaluate", "runtime.device"]


rule optimal_random:
    input:
        paths.PREPARED,
    output:
        paths.OPTIMAL_RANDOM,
    params:
        dvc=OPTIMAL_RANDOM_PARAMS,
        settings=settings(OPTIMAL_RANDOM_PARAMS),
    log:
        "logs/optimal_random/{dataset}_ipc{ipc}.log",
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=1440,
    shell:
        "{RUN}/optimal_random.py {SCRIPT_ARGS} --dataset {wildcards.dataset} --ipc {wildcards.ipc}"
        " --prepared {input} --out {output} > {log} 2>&1"
