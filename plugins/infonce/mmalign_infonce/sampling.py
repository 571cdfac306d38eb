"""Batches of aligned tuples: by category (XMediaNet) or by event (synth-events).

XMediaNet aligns its modalities only by category: every sample carries one modality
and a label. A batch of ``B`` tuples is built by

1. drawing ``B`` categories that every modality of the batch has, without repeats
   while ``B`` is at most the number ``C`` of categories (in rounds of ``C`` distinct
   ones otherwise), from a stream of permutations that carries over between batches
   so that over an epoch every category is drawn about equally often;
2. taking, for each drawn category and each modality, the next item of that
   category's shuffled pool. A pool that runs out is reshuffled and reused: the
   smaller modalities are over-sampled, as the paper says they must be, and every
   item is used before any item is used twice.

Row ``i`` of every modality in the batch then shows the same category: these are the
aligned tuples equation 2 needs. ``batch["label"]`` holds the categories and
``batch["index"]`` a tuple id, unique within the epoch.

``tuples="event"`` is for data whose samples name a cross-modal instance
(``FeatureSet.instances``; synth-events renders one latent per event in all four
modalities): step 1 is unchanged, and step 2 takes, for each drawn category, the next
event of that category's shuffled pool of events that every modality of the batch
has, then every modality's row of that event. Row ``i`` of every modality is then one
event; while ``B`` <= ``C`` the ``B`` events are of distinct categories, so the only
difference from category tuples is that the views of a row share their instance.
``batch["index"]`` is then the event's number in the split (one event drawn twice in
a batch is one tuple). By default every round-robin pair draws from all events, so
its pairs come from the same events as joint tuples; ``round_robin.events="disjoint"``
deals each training event to one pair (fixed for the run, balanced per category), as
if every pair were a separately collected bi-modal dataset.

Strategies differ only in which modalities a batch holds: ``joint`` puts all of
them in every batch; ``round-robin`` gives each batch one unordered pair. A joint
epoch walks the largest modality once: ``ceil(n / B)`` batches. A round-robin epoch
(:class:`RoundRobin`) has, by default, the *same* number of batches, shared equally
by the pairs, so both strategies take equal optimizer steps per epoch and each pair
weighs the same in the loss (equation 2's uniform mean); ``steps="pairs"`` instead
walks every pair's larger modality once (``ceil(n_pair / B)`` batches per pair, about
P times a joint epoch) and ``weights="proportional"`` shares the batches in proportion
to those counts. The pairs are interleaved (one batch each in turn, an order
reshuffled every epoch) or, ``schedule="block"``, trained one after the other.
Both tuple modes count an epoch alike (with one row per event and modality, ``n`` is
the number of events). Every batch is full-sized, because tuples are drawn rather
than partitioned. Under DDP each process takes its contiguous slice of the same
global batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from mmalign.errors import MMAlignError
from mmalign.interfaces import Batch, StrictModel
from mmalign_infonce.losses import unordered_pairs

Strategy = Literal["joint", "round-robin"]
Tuples = Literal["category", "event"]
Group = tuple[str, ...]


def event_codes(fs, modalities: Sequence[str]) -> tuple[dict[str, Tensor], Tensor]:
    """Per modality, the event number of each of its rows, and each event's category.

    Refuses a split whose rows lack an instance id, or whose views of one event
    disagree on its category.
    """
    if fs.instances is None:
        raise MMAlignError(f"split '{fs.split}' has no instance ids: tuples='event' needs one "
                           "per sample (Sample.meta['instance'])")
    assert fs.labels is not None
    ids: dict[str, list[str]] = {}
    for m in modalities:
        names = [fs.instances[int(p)] for p in fs.modalities[m].rows]
        missing = names.count(None)
        if missing:
            raise MMAlignError(f"split '{fs.split}': {missing} '{m}' rows have no instance id; "
                               "tuples='event' needs one per sample")
        ids[m] = [str(n) for n in names]
    number = {n: i for i, n in enumerate(sorted({n for names in ids.values() for n in names}))}
    category = torch.full((len(number),), -1, dtype=torch.long)
    codes: dict[str, Tensor] = {}
    for m, names in ids.items():
        codes[m] = torch.tensor([number[n] for n in names], dtype=torch.long)
        labels = fs.labels[fs.modalities[m].rows]
        known = category[codes[m]]
        clash = (known >= 0) & (known != labels)
        if bool(clash.any()):
            name = names[int(clash.nonzero()[0])]
            raise MMAlignError(f"split '{fs.split}': the views of event '{name}' have "
                               "different categories")
        category[codes[m]] = labels
    return codes, category


class TupleSampler:
    """Category (or event) pools of one split and the cursors that walk them.

    A *unit* is what a row is drawn as: its category (``tuples="category"``) or its
    event (``"event"``); ``pools[m][unit]`` are modality ``m``'s rows of that unit.
    """

    def __init__(
        self,
        fs,
        modalities: Sequence[str],
        generator: torch.Generator,
        tuples: Tuples = "category",
        deal: Sequence[Group] = (),
    ) -> None:
        if fs.labels is None:
            raise MMAlignError(f"split '{fs.split}' has no labels: tuples are aligned by category")
        for m in modalities:
            if m not in fs.modalities:
                raise MMAlignError(f"split '{fs.split}' has no modality '{m}'")
        self.fs = fs
        self.tuples = tuples
        self.generator = generator
        if tuples == "event":
            units, self.unit_category = event_codes(fs, modalities)
        else:
            units = {m: fs.labels[fs.modalities[m].rows] for m in modalities}
            self.unit_category = torch.arange(int(fs.labels.max()) + 1 if len(fs.labels) else 0)
        self.pools: dict[str, dict[int, Tensor]] = {
            m: {int(u): (units[m] == u).nonzero().flatten() for u in units[m].unique()}
            for m in modalities
        }
        self._order: dict[tuple, Tensor] = {}
        self._cursor: dict[tuple, int] = {}
        self._queue: dict[Group, list[int]] = {}
        self.dealt = self._deal(deal) if deal else {}

    def _deal(self, groups: Sequence[Group]) -> dict[Group, set[int]]:
        """Each unit to one of ``groups``: a category's units, in a fixed shuffled order,
        go to the groups in turn, each category continuing where the last one stopped,
        so the groups' shares differ by at most one, overall and within a category."""
        g = torch.Generator().manual_seed(0)  # a property of the data, not of the epoch
        out: dict[Group, set[int]] = {group: set() for group in groups}
        every = torch.tensor(sorted(set().union(*(set(p) for p in self.pools.values()))),
                             dtype=torch.long)
        start = 0
        for c in self.unit_category[every].unique():
            members = every[self.unit_category[every] == c]
            for k, u in enumerate(members[torch.randperm(len(members), generator=g)].tolist()):
                out[groups[(start + k) % len(groups)]].add(u)
            start += len(members)
        return out

    def units(self, group: Group) -> list[int]:
        """The units every modality of ``group`` has rows of (those dealt to it, when
        units are dealt to groups)."""
        shared = set.intersection(*(set(self.pools[m]) for m in group))
        return sorted(shared & self.dealt[group] if group in self.dealt else shared)

    def categories(self, group: Group) -> Tensor:
        """The categories every modality of ``group`` has items (events) of."""
        shared = {int(self.unit_category[u]) for u in self.units(group)}
        return torch.tensor(sorted(shared), dtype=torch.long)

    def steps(self, group: Group, batch_size: int) -> int:
        """Batches per epoch for ``group``: one pass over its largest modality."""
        units = set(self.units(group))
        n = max(sum(len(p) for u, p in self.pools[m].items() if u in units) for m in group)
        return math.ceil(n / batch_size)

    def draw_categories(self, group: Group, n: int) -> Tensor:
        """``n`` categories, distinct in rounds of ``C``, from a stream of permutations.

        The stream carries over between batches, so over an epoch every category is
        drawn about equally often; one already in the current round is left queued.
        """
        cats = [int(c) for c in self.categories(group)]
        if not cats:
            raise MMAlignError(f"no category has items of every modality in {group}")
        queue = self._queue.setdefault(group, [])
        out: list[int] = []
        while len(out) < n:
            picked: list[int] = []
            need, i = min(n - len(out), len(cats)), 0
            while len(picked) < need:
                if i == len(queue):
                    queue.extend(
                        cats[int(j)] for j in torch.randperm(len(cats), generator=self.generator)
                    )
                if queue[i] in picked:
                    i += 1
                else:
                    picked.append(queue.pop(i))
            out.extend(picked)
        return torch.tensor(out, dtype=torch.long)

    def draw_units(self, group: Group, categories: Tensor) -> Tensor:
        """One unit per drawn category: the category itself, or the next event of the
        category's shuffled pool of the events every modality of ``group`` has."""
        if self.tuples == "category":
            return categories
        shared = torch.tensor(self.units(group), dtype=torch.long)
        events = {int(c): shared[self.unit_category[shared] == c] for c in categories.unique()}
        return torch.tensor([self._next(group, int(c), events[int(c)]) for c in categories])

    def next_item(self, modality: str, unit: int) -> int:
        """The next row of ``modality`` for ``unit`` (its category or event)."""
        return self._next(modality, unit, self.pools[modality][unit])

    def _next(self, owner: str | Group, unit: int, pool: Tensor) -> int:
        """Walk ``pool`` in a shuffled order, reshuffled whenever it runs out."""
        key = (owner, unit)
        cursor = self._cursor.get(key, len(pool))
        if cursor >= len(pool):
            self._order[key] = pool[torch.randperm(len(pool), generator=self.generator)]
            cursor = 0
        self._cursor[key] = cursor + 1
        return int(self._order[key][cursor])


