"""Snakemake's own shell commands for a parameter file, in waves, for a machine without Snakemake (a lent GPU).

    python workflow/jobs_without_snakemake.py --config params=config/X.yaml > jobs.sh   # here, with Snakemake
    bash jobs.sh 8                                                                      # there: 8 jobs at a time

It reads `snakemake -n -p` (the commands Snakemake would run, word for word) and writes a bash script that creates
the jobs' output and log folders and runs each rule's jobs together, rules in dependency order (a rule starts when
every job of the rules before it has finished). Snakemake's own `all` and `report` rules are left out: the report
is built where Snakemake is. A job that fails stops the script after its wave (its log says why). A job whose
outputs all exist is skipped (every stage writes them by rename, so they are whole): a script cut off at a lent
machine's time limit resumes where it stopped, and the stages resume their own checkpoints.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

# The pipeline's rules in dependency order (workflow/rules/*.smk): each reads only outputs of rules before it.
WAVES = ("download", "prepare_data", "wholeset", "optimal_random", "nas_split", "condense", "select_coreset", "evaluate",
         "evaluate_cross", "nas_shard", "nas_ground_truth", "score", "continual")


def dry_run(args: list[str]) -> str:
    res = subprocess.run(["snakemake", "-n", "-p", *args], capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"error: snakemake -n -p failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return res.stdout + res.stderr


def jobs(text: str) -> list[tuple[str, list[str], list[str], str]]:
    """(rule, output paths, log paths, shell command) of every job of the dry run."""
    out = []
    for block in re.split(r"\n(?=\[[A-Z][a-z]{2} )", text):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        cmd = re.search(r"^Shell command: (.+)$", block, re.M)
        if not rule or not cmd:
            continue
        paths = {}
        for key in ("output", "log"):
            m = re.search(rf"^    {key}: (.+)$", block, re.M)
            paths[key] = [p.strip() for p in m.group(1).split(",")] if m else []
        out.append((rule.group(1), paths["output"], paths["log"], cmd.group(1).strip()))
    return out


def unless_done(outputs: list[str], command: str) -> str:
    """command, skipped where every output already exists."""
    if not outputs:
        return command
    done = " && ".join(f"[ -e {shlex.quote(p)} ]" for p in outputs)
    return f"if {done}; then echo 'done already: {outputs[0]}'; else {command}; fi"


def script(found: list[tuple[str, list[str], list[str], str]]) -> str:
    unknown = sorted({r for r, _, _, _ in found} - set(WAVES) - {"all", "report"})
    if unknown:
        sys.exit(f"error: rules {unknown} have no wave; add them to WAVES in {__file__}")
    lines = ["#!/usr/bin/env bash", "# written by workflow/jobs_without_snakemake.py from `snakemake -n -p`",
             "set -uo pipefail", 'P="${1:-4}"']
    dirs = sorted({os.path.dirname(p) for _, outs, logs, _ in found for p in outs + logs if os.path.dirname(p)})
    lines.append("mkdir -p " + " ".join(shlex.quote(d) for d in dirs))
    for wave in WAVES:
        cmds = [unless_done(outs, c) for r, outs, _, c in found if r == wave]
        if not cmds:
            continue
        lines.append(f'echo "$(date +%T) {wave}: {len(cmds)} jobs"')
        body = "\n".join(cmds)
        lines.append(f"xargs -d '\\n' -P \"$P\" -I{{}} bash -c '{{}} || {{ echo \"FAILED: {{}}\" >&2; exit 255; }}' <<'JOBS' || exit 1")
        lines += [body, "JOBS"]
    lines.append('echo "$(date +%T) done"')
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(script(jobs(dry_run(sys.argv[1:]))))
