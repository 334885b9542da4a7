EVALUATE_PARAMS = ["seed", "data.train_subset", "evaluate", "runtime.device"]


rule evaluate:
    input:
        prepared=artifacts.PREPARED,
        train_set=lambda wc: artifacts.train_set(wc.dataset, wc.ipc, wc.method, wc.set),
        code=code("evaluate"),
    output:
        artifacts.EVAL,
    params:
        dvc=with_study(EVALUATE_PARAMS),  # a study cell's budget (models per set) is in its studies entry
        settings=lambda wc: settings(with_study(EVALUATE_PARAMS)(wc)),
    log:
        "logs/evaluate/{dataset}_ipc{ipc}_{method}_set{set}.log",
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=720,
    shell:
        "{RUN}/evaluate.py {SCRIPT_ARGS} --dataset {wildcards.dataset:q} --ipc {wildcards.ipc:q}"
        " --method {wildcards.method:q} --set {wildcards.set:q} --prepared {input.prepared:q}"
        " --train-set {input.train_set:q} --out {output:q} > {log:q} 2>&1"
