"""Stage: locate a dataset in the local mirror and prepare its uint8 cache."""
from pathlib import Path

import click

from dcpipe.jobs import prepare_job
from dcpipe.stages.common import stage_job
from dcpipe.stages.prepare_data import prepare_data


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--dataset", required=True)
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, dataset, out):
    with stage_job(params_file) as params:
        prepare_data(prepare_job(params, dataset), out, staging=Path("data/raw"))


if __name__ == "__main__":
    main()
