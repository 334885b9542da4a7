CORESET_PARAMS = ["seed", "data.train_subset"]


rule select_coreset:
    input:
        paths.PREPARED,
    output:
        npz=paths.CORESET,
        meta=paths.CORESET + ".json",
    params:
        dvc=CORESET_PARAMS,
        settings=settings(CORESET_PARAMS),
    log:
        "logs/select_coreset/{dataset}_ipc{ipc}_{method}_set{set}.log",
    wildcard_constraints:
        method="random",
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        "{RUN}/select_coreset.py {SCRIPT_ARGS} --dataset {wildcards.dataset} --ipc {wildcards.ipc}"
        " --method {wildcards.method} --set {wildcards.set} --prepared {input} --out {output.npz} > {log} 2>&1"
