"""Artifacts: atomic writes, and nothing the pipeline reads back is ever unpickled."""
import os
import pickle

import numpy as np
import pytest
import torch

from dcpipe.io import ArtifactError, atomic_path, read_npz, write_json, write_npz
from dcpipe.stages.common import training_set


class _Exploit:
    """Unpickling this runs os.system: a crafted 'artifact'."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("form", ["raw_pickle", "npz_with_object_array"])
def test_a_crafted_pickle_in_place_of_an_artifact_is_never_executed(tmp_path, form):
    marker = tmp_path / "pwned"
    artifact = tmp_path / "DC_set0.npz"
    if form == "raw_pickle":
        artifact.write_bytes(pickle.dumps(_Exploit(marker)))
    else:
        with open(artifact, "wb") as f:
            np.savez(f, images=np.array([_Exploit(marker)], dtype=object), labels=np.arange(1))
    with pytest.raises(ArtifactError) as refused:
        read_npz(artifact)
    assert str(refused.value) == (f"{artifact}: refused: it holds pickled Python objects, which can carry code and "
                                  "are never loaded; delete it and rerun the stage that writes it")
    assert "allow_pickle" not in str(refused.value)  # numpy's advice to load it anyway is not passed on
    with pytest.raises(ArtifactError):
        training_set(artifact, d=None)
    assert not marker.exists()


def test_a_failed_write_leaves_the_previous_artifact_intact(tmp_path):
    out = tmp_path / "a.npz"
    write_npz(out, x=np.arange(3))
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert read_npz(out)["x"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


def test_json_and_npz_round_trip(tmp_path):
    write_json(tmp_path / "m.json", {"acc": np.float32(0.5), "n": np.int64(3)})
    write_npz(tmp_path / "t.npz", images=torch.zeros(2, 1, 4, 4).numpy())
    assert (tmp_path / "m.json").read_text().count("0.5") == 1
    assert read_npz(tmp_path / "t.npz")["images"].shape == (2, 1, 4, 4)


def test_a_resumable_job_keeps_its_finished_items_only_while_its_fingerprint_holds(tmp_path):
    from dcpipe.io import resumable

    out = tmp_path / "result.json"
    first = resumable(out, {"seed": 1, "path": tmp_path})  # read back as JSON: a Path compares as its string
    assert first.done == []
    first.save([0.5, 0.75])
    assert resumable(out, {"seed": 1, "path": tmp_path}).done == [0.5, 0.75]
    assert resumable(out, {"seed": 2, "path": tmp_path}).done == []  # other settings: start afresh
    first.finish()
    assert not first.path.exists() and first.path.name == "result.json.partial.json"
