"""The runner works unchanged under torchrun: 2 gloo processes on the CPU."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mmalign.results import ResultsStore

TOY_CLI = str(Path(__file__).with_name("toy_cli.py"))
ARGS = ["run", "late-fusion", "--task", "toy-pairs", "--seed", "1", "--quiet",
        "--set", "train.epochs=4", "--set", "train.batch_size=32", "--set", "train.lr=0.01",
        "--set", "train.drop_last=true",
        "--set", 'encoders.a={name="toy-vector", config={seed=0}}',
        "--set", 'encoders.b={name="toy-vector", config={seed=1}}']


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(home: Path) -> dict:
    return {**os.environ, "MMALIGN_HOME": str(home), "OMP_NUM_THREADS": "1"}


def test_two_gloo_processes_match_one_process(tmp_path):
    single = subprocess.run([sys.executable, TOY_CLI, *ARGS], env=_env(tmp_path / "one"),
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), TOY_CLI, *ARGS]
    double = subprocess.run(torchrun, env=_env(tmp_path / "two"), capture_output=True,
                            text=True, timeout=300)
    assert double.returncode == 0, double.stderr[-3000:]

    rows = ResultsStore(tmp_path / "two" / "results.sqlite").runs()
    assert len(rows) == 1 and rows[0]["status"] == "completed"  # only rank 0 records
    one = json.loads(next((tmp_path / "one" / "runs").glob("*/metrics.json")).read_text())
    two = json.loads(next((tmp_path / "two" / "runs").glob("*/metrics.json")).read_text())
    # each rank takes half of every global batch and DDP averages the gradients, so the
    # two-process run follows the one-process trajectory up to float reassociation
    h1 = one["extra"]["stages"]["train"]["history"]
    h2 = two["extra"]["stages"]["train"]["history"]
    assert len(h1) == len(h2) == 4
    for a, b in zip(h1, h2, strict=True):
        assert b["val_acc"] == pytest.approx(a["val_acc"], abs=0.03)
    assert two["metrics"]["test"]["acc"] == pytest.approx(one["metrics"]["test"]["acc"], abs=0.03)
