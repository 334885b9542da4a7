"""The speed sections, from measurements made by hand and committed under reports/records/ (declared inputs of
the report rule): dcpipe bench, the timed default job, the FashionMNIST IPC-1 headline run at the paper's
protocol, and `make gpu-check` on a GPU (optional: shown when reports/records/gpu.json is committed). Each table
names the command and commit that produced its numbers."""

from __future__ import annotations

import re

from ... import paper
from ..collect import Inputs
from ..section import Budget, Comparison, Section, stat
from ..summary import protocol_budget, status

BENCH_PASSES = ("conv_microbenchmark_fp32", "conv_microbenchmark_bf16", "real_gradient_pass_fp32",
                "real_gradient_pass_bf16", "test_pass_fp32", "test_pass_bf16")


def timed_on(record: dict) -> str:
    """The machine a timed record ran on, from its provenance; records made before it named one say nothing."""
    p = record.get("provenance", {})
    return f" on {p.get('gpu') or p['cpu']} ({p['cpu_capability']})" if "cpu" in p else ""


def bench_section(b: dict) -> Section:
    def micro(k):  # the microbenchmark of the pass's own precision (older files: fp32 only)
        return b.get("conv_microbenchmark_" + k[-4:], b["conv_microbenchmark_fp32"])["gflop_per_s"]

    rows = [[k.replace("_", " "), f"{b[k]['gflop_per_s']:.0f}", f"{b[k]['gflop_per_s'] / micro(k):.2f}",
             f"{b[k]['seconds']:.2f}"] for k in BENCH_PASSES if k in b]
    for k in sorted(k for k in b if k.startswith("evaluate_ipc") and "ipc" in b[k]):  # older files: skipped
        e = b[k]
        rows.append([f"evaluate IPC {e['ipc']}: s/model fp32 one by one → one by one ({e['test_precision']} test) "
                     "→ batched", "", "", f"{e['one_by_one_fp32_seconds_per_model']:.1f} → "
                     f"{e['one_by_one_seconds_per_model']:.1f} → {e['batched_seconds_per_model']:.1f}"])
    for k in sorted(k for k in b if k.startswith("condense_ipc") and isinstance(b[k], dict)):
        rows.append([f"condense IPC {k[12:]}: s per outer iteration (real batch {b[k]['batch_real']}/class, "
                     f"loops {' × '.join(map(str, b[k]['loops']))}, real pass {b[k].get('real_precision', 'fp32')})",
                     "", "", f"{b[k]['seconds_per_iteration']:.2f}"])
    if "allocator" in b:
        a = b["allocator"]
        rows.append([f"{a['what']}: glibc default → freed memory kept ({a['speedup']:.2f}×)", "", "",
                     f"{a['glibc_default_seconds']:.2f} → {a['keep_freed_memory_seconds']:.2f}"])
    if "class_gradients" in b:
        c = b["class_gradients"]
        rows.append([f"real gradients of {c.get('classes', 10)} classes: loop → vmap ({c['vmap_speedup']:.2f}×)",
                     "", "", f"{c['loop_seconds']:.2f} → {c['vmap_seconds']:.2f}"])
    commit = (b.get("provenance", {}).get("git_commit") or "unknown")[:8]
    note = (f"{b.get('command', 'dcpipe bench')} on {b['threads']} thread(s), {b['device']}{timed_on(b)}, "
            f"commit {commit}; "
            "GFLOP/s counted by torch.utils.flop_counter, ratio against the conv microbenchmark of the same run and "
            "precision.")
    metrics = {k: {"gflop_per_s": round(b[k]["gflop_per_s"], 1), "seconds": round(b[k]["seconds"], 3)}
               for k in BENCH_PASSES if k in b}
    return Section("speed_bench", "Speed: where the time goes", note,
                   ["measurement", "GFLOP/s", "of conv microbenchmark", "seconds"], rows, metrics=metrics)


