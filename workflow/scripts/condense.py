"""Stage: condense one synthetic set with gradient matching (resumes from its checkpoint if killed)."""
from pathlib import Path

import click

from dcpipe.runtime import stage_errors
from dcpipe.stages.common import start_stage
from dcpipe.stages.condense import condense


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--dataset", required=True)
@click.option("--ipc", required=True, type=int)
@click.option("--method", default="DC", show_default=True)
@click.option("--set", "index", required=True, type=int)
@click.option("--prepared", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--loss", "loss_csv", required=True, type=click.Path(path_type=Path))
def main(params_file, dataset, ipc, method, index, prepared, out, loss_csv):
    with stage_errors():
        params = start_stage(params_file, gpu=True, dataset=dataset, ipc=ipc, method=method)
        condense(params, dataset, ipc, method, index, prepared, out, loss_csv)


if __name__ == "__main__":
    main()
