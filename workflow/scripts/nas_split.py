"""Stage: hold the NAS validation images out of the training split (a prepared-dataset variant)."""
from pathlib import Path

import click

from dcpipe.jobs import nas_job
from dcpipe.stages.start import stage_job
from dcpipe.stages.nas_split import nas_split


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--prepared", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, prepared, out):
    with stage_job(params_file) as params:
        nas_split(nas_job(params), prepared, out)


if __name__ == "__main__":
    main()