def run_section(r: dict) -> Section:
    history = r.get("history", [r])
    comparisons = ""
    if same := r.get("same_params_comparison"):
        comparisons += (f" Same parameters before and after the speed work ({same['what']}): {same['before']['seconds']}"
                        f" s at {same['before']['commit']} → {same['after']['seconds']} s at {same['after']['commit']} "
                        f"({same['speedup']:.2f}×), accuracies {same['accuracies']}.")
    # "before and after on the same machine": two fresh clones timed back to back, since a wall time
    # measured on another instance of these machines differs by up to 1.6x (53 min against 1:18:26)
    if ba := r.get("before_after"):
        comparisons += (f" Before and after the speed switches and the fused kernel on one machine ({ba['machine']}), each from a "
                        f"fresh clone: {ba['before']['wall_clock']} at {ba['before']['commit'][:8]} → "
                        f"{ba['after']['wall_clock']} at {ba['after']['commit'][:8]} ({ba['speedup']:.2f}×).")
    rows = [[h["commit"][:8], h["command"], "" if h.get("snakemake_jobs") is None else str(h["snakemake_jobs"]),
             h["wall_clock"]] for h in history]
    return Section("speed_run", "Speed: the default main job end to end",
                   "Wall time of the whole default job from a fresh clone (set-up included), as recorded in "
                   "reports/records/run.json; each row ran its own commit's params.yaml." + comparisons,
                   ["commit", "command", "jobs", "wall clock"], rows,
                   metrics={"runs": len(history), "last_wall_clock": history[-1]["wall_clock"]})


def headline_budget(h: dict) -> Budget | None:
    """The budget the headline run states in its description (K, epochs) and its per-set records."""
    k, epochs = re.search(r"K = (\d+)", h["what"]), re.search(r"(\d+) epochs", h["what"])
    if not (k and epochs and h["sets"]):
        return None
    models = {s["models"] for s in h["sets"]}
    return Budget(int(k.group(1)), len(h["sets"]), models.pop() if len(models) == 1 else None, int(epochs.group(1)))


def headline_section(h: dict) -> Section:
    published = paper.table1("FashionMNIST", 1, "DC")
    rows = [[f"set {s['set']}", stat(s["mean"], s["std"], s["models"]), str(s["models"]),
             f"{s['condense_wall_seconds'] / 60:.1f}", f"{s['condense_seconds_per_iteration']:.2f}",
             f"{s['evaluate_wall_seconds'] / 60:.1f}"] for s in h["sets"]]
    ours = stat(h["accuracy_mean"], h["accuracy_std"], h["n_models"])
    rows.append([f"all (paper: {stat(*published)})", ours, str(h["n_models"]), "", "", ""])
    budget = headline_budget(h)
    departures = "; ".join(f"{k}: {v}" for k, v in h["departures_from_paper"].items())
    note = (f"{h['what']}: {h['wall_clock_snakemake']} wall ({h['command']}, commit {h['commit'][:8]}, "
            f"{h['machine']}). Departures: {departures}."
            + (f" Budget: {budget.text()}." if budget else ""))
    # the summary line names the departures too: "reproduced" here is at the paper's K, sets, models and epochs, not
    # at every one of its settings
    label = f"FashionMNIST, IPC 1, DC (departs in {', '.join(h['departures_from_paper'])})"
    comparison = Comparison("DC Table 1 (headline run)", label, ours, stat(*published),
                            status(h["accuracy_mean"], published, budget, protocol_budget("FashionMNIST", True)),
                            ours_value=(h["accuracy_mean"], h["accuracy_std"]), paper_value=published)
    return Section("speed_headline", "Speed: the FashionMNIST IPC-1 headline run", note,
                   ["set", "accuracy % (mean ± std)", "models", "condense min", "s / iteration", "evaluate min"],
                   rows, metrics={"mean": round(h["accuracy_mean"], 2), "std": round(h["accuracy_std"], 2),
                                  "n_models": h["n_models"], "wall_clock": h["wall_clock_snakemake"]},
                   comparisons=[comparison])


GPU_HEADER = ["measurement", "result", "seconds"]


