"""The suite file: parsing, validation (every bad key named before any run), expansion."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmalign.config import flatten
from mmalign.errors import ConfigError
from mmalign.suggest import did_you_mean
from mmalign.suite.subsets import parse as parse_subsets

KEYS = ("methods", "tasks", "sizes", "seeds", "defaults", "variants", "budget", "launcher",
        "report")
BUDGET_KEYS = ("steps", "stage")
REPORT_KEYS = ("against", "pairs", "contrast", "columns", "metrics", "subsets",
               "subset_metrics")


@dataclass
class Suite:
    path: Path
    methods: list[str]
    tasks: list[str | None]
    sizes: list[str | None]
    seeds: list[int]
    defaults: dict[str, Any]
    variants: dict[str, dict[str, Any]]
    budget_steps: int | None = None
    #: the TrainConfig the budget sets (``train`` -> ``train.epochs``)
    budget_stage: str = "train"
    launcher: dict[str, Any] = field(default_factory=dict)
    #: the report's references as written ("METHOD[:VARIANT]"); none: the first variant
    against: list[str] = field(default_factory=list)
    #: reference variant -> the variants paired with it (empty: all with the one reference)
    pairs: dict[str, list[str]] = field(default_factory=dict)
    #: ablation label -> its variant under each reference, in ``against`` order
    contrast: dict[str, list[str]] = field(default_factory=dict)
    #: the metrics the report shows, in this order (empty: every metric of the task)
    metrics: list[str] = field(default_factory=list)
    #: report columns from each run's record: name -> dotted path under ``extra``
    columns: dict[str, str] = field(default_factory=dict)
    #: test subsets by the generator's truth columns (:mod:`mmalign.suite.subsets`)
    subsets: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: the metrics computed on each subset, reported as ``METRIC@SUBSET``
    subset_metrics: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class Cell:
    method: str
    task: str | None
    size: str | None
    variant: str
    seed: int
    sets: dict[str, Any]

    @property
    def title(self) -> str:
        return (f"{self.method} · {self.task or 'default task'} · {self.size or 'default size'}"
                f" · {self.variant} · seed {self.seed}")


def _list(data: dict[str, Any], key: str, kind: type, path: Path, default: list[Any]) -> list:
    value = data.get(key, default)
    if not isinstance(value, list) or not value or not all(isinstance(v, kind) for v in value):
        raise ConfigError(f"{path}: '{key}' must be a non-empty list of {kind.__name__}s")
    return value


def load(path: Path) -> Suite:
    """Read and check a suite file; errors name the file and the key."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"Suite file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Suite file {path} is not valid TOML: {exc}") from None
    for key in data:
        if key not in KEYS:
            raise ConfigError(f"{path}: unknown key '{key}'.{did_you_mean(key, KEYS)} "
                              f"Valid keys: {', '.join(KEYS)}")
    if "methods" not in data:
        raise ConfigError(f"{path}: 'methods' is required (a list of method names)")
    variants = data.get("variants", {"default": {}})
    if not isinstance(variants, dict) or not variants or not all(
            isinstance(v, dict) for v in variants.values()):
        raise ConfigError(f"{path}: 'variants' must be tables, e.g. [variants.base]")
    for name, table in variants.items():
        if "size" in table and not isinstance(table["size"], str):
            raise ConfigError(f"{path}: 'variants.{name}.size' must be a size name")
    budget = data.get("budget", {})
    for key in budget:
        if key not in BUDGET_KEYS:
            raise ConfigError(f"{path}: unknown key 'budget.{key}'. Valid: steps, stage")
    steps = budget.get("steps")
    if steps is not None and (not isinstance(steps, int) or steps <= 0):
        raise ConfigError(f"{path}: 'budget.steps' must be a positive integer, got {steps!r}")
    return Suite(
        path=Path(path),
        methods=_list(data, "methods", str, path, []),
        tasks=_list(data, "tasks", str, path, [None]) if "tasks" in data else [None],
        sizes=_list(data, "sizes", str, path, [None]) if "sizes" in data else [None],
        seeds=_list(data, "seeds", int, path, [0]),
        defaults=flatten(data.get("defaults", {})),
        variants={name: flatten(v) for name, v in variants.items()},
        budget_steps=steps,
        budget_stage=str(budget.get("stage", "train")),
        launcher=dict(data.get("launcher", {})),
        **_report(data.get("report", {}), list(variants), path),
    )


def _report(report: dict[str, Any], variants: list[str], path: Path) -> dict[str, Any]:
    """The ``[report]`` table: references, their pairing groups, contrasts, columns."""
    for key in report:
        if key not in REPORT_KEYS:
            raise ConfigError(f"{path}: unknown key 'report.{key}'.{did_you_mean(key, REPORT_KEYS)}"
                              f" Valid: {', '.join(REPORT_KEYS)}")
    against = report.get("against", [])
    against = [against] if isinstance(against, str) else against
    if not isinstance(against, list) or not all(isinstance(a, str) and a for a in against):
        raise ConfigError(f"{path}: 'report.against' must be \"METHOD:VARIANT\" or a list "
                          "of them")
    metrics = report.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{path}: 'report.metrics' must be a list of metric names")
    pairs = _pairs(report, against, variants, path)
    subsets, subset_metrics = parse_subsets(report, path)
    return {"against": against, "pairs": pairs, "metrics": metrics,
            "contrast": _contrast(report, against, pairs, path),
            "columns": _columns(report, path), "subsets": subsets,
            "subset_metrics": subset_metrics}


