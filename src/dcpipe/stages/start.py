"""Every stage's start: validated parameters, the job's check, output folders, threads and the device lease. Imports
no algorithm, so that a stage which trains nothing (download, prepare_data) depends on none of their code
(dcpipe.codedeps: an edit of a module reruns the stages that import it)."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import click

from ..config import PLANNED_PARAMS, check_planned, load_params, runtime
from ..errors import ParamsError
from ..io import check_writable
from ..lease import GpuLease
from ..plan import check_job
from ..runtime import device_problem, setup, stage_errors

_LEASE = None


def start_stage(params_file: str, gpu: bool = False, **job) -> dict:
    """Every stage script starts here: validated params (and the job's --dataset/--ipc/--method, see
    plan.check_job), logging, thread count, and (for GPU rules) a device lease held until the process exits."""
    global _LEASE
    params = load_params(params_file)
    check_planned(params, params_file, os.environ.get(PLANNED_PARAMS))  # not edited since Snakemake planned the run
    check_job(params, params_file, **job)
    for folder in output_folders():
        check_writable(folder)
    setup(runtime(params).threads, fused=runtime(params).fused)
    if gpu:
        _LEASE = GpuLease()
        dev = _LEASE.acquire()
        logging.getLogger("dcpipe").info("device lease: %s", "cpu" if dev is None else f"CUDA_VISIBLE_DEVICES={dev}")
        # Checked here, where the job runs, and after the lease (CUDA_VISIBLE_DEVICES decides what torch sees):
        # the Snakemake head node or the machine running check-params may lack the GPU a cluster job gets, so
        # there the same text is only a warning (cli check-params).
        problem = device_problem(runtime(params).device)
        if problem:
            raise ParamsError(f"{params_file}: {problem}")
    return params


# The command-line options of the stage scripts that name what a job writes: a file (its folder is checked), or
# (OUTPUT_FOLDER_OPTIONS) a folder the job writes into.
OUTPUT_OPTIONS = ("out", "loss_csv", "weights", "features", "forgetting")
OUTPUT_FOLDER_OPTIONS = ("out_dir",)


def output_folders() -> list[Path]:
    """The folders the running stage script writes its outputs into, read from its command line (click's
    context), so that start_stage checks each one can be written before the job's work starts."""
    ctx = click.get_current_context(silent=True)
    options = ctx.params if ctx else {}
    folders = [Path(options[k]).parent for k in OUTPUT_OPTIONS if options.get(k)]
    folders += [Path(options[k]) for k in OUTPUT_FOLDER_OPTIONS if options.get(k)]
    return list(dict.fromkeys(folders))


def set_job_options(method_default: str | None = None):
    """The options that name one set's job (the scripts of condense, select_coreset, evaluate, evaluate_cross);
    condense alone has a default method (DC) for a hand-run job."""
    method = {"default": method_default, "show_default": True} if method_default else {"required": True}
    options = (click.option("--params", "params_file", required=True), click.option("--dataset", required=True),
               click.option("--ipc", required=True, type=int), click.option("--method", **method),
               click.option("--set", "index", required=True, type=int),
               click.option("--prepared", required=True, type=click.Path(path_type=Path)))

    def apply(command):
        for option in reversed(options):
            command = option(command)
        return command

    return apply


@contextlib.contextmanager
def stage_job(params_file: str, gpu: bool = False, **job):
    """A stage script's body runs inside this: its started stage's params, and (runtime.stage_errors) an error
    the user can fix ends the process with `error: <message>` and exit status 2."""
    with stage_errors():
        yield start_stage(params_file, gpu, **job)
