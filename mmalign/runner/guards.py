"""Refuse training that would not train or could not be evaluated.

A training split smaller than one batch with ``drop_last`` gives zero optimizer steps;
without this check such a run exits 0, is recorded ``completed`` and gets ranked. A
labelled task with an empty validation or test split would train, then fail at its
first evaluation; it is refused before any feature is encoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized

from mmalign.errors import ConfigError, DataError


def check_splits(task: str, splits: Mapping[str, Sized], labelled: bool) -> None:
    """An error naming the task and its split sizes when a split a labelled task trains,
    selects or tests on holds no sample (an unlabelled pretraining task may lack them)."""
    sizes = {name: len(samples) for name, samples in splits.items()}
    empty = [name for name, n in sizes.items() if n == 0 and (labelled or name == "train")]
    if empty:
        listed = ", ".join(f"{name} {n}" for name, n in sizes.items())
        raise DataError(
            f"{task}: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} "
            f"empty ({listed} samples after reading and filtering); check the data folder "
            "or the task's split settings"
        )


def steps_per_epoch(n_train: int, batch_size: int, drop_last: bool, world: int = 1) -> int:
    """Optimizer steps one epoch takes with the default loader (as ``shuffled_batches``)."""
    full, rest = divmod(n_train, batch_size)
    steps = full + (1 if rest and not drop_last else 0)
    if world > 1 and rest and not drop_last and rest < world:
        steps -= 1  # every rank must take the same number of steps
    return steps


def check_steps(stage: str, n_train: int, batch_size: int, drop_last: bool, world: int,
                counted: int | None = None) -> int:
    """Steps per epoch (``counted``: what a custom loader says it yields); an error naming
    split and batch size when there would be none."""
    steps = steps_per_epoch(n_train, batch_size, drop_last, world) if counted is None \
        else counted
    if steps <= 0:
        how = ("set train.drop_last=false or a smaller train.batch_size"
               if drop_last else "the split is empty")
        raise ConfigError(
            f"stage '{stage}' would take zero optimizer steps: the train split has {n_train} "
            f"sample(s) and train.batch_size is {batch_size}"
            f"{' with drop_last' if drop_last else ''}"
            f"{f' over {world} processes' if world > 1 else ''}; {how}"
        )
    return steps


def check_stepped(stage: str, steps: int, epochs: int, n_train: int, batch_size: int) -> None:
    """A stage that ran its epochs without a single optimizer step must not complete."""
    if epochs > 0 and steps == 0:
        raise ConfigError(
            f"stage '{stage}' took no optimizer step in {epochs} epoch(s) (train split "
            f"{n_train} sample(s), train.batch_size {batch_size}): its loader yielded no "
            "batch, so the run is not recorded as completed"
        )
