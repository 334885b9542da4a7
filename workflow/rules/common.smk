# Shared by every rule. `params: dvc=[...]` names the params.yaml sections a rule depends on (dvc.yaml's
# `params:`; dcpipe.dvcgen reads it) and `settings=` holds their values, so Snakemake reruns a job when one
# of them changes, exactly as DVC does.
import json


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
    from dcpipe.config import study_name

    return lambda wc: keys + ([f"studies.{study_name(wc.method)}"] if study_name(wc.method) else [])
