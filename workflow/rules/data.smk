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
    wildcard_constraints:
        dataset="|".join(plan.SOURCES),  # a file of another name is no download's: Snakemake looks for another rule
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    shell:
        "{RUN}/download.py {SCRIPT_ARGS} --dataset {wildcards.dataset:q} --out {output:q} > {log:q} 2>&1"


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
    wildcard_constraints:
        # Only a known dataset: Snakemake tries every rule whose output matches a needed file, and the NAS search
        # split (<dataset>_nas, nas_split's) would otherwise reach this rule's input function, whose DataError it
        # prints as a traceback at every DAG build though the run goes on.
        dataset="|".join(plan.DATASETS),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "{RUN}/prepare_data.py {SCRIPT_ARGS} --dataset {wildcards.dataset:q} --raw {input.raw:q} --out {output.npz:q} > {log:q} 2>&1"
