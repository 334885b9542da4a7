"""Stage: select a coreset (indices of real training images) for one dataset, IPC and seed."""
from pathlib import Path

import click

from dcpipe.jobs import select_job
from dcpipe.stages.start import set_job_options, stage_job
from dcpipe.stages.select_coreset import select_coreset


@click.command()
@set_job_options()
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--evidence", type=click.Path(path_type=Path), help="whole-set features (herding, kcenter) or counts (forgetting)")
def main(params_file, dataset, ipc, method, index, prepared, out, evidence):
    with stage_job(params_file, dataset=dataset, ipc=ipc, method=method) as params:
        select_coreset(select_job(params, dataset, ipc, method, index, str(evidence) if evidence else None), prepared, out)


if __name__ == "__main__":
    main()
