"""Stage: train each evaluation network of a cross study on one of its condensed sets and test it."""
from pathlib import Path

import click

from dcpipe.jobs import evaluate_job
from dcpipe.stages.start import set_job_options, stage_job
from dcpipe.stages.evaluate_cross import evaluate_cross


@click.command()
@set_job_options()
@click.option("--train-set", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--model", required=True, help="the evaluation network, trained as named")
def main(params_file, dataset, ipc, method, index, prepared, train_set, out, model):
    with stage_job(params_file, gpu=True, dataset=dataset, ipc=ipc, method=method, model=model) as params:
        evaluate_cross(evaluate_job(params, dataset, ipc, method, index, model), prepared, train_set, out)


if __name__ == "__main__":
    main()