class RoundRobin(StrictModel):
    """How a round-robin epoch shares its batches among the modality pairs."""

    steps: Literal["joint", "pairs"] = Field(
        "joint",
        description="joint: as many batches per epoch as a joint epoch (equal step budgets); "
        "pairs: every pair's larger modality walked once",
    )
    weights: Literal["uniform", "proportional"] = Field(
        "uniform",
        description="uniform: equal batches per pair (eq. 2's mean); proportional: "
        "in proportion to the pairs' sizes",
    )
    schedule: Literal["interleaved", "block"] = Field(
        "interleaved", description="one batch per pair in turn, or each pair's batches in a block"
    )
    events: Literal["shared", "disjoint"] = Field(
        "shared",
        description="with event tuples: every pair draws from all training events (shared), "
        "or each event is dealt to one pair (disjoint: separately collected pair datasets)",
    )


def apportion(total: int, shares: dict[Group, float], order: Sequence[Group]) -> dict[Group, int]:
    """``total`` batches split in proportion to ``shares`` (largest remainders; ties
    go to the earlier group of ``order``, itself reshuffled every epoch)."""
    weight = sum(shares[g] for g in order)
    exact = {g: total * shares[g] / weight for g in order}
    counts = {g: math.floor(exact[g]) for g in order}
    rest = sorted(order, key=lambda g: (-(exact[g] - counts[g]), order.index(g)))
    for g in rest[: total - sum(counts.values())]:
        counts[g] += 1
    return counts


