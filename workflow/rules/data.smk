DATA_PARAMS = []  # where the files are found (mirrors, URLs) does not change what they hold: checksummed

# A cluster's compute nodes often have no internet: the downloads run on the submitting host (docs/remotes-and-clusters.md).
localrules:
    download,


rule download:
    input:
        code=code("download"),
    output:
        artifacts.RAW,
    params:
        dvc=DATA_PARAMS,
        settings=settings(DATA_PARAMS),
    log:
        "logs/download/{dataset}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    shell:
        "{RUN}/download.py {SCRIPT_ARGS} --dataset {wildcards.dataset} --out {output} > {log} 2>&1"


rule prepare_data:
    input:
        raw=lambda wc: artifacts.RAW.format(dataset=plan.source_dataset(wc.dataset)),
        code=code("prepare_data"),
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
        "{RUN}/prepare_data.py {SCRIPT_ARGS} --dataset {wildcards.dataset} --raw {input.raw} --out {output.npz} > {log} 2>&1"
