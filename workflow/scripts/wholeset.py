"""Stage: train one evaluation network on the whole training set (features, forgetting counts, upper bound)."""
from pathlib import Path

import click

from dcpipe.jobs import wholeset_job
from dcpipe.stages.start import stage_job
from dcpipe.stages.wholeset import wholeset


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--dataset", required=True)
@click.option("--model", required=True)
@click.option("--net", required=True, type=int, help="which of coresets.whole_models networks")
@click.option("--prepared", required=True, type=click.Path(path_type=Path))
@click.option("--weights", required=True, type=click.Path(path_type=Path))
@click.option("--features", required=True, type=click.Path(path_type=Path))
@click.option("--forgetting", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, dataset, model, net, prepared, weights, features, forgetting, out):
    with stage_job(params_file, gpu=True, dataset=dataset) as params:
        wholeset(wholeset_job(params, dataset, model, net), prepared, weights, features, forgetting, out)


if __name__ == "__main__":
    main()
