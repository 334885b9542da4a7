"""Stage: score one external distilled set (params score.files) under the score section's fixed protocol."""
from pathlib import Path

import click

from dcpipe.errors import ParamsError
from dcpipe.jobs import score_job
from dcpipe.plan import score_jobs
from dcpipe.stages.start import stage_job
from dcpipe.stages.score import score


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--name", required=True)
@click.option("--dataset", required=True)
@click.option("--set-file", required=True, type=click.Path(path_type=Path))
@click.option("--entry", default=-1, show_default=True)
@click.option("--pixels", default="normalised", show_default=True)
@click.option("--prepared", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, name, dataset, set_file, entry, pixels, prepared, out):
    with stage_job(params_file, gpu=True) as params:
        planned = [f["name"] for f in score_jobs(params)]
        if name not in planned:
            raise ParamsError(f"{params_file}: --name {name!r} is not in score.files (planned: {', '.join(planned) or 'none'})")
        score(score_job(params, dataset), set_file, prepared, out, entry, pixels)


if __name__ == "__main__":
    main()
