"""Stage: one dataset's checked raw files (the download job's manifest) into its uint8 cache."""
from pathlib import Path

import click

from dcpipe.stages.start import stage_job
from dcpipe.stages.prepare_data import prepare_data


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--dataset", required=True)
@click.option("--raw", required=True, type=click.Path(path_type=Path), help="the download job's manifest")
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, dataset, raw, out):
    with stage_job(params_file):
        prepare_data(dataset, raw, out)


if __name__ == "__main__":
    main()
