CORESET_PARAMS = ["seed", "data.train_subset"]


rule select_coreset:
    input:
        prepared=paths.PREPARED,
        evidence=lambda wc: paths.evidence(P, wc.dataset, wc.method),  # herding, kcenter, forgetting
    output:
        npz=paths.CORESET,
        meta=paths.CORESET + ".json",
    params:
        dvc=CORESET_PARAMS,
        settings=settings(CORESET_PARAMS),
        evidence=lambda wc, input: f" --evidence {input.evidence}" if input.evidence else "",
    log:
        "logs/select_coreset/{dataset}_ipc{ipc}_{method}_set{set}.log",
    wildcard_constraints:
        method="|".join(paths.CORESET_METHODS),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    shell:
        "{RUN}/select_coreset.py {SCRIPT_ARGS} --dataset {wildcards.dataset} --ipc {wildcards.ipc}"
        " --method {wildcards.method} --set {wildcards.set} --prepared {input.prepared} --out {output.npz}{params.evidence} > {log} 2>&1"
