CONDENSE_PARAMS = ["seed", "data.train_subset", "condense", "runtime.device"]


rule condense:
    input:
        artifacts.PREPARED,
    output:
        npz=artifacts.SYNTHETIC,
        meta=artifacts.SYNTHETIC + ".json",
        loss=artifacts.LOSS,
    params:
        dvc=with_study(CONDENSE_PARAMS),  # a study cell's budget (iterations) is in its studies entry
        settings=lambda wc: settings(with_study(CONDENSE_PARAMS)(wc)),
    log:
        "logs/condense/{dataset}_ipc{ipc}_{method}_set{set}.log",
    wildcard_constraints:
        method=SYNTHETIC_PATTERN,
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=1440,  # minutes: the wall time a cluster job asks for (sbatch -t); a killed job resumes on retry
    shell:
        "{RUN}/condense.py {SCRIPT_ARGS} --dataset {wildcards.dataset} --ipc {wildcards.ipc}"
        " --method {wildcards.method} --set {wildcards.set}"
        " --prepared {input} --out {output.npz} --loss {output.loss} > {log} 2>&1"