def _reference_variants(against: list[str], variants: list[str], path: Path) -> list[str]:
    names = []
    for text in against:
        variant = text.partition(":")[2]
        if variant not in variants:
            raise ConfigError(f"{path}: 'report.against' entry '{text}' must name one of the "
                              f"suite's variants as METHOD:VARIANT ({', '.join(variants)})")
        if variant in names:
            raise ConfigError(f"{path}: 'report.against' names variant '{variant}' twice")
        names.append(variant)
    return names


def _pairs(report: dict[str, Any], against: list[str], variants: list[str],
           path: Path) -> dict[str, list[str]]:
    """Which reference each variant is paired with. Explicit, so that a comparison
    across settings whose data differ (premise against control) is never made."""
    pairs = report.get("pairs")
    if pairs is None:
        if len(against) > 1:
            raise ConfigError(f"{path}: 'report.against' names several references, so "
                              "[report.pairs] must list each reference's variants, e.g. "
                              'control = ["control-wo-inter"]')
        return {}
    refs = _reference_variants(against, variants, path)
    if not isinstance(pairs, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in pairs.values()):
        raise ConfigError(f"{path}: 'report.pairs' must map a reference variant to a list of "
                          'variant names, e.g. control = ["control-wo-inter"]')
    owner: dict[str, str] = {}
    for ref, members in pairs.items():
        if ref not in refs:
            raise ConfigError(f"{path}: 'report.pairs.{ref}' is not a variant named in "
                              f"'report.against' ({', '.join(refs)})")
        for name in members:
            if name not in variants:
                raise ConfigError(f"{path}: 'report.pairs.{ref}' lists '{name}', which is not "
                                  f"a variant.{did_you_mean(name, variants)}")
            if name in refs:
                raise ConfigError(f"{path}: 'report.pairs.{ref}' lists the reference '{name}'"
                                  "; references are not paired with each other")
            if name in owner:
                raise ConfigError(f"{path}: variant '{name}' is in report.pairs.{owner[name]} "
                                  f"and report.pairs.{ref}; it needs one reference")
            owner[name] = ref
    loose = [v for v in variants if v not in refs and v not in owner]
    if loose:
        raise ConfigError(f"{path}: variant '{loose[0]}' is in no report.pairs group; add it "
                          "to the list of the reference it is compared with")
    return {ref: list(pairs.get(ref, [])) for ref in refs}


def _contrast(report: dict[str, Any], against: list[str], pairs: dict[str, list[str]],
              path: Path) -> dict[str, list[str]]:
    contrast = report.get("contrast", {})
    if contrast and not pairs:
        raise ConfigError(f"{path}: 'report.contrast' needs [report.pairs] (each setting's "
                          "reference and its ablations)")
    refs = list(pairs)
    if not isinstance(contrast, dict):
        raise ConfigError(f"{path}: 'report.contrast' must map an ablation's label to its "
                          "variant under each reference, in 'report.against' order")
    for label, names in contrast.items():
        if not isinstance(names, list) or len(names) != len(refs):
            raise ConfigError(f"{path}: 'report.contrast.{label}' must list one variant per "
                              f"reference ({', '.join(refs)}), in that order")
        for ref, name in zip(refs, names, strict=True):
            if name not in pairs[ref]:
                raise ConfigError(f"{path}: 'report.contrast.{label}' names '{name}' for "
                                  f"'{ref}', but report.pairs.{ref} does not list it")
    return {label: list(names) for label, names in contrast.items()}


def _columns(report: dict[str, Any], path: Path) -> dict[str, str]:
    columns = report.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ConfigError(f"{path}: 'report.columns' must map a column name to a dotted "
                          "path in the run record, e.g. gate = \"stages.train.report.gate\"")
    return dict(columns)


def expand(suite: Suite) -> list[Cell]:
    """Every cell, seeds innermost so a killed suite has whole variants done first."""
    cells = []
    for method in suite.methods:
        for task in suite.tasks:
            for size in suite.sizes:
                for name, overrides in suite.variants.items():
                    sets = {**suite.defaults, **overrides}
                    # a variant may name its own size preset (e.g. a training scenario)
                    cell_size = sets.pop("size", size)
                    if "size" in overrides and size not in (None, suite.sizes[0]):
                        continue  # once per variant, not once per listed size
                    for seed in suite.seeds:
                        cells.append(Cell(method, task, cell_size, name, seed, sets))
    return cells
