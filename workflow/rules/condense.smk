CONDENSE_PARAMS = ["seed", "data.train_subset", "runtime.device"]


def condense_keys(wc):
    """The condense section key by key, with condense.method_iterations narrowed to the job's own method: a change
    of DM's K must not make Snakemake rerun (and first delete) the DC or DSA sets. A study cell's budget
    (iterations) is in its studies entry; the NAS DC proxy's K in nas.condense_iterations (listed only where the
    file has it: DVC refuses a listed key that the file lacks)."""
    if parse_method(wc.method).plugin:  # its own settings, not the condense section's
        return CONDENSE_PARAMS + method_keys(wc)
    c = P["condense"]
    section = [f"condense.{k}" for k in sorted(c) if k != "method_iterations"]  # sorted: not the file's key order
    section += [f"condense.method_iterations.{wc.method}"] if wc.method in c.get("method_iterations", {}) else []
    nas = P.get("nas", {})
    proxy = "condense_iterations" in nas and wc.dataset == artifacts.search_dataset(nas["dataset"])
    return with_study(CONDENSE_PARAMS + section)(wc) + (["nas.condense_iterations"] if proxy else [])


rule condense:
    input:
        prepared=artifacts.PREPARED,
        code=method_code("condense"),
    output:
        npz=artifacts.SYNTHETIC,
        meta=artifacts.SYNTHETIC + ".json",
        loss=artifacts.LOSS,
    params:
        dvc=condense_keys,
        settings=lambda wc: settings(condense_keys(wc)),
    log:
        "logs/condense/{dataset}_ipc{ipc}_{method}_set{set}.log",
    wildcard_constraints:
        method=synthetic_pattern(),
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=1440,  # minutes: the wall time a cluster job asks for (sbatch -t); a killed job resumes on retry
    shell:
        "{RUN}/condense.py {SCRIPT_ARGS} --dataset {wildcards.dataset:q} --ipc {wildcards.ipc:q}"
        " --method {wildcards.method:q} --set {wildcards.set:q}"
        " --prepared {input.prepared:q} --out {output.npz:q} --loss {output.loss:q} > {log:q} 2>&1"