def pair_batches(
    rr: RoundRobin, pair_steps: dict[Group, int], joint_steps: int, order: Sequence[Group]
) -> dict[Group, int]:
    """Batches per pair in one round-robin epoch."""
    if rr.steps == "pairs" and rr.weights == "proportional":
        return {g: pair_steps[g] for g in order}
    total = joint_steps if rr.steps == "joint" else sum(pair_steps.values())
    shares = {g: 1.0 if rr.weights == "uniform" else float(pair_steps[g]) for g in order}
    return apportion(total, shares, order)


def round_robin_schedule(
    steps: dict[Group, int], order: Sequence[Group], schedule: str = "interleaved"
) -> list[Group]:
    """``interleaved``: cycle through ``order`` one batch at a time, skipping groups
    already exhausted; ``block``: every batch of each group in turn."""
    if schedule == "block":
        return [g for g in order for _ in range(steps[g])]
    left = dict(steps)
    out: list[Group] = []
    while any(left[g] > 0 for g in order):
        for g in order:
            if left[g] > 0:
                out.append(g)
                left[g] -= 1
    return out


def groups_for(strategy: Strategy, modalities: Sequence[str]) -> list[Group]:
    """``joint``: one group of every modality; ``round-robin``: every unordered pair."""
    if strategy == "joint":
        return [tuple(modalities)]
    return [tuple(p) for p in unordered_pairs(list(modalities))]


