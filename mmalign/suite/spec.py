"""The suite file: parsing, validation (every bad key named before any run), expansion."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmalign.config import flatten
from mmalign.errors import ConfigError
from mmalign.suggest import did_you_mean

KEYS = ("methods", "tasks", "sizes", "seeds", "defaults", "variants", "budget", "launcher",
        "report")
BUDGET_KEYS = ("steps", "stage")


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
    against: str | None = None
    #: report columns from each run's record: name -> dotted path under ``extra``
    columns: dict[str, str] = field(default_factory=dict)

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
        against=data.get("report", {}).get("against"),
        columns=_columns(data.get("report", {}), path),
    )


def _columns(report: dict[str, Any], path: Path) -> dict[str, str]:
    for key in report:
        if key not in ("against", "columns"):
            raise ConfigError(f"{path}: unknown key 'report.{key}'. Valid: against, columns")
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
