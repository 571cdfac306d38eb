"""Both strategies under torchrun (2 gloo processes) follow the one-process run."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

MAIN = str(Path(__file__).with_name("infonce_ddp_main.py"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(home: Path, command: list[str]) -> dict:
    env = {**os.environ, "MMALIGN_HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(next((home / "runs").glob("*/metrics.json")).read_text())


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["joint", "round-robin"])
def test_two_processes_follow_one(tmp_path, strategy):
    one = _run(tmp_path / "one", [sys.executable, MAIN, strategy])
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        MAIN,
        strategy,
    ]
    two = _run(tmp_path / "two", torchrun)
    # the same global batches, an exact gathered loss and DDP-averaged gradients:
    # the same trajectory up to float reassociation
    h1 = one["extra"]["stages"]["train"]["history"]
    h2 = two["extra"]["stages"]["train"]["history"]
    assert [h["val_loss"] for h in h2] == pytest.approx([h["val_loss"] for h in h1], rel=1e-3)
    assert two["metrics"]["test"]["mean_r@10"] == pytest.approx(
        one["metrics"]["test"]["mean_r@10"], abs=0.02
    )
