"""Stage: train the architectures some proxy ranks in its top k on the whole training split (ground truth)."""
from pathlib import Path

import click

from dcpipe.jobs import nas_job
from dcpipe.stages.start import stage_job
from dcpipe.stages.nas_ground_truth import nas_ground_truth


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--shard", required=True, type=int)
@click.option("--prepared", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.argument("shard_files", nargs=-1, type=click.Path(path_type=Path))
def main(params_file, shard, prepared, out, shard_files):
    with stage_job(params_file, gpu=True, ground_truth_shard=shard) as params:
        nas_ground_truth(nas_job(params), shard, prepared, list(shard_files), out)


if __name__ == "__main__":
    main()
