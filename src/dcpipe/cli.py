"""The `dcpipe` command: utilities around the pipeline (the stages themselves run under Snakemake or DVC)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from . import artifacts, bench as bench_mod, config, data, datasets, registry
from .config import ParamsError, load_params
from .dvcgen import render
from .errors import DataError
from .jobs import score_job
from .io import atomic_path, check_writable, provenance, write_json
from .plan import download_lines, fetch_plans, missing_data_message, unreachable_message
from .plansize import large_plan_message
from .report.protocol import cell_stats, protocol_record
from .runtime import device_problem, pick_device, setup, stage_errors
from .score import summary_line
from .score_config import PIXELS
from .set_files import trajectory_folder
from .stages.common import training_set
from .stages.score import score as score_file
from .train import TrainConfig, compare_test_precision, compare_train_precision


@click.group()
def main():
    """Dataset condensation with gradient matching: pipeline utilities."""


@main.command("check-params")
@click.argument("params_file", default="params.yaml")
@click.option("--local", is_flag=True, help="the jobs run on this machine (dvc repro): what it lacks is an error")
def check_params(params_file, local):
    """Validate a parameter file (schema, names, budgets) and exit non-zero on the first problem.

    Says which datasets the plan downloads (MB, hosts). What this machine lacks is a warning (exit 0), since the
    jobs may run elsewhere: data that no mirror holds with data.download false (each download job would stop at
    its start; a real Snakemake run stops before its first job), or CUDA for runtime.device: cuda. With --local
    it is an error (exit 2), and the download URLs are asked whether they answer: DVC has no start hook, so
    `make dvc-repro` runs this first."""

    try:
        params = load_params(params_file)
    except ParamsError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    large = large_plan_message(params)  # not this machine's lack: a warning, with --local too
    if large:
        click.echo(f"warning: {params_file}: {large}", err=True)
    problems = []
    for e in registry.plugins().values():  # what each plug-in name runs, checked (it imports, its signature fits)
        where = e.template if e.kind == "file" else f"{e.target} in {e.source() or '?'}"
        click.echo(f"method: {e.name} ({e.kind or 'installed'}, {e.origin}): {where}", err=True)
    plans = fetch_plans(params)
    for line in download_lines(plans):
        click.echo(line, err=True)
    missing = missing_data_message(plans, params) or (unreachable_message(plans, params) if local else None)
    if missing:
        problems.append(missing)
    device = device_problem(config.runtime(params).device)
    if device:
        problems.append(device + ("" if local else " (each GPU stage stops at its start where that holds)"))
    for problem in problems:
        click.echo(f"{'error' if local else 'warning'}: {params_file}: {problem}", err=True)
    if local and problems:
        sys.exit(2)
    click.echo(f"{params_file}: ok")


@main.command("dvc-yaml")
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("dvc.yaml"), show_default=True)
@click.option("--check", is_flag=True, help="exit 1 if OUT differs from what would be generated")
def dvc_yaml(params_file, out, check):
    """Generate dvc.yaml from the Snakemake DAG (one source of truth for both runners)."""

    text = render(Path("Snakefile"), params_file)
    if check:
        if not out.exists() or out.read_text() != text:
            click.echo(f"{out} is stale: run `dcpipe dvc-yaml --params {params_file} --out {out}`", err=True)
            sys.exit(1)
        click.echo(f"{out}: current")
        return
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    click.echo(f"wrote {out}")


@main.command("check-precision")
@click.option("--prepared", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--train-set", required=True, help="a set's .npz, or 'whole' for the whole training split")
@click.option("--models", default=3, show_default=True)
@click.option("--epochs", default=300, show_default=True)
@click.option("--pass", "which", type=click.Choice(["test", "train"]), default="test", show_default=True,
              help="test: the same networks tested in fp32 and bf16; train: the same seeds trained in fp32 and bf16")
@click.option("--threads", default=2, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="default: reports/records/precision_check.json (test), precision_check_train.json (train)")
def check_precision(prepared, train_set, models, epochs, which, threads, out):
    """Measure what bf16 autocast changes, for the test pass or for training (evaluate.test_precision,
    evaluate.train_precision); the fused chain is on, as in the pipeline."""
    setup(threads=threads)
    d = data.load(prepared)
    x, y = (d.x_train, d.y_train) if train_set == "whole" else training_set(Path(train_set), d)
    compare = compare_test_precision if which == "test" else compare_train_precision
    res = compare("ConvNet", models, x, y, d.x_test, d.y_test, d.num_classes, TrainConfig(epochs=epochs), seed=0)
    out = out or Path("reports/records") / ("precision_check.json" if which == "test" else "precision_check_train.json")
    res.update(prepared=str(prepared), train_set=str(train_set), epochs=epochs, provenance=provenance(),
               command=" ".join(["dcpipe"] + sys.argv[1:]))
    write_json(out, res)
    if which == "test":
        click.echo(f"max |fp32 - bf16| = {res['max_abs_diff_points']:.2f} points over {models} models; "
                   f"test pass {res['speedup']:.2f}x faster in bf16 -> {out}")
    else:
        click.echo(f"fp32 {res['fp32']['mean']:.2f} ± {res['fp32']['std']:.2f}, bf16 {res['bf16']['mean']:.2f} ± "
                   f"{res['bf16']['std']:.2f} over {models} models each; training {res['speedup']:.2f}x faster in "
                   f"bf16 -> {out}")


@main.command("bench")
@click.option("--params", "params_file", default="params.yaml", show_default=True,
              type=click.Path(exists=True, path_type=Path), help="condensation and evaluation settings to time")
@click.option("--prepared", default="data/prepared/FashionMNIST.npz", show_default=True,
              type=click.Path(exists=True, path_type=Path))
@click.option("--models", default=20, show_default=True, help="evaluation models per IPC, one by one vs batched")
@click.option("--threads", default=2, show_default=True)
@click.option("--baseline", is_flag=True, help="only the speed switches' equal-work comparison: no fusion and fp32 "
              "against the params file's switches, at the paper's settings (-> reports/records/bench_baseline.json)")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="default: reports/records/bench.json (bench_baseline.json with --baseline)")
def bench(params_file, prepared, models, threads, baseline, out):
    """Measure where the time goes (JSON): conv microbenchmark, real-gradient and test passes, the allocator,
    vectorised class gradients, batched evaluation and condensation iterations at IPC 1 and 10."""

    setup(threads=threads)
    params = config.load_params(params_file)
    d = data.load(prepared, pick_device())
    if baseline:
        out = out or Path("reports/records/bench_baseline.json")
        switches = {"fused": config.runtime(params).fused, **{k: v for k, v in dataclasses.asdict(
            config.condense_config(params, 1, "DC")).items() if k in ("real_precision", "inner_precision")},
            **{k: getattr(config.train_config(params, d.name, 1), k) for k in ("train_precision", "test_precision")}}
        res = bench_mod.baseline(d, switches, n_models=models)
        res.update(prepared=str(prepared), params_file=str(params_file), provenance=provenance(),
                   command=" ".join(["dcpipe"] + sys.argv[1:]))
        write_json(out, res)
        for k, v in res["speedup"].items():
            click.echo(f"{k:32s} {v:5.2f}x  (baseline {res['modes']['baseline'][k.replace('_per_', '_seconds_per_')]:.2f} s, "
                       f"default {res['modes']['default'][k.replace('_per_', '_seconds_per_')]:.2f} s)")
        click.echo(f"-> {out}")
        return
    out = out or Path("reports/records/bench.json")
    ipcs = (1, 10)
    epochs = {i: config.train_config(params, d.name, i).epochs for i in ipcs}
    cfgs = {i: config.condense_config(params, i, "DC") for i in ipcs}
    res = bench_mod.run(d, n_models=models, batch_real=cfgs[1].batch_real, epochs=epochs, condense_cfgs=cfgs,
                        test_precision=config.train_config(params, d.name, 1).test_precision)
    res.update(prepared=str(prepared), params_file=str(params_file), provenance=provenance(),
               command=" ".join(["dcpipe"] + sys.argv[1:]))
    write_json(out, res)
    for key in ("conv_microbenchmark_fp32", "conv_microbenchmark_bf16", "real_gradient_pass_fp32",
                "real_gradient_pass_bf16", "test_pass_fp32", "test_pass_bf16"):
        click.echo(f"{key:28s} {res[key]['gflop_per_s']:7.1f} GFLOP/s  ({res[key]['seconds']:.3f} s)")
    if "allocator" in res:
        click.echo(f"allocator: {res['allocator']['speedup']:.2f}x faster with freed memory kept")
    click.echo(f"class gradients: vmap {res['class_gradients']['vmap_speedup']:.2f}x the per-class loop")
    for i in ipcs:
        e = res[f"evaluate_ipc{i}"]
        click.echo(f"evaluate IPC {i}: {e['one_by_one_fp32_seconds_per_model']:.2f} s/model one by one fp32, "
                   f"{e['one_by_one_seconds_per_model']:.2f} one by one, {e['batched_seconds_per_model']:.2f} batched")
        click.echo(f"condense IPC {i}: {res[f'condense_ipc{i}']['seconds_per_iteration']:.2f} s per outer iteration")
    click.echo(f"-> {out}")


@main.command("score")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--dataset", required=True, help="the prepared dataset the set is for (its shape, classes, test set)")
@click.option("--params", "params_file", default="params.yaml", show_default=True, help="its score: section is the protocol")
@click.option("--prepared", type=click.Path(path_type=Path), default=None, help="default: data/prepared/<dataset>.npz")
@click.option("--entry", type=int, default=None, help="which [images, labels] pair of a res_*.pt  [default: -1, the last]")
@click.option("--pixels", type=click.Choice(PIXELS), default="normalised", show_default=True,
              help="normalised: the dataset's mean/std already applied; unit: [0, 1]; uint8: 0-255; zca: "
                   "ZCA-whitened (refused: not supported)")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="default: <path>.score.json")
@click.option("--force", is_flag=True, help="replace an existing --out that is not a score result")
def score(path, dataset, params_file, prepared, entry, pixels, out, force):
    """Score a distilled set (.npz, .safetensors, the authors' res_*.pt, or MTT's/DATM's folder of images_best.pt
    and labels_best.pt) under a fixed protocol: mean ± std, 95% CI, the gap to random real images of the same
    size, and the wall time (printed and written as JSON)."""

    with stage_errors():
        if entry is not None and (path.suffix not in (".pt", ".pth") or trajectory_folder(path)):
            raise ParamsError(f"--entry {entry}: applies to the authors' res_*.pt files (a list of [images, labels] "
                              f"pairs); {path} holds one set: drop --entry")
        params = load_params(params_file)
        prepared = _prepared_to_score_on(dataset, prepared, params_file)
        setup(config.runtime(params).threads, fused=config.runtime(params).fused)
        out = out or Path(str(path) + ".score.json")
        _check_score_out(out, {"the set being scored": path, "the prepared dataset": prepared,
                               "the parameter file": Path(params_file)}, force)
        check_writable(out.parent)  # before any network trains
        result = score_file(score_job(params, dataset), path, prepared, out, -1 if entry is None else entry, pixels)
        click.echo(f"{path}: {summary_line(result)} -> {out}")


def _check_score_out(out: Path, inputs: dict[str, Path], force: bool) -> None:
    """Refuse, before any network trains, an --out whose result (1 KB of JSON) would replace data: a folder, one of
    the command's inputs (through a link too), a file under the pipeline's data/ folder (its jobs' artifacts), or
    an existing file that is not a score result (unless --force)."""
    name = f"{inputs['the set being scored'].name}.score.json"
    elsewhere = f"name another file, e.g. --out {name}"
    if out.is_dir():
        raise ParamsError(f"--out {out}: is a folder; name a file, e.g. --out {out / name}")
    for what, p in inputs.items():
        if out.resolve() == p.resolve() or (out.exists() and p.exists() and out.samefile(p)):
            raise ParamsError(f"--out {out}: is {what} ({p}), which the result would replace; {elsewhere}")
    if out.resolve().is_relative_to(Path(DATA_FOLDER).resolve()):
        raise ParamsError(f"--out {out}: is under the pipeline's {DATA_FOLDER}/ folder, whose files its jobs write and "
                          f"read; {elsewhere}")
    if out.exists() and not force and not _is_score_result(out):
        raise ParamsError(f"--out {out}: exists and is not a score result; {elsewhere}, or pass --force to replace it")


DATA_FOLDER = Path(artifacts.PREPARED).parts[0]  # every artifact's folder (data/), relative to the checkout


def _is_score_result(path: Path) -> bool:
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):  # unreadable, not text, not JSON
        return False
    return isinstance(result, dict) and {"set", "protocol", "accuracies"} <= result.keys()


def _prepared_to_score_on(dataset: str, prepared: Path | None, params_file: str) -> Path:
    """The prepared dataset `dcpipe score` tests on: --prepared, else a known dataset's, made first (the error
    gives the command that makes it, with the parameter file the user named)."""
    if prepared is None:
        try:
            datasets.dataset_spec(dataset)
        except DataError as e:
            raise ParamsError(f"--dataset: {e}") from None
    default = artifacts.PREPARED.format(dataset=dataset)
    prepared = prepared or Path(default)
    if not prepared.is_file():
        config_option = "" if params_file == "params.yaml" else f" --config params={params_file}"
        raise ParamsError(f"{prepared}: prepared {dataset} not found; make it first: "
                          f"snakemake --cores 1{config_option} {default}")
    return prepared


@main.command("record-protocol")
@click.option("--params", "params_file", required=True, help="the config/ file the run used, relative to CHECKOUT")
@click.option("--checkout", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="the checkout the run wrote its data/ in")
@click.option("--name", required=True, help="the record's name: reports/records/protocol/<name>.json")
@click.option("--command", "command_line", required=True, help="the exact command that ran it")
@click.option("--wall", "wall_clock", required=True, help="its wall time, H:MM:SS")
@click.option("--machine", required=True, help="what it ran on, and what else ran beside it")
@click.option("--departure", multiple=True, metavar="KEY=TEXT", help="one departure from the paper (repeatable)")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="default: reports/records/protocol/<name>.json here")
def record_protocol(params_file, checkout, name, command_line, wall_clock, machine, departure, out):
    """Record a finished protocol run (every cell's networks, costs, command, wall time, departures) for the
    report's "Protocol runs" section."""
    with stage_errors():
        bad = [d for d in departure if "=" not in d]
        if bad:
            raise ParamsError(f"--departure {bad[0]!r}: write KEY=TEXT, e.g. 'condense.batch_real=64 (paper 256)'")
        params = load_params(checkout / params_file)
        record = protocol_record(params, checkout, name=name, params_file=params_file, command=command_line,
                                 wall_clock=wall_clock, machine=machine,
                                 departures=dict(d.split("=", 1) for d in departure))
        out = out or Path("reports/records/protocol") / f"{name}.json"
        write_json(out, record)
        for c in record["cells"]:
            s = cell_stats(c)
            click.echo(f"{c['dataset']} IPC {c['ipc']} {c['method']}: {s['mean']:.2f} over {s['n_models']} networks")
        click.echo(f"-> {out}")


if __name__ == "__main__":
    main()
