"""Seed statistics for leaderboards: mean, sample std, a t confidence interval, and the
paired comparison of two configurations on the seeds they share.

Seeds are few (3-10), so intervals use Student's t rather than a normal
approximation, and comparisons pair runs by seed (same data order and
initialisation) with a paired t-test, which is far more sensitive than comparing two
independent means when seed noise is shared.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats as sps

#: how the reported std is computed (sample std: n-1 in the denominator)
STD_KIND = "sample std (ddof=1)"
LEVEL = 0.95


@dataclass(frozen=True)
class Summary:
    """One metric of one configuration over n seeds."""

    n: int
    mean: float
    std: float | None
    ci95: tuple[float, float] | None

    def as_dict(self) -> dict[str, object]:
        return {"mean": self.mean, "std": self.std,
                "ci95": list(self.ci95) if self.ci95 else None, "n": self.n}


@dataclass(frozen=True)
class Paired:
    """Row minus reference on the seeds both have."""

    n: int
    delta: float
    delta_ci95: tuple[float, float] | None
    p_value: float | None

    @property
    def distinguishable(self) -> bool | None:
        """Whether the paired test rejects "no difference" at 5% (None: too few seeds)."""
        return None if self.p_value is None else self.p_value < 1 - LEVEL

    def as_dict(self) -> dict[str, object]:
        return {"delta": self.delta,
                "delta_ci95": list(self.delta_ci95) if self.delta_ci95 else None,
                "p_value": self.p_value, "n_paired": self.n,
                "distinguishable": self.distinguishable}


def t_interval(values: list[float]) -> tuple[float, float] | None:
    """The 95% Student-t interval of the mean; None with fewer than two values."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    sem = statistics.stdev(values) / math.sqrt(len(values))
    if sem == 0:
        return (mean, mean)
    low, high = sps.t.interval(LEVEL, len(values) - 1, loc=mean, scale=sem)
    return (float(low), float(high))


def summarize(values: list[float]) -> Summary:
    if not values:
        raise ValueError("summarize needs at least one value")
    std = statistics.stdev(values) if len(values) > 1 else None
    return Summary(len(values), statistics.fmean(values), std, t_interval(values))


def paired(row: dict[int, float], reference: dict[int, float]) -> Paired | None:
    """Paired difference on shared seeds (row - reference); None when no seed is shared."""
    seeds = sorted(set(row) & set(reference))
    if not seeds:
        return None
    a = [row[s] for s in seeds]
    b = [reference[s] for s in seeds]
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    delta = statistics.fmean(diffs)
    if len(seeds) < 2:
        return Paired(1, delta, None, None)
    if all(d == diffs[0] for d in diffs):  # zero variance: the t statistic is undefined
        return Paired(len(seeds), delta, (delta, delta), 1.0 if delta == 0 else 0.0)
    p = float(sps.ttest_rel(a, b).pvalue)
    return Paired(len(seeds), delta, t_interval(diffs), p)
