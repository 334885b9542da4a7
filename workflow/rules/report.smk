# The report reads exactly dcpipe.report_files.report_inputs(P) (its Inputs object refuses anything else) and
# writes exactly report_outputs(P): one definition for the rule, the script and the tests.
from dcpipe.report_files import report_inputs, report_outputs

REPORT_PARAMS = ["seed", "experiment", "evaluate"] + [k for k in ("ipc_sweep", "studies", "continual", "nas") if k in P]
REPORT_OUTPUTS = report_outputs(P)


rule report:
    input:
        **report_inputs(P),
        code=code("report"),
    output:
        # report(...): what `snakemake --report report.html` shows, with its caption (workflow/report/*.rst)
        md=REPORT_OUTPUTS["md"],
        html=report(REPORT_OUTPUTS["html"], caption="../report/index.rst", category="1. Report"),
        table=report(REPORT_OUTPUTS["table"], caption="../report/table1.rst", category="3. Tables"),
        cross=report(REPORT_OUTPUTS["cross"], caption="../report/cross.rst", category="3. Tables"),
        metrics=REPORT_OUTPUTS["metrics"],
        tables=[report(f, caption="../report/metrics.rst", category="3. Tables") if f.endswith("/summary.json") else f
                for f in REPORT_OUTPUTS["tables"]],
        plots=REPORT_OUTPUTS["plots"],
        figures=report(directory(REPORT_OUTPUTS["figures"]), patterns=["{name}.png"], caption="../report/figures.rst",
                       category="2. Figures", labels={"figure": "{name}"}),
        cells=directory(REPORT_OUTPUTS["cells"]),
    params:
        dvc=REPORT_PARAMS,
        settings=settings(REPORT_PARAMS),
    log:
        "logs/report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "{RUN}/report.py {SCRIPT_ARGS} --out-dir reports > {log:q} 2>&1"
