# Whole-set training, one job per dataset, evaluation model and network (coresets.whole_models of them): the
# features and forgetting counts coreset set k selects from (network k), and Table 1's whole-dataset column.
def _in_params(key):
    value = P
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


# The evaluation's optimiser settings, not its epochs or model counts (a change there must not retrain the whole
# set; nor must coresets.whole_models, which only adds or drops networks). DVC refuses a listed key that the file
# lacks (these have defaults in TrainConfig), so only present keys are listed; dvc.yaml is regenerated from the
# parameter file anyway.
WHOLESET_PARAMS = [k for k in ["seed", "data.train_subset", "coresets.whole_epochs",
                               "evaluate.lr", "evaluate.momentum", "evaluate.weight_decay", "evaluate.batch",
                               "evaluate.test_batch", "evaluate.test_precision", "evaluate.augment_datasets",
                               "runtime.device"] if _in_params(k)]


rule wholeset:
    input:
        prepared=artifacts.PREPARED,
        code=code("wholeset"),
    output:
        weights=artifacts.WHOLESET_MODEL,
        features=artifacts.WHOLESET_FEATURES,
        forgetting=artifacts.WHOLESET_FORGETTING,
        result=artifacts.WHOLESET_RESULT,
    params:
        dvc=WHOLESET_PARAMS,
        settings=settings(WHOLESET_PARAMS),
    log:
        "logs/wholeset/{dataset}_{model}_net{net}.log",
    wildcard_constraints:
        net="[0-9]+",
    priority: 10  # the longest single jobs, and the coreset and NAS proxies wait for them
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=720,
    shell:
        "{RUN}/wholeset.py {SCRIPT_ARGS} --dataset {wildcards.dataset:q} --model {wildcards.model:q} --net {wildcards.net:q}"
        " --prepared {input.prepared:q} --weights {output.weights:q} --features {output.features:q}"
        " --forgetting {output.forgetting:q} --out {output.result:q} > {log:q} 2>&1"
