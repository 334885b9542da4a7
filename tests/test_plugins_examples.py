"""The example plug-ins (examples/plugins, docs/plugins.md) on real MNIST (data.train_subset 50) through the door:
each returns a set that passes the checks, and, called inside the set's seed, a rerun is bit-identical. The DM
variant resumes from its checkpoint to the same set as an uninterrupted run. The installed-package route: the
package examples/plugins/package, installed by pip, is a method by its entry point alone (no plugins: entry) for
the registry, `dcpipe check-params` and `snakemake -n`."""

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import ROOT, copy_workflow, run

EXAMPLES = ROOT / "examples/plugins"
SEED = 1234


def nothing(step, total, value=None):
    pass


@pytest.fixture(scope="module")
def mnist(prepared):
    from dcpipe.data import load

    return load(prepared("MNIST"), train_subset=50)


@pytest.fixture(scope="module")
def examples():
    """The examples' registry entries, as examples/plugins/params.yaml declares them (its `plugins:` section)."""
    from dcpipe import registry
    from dcpipe.config import load_params

    before = list(sys.path)
    load_params(EXAMPLES / "params.yaml")
    entries = {n: registry.entry(n) for n in ("KMeans", "DMVariant", "SoftKD")}
    yield entries
    registry.declare(None, ROOT, "test")  # the declared plug-ins of this module's parameter file, forgotten
    sys.path[:] = before
    for module in ("kmeans", "dm_variant", "soft_labels"):
        sys.modules.pop(module, None)


def make(e, d, ipc, seed=SEED, progress=nothing, checkpoint=None, **settings):
    """The entry's set through the door (dcpipe.door), with `settings` over its own."""
    from dcpipe import door

    fn = door.select if e.kind == "coreset" else door.synthesise
    return fn(e, d, ipc, seed, "cpu", {**e.settings, **settings}, progress, checkpoint)


def test_the_parameter_file_declares_the_examples(examples):
    """Each example is a plug-in of its parameter file (path "." is examples/plugins), with its kind and its own
    file as the code its jobs depend on."""
    kinds = {n: e.kind for n, e in examples.items()}
    assert kinds == {"KMeans": "coreset", "DMVariant": "synthetic", "SoftKD": "synthetic"}
    sources = {n: Path(e.source()).resolve() for n, e in examples.items()}
    assert sources == {"KMeans": EXAMPLES / "kmeans.py", "DMVariant": EXAMPLES / "dm_variant.py",
                       "SoftKD": EXAMPLES / "soft_labels.py"}
    assert all(e.origin == f"plugins.{n}" for n, e in examples.items())


@pytest.mark.parametrize("ipc", [1, 10])
def test_kmeans_selects_the_images_nearest_the_centroids(examples, mnist, ipc):
    """`ipc` distinct real images of each class (the door's checks), the same on a rerun; at IPC 1 the one k-means
    centroid is the class mean, so the pick is the image nearest it."""
    idx = make(examples["KMeans"], mnist, ipc, iters=5)
    assert torch.equal(idx, make(examples["KMeans"], mnist, ipc, iters=5))
    assert torch.bincount(mnist.y_train[idx], minlength=10).tolist() == [ipc] * 10
    if ipc == 1:
        for c in range(10):
            own = torch.nonzero(mnist.y_train == c).flatten()
            x = mnist.x_train[own].flatten(1)
            assert idx[c] == own[torch.cdist(x.mean(0, keepdim=True), x).argmin()]
    else:  # another seed starts k-means elsewhere
        assert not torch.equal(idx, make(examples["KMeans"], mnist, ipc, seed=SEED + 1, iters=5))


@pytest.mark.parametrize("ipc", [1, 10])
def test_dm_variant_matches_the_mean_embeddings(examples, mnist, ipc):
    """A checked set with its loss curve, bit-identical on a rerun; the optimised images' mean embeddings are nearer
    the real classes' than the real images they started from, under random networks it never saw."""
    e = examples["DMVariant"]
    made = make(e, mnist, ipc, iterations=8)
    again = make(e, mnist, ipc, iterations=8)
    assert torch.equal(made.images, again.images) and made.curves == again.curves
    assert len(made.curves["matching_loss"]) == 8 and made.soft is None
    assert torch.equal(made.labels, torch.arange(10).repeat_interleave(ipc))
    start = make(e, mnist, ipc, iterations=0).images  # the same seed: the initial real images
    assert not torch.equal(start, made.images)

    embedder = pkgutil.resolve_name("dm_variant:embedder")

    def gap(images):
        total = 0.0
        with torch.random.fork_rng():
            torch.manual_seed(99)
            nets = [embedder(1) for _ in range(5)]
        for net in nets:
            with torch.no_grad():
                real = torch.stack([net(mnist.x_train[mnist.y_train == c]).mean(0) for c in range(10)])
                total += ((real - net(images).view(10, ipc, -1).mean(1)) ** 2).sum().item()
        return total

    assert gap(made.images) < 0.8 * gap(start)


