"""Task losses on the standard outputs (``logits`` or ``prediction``) and the
weighted sum that composes registered objectives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from mmalign.errors import ConfigError
from mmalign.interfaces import (
    WEIGHTED_SUM,
    Batch,
    Objective,
    Outputs,
    StrictModel,
    Task,
    TermRef,
)


class CrossEntropyObjective(Objective):
    """Cross-entropy of ``outputs["logits"]`` against integer labels."""

    requires = ("logits",)

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        loss = F.cross_entropy(outputs["logits"].float(), batch["label"])
        return {"loss": loss}


class L1RegressionObjective(Objective):
    """Mean absolute error of ``outputs["prediction"]`` (the MSA convention)."""

    requires = ("prediction",)

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        loss = F.l1_loss(outputs["prediction"].float(), batch["label"].float())
        return {"loss": loss}


class TaskLossObjective(Objective):
    """The task's own loss: cross-entropy on ``logits``, L1 on a ``prediction``.

    What a classifier-or-regressor recipe (late-fusion) trains with by default, so
    one config serves classification and regression tasks alike.
    """

    def __init__(self, config: StrictModel | None = None) -> None:
        super().__init__(config)
        self.cross_entropy = CrossEntropyObjective()
        self.l1 = L1RegressionObjective()

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        if "logits" in outputs:
            return self.cross_entropy(outputs, batch)
        if "prediction" in outputs:
            return self.l1(outputs, batch)
        raise ConfigError(
            "objective 'task-loss' needs outputs 'logits' or 'prediction'; the model "
            f"returned {', '.join(outputs) or 'nothing'}"
        )


class WeightedSumConfig(StrictModel):
    #: the registered objectives summed, each with its weight
    terms: list[TermRef] = Field(min_length=1)


def _term_names(terms: list[TermRef]) -> list[str]:
    """Unique log names: the objective's name, with ``#i`` when it appears twice."""
    names = [t.name for t in terms]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


class WeightedSumObjective(Objective):
    """``loss = Σ weight_i · term_i`` over registered objectives, each term logged.

    ``--set 'objective.terms=[{name="cross-entropy"},{name="nmodal-infonce",weight=0.1}]'``
    builds this. Every term sees the same model outputs and batch; the returned
    dict has the total ``loss``, each term's unweighted loss under its name and the
    term's own sub-losses as ``name/key``. Build arguments given to the sum are
    handed to every term. A term with its own multi-step ``training_step`` (a gated
    second optimizer step) cannot be summed and is refused when built.
    """

    Config = WeightedSumConfig

    def __init__(self, config: WeightedSumConfig | None = None, **build_args: Any) -> None:
        from mmalign.plugins import get_registry

        super().__init__(config)
        registry = get_registry()
        terms: list[TermRef] = self.config.terms
        self.names = _term_names(terms)
        self.weights = [t.weight for t in terms]
        built = []
        for i, term in enumerate(terms):
            where = f"objective.config.terms[{i}]"
            if term.name == WEIGHTED_SUM:
                raise ConfigError(f"{where}: a weighted sum cannot contain another one")
            objective = registry.create("objective", term, where=where, **build_args)
            if type(objective).training_step is not Objective.training_step:
                raise ConfigError(
                    f"{where}: objective '{term.name}' runs its own training step "
                    "(several optimizer steps), so it cannot be a term of a weighted sum"
                )
            built.append(objective)
        self.terms = nn.ModuleList(built)

    @classmethod
    def needs(cls, config: StrictModel) -> tuple[str, ...]:
        """The union of the terms' needs."""
        from mmalign.plugins import get_registry

        registry = get_registry()
        out: list[str] = []
        for i, term in enumerate(config.terms):  # type: ignore[attr-defined]
            where = f"objective.config.terms[{i}]"
            term_cls, term_config = registry.config_of("objective", term, where)
            out += [k for k in term_cls.needs(term_config) if k not in out]
        return tuple(out)

    def term_needs(self) -> dict[str, tuple[str, ...]]:
        """Each term's needed outputs by its log name (for error messages)."""
        return {n: type(t).needs(t.config) for n, t in zip(self.names, self.terms, strict=True)}

    def forward(self, outputs: Outputs, batch: Batch) -> dict[str, Tensor]:
        total: Tensor | None = None
        logged: dict[str, Tensor] = {}
        for name, weight, term in zip(self.names, self.weights, self.terms, strict=True):
            losses = term(outputs, batch)
            logged[name] = losses["loss"]
            logged.update({f"{name}/{k}": v for k, v in losses.items() if k != "loss"})
            part = weight * losses["loss"]
            total = part if total is None else total + part
        assert total is not None  # terms has min_length=1
        return {"loss": total, **logged}

    def report(
        self,
        model: nn.Module,
        features: dict[str, Any],
        task: Task,
        run_dir: Path,
        device: torch.device,
    ) -> dict[str, Any] | None:
        """Each term's own report, by term name (None when no term reports)."""
        out = {}
        for name, term in zip(self.names, self.terms, strict=True):
            report = term.report(model=model, features=features, task=task, run_dir=run_dir,
                                 device=device)
            if report is not None:
                out[name] = report
        return out or None
