"""Artifacts and checkpoints are readable by the group sharing a data folder."""
from __future__ import annotations

import os

import pytest



# --- artifacts are readable by the group sharing a data folder ----------------------------------------------

@pytest.fixture
def umask():
    """Set the process umask for one test (restored after it)."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def test_an_artifact_is_created_group_readable_under_umask_022(tmp_path, umask):
    from dcpipe.io import write_json

    umask(0o022)
    out = tmp_path / "new" / "folder" / "result.json"
    write_json(out, {"ok": True})
    assert out.stat().st_mode & 0o777 == 0o644 and out.stat().st_mode & 0o040  # group- (and world-) readable
    assert out.parent.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in out.parent.iterdir()] == ["result.json"]  # no temporary left


def test_an_artifact_keeps_to_a_private_umask(tmp_path, umask):
    from dcpipe.io import atomic_path

    umask(0o077)
    out = tmp_path / "private.npz"
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"x")
    assert out.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_checkpoint_takes_an_artifacts_mode_so_the_group_can_resume_the_job(tmp_path, umask, mask, mode):
    import torch

    from dcpipe.condense import CondenseConfig, load_checkpoint, save_checkpoint

    umask(mask)
    cfg = CondenseConfig(ipc=1, iterations=4)
    syn = torch.randn(10, 1, 28, 28, requires_grad=True)
    opt = torch.optim.SGD([syn], lr=0.1, momentum=0.5)
    ckpt = tmp_path / "DC_set0.npz.ckpt.safetensors"
    save_checkpoint(ckpt, syn, opt, 2, [0.5, 0.25], [1, 1], cfg, seed=0)
    assert ckpt.stat().st_mode & 0o777 == mode                 # as write_json's artifacts: 0666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == [ckpt.name]  # no temporary left
    resumed = torch.zeros_like(syn, requires_grad=True)
    assert load_checkpoint(ckpt, resumed, torch.optim.SGD([resumed], lr=0.1, momentum=0.5), cfg, 0)[0] == 2
    assert torch.equal(resumed, syn)
