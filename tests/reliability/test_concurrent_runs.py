"""Eight processes running one config against one home keep eight runs apart."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmalign.results import ResultsStore
from mmalign.store import shards

TOY_CLI = str(Path(__file__).parents[1] / "toy_cli.py")
ARGS = ["run", "late-fusion", "--task", "toy-pairs", "--quiet",
        "--set", "task.samples=90", "--set", "train.epochs=1",
        "--set", 'encoders.a={name="toy-vector", config={seed=0}}',
        "--set", 'encoders.b={name="toy-vector", config={seed=1}}']


@pytest.mark.slow
def test_eight_identical_runs_at_once_leave_eight_rows(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "MMALIGN_HOME": str(home), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, TOY_CLI, *ARGS], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outs]

    rows = ResultsStore(home / "results.sqlite").runs()
    assert len(rows) == 8
    assert {r["status"] for r in rows} == {"completed"}
    assert len({r["config_hash"] for r in rows}) == 1  # the same config every time
    run_dirs = sorted((home / "runs").iterdir())
    assert len(run_dirs) == 8
    assert sorted(r["run_id"] for r in rows) == [d.name for d in run_dirs]
    assert all((d / "metrics.json").exists() for d in run_dirs)

    stores = sorted((home / "cache" / "store").iterdir())
    assert len(stores) == 2  # one feature store per encoder (two toy encoders)
    for store in stores:  # every shard is whole and nothing half-written is left
        complete, broken = shards.scan(store / "shards")
        assert complete and broken == []
        assert not list(store.rglob("*.tmp"))
        for shard in complete:
            assert all(shard.read_rows(k, np.arange(shard.columns[k].shape[0])).isfinite().all()
                       for k in shard.columns)
