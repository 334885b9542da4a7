CORESET_PARAMS = ["seed", "data.train_subset"]


rule select_coreset:
    input:
        prepared=artifacts.PREPARED,
        evidence=lambda wc: plan.evidence(P, wc.dataset, wc.method, wc.set),  # herding, kcenter, forgetting: network {set}
        code=method_code("select_coreset"),
    output:
        npz=artifacts.CORESET,
        meta=artifacts.CORESET + ".json",
    params:
        dvc=lambda wc: CORESET_PARAMS + method_keys(wc),
        settings=lambda wc: settings(CORESET_PARAMS + method_keys(wc)),
        evidence=lambda wc, input: "".join(f" --evidence {shlex.quote(f)}" for f in input.evidence),
    log:
        "logs/select_coreset/{dataset}_ipc{ipc}_{method}_set{set}.log",
    wildcard_constraints:
        method=coreset_pattern(),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    shell:
        "{RUN}/select_coreset.py {SCRIPT_ARGS} --dataset {wildcards.dataset:q} --ipc {wildcards.ipc:q}"
        " --method {wildcards.method:q} --set {wildcards.set:q} --prepared {input.prepared:q} --out {output.npz:q}{params.evidence} > {log:q} 2>&1"
