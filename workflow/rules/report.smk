# Measurements made by hand (their commands inside), committed; the report shows them in its speed section.
RECORDS = [f"reports/records/{name}.json" for name in ("bench", "run", "headline")]
REPORT_PARAMS = ["seed", "experiment", "evaluate"] + [k for k in ("studies", "continual", "nas") if k in P]


rule report:
    input:
        evals=[paths.EVAL.format(**j) for j in PLAN],
        synthetic=[paths.SYNTHETIC.format(**j) for j in PLAN if paths.is_synthetic(j["method"])],
        losses=[paths.LOSS.format(**j) for j in PLAN if paths.is_synthetic(j["method"])],
        prepared=sorted({paths.PREPARED.format(**j) for j in PLAN}),
        continual=paths.continual_results(P),
        nas=paths.nas_outputs(P),
        cross=[paths.EVAL_ON.format(**j) for j in CROSS_PLAN],
        cross_sets=sorted({paths.SYNTHETIC.format(**j) for j in CROSS_PLAN}),
        wholeset=[paths.WHOLESET_RESULT.format(**j) for j in paths.wholeset_jobs(P)],
        optimal_random=[paths.OPTIMAL_RANDOM.format(**j) for j in paths.optimal_random_jobs(P)],
        records=RECORDS,
    output:
        # report(...): what `snakemake --report report.html` shows, with its caption (workflow/report/*.rst)
        md="reports/index.md",
        html=report("reports/index.html", caption="../report/index.rst", category="1. Report"),
        metrics=report("reports/metrics.json", caption="../report/metrics.rst", category="3. Tables"),
        table=report("reports/table1.csv", caption="../report/table1.rst", category="3. Tables"),
        cross=report("reports/cross.csv", caption="../report/cross.rst", category="3. Tables"),
        figures=report(directory("reports/figures"), patterns=["{name}.png"], caption="../report/figures.rst",
                       category="2. Figures", labels={"figure": "{name}"}),
    params:
        dvc=REPORT_PARAMS,
        settings=settings(REPORT_PARAMS),
    log:
        "logs/report.log",
    threads: 1
    resources:
        mem_mb=2000,
    shell:
        "{RUN}/report.py {SCRIPT_ARGS} --out-dir reports > {log} 2>&1"
