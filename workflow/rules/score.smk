# External distilled sets (params score.files), each scored as an ordinary job under the score section's protocol.
SCORE_PARAMS = ["seed", "data.train_subset", "score", "evaluate", "runtime.device"]
SCORE_FILES = {f["name"]: f for f in plan.score_jobs(P)}


rule score:
    input:
        prepared=lambda wc: artifacts.PREPARED.format(dataset=SCORE_FILES[wc.name]["dataset"]),
        set_file=lambda wc: SCORE_FILES[wc.name]["path"],
        code=code("score"),
    output:
        artifacts.SCORE,
    params:
        dvc=[k for k in SCORE_PARAMS if k.split(".")[0] in P],
        settings=settings(SCORE_PARAMS),
        dataset=lambda wc: SCORE_FILES[wc.name]["dataset"],
        entry=lambda wc: SCORE_FILES[wc.name]["entry"],
        pixels=lambda wc: SCORE_FILES[wc.name]["pixels"],
    log:
        "logs/score/{name}.log",
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=720,
    shell:
        "{RUN}/score.py {SCRIPT_ARGS} --name {wildcards.name:q} --dataset {params.dataset:q}"
        " --set-file {input.set_file:q} --entry {params.entry:q} --pixels {params.pixels:q}"
        " --prepared {input.prepared:q} --out {output:q} > {log:q} 2>&1"
