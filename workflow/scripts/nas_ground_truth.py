"""Stage: train the architectures some proxy ranks in its top k on the whole training split (ground truth)."""
from pathlib import Path

import click

from dcpipe import nas
from dcpipe.runtime import Progress, stage_errors, start_stage


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--shard", required=True, type=int)
@click.option("--prepared", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.argument("shard_files", nargs=-1, type=click.Path(path_type=Path))
def main(params_file, shard, prepared, out, shard_files):
    with stage_errors():
        params = start_stage(params_file, gpu=True)
        nas.check_shard(params, "ground_truth_shards", shard)
        mine = nas.shard(nas.ground_truth_candidates(params, nas.read_shards(list(shard_files))), shard,
                         params["nas"]["ground_truth_shards"])
        nas.run_ground_truth(params, shard, prepared, list(shard_files), out,
                             progress=Progress(len(mine), f"nas ground truth {shard}", 1))


if __name__ == "__main__":
    main()
