"""Snakemake's own shell commands for a parameter file, in waves, for a machine without Snakemake (a lent GPU).

    python workflow/jobs_without_snakemake.py --params config/X.yaml > jobs.sh   # here, with Snakemake
    bash jobs.sh 8                                                              # there: 8 jobs at a time

It renders the DAG's jobs (dcpipe.dvcgen.snakemake_jobs, the job list dvc.yaml is made from) as a bash script that
creates the jobs' output and log folders and runs them in waves of dependency order (dcpipe.dvcgen.waves: a wave
starts when every job of the waves before it has finished). The `report` rule is left out: the report is built
where Snakemake is. A job that fails stops the script after its wave (its log says why). A job whose outputs all
exist is skipped (every stage writes them by rename, so they are whole): a script cut off at a lent machine's time
limit resumes where it stopped, and the stages resume their own checkpoints.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections import Counter
from pathlib import Path

from dcpipe.dvcgen import snakemake_jobs, waves

LEFT_OUT = {"report"}  # built where Snakemake is


def unless_done(outputs: list[str], command: str) -> str:
    """command, skipped where every output already exists."""
    if not outputs:
        return command
    done = " && ".join(f"[ -e {shlex.quote(p)} ]" for p in outputs)
    return f"if {done}; then echo 'done already: {outputs[0]}'; else {command}; fi"


def script(jobs: list[dict]) -> str:
    """The bash script that runs `jobs` (dvcgen job dicts: rule, output, log, cmd; any order) wave by wave."""
    groups = waves([j for j in jobs if j["rule"] not in LEFT_OUT])
    lines = ["#!/usr/bin/env bash", "# written by workflow/jobs_without_snakemake.py from the Snakemake DAG's jobs",
             "set -uo pipefail", 'P="${1:-4}"']
    dirs = sorted({os.path.dirname(p) for wave in groups for j in wave for p in j["output"] + j["log"]} - {""})
    lines.append("mkdir -p " + " ".join(shlex.quote(d) for d in dirs))
    for k, wave in enumerate(groups, 1):
        rules = ", ".join(f"{r} {n}" for r, n in Counter(j["rule"] for j in wave).items())
        lines.append(f'echo "$(date +%T) wave {k}/{len(groups)}: {len(wave)} jobs ({rules})"')
        lines.append(f"xargs -d '\\n' -P \"$P\" -I{{}} bash -c '{{}} || {{ echo \"FAILED: {{}}\" >&2; exit 255; }}' <<'JOBS' || exit 1")
        lines += [unless_done(j["output"], j["cmd"]) for j in wave] + ["JOBS"]
    lines.append('echo "$(date +%T) done"')
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="the parameter file (run from the repository root)")
    parser.add_argument("--config", default=None, help="or Snakemake's form: params=FILE")
    args = parser.parse_args(argv)
    params_file = args.config.removeprefix("params=") if args.config else args.params
    sys.stdout.write(script(snakemake_jobs(Path("Snakefile"), params_file)))


if __name__ == "__main__":
    main(sys.argv[1:])
