"""Stage: train fresh models on one condensed set or coreset and test them on the whole test set."""
from pathlib import Path

import click

from dcpipe.jobs import evaluate_job
from dcpipe.stages.start import set_job_options, stage_job
from dcpipe.stages.evaluate import evaluate


@click.command()
@set_job_options()
@click.option("--train-set", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, dataset, ipc, method, index, prepared, train_set, out):
    with stage_job(params_file, gpu=True, dataset=dataset, ipc=ipc, method=method) as params:
        evaluate(evaluate_job(params, dataset, ipc, method, index), prepared, train_set, out)


if __name__ == "__main__":
    main()
