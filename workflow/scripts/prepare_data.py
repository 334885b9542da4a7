"""Stage: locate a dataset in the local mirror and prepare its uint8 cache."""
from pathlib import Path

import click

from dcpipe import pipeline
from dcpipe.runtime import stage_errors, start_stage


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--dataset", required=True)
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, dataset, out):
    with stage_errors():
        params = start_stage(params_file)
        pipeline.prepare(params, dataset, out, staging=Path("data/raw"))


if __name__ == "__main__":
    main()
