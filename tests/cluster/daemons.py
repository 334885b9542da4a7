"""Start and stop the tests' daemons (tests/cluster/slurm.sh, tests/cluster/sshd.sh) from pytest fixtures.

A script's exit status 3 means this machine cannot run the daemon (not root, or its packages are missing and
cannot be installed): the test skips with the script's reason, except under CI=true, where it fails."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


class Daemons:
    def __init__(self, script: str, state: Path):
        self.script, self.state = HERE / script, Path(state)

    def _call(self, action: str, timeout: int = 180) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.script), action, str(self.state)], capture_output=True, text=True,
                              timeout=timeout)

    def start(self) -> str:
        res = self._call("start")
        if res.returncode == 3:
            reason = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "exit status 3"
            if os.environ.get("CI") == "true":
                pytest.fail(f"{self.script.name}: {reason} (never skipped under CI=true)")
            pytest.skip(f"{self.script.name}: {reason}")
        if res.returncode != 0:
            pytest.fail(f"{self.script.name} start failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n{self.logs()}")
        return res.stdout.strip()

    def stop(self) -> None:
        self._call("stop", timeout=60)

    def logs(self) -> str:
        """The daemons' logs (their tails): what a failing test prints."""
        try:
            return self._call("logs", timeout=30).stdout
        except (OSError, subprocess.SubprocessError) as e:
            return f"(no daemon logs: {e})"
