"""Protocol runs (reports/records/protocol/*.json, dcpipe record-protocol): cells run end to end at the papers'
protocol from a config/ file in their own checkout, judged against the paper's band like the report's own cells."""

from __future__ import annotations

from ... import paper
from ...methods import parse
from ..collect import Inputs
from ..protocol import cell_stats
from ..section import Budget, Cell, Comparison, Details, Section, ref, stat, status_kind
from ..summary import protocol_budget, status
from .main import source_table

HEADER = ["run", "cell", "ours (mean ± std)", "paper", "status", "budget", "condense min / set", "wall clock"]


def protocol_section(records: list[dict]) -> Section:
    title = "Protocol runs: cells at the papers' protocol"
    if not records:
        return Section("protocol_runs", title, "No protocol run is recorded: run a config/protocol_*.yaml file in "
                       "its own checkout (docs/gpu-and-protocol-runs.md), then dcpipe record-protocol.", HEADER, [])
    rows, comparisons, metrics, details = [], [], {}, []
    for r in records:
        departs = ", ".join(r["departures_from_paper"])
        for c in r["cells"]:
            d, i, m = c["dataset"], c["ipc"], c["method"]
            s = cell_stats(c)
            budget = Budget(s["iterations"], s["sets"], s["models"], s["epochs"])
            published = paper.reference(d, i, m)
            judged = status(s["mean"], published, budget,
                            protocol_budget(d, parse(m).synthetic, m,
                                            followup=source_table(m) == "Follow-up Table 3"))
            ours = stat(s["mean"], s["std"], s["n_models"])
            condense = [x["condense_wall_seconds"] / 60 for x in c["sets"] if "condense_wall_seconds" in x]
            rows.append([r["name"], f"{d}, IPC {i}, {m}", ours, ref(published),
                         Cell(judged.split(":")[0], status_kind(judged)) if published else "no reference", budget.text(), f"{sum(condense) / len(condense):.1f}" if condense else "–", r["wall_clock"]])
            if published is not None:
                label = f"{d}, IPC {i}, {m} (protocol run {r['name']}" + (f"; departs in {departs})" if departs else ")")
                comparisons.append(Comparison(f"{source_table(m)} (protocol run)", label, ours, ref(published), judged,
                                              ours_value=(s["mean"], s["std"]), paper_value=published))
            metrics[f"{r['name']}_{d}_ipc{i}_{m}"] = {"mean": round(s["mean"], 2), "std": round(s["std"], 2),
                                                       "n_models": s["n_models"]}
        commits = ", ".join(x[:8] for x in r["commits"]) + (" with uncommitted changes" if r.get("uncommitted_changes")
                                                            else "")
        details.append(Details(f"Run {r['name']}: command, commit, machine and departures from the paper", [
            ("command", r["command"]), ("parameter file", r["params_file"]), ("commits", commits),
            ("machine", r["machine"]), ("wall clock", r["wall_clock"]),
            *[(f"departs in {k}", v) for k, v in r["departures_from_paper"].items()]]))
    note = ("Each run is one parameter file of config/ run end to end in its own checkout (its header names every "
            "reduction); ours pools every network of every set. Each run's command, commits, machine and departures "
            "are folded below the table.")
    return Section("protocol_runs", title, note, HEADER, rows, metrics=metrics, comparisons=comparisons,
                   details=details)


def protocol_sections(inputs: Inputs) -> list[Section]:
    return [protocol_section([inputs.json(p) for p in inputs.files.get("protocol_records", [])])]
