"""Stage: train one shard of the NAS candidates on every proxy and score them on the validation split."""
from pathlib import Path

import click

from dcpipe.jobs import nas_job
from dcpipe.stages.start import stage_job
from dcpipe.stages.nas_shard import nas_shard


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--shard", required=True, type=int)
@click.option("--prepared", required=True, type=click.Path(path_type=Path))
@click.option("--proxy", "proxies", multiple=True, help="NAME=PATH of a proxy set (coreset or condensed)")
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, shard, prepared, proxies, out):
    with stage_job(params_file, gpu=True, shard=shard) as params:
        sets = {name: Path(path) for name, path in (p.split("=", 1) for p in proxies)}
        nas_shard(nas_job(params, shard), shard, prepared, sets, out)


if __name__ == "__main__":
    main()
