"""Stage: one dataset's files, checked, into data/raw (already there, a local mirror, or the URLs)."""
from pathlib import Path

import click

from dcpipe.jobs import download_job
from dcpipe.stages.start import stage_job
from dcpipe.stages.download import download


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--dataset", required=True)
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, dataset, out):
    with stage_job(params_file) as params:
        download(download_job(params, dataset), out)


if __name__ == "__main__":
    main()
