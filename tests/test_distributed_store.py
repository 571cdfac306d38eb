"""Under torchrun each rank encodes its share of the inputs into the shared store, and
the store holds what one process would have written."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from mmalign.store import FeatureStore

TOY_CLI = str(Path(__file__).with_name("toy_cli.py"))
ARGS = ["run", "late-fusion", "--task", "toy-pairs", "--quiet", "--set", "train.epochs=1",
        "--set", 'encoders.a={name="toy-vector", config={seed=0}}',
        "--set", 'encoders.b={name="toy-vector", config={seed=1}}']


def test_two_ranks_split_the_extraction_and_share_the_store(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MMALIGN_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(port), TOY_CLI, *ARGS]
    done = subprocess.run(torchrun, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for store in sorted((tmp_path / "cache" / "store").iterdir()):
        sidecars = list(store.glob("shards/*.json"))
        writers = {p.stem.split("-")[2] for p in sidecars}
        keys = [k for p in sidecars for k in json.loads(p.read_text())["keys"]]
        assert len(writers) == 2  # both ranks wrote shards
        assert len(keys) == len(set(keys)) == 240  # every input once, none twice
    one = tmp_path / "one-process"
    single = subprocess.run([sys.executable, TOY_CLI, *ARGS],
                            env={**env, "MMALIGN_HOME": str(one)}, capture_output=True,
                            text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    shared = sorted((tmp_path / "cache" / "store").iterdir())
    alone = sorted((one / "cache" / "store").iterdir())
    assert [d.name for d in shared] == [d.name for d in alone]
    for a, b in zip(shared, alone, strict=True):
        ranks, process = FeatureStore(a), FeatureStore(b)
        keys = sorted(process.where)
        assert sorted(ranks.where) == keys
        rows = torch.arange(len(keys))
        for name, column in process.columns(keys).items():
            torch.testing.assert_close(ranks.columns(keys)[name][rows], column[rows],
                                       rtol=0, atol=0)
