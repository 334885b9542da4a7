"""Stage: build reports/ (Markdown + HTML page, per-table metrics, plot CSVs, figures) from the declared inputs."""
from pathlib import Path

import click

from dcpipe.stages.start import stage_job
from dcpipe.stages.report import report


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--out-dir", required=True, type=click.Path(path_type=Path))
def main(params_file, out_dir):
    with stage_job(params_file) as params:
        report(params, params_file, out_dir)


if __name__ == "__main__":
    main()
