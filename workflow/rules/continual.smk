# Continual learning with a rehearsal memory (DC paper section 3.2): one job per run (seed) trains every setting
# ({herding, DC} x {with, without distillation}) on the task sequence. The DC memory sets are condensed by the
# condense rule (condense.smk) on the tasks' 32x32 RGB datasets (datasets.rgb32_name), planned by
# plan.continual_condensed and accepted by plan.check_job like the main table's sets.
CONTINUAL_PARAMS = ["seed", "data.train_subset", "continual", "runtime.device"]

if "continual" in P:

    rule continual:
        input:
            prepared=[artifacts.PREPARED.format(dataset=d) for d in plan.continual_datasets(P)],
            condensed=lambda wc: [artifacts.SYNTHETIC.format(**j) for j in plan.continual_condensed(P, int(wc.run))],
            code=code("continual"),
        output:
            artifacts.CONTINUAL,
        params:
            dvc=CONTINUAL_PARAMS,
            settings=settings(CONTINUAL_PARAMS),
            files=lambda wc, input: " ".join([f"--prepared {shlex.quote(p)}" for p in input.prepared]
                                             + [f"--condensed {shlex.quote(p)}" for p in input.condensed]),
        log:
            "logs/continual/run{run}.log",
        wildcard_constraints:
            run="[0-9]+",
        priority: 5  # long chain that gates the end of the job: start it as soon as its inputs exist
        threads: THREADS
        resources:
            gpu=1,
            mem_mb=6000,
            runtime=720,
        shell:
            "{RUN}/continual.py {SCRIPT_ARGS} --run {wildcards.run:q} {params.files} --out {output:q} > {log:q} 2>&1"
