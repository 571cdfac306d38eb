"""Two gloo processes, each with half the global batch, match one process on all of it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmalign_infonce.heads import ProjectionHeads, ProjectionHeadsConfig
from mmalign_infonce.method import InfoNCEModel
from mmalign_infonce.objective import NModalInfoNCE, NModalInfoNCEConfig

from mmalign.interfaces import FeatureSpec

DIMS = {"text": 5, "image": 6, "audio": 4}
GLOBAL = 8
MODES = ("category", "tuple")


def specs(dims: dict[str, int]) -> dict[str, FeatureSpec]:
    return {m: FeatureSpec(pooled=d) for m, d in dims.items()}


def global_batch() -> dict:
    g = torch.Generator().manual_seed(7)
    batch = {m: {"pooled": torch.randn(GLOBAL, d, generator=g)} for m, d in DIMS.items()}
    batch["label"] = torch.tensor([0, 1, 2, 0, 3, 1, 4, 5])  # repeats: several positives
    batch["index"] = torch.arange(GLOBAL)
    return batch


def loss_and_grads(batch: dict, mode: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(0)
    model = InfoNCEModel(ProjectionHeads(ProjectionHeadsConfig(dropout=0.0), specs(DIMS)))
    objective = NModalInfoNCE(NModalInfoNCEConfig(positives=mode)).train()
    loss = objective(model(batch), batch)["loss"]
    loss.backward()
    return loss.detach(), [p.grad for p in model.parameters()]


def worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        full, n = global_batch(), GLOBAL // world
        mine = slice(rank * n, (rank + 1) * n)
        local = {
            k: ({"pooled": v["pooled"][mine]} if isinstance(v, dict) else v[mine])
            for k, v in full.items()
        }
        results = {}
        for mode in MODES:
            loss, grads = loss_and_grads(local, mode)
            dist.all_reduce(loss)  # the global loss is the mean of the local ones
            for grad in grads:  # what DDP does with every parameter's gradient
                dist.all_reduce(grad)
                grad /= world
            results[mode] = (loss / world, grads)
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_loss_and_gradients_of_one(tmp_path: Path):
    out = tmp_path / "ddp.pt"
    mp.spawn(worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    results = torch.load(out)
    for mode in MODES:
        loss, grads = loss_and_grads(global_batch(), mode)
        ddp_loss, ddp_grads = results[mode]
        assert ddp_loss.item() == pytest.approx(loss.item(), rel=1e-5)
        for got, want in zip(ddp_grads, grads, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
