# Shared by every rule. `params: dvc=[...]` names the params.yaml sections a rule depends on (dvc.yaml's
# `params:`; dcpipe.dvcgen reads it) and `settings=` holds their values, so Snakemake reruns a job when one
# of them changes, exactly as DVC does.
import json

from dcpipe.methods import CORESET_PATTERN, CROSS_PATTERN, SYNTHETIC_PATTERN, parse as parse_method  # Snakemake has a `parse`


def settings(keys):
    """The values of the listed params.yaml keys (dotted), as one canonical string."""
    def get(key):
        value = P
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value
    return json.dumps({k: get(k) for k in keys}, sort_keys=True)

RUN = "python workflow/scripts"
SCRIPT_ARGS = f"--params {PARAMS_FILE}"
THREADS = P["runtime"].get("threads", 1)

wildcard_constraints:
    dataset="[A-Za-z0-9_]+",
    ipc="[0-9]+",
    set="[0-9]+",
    method=r"[A-Za-z0-9_.+\-]+",


def with_study(keys):
    """`keys` plus the studies entry of the job's method (its own budget), as a function of the wildcards."""
    return lambda wc: keys + ([f"studies.{parse_method(wc.method).study}"] if parse_method(wc.method).study else [])


# Data check before any work (plan.missing_datasets: the planned datasets' source files are looked up in the
# mirrors, not read). A dry run warns and still shows the plan, as `dcpipe check-params` does. A real run stops
# in `onstart`, which Snakemake 9 calls after building the DAG and before scheduling the first job, and never in a
# dry run (Workflow.execute in snakemake/workflow.py; checked with a throwaway Snakefile: `sys.exit` there ends
# the run cleanly, no job started, no lock left; an exception would print a traceback). It checks the
# prepare_data jobs the DAG will run, so neither a dataset prepared already nor a target that needs no missing
# data is blocked. `--no-hooks` skips onstart: then the prepare_data job itself stops at its start with the
# same message, as under `dvc repro` (DVC has no start hook).
import sys

from dcpipe.plan import missing_data_message, missing_datasets

if workflow.output_settings.dryrun:
    _missing = missing_datasets(P)
    if _missing:
        print(f"warning: {PARAMS_FILE}: {missing_data_message(_missing)}", file=sys.stderr, flush=True)


onstart:
    _to_prepare = [j.wildcards.dataset for j in workflow.dag.needrun_jobs() if j.rule.name == "prepare_data"]
    _missing = missing_datasets(P, _to_prepare)
    if _missing:
        print(f"error: {PARAMS_FILE}: {missing_data_message(_missing)}", file=sys.stderr, flush=True)
        sys.exit(2)
