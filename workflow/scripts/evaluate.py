"""Stage: train fresh models on one condensed set or coreset and test them on the whole test set."""
from pathlib import Path

import click

from dcpipe.runtime import stage_errors
from dcpipe.stages.common import set_job_options, start_stage
from dcpipe.stages.evaluate import evaluate


@click.command()
@set_job_options()
@click.option("--train-set", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, dataset, ipc, method, index, prepared, train_set, out):
    with stage_errors():
        params = start_stage(params_file, gpu=True, dataset=dataset, ipc=ipc, method=method)
        evaluate(params, dataset, ipc, method, index, prepared, train_set, out)


if __name__ == "__main__":
    main()
