"""Stage: one run (seed) of the continual-learning experiment, every memory/distillation setting (resumes)."""
from pathlib import Path

import click

from dcpipe.jobs import continual_job
from dcpipe.stages.start import stage_job
from dcpipe.stages.continual import continual


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--run", "run", required=True, type=int)
@click.option("--prepared", required=True, multiple=True, type=click.Path(path_type=Path), help="each task's, in order")
@click.option("--condensed", multiple=True, type=click.Path(path_type=Path), help="DC memory of each task but the last")
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, run, prepared, condensed, out):
    with stage_job(params_file, gpu=True, run=run) as params:
        continual(continual_job(params, run), list(prepared), list(condensed), out)


if __name__ == "__main__":
    main()
