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


def require_dataset(name: str, mirrors):
    """Real-data tests read the local mirror; they may skip elsewhere, never under CI."""
    from dcpipe.data import DataError, locate

    try:
        return locate(name, mirrors)
    except DataError as e:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"real {name} not in the local mirror: {e}")


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, mirrors):
    """Prepare a real dataset once per session: prepared('MNIST') -> path of its .npz."""
    from dcpipe.data import prepare

    cache = {}
    base = tmp_path_factory.mktemp("prepared")

    def get(name):
        if name not in cache:
            require_dataset(name, mirrors)
            out = base / f"{name}.npz"
            prepare(name, out, mirrors, base / "raw")
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
        doc = doc[key]
    if value is DELETE:
        del doc[last]
    else:
        doc[last] = value


def run(cmd, cwd, check=True):
    """Run a command (the venv's tools first on PATH); raise with its output's tail when it fails."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, shell=isinstance(cmd, str))
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


WORKFLOW_FILES = ("Snakefile", "workflow", "src", ".dvcignore", "reports/records")


def copy_workflow(wd: Path, params: Path = ROOT / ".test/params.yaml") -> Path:
    """A copy of the workflow (no outputs) in wd, with `params` as its params.yaml: the smoke run's set-up."""
    for name in WORKFLOW_FILES:
        src = ROOT / name
        (wd / name).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, wd / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, wd / name)
    shutil.copy(params, wd / "params.yaml")
    return wd


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, mirrors) -> Path:
    """The end-to-end smoke run, once per session: Snakemake runs the whole DAG of .test/params.yaml (50 real
    training images per class) in a copy of the workflow; returns its working directory. tests/test_pipeline_e2e.py,
    tests/test_snakemake_report.py and tests/test_browser.py share it (the report tests restore params.yaml, which
    the DVC test edits). DCPIPE_SMOKE_RUN=<dir> reuses a finished run of the same kind instead (for iterating on
    the report's tests; never set under CI)."""
    reuse = os.environ.get("DCPIPE_SMOKE_RUN")
    if reuse and os.environ.get("CI") != "true":
        wd = Path(reuse)
        assert (wd / "reports/index.html").exists(), f"DCPIPE_SMOKE_RUN={reuse}: no finished smoke run there"
        return wd
    for name in ("FashionMNIST", "MNIST"):
        require_dataset(name, mirrors)
    wd = copy_workflow(tmp_path_factory.mktemp("pipeline"))
    run(["dvc", "init", "--no-scm", "-q"], wd)
    run(["dcpipe", "dvc-yaml"], wd)
    run(["snakemake", "--cores", "2", "--resources", "gpu=2"], wd)
    return wd
