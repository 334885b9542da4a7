"""Stage: condense one synthetic set with gradient matching (resumes from its checkpoint if killed)."""
from pathlib import Path

import click

from dcpipe.jobs import condense_job
from dcpipe.stages.start import set_job_options, stage_job
from dcpipe.stages.condense import condense


@click.command()
@set_job_options(method_default="DC")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--loss", "loss_csv", required=True, type=click.Path(path_type=Path))
def main(params_file, dataset, ipc, method, index, prepared, out, loss_csv):
    with stage_job(params_file, gpu=True, dataset=dataset, ipc=ipc, method=method) as params:
        condense(condense_job(params, dataset, ipc, method, index), prepared, out, loss_csv)


if __name__ == "__main__":
    main()
