"""Stage: train each evaluation network of a cross study on one of its condensed sets and test it."""
from pathlib import Path

import click

from dcpipe.runtime import stage_errors
from dcpipe.stages.common import start_stage
from dcpipe.stages.evaluate import evaluate_cross


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--dataset", required=True)
@click.option("--ipc", required=True, type=int)
@click.option("--method", required=True)
@click.option("--set", "index", required=True, type=int)
@click.option("--prepared", required=True, type=click.Path(path_type=Path))
@click.option("--train-set", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--model", required=True, help="the evaluation network, trained as named")
def main(params_file, dataset, ipc, method, index, prepared, train_set, out, model):
    with stage_errors():
        params = start_stage(params_file, gpu=True, dataset=dataset, ipc=ipc, method=method, model=model)
        evaluate_cross(params, dataset, ipc, method, index, prepared, train_set, out, model)


if __name__ == "__main__":
    main()
