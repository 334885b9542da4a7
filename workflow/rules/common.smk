# Shared by every rule. `params: dvc=[...]` names the params.yaml sections a rule depends on (dvc.yaml's
# `params:`; dcpipe.dvcgen reads it) and `settings=` holds their values, so Snakemake reruns a job when one
# of them changes, exactly as DVC does.
import json
import shlex

from dcpipe.config import runtime

from dcpipe.methods import CROSS_PATTERN, coreset_pattern, parse as parse_method, synthetic_pattern  # Snakemake has a `parse`
from dcpipe.codedeps import script_code
from dcpipe.registry import entry as method_entry


def code(rule):
    """Every rule's last input: its script and the dcpipe modules the script runs (dcpipe.codedeps), so that a library
    edit reruns exactly the jobs whose code it touches, here as under DVC (dvc.yaml lists the same files as deps)."""
    return script_code(f"workflow/scripts/{rule}.py")


def method_code(rule):
    """A set-making rule's code: code(rule), plus a plug-in's own source file (or a file entry's set) for that
    plug-in's jobs only, so that editing it reruns its cells and no others, under both runners."""
    def files(wc):
        e = method_entry(wc.method)
        own = e.file_for(wc.dataset, wc.ipc, wc.set) if e and e.kind == "file" else e and e.source()
        return code(rule) + ([own] if own else [])
    return files


def method_keys(wc):
    """A plug-in's params.yaml keys: its own entry (settings, target), so that a change reruns its cells only."""
    e = method_entry(wc.method)
    return [f"plugins.{wc.method}"] if e and e.origin == f"plugins.{wc.method}" else []


def settings(keys):
    """The values of the listed params.yaml keys (dotted), as one canonical string."""
    def get(key):
        value = P
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value
    return json.dumps({k: get(k) for k in keys}, sort_keys=True)

RUN = "python workflow/scripts"
# Every path on a command line is quoted (the rules' `{x:q}`, shlex.quote here and in the options built by hand): a
# parameter file or an input whose path holds a space would otherwise reach click as extra arguments.
SCRIPT_ARGS = f"--params {shlex.quote(PARAMS_FILE)}"
THREADS = runtime(P).threads

wildcard_constraints:
    dataset="[A-Za-z0-9_]+",
    ipc="[0-9]+",
    set="[0-9]+",
    method=r"[A-Za-z0-9_.+\-]+",


def with_study(keys):
    """`keys` plus the studies entry of the job's method (its own budget), as a function of the wildcards."""
    return lambda wc: keys + ([f"studies.{parse_method(wc.method).study}"] if parse_method(wc.method).study else [])


# Data check before any work (plan.fetch_plans: where each download job's files will come from, found from file
# names alone). A dry run prints the downloads and warns of what cannot be had, and still shows the plan, as
# `dcpipe check-params` does. A real run stops in `onstart`, which Snakemake 9 calls after building the DAG and
# before scheduling the first job, and never in a dry run (Workflow.execute in snakemake/workflow.py; `sys.exit`
# there ends the run cleanly, no job started, no lock left; an exception would print a traceback). It checks the
# download jobs the DAG will run: data the plan cannot have (download off, no mirror), and URLs that do not answer
# (one HEAD request per file, else a GET of its first byte), so an offline machine gets each dataset's block before
# any job. `--no-hooks` skips onstart (the block names it, for a check that is itself wrong): then the download job
# itself stops with the same block, as under `dvc repro` (DVC has no start hook).
import os
import sys

from dcpipe.config import PLANNED_PARAMS, planned_params
from dcpipe.plan import device_message, download_lines, fetch_plans, missing_data_message, unreachable_message

# runtime.device: cuda where this machine has no CUDA: a dry run warns, a real run with GPU jobs to run stops in
# onstart (one error line, no job started). A cluster whose jobs get the GPU: `--no-hooks`, or run on the GPU host.
_DEVICE = device_message(P)

if workflow.output_settings.dryrun:
    _plans = fetch_plans(P)
    for _line in download_lines(_plans):
        print(_line, file=sys.stderr, flush=True)
    _missing = missing_data_message(_plans, P)
    if _missing:
        print(f"warning: {PARAMS_FILE}: {_missing}", file=sys.stderr, flush=True)
    if _DEVICE:
        print(f"warning: {PARAMS_FILE}: {_DEVICE}", file=sys.stderr, flush=True)


onstart:
    # The values this run is planned from, for its jobs: one whose --params file has changed since is refused.
    os.environ.setdefault(PLANNED_PARAMS, planned_params(P, PARAMS_FILE))
    _plans = fetch_plans(P, [j.wildcards.dataset for j in workflow.dag.needrun_jobs() if j.rule.name == "download"])
    for _line in download_lines(_plans):
        print(_line, file=sys.stderr, flush=True)
    _problem = missing_data_message(_plans, P) or unreachable_message(_plans, P)
    if _problem:
        print(f"error: {PARAMS_FILE}: {_problem}", file=sys.stderr, flush=True)
        sys.exit(2)
    if _DEVICE and any(j.resources.get("gpu", 0) for j in workflow.dag.needrun_jobs()):
        print(f"error: {PARAMS_FILE}: {_DEVICE}", file=sys.stderr, flush=True)
        sys.exit(2)
