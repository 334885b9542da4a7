# Cross studies (DC Table 2, appendix T6-T10): each set of a cell "<prefix>-<model>" (condensed by the condense
# rule) is trained on each evaluation network of its study, one artifact per (set, evaluation network).

rule evaluate_cross:
    input:
        prepared=artifacts.PREPARED,
        train_set=artifacts.SYNTHETIC,
        code=code("evaluate_cross"),
    output:
        artifacts.EVAL_ON,
    params:
        dvc=with_study(EVALUATE_PARAMS),
        settings=lambda wc: settings(with_study(EVALUATE_PARAMS)(wc)),
    log:
        "logs/evaluate_cross/{dataset}_ipc{ipc}_{method}_set{set}_on-{model}.log",
    wildcard_constraints:
        method=CROSS_PATTERN,
        model="[A-Za-z0-9_]+",
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=720,
    shell:
        "{RUN}/evaluate_cross.py {SCRIPT_ARGS} --dataset {wildcards.dataset:q} --ipc {wildcards.ipc:q}"
        " --method {wildcards.method:q} --set {wildcards.set:q} --model {wildcards.model:q} --prepared {input.prepared:q}"
        " --train-set {input.train_set:q} --out {output:q} > {log:q} 2>&1"
