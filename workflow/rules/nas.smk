# Neural architecture search with proxy sets (DC section 3.2): a search split of the dataset without the
# validation images (the coreset and condense rules build the proxies from it, unchanged), shards of the
# candidate architectures trained on every proxy, then whole-training-set ground truth for the top-ranked ones.
if "nas" in P:
    NAS = P["nas"]
    NAS_PREPARED = artifacts.PREPARED.format(dataset=artifacts.search_dataset(NAS["dataset"]))
    NAS_SPLIT_PARAMS = ["seed", "nas.dataset", "nas.validation"]
    NAS_TRAIN_PARAMS = ["seed", "data.train_subset", "nas", "evaluate", "runtime.device"]
    NAS_PROXY_ARGS = " ".join("--proxy " + shlex.quote(f"{j['method']}={artifacts.train_set(**j)}")
                              for j in plan.nas_proxy_jobs(P))

    rule nas_split:
        input:
            prepared=artifacts.PREPARED.format(dataset=NAS["dataset"]),
            code=code("nas_split"),
        output:
            npz=NAS_PREPARED,
            meta=NAS_PREPARED + ".json",
        params:
            dvc=NAS_SPLIT_PARAMS,
            settings=settings(NAS_SPLIT_PARAMS),
        log:
            f"logs/nas/split_{NAS['dataset']}.log",
        priority: 20  # long chain that gates the end of the job: start it as soon as its inputs exist
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        shell:
            "{RUN}/nas_split.py {SCRIPT_ARGS} --prepared {input.prepared:q} --out {output.npz:q} > {log:q} 2>&1"

    rule nas_shard:
        input:
            prepared=NAS_PREPARED,
            sets=[artifacts.train_set(j["dataset"], j["ipc"], j["method"], j["set"]) for j in plan.nas_proxy_jobs(P)],
            code=code("nas_shard"),
        output:
            artifacts.NAS_SHARD,
        params:
            dvc=NAS_TRAIN_PARAMS,
            settings=settings(NAS_TRAIN_PARAMS),
        log:
            "logs/nas/{dataset}_shard{shard}.log",
        wildcard_constraints:
            shard="[0-9]+",
        priority: 10  # long chain that gates the end of the job: start it as soon as its inputs exist
        threads: THREADS
        resources:
            gpu=1,
            mem_mb=6000,
            runtime=720,
        shell:
            "{RUN}/nas_shard.py {SCRIPT_ARGS} --shard {wildcards.shard:q} --prepared {input.prepared:q} {NAS_PROXY_ARGS}"
            " --out {output:q} > {log:q} 2>&1"

    rule nas_ground_truth:
        input:
            prepared=NAS_PREPARED,
            shards=[artifacts.NAS_SHARD.format(dataset=NAS["dataset"], shard=k) for k in range(NAS["shards"])],
            code=code("nas_ground_truth"),
        output:
            artifacts.NAS_GROUND_TRUTH,
        params:
            dvc=NAS_TRAIN_PARAMS,
            settings=settings(NAS_TRAIN_PARAMS),
        log:
            "logs/nas/{dataset}_ground_truth{shard}.log",
        wildcard_constraints:
            shard="[0-9]+",
        priority: 10  # long chain that gates the end of the job: start it as soon as its inputs exist
        threads: THREADS
        resources:
            gpu=1,
            mem_mb=6000,
            runtime=720,
        shell:
            "{RUN}/nas_ground_truth.py {SCRIPT_ARGS} --shard {wildcards.shard:q} --prepared {input.prepared:q}"
            " --out {output:q} {input.shards:q} > {log:q} 2>&1"
