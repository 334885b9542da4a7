"""Stage: train one shard of the NAS candidates on every proxy and score them on the validation split."""
from pathlib import Path

import click

from dcpipe import nas
from dcpipe.runtime import Progress, stage_errors, start_stage


@click.command()
@click.option("--params", "params_file", required=True)
@click.option("--shard", required=True, type=int)
@click.option("--prepared", required=True, type=click.Path(path_type=Path))
@click.option("--proxy", "proxies", multiple=True, help="NAME=PATH of a proxy set (coreset or condensed)")
@click.option("--out", required=True, type=click.Path(path_type=Path))
def main(params_file, shard, prepared, proxies, out):
    with stage_errors():
        params = start_stage(params_file, gpu=True)
        nas.check_shard(params, "shards", shard)
        sets = dict(p.split("=", 1) for p in proxies)
        n = len(nas.shard(nas.candidates(params), shard, params["nas"]["shards"]))
        nas.run_shard(params, shard, prepared, {k: Path(v) for k, v in sets.items()}, out,
                      progress=Progress(n, f"nas shard {shard}", 1))


if __name__ == "__main__":
    main()