def test_dm_variant_resumes_from_its_checkpoint(examples, mnist, tmp_path):
    """Killed after step 5 (its progress callback raises there), rerun: it resumes at the last checkpoint (step 4)
    and ends with the images and loss curve of an uninterrupted run."""
    from dcpipe.errors import MethodError
    from dcpipe.plugin import Checkpoint

    e = examples["DMVariant"]
    settings = {**e.settings, "iterations": 8, "checkpoint_every": 2}
    checkpoint = Checkpoint(tmp_path / "DMVariant.ckpt.safetensors", {"method": e.name, "seed": SEED,
                                                                      "settings": settings})

    class Killed(Exception):
        pass

    def killed_at_5(step, total, value=None):
        if step == 5:
            raise Killed  # as far as the method knows, the process is gone
    with pytest.raises(MethodError, match="raised Killed"):
        make(e, mnist, 1, progress=killed_at_5, checkpoint=checkpoint, **settings)
    assert int(checkpoint.load()["next"]) == 4

    steps = []
    resumed = make(e, mnist, 1, progress=lambda step, total, value=None: steps.append(step), checkpoint=checkpoint,
                   **settings)
    assert steps == [4, 5, 6, 7]
    whole = make(e, mnist, 1, **settings)
    assert torch.equal(resumed.images, whole.images)
    assert resumed.curves == whole.curves


@pytest.mark.parametrize("ipc", [1, 10])
def test_soft_labels_are_checked_distributions(examples, mnist, ipc):
    """Soft labels, one row per image summing to 1, each row's argmax the image's class and the one-hot share
    1 - alpha at least; bit-identical on a rerun."""
    e = examples["SoftKD"]
    made = make(e, mnist, ipc, epochs=1)
    again = make(e, mnist, ipc, epochs=1)
    assert torch.equal(made.images, again.images) and torch.equal(made.soft, again.soft)
    assert made.soft.shape == (10 * ipc, 10)
    assert torch.allclose(made.soft.sum(1), torch.ones(10 * ipc), atol=1e-5)
    assert torch.equal(made.soft.argmax(1), made.labels)
    own = made.soft.gather(1, made.labels[:, None]).flatten()
    assert (own >= 1 - e.settings["alpha"] - 1e-6).all() and (made.soft < 1).all()  # the teacher's share is in every row
    # real training images: each one is an image of its labelled class
    for image, label in zip(made.images, made.labels):
        assert ((mnist.x_train == image).flatten(1).all(1) & (mnist.y_train == label)).any()


def test_soft_labels_refuse_an_alpha_that_could_move_the_argmax(examples, mnist):
    from dcpipe.errors import MethodError

    with pytest.raises(MethodError, match=r"method SoftKD \(soft_labels:synthesise\): raised ValueError: alpha 0.5"):
        make(examples["SoftKD"], mnist, 1, epochs=1, alpha=0.5)


# The installed-package route: pip installs examples/plugins/package (a copy: pip builds in the source folder)
# into a folder put on the path, as site-packages would be.

@pytest.fixture(scope="module")
def installed_package(tmp_path_factory):
    """The folder pip installed dcpipe-centroids into (its module and its .dist-info with entry_points.txt)."""
    base = tmp_path_factory.mktemp("centroids")
    source = shutil.copytree(EXAMPLES / "package", base / "source")
    target = base / "site"
    run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)], base)
    assert (next(target.glob("dcpipe_centroids-*.dist-info")) / "entry_points.txt").read_text().split() == \
        ["[dcpipe.methods]", "Centroids", "=", "dcpipe_centroids:synthesise"]
    return target


@pytest.fixture
def on_path(installed_package, monkeypatch):
    from dcpipe import registry

    monkeypatch.syspath_prepend(str(installed_package))
    registry.installed.cache_clear()
    yield installed_package
    registry.installed.cache_clear()
    registry._DECLARED.pop("Centroids", None)
    sys.modules.pop("dcpipe_centroids", None)