def gpu_section(g: dict | None) -> Section:
    """`make gpu-check` (dcpipe.gpu_check) as run on a GPU and committed; a line saying so where none is."""
    if g is None:
        return Section("speed_gpu", "Speed: the GPU check", "No GPU run of make gpu-check is recorded: no CUDA "
                       "kernel of this code has been timed here. On a GPU machine run make gpu-check "
                       "(docs/gpu-and-protocol-runs.md) and commit its reports/gpu.json as reports/records/gpu.json.", GPU_HEADER,
                       [["GPU check", "not recorded", "–"]], metrics={"recorded": False})
    b, c1, ev, t10 = g["budget"], g["ipc1"]["condense"], g["ipc1"]["evaluate"], g["ipc10"]
    tests, lease = g["cuda_tests"], g["lease"]
    models = b["models"]
    rows = [[f"FashionMNIST IPC 1, DC: K = {b['iterations']}, real batch {b['batch_real']}/class",
             f"{c1['seconds_per_iteration']:.3f} s per outer iteration", f"{c1['seconds']:.1f}"]]
    for name, label in (("batched", "batched (vmap)"), ("one_by_one", "one by one")):
        e = ev[name]
        rows.append([f"{models} evaluation models, {ev['train_config']['epochs']} epochs, {label}",
                     f"{stat(e['mean'], e['std'], models)} %, {e['seconds_per_model']:.2f} s per model",
                     f"{e['seconds']:.1f}"])
    rows.append([f"IPC 10, loops {' × '.join(map(str, t10['loops']))}: one outer iteration",
                 f"K = 1000 would take {t10['estimated_K1000_minutes']:.0f} min",
                 f"{t10['steady_seconds_per_iteration']:.2f}"])
    rows.append(["tests marked cuda", tests.get("summary") or tests.get("why", ""),
                 f"{tests['seconds']:.1f}" if "seconds" in tests else "–"])
    rows.append([f"device lease: {lease['devices']} concurrent job(s){' (faked)' if lease['faked'] else ''} + 1",
                 "each its own device" if lease["ok"] else "FAILED: " + ", ".join(
                     k for k, v in lease["checks"].items() if not v), f"{lease['seconds']:.1f}"])
    rows.append(["whole check", "passed" if g["ok"] else "FAILED", f"{g['total_seconds']:.0f}"])
    commit = (g.get("provenance", {}).get("git_commit") or "unknown")[:8]
    note = (f"{g.get('command', 'make gpu-check')} on {g['device_name']} ({g['device']}), torch {g['torch']}, "
            f"CUDA {g.get('cuda') or '–'}, commit {commit}, {b['name']} budget; reports/records/gpu.json. One "
            "condensed set (the paper: 5), trained batched and one by one with the same seeds.")
    published = paper.table1("FashionMNIST", 1, "DC")
    budget = Budget(b["iterations"], 1, models, ev["train_config"]["epochs"])
    comparison = Comparison("DC Table 1 (make gpu-check)", f"FashionMNIST, IPC 1, DC on {g['device_name']}",
                            stat(ev["one_by_one"]["mean"], ev["one_by_one"]["std"], models), stat(*published),
                            status(ev["one_by_one"]["mean"], published, budget, protocol_budget("FashionMNIST", True)),
                            ours_value=(ev["one_by_one"]["mean"], ev["one_by_one"]["std"]), paper_value=published)
    return Section("speed_gpu", "Speed: the GPU check", note, GPU_HEADER, rows,
                   metrics={"recorded": True, "device": g["device_name"], "ok": g["ok"],
                            "total_seconds": round(g["total_seconds"], 1),
                            "condense_ipc1_seconds_per_iteration": round(c1["seconds_per_iteration"], 4),
                            "condense_ipc10_seconds_per_iteration": round(t10["steady_seconds_per_iteration"], 3)},
                   comparisons=[comparison])


BASELINE_HEADER = ["measurement", "baseline s", "default s", "speed-up"]


