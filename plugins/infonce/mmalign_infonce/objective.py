"""The n-modal InfoNCE objective (equation 2) and its end-of-training recall report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from mmalign.interfaces import Batch, Objective, Outputs, StrictModel, Task
from mmalign_infonce.losses import distributed, gather, gather_labels, nmodal_info_nce

TABLES_FILE = "recall_tables.md"


class NModalInfoNCEConfig(StrictModel):
    tau: float = 0.05
    #: "category": every same-category item in the batch is a positive (MIL-NCE);
    #: "tuple": only the tuple partner is, other same-category items are negatives
    positives: Literal["category", "tuple"] = "category"
    #: splits the end-of-training report tabulates (the paper: test and train)
    report_splits: list[str] = ["test", "train"]


class NModalInfoNCE(Objective):
    """Equation 2 over whichever modalities the batch embeds (two in round-robin).

    In training under DDP the embeddings of every process are gathered and each
    process scores its own rows against the global batch; the validation loss the
    runner computes on one process alone is never gathered.
    """

    Config = NModalInfoNCEConfig
    requires = ("embeddings",)

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        emb: dict[str, Tensor] = outputs["embeddings"]
        keys = batch["label"] if self.config.positives == "category" else batch["index"]
        gallery, col_keys = emb, keys
        if self.training and distributed():
            gallery = {m: gather(e) for m, e in emb.items()}
            col_keys = gather_labels(keys)
        positives = keys[:, None] == col_keys[None, :]
        return {"loss": nmodal_info_nce(emb, self.config.tau, positives, gallery)}

    def report(
        self,
        model: nn.Module,
        features: dict[str, Any],
        task: Task,
        run_dir: Path,
        device: torch.device,
    ) -> dict[str, Any]:
        """Recall tables on the configured splits, printed and saved beside the run."""
        # imported here so that training processes need not load scikit-learn
        from mmalign_infonce.evaluation import KS, evaluate_retrieval, format_tables

        results = {
            s: evaluate_retrieval(model, features[s], device) for s in self.config.report_splits
        }
        modalities = list(next(iter(features.values())).modalities)
        text = format_tables(results, modalities, KS)
        Path(run_dir, TABLES_FILE).write_text(text + "\n", encoding="utf-8")
        print(f"\n{text}\n")
        return {"recall": results, "tables_file": TABLES_FILE}
