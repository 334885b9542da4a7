# The report reads exactly dcpipe.report.files.report_inputs(P) (its Inputs object refuses anything else) and
# writes exactly report_outputs(P): one definition for the rule, the script and the tests.
from dcpipe.report.files import report_inputs, report_outputs

REPORT_PARAMS = ["seed", "experiment", "evaluate"] + [k for k in ("studies", "continual", "nas") if k in P]
REPORT_OUTPUTS = report_outputs(P)


rule report:
    input:
        **report_inputs(P),
    output:
        md=REPORT_OUTPUTS["md"],
        html=REPORT_OUTPUTS["html"],
        table=REPORT_OUTPUTS["table"],
        cross=REPORT_OUTPUTS["cross"],
        metrics=REPORT_OUTPUTS["metrics"],
        plots=REPORT_OUTPUTS["plots"],
        figures=directory(REPORT_OUTPUTS["figures"]),
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
