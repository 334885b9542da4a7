# dcpipe: dataset condensation with gradient matching. One DAG, run by Snakemake or (generated) by DVC.
#   snakemake --cores all --resources gpu=2                          # default, CPU-sized params.yaml
#   snakemake --cores all --resources gpu=8 --config params=config/paper.yaml
import sys

from dcpipe.config import ParamsError, load_params
from dcpipe import artifacts, plan
from dcpipe.plansize import large_plan_message

PARAMS_FILE = config.get("params", "params.yaml")
try:
    P = load_params(PARAMS_FILE)  # schema + names + budgets, before any job starts
except ParamsError as e:  # the stages' `error:` line and exit status (runtime.stage_errors), not a traceback
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)
if large_plan_message(P):  # said before the DAG build, which is silent for as long as such a plan takes
    print(f"warning: {PARAMS_FILE}: {large_plan_message(P)}", file=sys.stderr, flush=True)

report: "workflow/report/workflow.rst"  # `snakemake --report report.html`: the description on its front page


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/wholeset.smk"
include: "workflow/rules/coreset.smk"
include: "workflow/rules/optimal_random.smk"
include: "workflow/rules/condense.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/continual.smk"
include: "workflow/rules/nas.smk"
include: "workflow/rules/cross.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        rules.report.output,
    default_target: True
