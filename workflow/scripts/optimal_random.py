"""Stage: optimal random selection (DC Table T12): rank N random coresets by the accuracy they train to."""
from pathlib import Path

import click

from dcpipe.jobs import optimal_random_job
from dcpipe.stages.start import stage_job
from dcpipe.stages.optimal_random import optimal_random


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--dataset", required=True)
@click.option("--ipc", required=True, type=int)
@click.option("--prepared", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, dataset, ipc, prepared, out):
    with stage_job(params_file, gpu=True, dataset=dataset) as params:
        optimal_random(optimal_random_job(params, dataset, ipc), prepared, out)


if __name__ == "__main__":
    main()