def baseline_section(b: dict | None) -> Section:
    """`dcpipe bench --baseline`: the same work on the code path before the speed switches and on the params file's switches."""
    if b is None:
        return Section("speed_bench_baseline", "Speed: the same work, before and after the speed switches",
                       "Not recorded: run dcpipe bench --baseline (minutes) and commit reports/records/"
                       "bench_baseline.json.", BASELINE_HEADER, [])
    base, new = b["modes"]["baseline"], b["modes"]["default"]
    rows = []
    for k, v in b["speedup"].items():
        seconds = k.replace("_per_", "_seconds_per_")
        what = k.replace("condense_ipc", "condense IPC ").replace("evaluate_ipc", "evaluate IPC ").replace("_per_",
                                                                                                         ": s per ")
        rows.append([what, f"{base[seconds]:.2f}", f"{new[seconds]:.2f}", f"{v:.2f}×"])
    for mode, m in (("baseline", base), ("default", new)):
        step, precision = m["training_step_batch256"], m["switches"]["train_precision"]
        seconds = f"{step['seconds']:.3f}"
        rows.append([f"{mode}: ConvNet training step at batch 256, {step['gflop_per_s']:.0f} GFLOP/s = "
                     f"{step['fraction_of_conv_microbenchmark']:.2f} of the {precision} conv microbenchmark",
                     seconds if mode == "baseline" else "", seconds if mode == "default" else "", ""])
    st = b["settings"]
    switches = ", ".join(f"{k} {('on' if v else 'off') if isinstance(v, bool) else v}" for k, v in new["switches"].items())
    loops = ", ".join(f"{t} × {s} (IPC {i})" for i, (t, s) in st["loops"].items())
    epochs = ", ".join(f"{e} (IPC {i})" for i, e in st["evaluation_epochs"].items())
    commit = (b.get("provenance", {}).get("git_commit") or "unknown")[:8]
    note = (f"{b.get('command', 'dcpipe bench --baseline')}, commit {commit}{timed_on(b)}: the paper's settings "
            f"(real batch {st['batch_real']}/class, loops T × ς_θ {loops}, evaluation epochs {epochs}, "
            f"{st['models']} models), one process. Baseline: no fusion, fp32 everywhere, per-class loop. Default: "
            f"{switches}. An evaluated model is its training plus the 10,000-image test pass.")
    return Section("speed_bench_baseline", "Speed: the same work, before and after the speed switches", note,
                   BASELINE_HEADER, rows, metrics={k: round(v, 3) for k, v in b["speedup"].items()})


PRECISION_HEADER = ["set", "epochs", "fp32 accuracy %", "bf16 accuracy %", "bf16 − fp32 (points)"]


def precision_train_section(p: dict | None) -> Section:
    """`dcpipe check-precision --pass train`: the same seeds trained in fp32 and under bf16 autocast."""
    title = "Speed: bf16 training, the accuracy check"
    if p is None:
        return Section("speed_precision_train", title, "Not recorded: run dcpipe check-precision --pass train and "
                       "commit reports/records/precision_check_train.json.", PRECISION_HEADER, [])
    checks = p.get("checks", [p])
    rows = [[c["train_set"], str(c["epochs"]), stat(c["fp32"]["mean"], c["fp32"]["std"], len(c["fp32"]["accuracies"])),
             stat(c["bf16"]["mean"], c["bf16"]["std"], len(c["bf16"]["accuracies"])),
             f"{c['mean_difference_points']:+.2f}"] for c in checks]
    note = ("Each row trains the same networks (seeds, initialisations, batches) twice, in fp32 and under bf16 "
            "autocast (evaluate.train_precision), and tests both alike; commands and commits in "
            "reports/records/precision_check_train.json. Its speed is measured by dcpipe bench --baseline.")
    return Section("speed_precision_train", title, note, PRECISION_HEADER, rows,
                   metrics={"max_abs_mean_difference_points": round(max(abs(c["mean_difference_points"])
                                                                        for c in checks), 2)})


def speed_sections(inputs: Inputs) -> list[Section]:
    return [bench_section(inputs.record("bench")), run_section(inputs.record("run")),
            headline_section(inputs.record("headline")), gpu_section(inputs.optional_record("gpu")),
            baseline_section(inputs.optional_record("bench_baseline")),
            precision_train_section(inputs.optional_record("precision_train"))]
