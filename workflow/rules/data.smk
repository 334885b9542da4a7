DATA_PARAMS = []  # where the files are found (mirrors) does not change what they hold: checksummed


rule prepare_data:
    output:
        npz=artifacts.PREPARED,
        meta=artifacts.PREPARED + ".json",
    params:
        dvc=DATA_PARAMS,
        settings=settings(DATA_PARAMS),
    log:
        "logs/prepare_data/{dataset}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "{RUN}/prepare_data.py {SCRIPT_ARGS} --dataset {wildcards.dataset} --out {output.npz} > {log} 2>&1"
