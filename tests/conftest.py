import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _mirrors() -> list[str]:
    env = [p for p in os.environ.get("DCPIPE_DATA_MIRRORS", "").split(os.pathsep) if p]
    found = subprocess.run([str(ROOT / "workflow/find_mirrors.sh")], capture_output=True, text=True).stdout.strip()
    return env + ([found] if found else []) + ["/usr/share/datasets/fashion-mnist"]


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` need a GPU that torch sees: elsewhere they skip (`make gpu-check` runs them on one)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False); make gpu-check runs it on a GPU")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mirrors() -> list[Path]:
    return [Path(m) for m in _mirrors()]


@pytest.fixture(scope="session", autouse=True)
def _export_mirrors():
    os.environ["DCPIPE_DATA_MIRRORS"] = os.pathsep.join(_mirrors())


def require_dataset(name: str, mirrors) -> dict[str, Path]:
    """Real-data tests read the local mirror: {file under data/raw: its mirror copy}. They may skip elsewhere,
    never under CI."""
    from dcpipe.fetch import in_mirror
    from dcpipe.sources import source

    for layout in source(name).layouts:
        hit = in_mirror(layout, mirrors)
        if hit:
            return hit[1]
    if os.environ.get("CI") == "true":
        raise AssertionError(f"real {name} is in no local mirror ({', '.join(map(str, mirrors))}), and CI needs it")
    pytest.skip(f"real {name} is in no local mirror ({', '.join(map(str, mirrors))})")


def fetch_and_prepare(name: str, out: Path, raw: Path, mirrors, **fetch_args) -> dict:
    """What the download and prepare_data jobs do, in-process: files into `raw` (manifest beside them), then `out`."""
    from dcpipe.data import prepare
    from dcpipe.datasets import dataset_spec
    from dcpipe.fetch import fetch, write_manifest

    source = dataset_spec(name).variant_of or name
    manifest = raw / f"{source}.json"
    write_manifest(manifest, fetch(source, raw, list(mirrors), **fetch_args))
    return prepare(name, out, manifest)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, mirrors):
    """Prepare a real dataset once per session: prepared('MNIST') -> path of its .npz."""
    from dcpipe.datasets import dataset_spec

    cache = {}
    base = tmp_path_factory.mktemp("prepared")

    def get(name):
        if name not in cache:
            require_dataset(dataset_spec(name).variant_of or name, mirrors)
            out = base / f"{name}.npz"
            fetch_and_prepare(name, out, base / "raw", mirrors, download=False)
            cache[name] = out
        return cache[name]

    return get


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Unit tests use tiny tensors: torch's thread pool is pure overhead, and on a busy machine (a pipeline running
    next to the tests) its spinning threads make them ~10x slower. One thread keeps them fast and load-independent."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


DELETE = object()  # a value for set_dotted that removes the key


def set_dotted(doc: dict, dotted: str, value) -> None:
    """doc['a']['b'] = value for 'a.b' (or delete it when value is DELETE): edits of parameter files in tests."""
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc.setdefault(key, {}) if value is not DELETE else doc[key]
    if value is DELETE:
        del doc[last]
    else:
        doc[last] = value


def run(cmd, cwd, check=True, env=None):
    """Run a command (the venv's tools first on PATH, `env` over the environment); raise with its output's tail
    when it fails."""
    env = {**os.environ, **(env or {}), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, shell=isinstance(cmd, str))
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


WORKFLOW_FILES = ("Snakefile", "workflow", "src", ".dvcignore", "reports/records", "examples/plugins")


def copy_workflow(wd: Path, params: Path = ROOT / ".test/params.yaml") -> Path:
    """A copy of the workflow (no outputs) in wd, with `params` as its params.yaml: the smoke run's set-up."""
    for name in WORKFLOW_FILES:
        src = ROOT / name
        (wd / name).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, wd / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, wd / name)
    (wd / "params.yaml").write_text(beside_the_workflow(params.read_text()))
    return wd


def beside_the_workflow(params_text: str) -> str:
    """.test/params.yaml's text for a copy at the workflow's top: its plug-in folder, ../examples/plugins from .test/,
    is examples/plugins there."""
    return params_text.replace('path: "../examples/plugins"', 'path: "examples/plugins"')


@pytest.fixture(scope="session")
def official_server(tmp_path_factory, mirrors):
    """A real HTTP server on 127.0.0.1 serving the mirror's real MNIST, Fashion-MNIST and USPS files under their
    official URL paths (tests/loopback.py), for the whole session."""
    from tests.loopback import Server, official_tree

    server = Server(official_tree(tmp_path_factory.mktemp("official"), mirrors))
    yield server
    server.close()


@pytest.fixture
def server(official_server):
    """The session's loopback server, its faults and request log cleared for one test."""
    official_server.faults.clear()
    official_server.requests.clear()
    official_server.head_status = None
    yield official_server
    official_server.faults.clear()
    official_server.head_status = None


# The smoke run has no mirror at all: its datasets come over HTTP from the loopback server, as on a user's machine.
NO_MIRROR = {"DCPIPE_DATA_MIRRORS": ""}


def smoke_params(wd: Path, urls: dict, edit=None) -> None:
    """The smoke configuration in wd/params.yaml, downloading from `urls` (params data.urls) with no mirror."""
    import yaml

    params = yaml.safe_load((ROOT / ".test/params.yaml").read_text())
    params["data"].update(mirrors=[], urls=urls)
    for entry in params.get("plugins", {}).values():  # beside the copy's params.yaml: the copied examples
        entry["path"] = entry["path"].removeprefix("../")
    if edit:
        edit(params)
    (wd / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, mirrors, official_server) -> Path:
    """The end-to-end smoke run, once per session: Snakemake runs the whole DAG of .test/params.yaml (50 real
    training images per class) in a copy of the workflow, downloading its datasets from the loopback server with
    no mirror; returns its working directory. tests/test_pipeline_e2e.py, tests/test_download.py,
    tests/test_snakemake_report.py and tests/test_browser.py share it (the report tests restore params.yaml, which
    the DVC test edits). DCPIPE_SMOKE_RUN=<dir> reuses a finished run of the same kind instead (for iterating on
    the report's tests; never set under CI)."""
    reuse = os.environ.get("DCPIPE_SMOKE_RUN")
    if reuse and os.environ.get("CI") != "true":
        wd = Path(reuse)
        assert (wd / "reports/index.html").exists(), f"DCPIPE_SMOKE_RUN={reuse}: no finished smoke run there"
        return wd
    wd = copy_workflow(tmp_path_factory.mktemp("pipeline"))
    smoke_params(wd, official_server.urls())
    run(["dvc", "init", "--no-scm", "-q"], wd)
    run(["dcpipe", "dvc-yaml"], wd, env=NO_MIRROR)
    res = run(["snakemake", "--cores", "2", "--resources", "gpu=2"], wd, env=NO_MIRROR)
    (wd / ".smoke-run-stderr.txt").write_text(res.stderr)  # the plan's download lines, for test_download
    return wd
