# Optimal random selection (DC appendix C, Table T12): N random coresets ranked by the accuracy they train to.
OPTIMAL_RANDOM_PARAMS = ["seed", "data.train_subset", "coresets.optimal_random", "evaluate", "runtime.device"]


rule optimal_random:
    input:
        prepared=artifacts.PREPARED,
        code=code("optimal_random"),
    output:
        artifacts.OPTIMAL_RANDOM,
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
        "{RUN}/optimal_random.py {SCRIPT_ARGS} --dataset {wildcards.dataset:q} --ipc {wildcards.ipc:q}"
        " --prepared {input.prepared:q} --out {output:q} > {log:q} 2>&1"
