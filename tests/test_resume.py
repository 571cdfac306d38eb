"""A run killed with SIGKILL resumes from its last checkpoint to exactly the same result."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from mmalign.results import ResultsStore

TOY_CLI = str(Path(__file__).with_name("toy_cli.py"))
ARGS = ["run", "late-fusion", "--task", "toy-pairs", "--seed", "7", "--quiet",
        "--set", "task.samples=1200", "--set", "train.epochs=8", "--set", "train.patience=100",
        "--set", "train.batch_size=16", "--set", "train.lr=0.003",
        "--set", 'encoders.a={name="toy-vector", config={seed=0}}',
        "--set", 'encoders.b={name="toy-vector", config={seed=1}}']


def _run(home: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MMALIGN_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, TOY_CLI, *ARGS, *extra], env=env,
                          capture_output=True, text=True, timeout=600)


def _epoch_of(ckpt: Path) -> int:
    try:
        return torch.load(ckpt, weights_only=True)["state"]["epoch"]
    except Exception:  # mid-replace or not yet written
        return -1


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    reference = _run(tmp_path / "ref")
    assert reference.returncode == 0, reference.stderr
    (ref_dir,) = (tmp_path / "ref" / "runs").iterdir()
    expected = json.loads((ref_dir / "metrics.json").read_text())

    home = tmp_path / "killed"
    env = {**os.environ, "MMALIGN_HOME": str(home), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, TOY_CLI, *ARGS], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    ckpt = None
    while time.monotonic() < deadline and proc.poll() is None:
        runs = list((home / "runs").glob("*/stage-train.ckpt")) if (home / "runs").exists() else []
        if runs and _epoch_of(runs[0]) >= 2:
            ckpt = runs[0]
            break
        time.sleep(0.05)
    assert ckpt is not None and proc.poll() is None, "run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _epoch_of(ckpt)
    assert 2 <= killed_at < 8

    store = ResultsStore(home / "results.sqlite")
    (row,) = store.runs()
    assert row["status"] == "killed"  # the dead process's row was closed, not left running

    resumed = _run(home, "--resume", ckpt.parent.name)
    assert resumed.returncode == 0, resumed.stderr
    got = json.loads((ckpt.parent / "metrics.json").read_text())
    assert got["metrics"] == expected["metrics"]
    history = got["extra"]["stages"]["train"]["history"]
    assert history == expected["extra"]["stages"]["train"]["history"]
    assert store.get(row["run_id"])["status"] == "completed"