def test_an_installed_package_is_a_method_by_its_entry_point(on_path, mnist):
    """entry("Centroids") resolves from the entry point alone, its kind from the decorator; its set passes the
    checks, is bit-identical on a rerun, and at IPC 1 is each class's mean image."""
    from dcpipe import registry

    e = registry.entry("Centroids")
    assert e.kind == "synthetic" and e.target == "dcpipe_centroids:synthesise"
    assert "dcpipe-centroids" in e.origin and registry.check(e) == []
    assert Path(e.source()).resolve() == on_path / "dcpipe_centroids/__init__.py"
    means = make(e, mnist, 1)
    for c in range(10):
        assert torch.allclose(means.images[c], mnist.x_train[mnist.y_train == c].mean(0))
    made = make(e, mnist, 3)
    assert torch.equal(made.images, make(e, mnist, 3).images)
    assert torch.bincount(made.labels).tolist() == [3] * 10


def test_an_installed_method_needs_no_plugins_entry(installed_package, tmp_path):
    """A parameter file naming Centroids in experiment.methods, without a plugins: section, passes `dcpipe
    check-params`, and `snakemake -n` plans its condense job, in processes that see the installed package."""
    params = yaml.safe_load((EXAMPLES / "params.yaml").read_text())
    del params["plugins"]
    params["data"]["mirrors"] = []  # $DCPIPE_DATA_MIRRORS (conftest) holds the local mirrors
    params["experiment"].update(datasets=["MNIST"], ipcs=[1], methods=["DC", "random", "Centroids"])
    file = tmp_path / "centroids.yaml"
    file.write_text(yaml.safe_dump(params, sort_keys=False))
    env = {"PYTHONPATH": os.pathsep.join([str(installed_package), *filter(None, [os.environ.get("PYTHONPATH")])])}

    checked = run(["dcpipe", "check-params", str(file)], tmp_path, env=env)
    assert f"{file}: ok" in checked.stdout + checked.stderr
    from importlib.metadata import entry_points

    if "Centroids" not in entry_points(group="dcpipe.methods").names:  # (unless installed into this environment)
        bare = run(["dcpipe", "check-params", str(file)], tmp_path, check=False)  # without the package: refused
        assert bare.returncode != 0 and "unknown name 'Centroids'" in bare.stderr + bare.stdout

    wd = copy_workflow(tmp_path / "wf", file)
    out = run(["snakemake", "-n"], wd, env=env).stdout
    jobs = [block for block in out.split("\n\n") if "rule condense:" in block]
    assert any("method=Centroids" in job and "dataset=MNIST" in job for job in jobs), out[-3000:]


def test_the_report_reads_plugin_sets_without_iterations(examples):
    """A plug-in's settings are its own (SoftKD has no `iterations`): the report's tables read its sets with no K,
    as a coreset's, where it once raised KeyError 'iterations' after the whole run."""
    from types import SimpleNamespace

    from dcpipe import artifacts, plan
    from dcpipe.config import load_params
    from dcpipe.report.collect import evaluations
    from dcpipe.report.sections.main import cost_section

    params = load_params(EXAMPLES / "params.yaml")
    meta = {name: {"kind": e.kind, "seed": 1, "config": e.settings, "seconds_per_iteration": 0.5,
                   "net_updates_per_iteration": 0} for name, e in examples.items()}
    meta["DC"] = {"kind": "synthetic", "seed": 1, "config": {"iterations": 3}}
    meta["random"] = {"kind": "coreset", "seed": 1, "config": {}}
    files = {}
    for job in plan.plan(params):
        m = meta[job["method"]]
        files[artifacts.EVAL.format(**job)] = {"train_set_meta": m, "accuracies": [0.5], "seed": 2,
                                               "train_config": {"epochs": 5}, "wall_seconds": 1.0}
        files[artifacts.SYNTHETIC.format(**job) + ".json"] = m
    inputs = SimpleNamespace(params=params, json=lambda path: files[str(path)])

    k = evaluations(inputs).groupby("method")["iterations"].first().to_dict()
    assert k["DMVariant"] == 20 and k["DC"] == 3 and pd_isna(k["SoftKD"]) and pd_isna(k["KMeans"])
    rows = {(r[0], r[1], r[2]): r[5] for r in cost_section(inputs).rows}
    assert rows[("MNIST", "1", "SoftKD")] == "–" and rows[("MNIST", "1", "DMVariant")] == "20"


def pd_isna(value) -> bool:
    import pandas as pd

    return value is None or pd.isna(value)