class TupleLoader:
    """A ``StageSpec.loader`` yielding aligned tuple batches (see module doc);
    ``batches_per_epoch`` tells the runner a training epoch's length."""

    def __init__(
        self,
        strategy: Strategy,
        modalities: Sequence[str],
        round_robin: RoundRobin | None = None,
        tuples: Tuples = "category",
    ) -> None:
        self.strategy, self.modalities, self.tuples = strategy, tuple(modalities), tuples
        self.groups = groups_for(strategy, modalities)
        self.rr = round_robin if round_robin is not None else RoundRobin()

    def _steps(
        self, sampler: TupleSampler, batch_size: int, order: Sequence[Group], train: bool
    ) -> dict[Group, int]:
        steps = {g: sampler.steps(g, batch_size) for g in self.groups}
        if self.strategy == "round-robin" and train:  # validation walks every pair once
            joint = sampler.steps(self.modalities, batch_size)
            steps = pair_batches(self.rr, steps, joint, order)
        return steps

    def batches_per_epoch(self, fs, batch_size: int, drop_last: bool = False) -> int:
        """A training epoch's batches (every batch is full-sized: ``drop_last`` is moot)."""
        sampler = TupleSampler(fs, self.modalities, torch.Generator(), self.tuples,
                               self._dealt(True))
        return sum(self._steps(sampler, batch_size, self.groups, True).values())

    def _dealt(self, train: bool) -> Sequence[Group]:
        """The pairs training events are dealt to (none: every pair draws from all)."""
        disjoint = self.strategy == "round-robin" and self.rr.events == "disjoint"
        return self.groups if disjoint and train and self.tuples == "event" else ()

    def __call__(
        self,
        fs,
        batch_size: int,
        generator: torch.Generator,
        epoch: int,
        train: bool,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        local = batch_size // world
        if batch_size % world:
            raise MMAlignError(
                f"train.batch_size {batch_size} is not a multiple of the {world} processes: "
                "each process takes an equal slice of every global batch of tuples"
            )
        sampler = TupleSampler(fs, self.modalities, generator, self.tuples, self._dealt(train))
        order = list(self.groups)
        if train:
            order = [order[int(i)] for i in torch.randperm(len(order), generator=generator)]
        steps = self._steps(sampler, batch_size, order, train)
        for step, group in enumerate(round_robin_schedule(steps, order, self.rr.schedule)):
            cats = sampler.draw_categories(group, batch_size)
            units = sampler.draw_units(group, cats)
            mine = slice(rank * local, (rank + 1) * local)
            index = units if self.tuples == "event" else torch.arange(step * batch_size,
                                                                      (step + 1) * batch_size)
            batch: Batch = {"label": cats[mine], "index": index[mine]}
            for m in group:
                rows = torch.tensor([sampler.next_item(m, int(u)) for u in units])
                batch[m] = fs.modality_batch(m, rows[mine])
            yield batch


def make_loader(
    strategy: Strategy,
    modalities: Sequence[str],
    round_robin: RoundRobin | None = None,
    tuples: Tuples = "category",
) -> TupleLoader:
    """A ``StageSpec.loader`` yielding aligned tuple batches (see module doc)."""
    return TupleLoader(strategy, modalities, round_robin, tuples)
