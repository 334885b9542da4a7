"""GPU leases: the lease never hands one device to two jobs, and a dead job never keeps a device.

Real processes are used (the guarantee is between Snakemake jobs, i.e. processes); the device count is faked.
"""

from __future__ import annotations

import os

import pytest

from dcpipe.lease import GpuLease, LeaseJob, gpu_count


@pytest.fixture
def no_cuda_env(monkeypatch):
    # setenv first so that monkeypatch also undoes any value the library sets during the test
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "unset-by-test")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.delenv("DCPIPE_FAKE_GPUS", raising=False)


class Job(LeaseJob):
    """A job in its own process on a machine with `n_gpus` (faked) devices: dcpipe.lease.LeaseJob."""

    def __init__(self, lock_dir, n_gpus=2):
        env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
        env["DCPIPE_FAKE_GPUS"] = str(n_gpus)
        super().__init__(lock_dir, env)

    def device(self, timeout=20.0) -> str:
        """Block until the job reports its device."""
        seen = self.seen(timeout)
        if seen is None:
            raise TimeoutError("job did not get a device")
        return seen["visible"]


@pytest.fixture
def jobs():
    started: list[Job] = []
    yield started
    for j in started:
        j.cleanup()


def test_two_concurrent_jobs_get_distinct_devices(tmp_path, no_cuda_env, jobs):
    a, b = Job(tmp_path), Job(tmp_path)
    jobs += [a, b]
    devs = {a.device(), b.device()}
    assert devs == {"0", "1"}


def test_a_third_job_waits_until_a_device_is_released(tmp_path, no_cuda_env, jobs):
    a, b = Job(tmp_path), Job(tmp_path)
    jobs += [a, b]
    da, db = a.device(), b.device()
    assert {da, db} == {"0", "1"}
    c = Job(tmp_path)
    jobs.append(c)
    assert c.seen(1.0) is None, "a third job got a device while both were held"
    a.finish()
    assert c.device() == da
    assert b.p.poll() is None  # b still holds its device


def test_a_killed_job_frees_its_device(tmp_path, no_cuda_env, jobs):
    a, b = Job(tmp_path), Job(tmp_path)
    jobs += [a, b]
    da, db = a.device(), b.device()
    c = Job(tmp_path)
    jobs.append(c)
    assert c.seen(0.5) is None
    b.kill()  # SIGKILL: no cleanup code runs; the kernel drops the lock
    assert c.device() == db


def test_lease_works_in_process_and_release_frees_the_device(tmp_path, no_cuda_env):
    first = GpuLease(tmp_path / "locks", n_devices=2, poll_seconds=0.05)
    second = GpuLease(tmp_path / "locks", n_devices=2, poll_seconds=0.05)
    try:
        assert first.acquire() == "0"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0" and first.device == 0
        del os.environ["CUDA_VISIBLE_DEVICES"]  # as if in another job: only the lock remains
        assert second.acquire() == "1"
        first.release()
        second.release()
        assert "CUDA_VISIBLE_DEVICES" not in os.environ
        with GpuLease(tmp_path / "locks", n_devices=2) as third:  # device 0 is free again
            assert third.device == 0 and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        assert "CUDA_VISIBLE_DEVICES" not in os.environ
    finally:
        first.release()
        second.release()


def test_an_already_set_cuda_visible_devices_is_kept(tmp_path, monkeypatch):
    """A cluster scheduler (or the user) already chose the device: the lease takes no lock."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    lock_dir = tmp_path / "locks"
    lease = GpuLease(lock_dir, n_devices=2)
    assert lease.acquire() == "3"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert not lock_dir.exists() or not any(lock_dir.iterdir())
    assert lease.device is None


def test_zero_devices_means_cpu(tmp_path, no_cuda_env, monkeypatch):
    assert GpuLease(tmp_path / "locks", n_devices=0).acquire() is None
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    monkeypatch.setenv("DCPIPE_FAKE_GPUS", "0")
    assert gpu_count() == 0
    assert GpuLease(tmp_path / "locks").acquire() is None
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_fake_gpu_count_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DCPIPE_FAKE_GPUS", "2")
    assert gpu_count() == 2
