"""Like-for-like leaderboards from the results store.

Rows group by the *resolved* configuration minus the seed and by the data each stage
read, as its provenance records it (so a changed default or task preset never averages
old and new runs), carry a visible variant label (the user's overrides, plus the
keys that tell apart two configurations that would otherwise read the same), and report
n seeds, mean, sample std and a 95% t-interval (:mod:`mmalign.stats`). With a reference
row (``--against``) each row also gets the paired difference on shared seeds. A paper's
reported row shares a table only with measured rows of the same protocol (method, task,
size, no overrides, real data, and the reported encoders/split where the registry names
them); the other measured rows are shown apart with the difference named.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmalign import paths, stats
from mmalign.config import config_hash, flatten
from mmalign.errors import ConfigError, RegistryError

FORMATS = ("table", "markdown", "csv", "json")
BLANK = "—"
STATS_NOTE = (f"± is the {stats.STD_KIND} over seeds; [low, high] is the 95% Student-t "
              "confidence interval of the mean; n is the number of seeds.")


def resolved_key(config: dict[str, Any], with_seed: bool = False) -> str:
    """Identity of a run's resolved configuration (method, task, size, method config)."""
    keep = {k: config.get(k) for k in ("method", "task", "size", "method_config")}
    if with_seed:
        keep["seed"] = config.get("seed")
    return config_hash(keep)


#: what identifies the data a stage read (not the folder, which moves between machines)
DATA_FIELDS = ("task", "kind", "split_protocol", "generator_version", "stand_in_for")


def stage_data(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage, the identifying part of the data the run's provenance records."""
    prov = (run.get("extra") or {}).get("provenance") or {}
    return {name: {k: info["data"][k] for k in DATA_FIELDS if k in info["data"]}
            for name, info in (prov.get("stages") or {}).items()
            if isinstance(info, dict) and isinstance(info.get("data"), dict)}


def data_key(run: dict[str, Any], data: dict[str, dict[str, Any]] | None = None) -> str:
    """Identity of the data a run read (``data``: its :func:`stage_data`, when already
    at hand): each stage's task with its *resolved* config (a preset or a generator
    default the user never typed is in it) and generator version. The run's config holds
    only the keys the user set, so two runs with one config key can have read different
    data; empty for a run recorded without provenance."""
    data = stage_data(run) if data is None else data
    return config_hash(data) if data else ""


@dataclass
class Row:
    method: str
    size: str
    task: str
    key: str = ""
    #: identity of the data read (:func:`data_key`); rows of one config split by it
    data_key: str = ""
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)
    #: metric -> seed -> value (measured); reported rows use seed -1
    values: dict[str, dict[int, float]] = field(default_factory=dict)
    reported: bool = False
    source: str = ""
    protocol: dict[str, Any] = field(default_factory=dict)
    stand_in: list[str] = field(default_factory=list)
    name: str = ""
    disambiguation: str = ""
    run_ids: list[str] = field(default_factory=list)
    #: metric -> seeds whose value was undefined (NaN: Corr of a constant prediction)
    undefined: dict[str, list[int]] = field(default_factory=dict)

    @property
    def seeds(self) -> int:
        return len({s for per in self.values.values() for s in per})

    @property
    def label(self) -> str:
        """The variant as shown: suite name or size, then overrides, then what differs."""
        parts = [self.name or self.size]
        if self.overrides:
            parts.append(", ".join(f"{k}={v}" for k, v in sorted(self.overrides.items())))
        if self.disambiguation:
            parts.append(f"config: {self.disambiguation}")
        return " · ".join(parts)

    def by_seed(self, metric: str) -> dict[int, float]:
        return self.values.get(metric, {})

    def summary(self, metric: str) -> stats.Summary | None:
        vals = list(self.by_seed(metric).values())
        return stats.summarize(vals) if vals else None

    def mean(self, metric: str) -> float | None:
        s = self.summary(metric)
        return s.mean if s else None


def _test_metrics(run: dict[str, Any]) -> dict[str, float]:
    metrics = run["metrics"]
    return metrics.get("test") or next(
        (v for k, v in metrics.items() if k.endswith("test")), {}
    )


def _stand_in(run: dict[str, Any]) -> list[str]:
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    marked = (extra.get("provenance") or {}).get("stand_in")
    if marked is not None:
        return list(marked)
    stages = extra.get("stages") or {}
    return [f"{name}: {info['task']}" for name, info in stages.items()
            if isinstance(info, dict) and info.get("notice")]


def _encoders(row: Row) -> dict[str, str]:
    encs = (row.resolved.get("method_config", {}).get("method", {}) or {}).get("encoders", {})
    return {m: ref.get("name", "") for m, ref in encs.items() if isinstance(ref, dict)}


def measured_rows(runs: list[dict[str, Any]], names: dict[str, str] | None = None) -> list[Row]:
    """Completed runs grouped by resolved configuration minus seed (latest run per seed)."""
    rows: dict[str, Row] = {}
    for run in runs:
        if run["status"] != "completed":
            continue
        config = run.get("config") or {}
        key = resolved_key(config) if config else config_hash(
            [run["method"], run["task"], run["size"]])
        data = stage_data(run)
        read = data_key(run, data)
        row = rows.get(f"{key}:{read}")
        if row is None:
            row = rows[f"{key}:{read}"] = Row(
                run["method"], run["size"], run["task"], key=key, data_key=read,
                data=data, overrides=dict(config.get("overrides") or {}),
                resolved=config, name=(names or {}).get(key, ""))
        row.run_ids.append(run.get("run_id", ""))
        for note in _stand_in(run):
            if note not in row.stand_in:
                row.stand_in.append(note)
        for metric, value in _test_metrics(run).items():
            if isinstance(value, (int, float)) and math.isnan(value):
                row.undefined.setdefault(metric, []).append(int(run["seed"]))
            elif isinstance(value, (int, float)):
                row.values.setdefault(metric, {})[int(run["seed"])] = float(value)
    out = list(rows.values())
    _disambiguate(out)
    return out


def _disambiguate(rows: list[Row]) -> None:
    """Rows with the same visible label but different resolved configs name what differs."""
    by_label: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        by_label.setdefault((row.method, row.task, row.label), []).append(row)
    for group in by_label.values():
        if len(group) < 2:
            continue
        flat = [flatten(r.resolved.get("method_config", {})) for r in group]
        for row, f in zip(group, flat, strict=True):
            f.update({f"data.{k}": v for k, v in flatten(row.data).items()})
        keys = sorted({k for f in flat for k in f})
        differing = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True)
                                             for f in flat}) > 1]
        for row, f in zip(group, flat, strict=True):
            row.disambiguation = ", ".join(
                f"{k.removeprefix('method.')}={json.dumps(f.get(k))}" for k in differing
            ) or f"hash {row.key[:8]}"


def reported_rows(task: str | None, path: Path | None = None) -> list[Row]:
    path = path or paths.registry_file()
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text())
    out = []
    for item in data.get("reported", []):
        if task and item["task"] != task:
            continue
        row = Row(item["method"], item.get("size", "default"), item["task"], reported=True,
                  source=item.get("source", ""), protocol=dict(item.get("protocol", {})))
        row.values = {k: {-1: float(v)} for k, v in item.get("metrics", {}).items()}
        out.append(row)
    return out


def protocol_differences(row: Row, reported: list[Row]) -> list[str]:
    """Why ``row`` is not like-for-like with the task's reported rows (empty: it is)."""
    same_method = [r for r in reported if r.method == row.method]
    if not same_method:
        return [f"no reported row for {row.method}"]
    ref = next((r for r in same_method if r.size == row.size), same_method[0])
    diffs = []
    if ref.size != row.size:
        diffs.append(f"size {row.size} (reported: {ref.size})")
    if row.overrides:
        diffs.append("overrides " + ", ".join(f"{k}={v}" for k, v in sorted(row.overrides.items())))
    if row.stand_in:
        diffs.append("stand-in data (" + "; ".join(row.stand_in) + ")")
    want = ref.protocol.get("encoders")
    have = {m: _encoders(row).get(m, "none") for m in want or {}}
    if want and have != want:  # only the modalities the paper names
        diffs.append(f"encoders {'/'.join(have.values())} (reported: {'/'.join(want.values())})")
    split = ref.protocol.get("split")
    if split is not None:
        task_cfg = row.resolved.get("method_config", {}).get("task", {}) or {}
        used = task_cfg.get("split", _task_default(row.task, "split"))
        if used != split:
            diffs.append(f"{used} split (reported: {split} split)")
    return diffs


def _task_default(task: str, key: str) -> Any:
    """The default of a task config field (what a run that did not set it used)."""
    from mmalign.plugins import get_registry

    try:
        field_info = get_registry().get("task", task).Config.model_fields.get(key)
    except RegistryError:
        return None
    return None if field_info is None else field_info.default


@dataclass
class Board:
    task: str
    metrics: list[str]
    rows: list[Row]
    higher_is_better: dict[str, bool]
    #: measured rows not comparable with the reported ones, with the difference named
    apart: list[tuple[Row, list[str]]] = field(default_factory=list)
    reference: Row | None = None
    #: several references (a suite's ``report.pairs``) and, row key -> the reference that
    #: row is paired with; a row of no group is compared with nothing
    references: list[Row] = field(default_factory=list)
    groups: dict[str, Row] = field(default_factory=dict)

    def best(self, metric: str) -> float | None:
        vals = [r.mean(metric) for r in self.rows if not r.reported]
        vals = [v for v in vals if v is not None]
        if not vals:
            return None
        return max(vals) if self.higher_is_better.get(metric, True) else min(vals)

    def reference_of(self, row: Row) -> Row | None:
        """The row ``row`` is compared with: its group's reference, else the reference."""
        if row.reported or self.is_reference(row):
            return None
        return self.groups.get(row.key) if self.references else self.reference

    def is_reference(self, row: Row) -> bool:
        return row is self.reference or any(row is ref for ref in self.references)

    @property
    def compared(self) -> bool:
        return self.reference is not None or bool(self.references)

    def paired(self, row: Row, metric: str) -> stats.Paired | None:
        ref = self.reference_of(row)
        if ref is None:
            return None
        return stats.paired(row.by_seed(metric), ref.by_seed(metric))

    @property
    def measured(self) -> list[Row]:
        return [r for r in self.rows if not r.reported] + [r for r, _ in self.apart]


def lower_is_better(metric: str) -> bool:
    """The direction the registered metric that returns ``metric`` declares (losses
    are lower-is-better); a value no registered metric declares ranks high first."""
    from mmalign.plugins import get_registry

    try:
        return get_registry().metric_direction(metric) == "min"
    except RegistryError:
        return False


def parse_against(text: str) -> tuple[str, str | None]:
    method, _, variant = text.partition(":")
    if not method:
        raise ConfigError(f"--against expects METHOD[:VARIANT], got '{text}'")
    return method, variant or None


def _matches(row: Row, variant: str | None, default_sizes: dict[str, str]) -> bool:
    if variant is None:
        return not row.overrides and row.size == default_sizes.get(row.method, row.size)
    overrides = ", ".join(f"{k}={v}" for k, v in sorted(row.overrides.items()))
    return variant in (row.name, row.label, overrides) or (
        variant == row.size and not row.overrides)


def pick_reference(rows: list[Row], against: tuple[str, str | None],
                   default_sizes: dict[str, str]) -> Row | None:
    """The one measured row ``against`` (METHOD, VARIANT) names; None when none does."""
    method, variant = against
    found = [r for r in rows if r.method == method and not r.reported
             and _matches(r, variant, default_sizes)]
    if len(found) > 1:
        labels = "; ".join(r.label for r in found)
        raise ConfigError(f"--against {method}:{variant or ''} matches several rows ({labels}); "
                          "name the variant exactly")
    return found[0] if found else None


def build_boards(
    runs: list[dict[str, Any]], task: str | None, metric: str | None, reported: bool,
    primary: dict[str, list[str]], against: str | None = None,
    default_sizes: dict[str, str] | None = None, names: dict[str, str] | None = None,
    registry_path: Path | None = None,
) -> list[Board]:
    """One board per task; metrics ordered primary (or requested) first, rows best first."""
    measured = [r for r in measured_rows(runs, names) if task is None or r.task == task]
    paper = reported_rows(task, registry_path) if reported else []
    ref_spec = parse_against(against) if against else None
    boards = []
    for name in sorted({r.task for r in measured + paper}):
        rows = [r for r in measured if r.task == name]
        paper_rows = [r for r in paper if r.task == name]
        present = sorted({m for r in rows + paper_rows for m in r.values})
        order = [m for m in primary.get(name, []) if m in present]
        order += [m for m in present if m not in order and "/" not in m]
        if metric:
            if metric not in present:
                raise ConfigError(f"Unknown --metric '{metric}' for task {name}. "
                                  f"Metrics: {', '.join(order) or 'none'}")
            order = [metric] + [m for m in order if m != metric]
        first = order[0] if order else None
        main, apart = list(rows), []
        if paper_rows:
            main, apart = [], []
            for row in rows:
                diffs = protocol_differences(row, paper_rows)
                (apart.append((row, diffs)) if diffs else main.append(row))
            main += paper_rows
        main.sort(key=lambda r: (r.reported, _sort_value(r, first)))
        apart.sort(key=lambda item: _sort_value(item[0], first))
        board = Board(name, order, main, {m: not lower_is_better(m) for m in order}, apart)
        if ref_spec:
            board.reference = pick_reference(rows, ref_spec, default_sizes or {})
        boards.append(board)
    if ref_spec and boards and all(b.reference is None for b in boards):
        method, variant = ref_spec
        labels = sorted({r.label for r in measured if r.method == method})
        hint = (f"; {method}'s rows: {'; '.join(labels)}" if labels
                else f"; no measured row of {method}")
        raise ConfigError(f"--against {method}{':' + variant if variant else ''}: no measured "
                          "row matches (the variant label as the table shows it, its "
                          f"overrides, or the size; suite variant names only in a suite "
                          f"report){hint}")
    return boards


def _sort_value(row: Row, metric: str | None) -> float:
    value = row.mean(metric) if metric else None
    if value is None:
        return math.inf
    return value if lower_is_better(metric or "") else -value


# ------------------------------------------------------------------------ rendering


def _num(value: float | None) -> str:
    return BLANK if value is None or math.isnan(value) else f"{value:.4f}"


def cell(row: Row, metric: str) -> str:
    s = row.summary(metric)
    undefined = len(row.undefined.get(metric, []))
    seeds = f"{undefined} seed{'s' if undefined > 1 else ''}"
    note = f" ({seeds} undefined)" if undefined else ""
    if s is None:
        return f"undefined ({seeds})" if undefined else BLANK
    if row.reported or s.n == 1:
        return f"{s.mean:.4f}{note}"
    assert s.ci95 is not None and s.std is not None
    return f"{s.mean:.4f} ± {s.std:.4f} [{s.ci95[0]:.4f}, {s.ci95[1]:.4f}]{note}"


def delta_cell(board: Board, row: Row, metric: str) -> tuple[str, str]:
    """(difference with its CI, p-value with the verdict) against the reference."""
    if board.is_reference(row):
        return "reference", BLANK
    p = board.paired(row, metric)
    if p is None:
        return BLANK, BLANK
    ci = f" [{p.delta_ci95[0]:+.4f}, {p.delta_ci95[1]:+.4f}]" if p.delta_ci95 else ""
    ref = board.reference_of(row)
    versus = f" vs {ref.name or ref.label}" if board.references and ref is not None else ""
    if p.p_value is None:
        return f"{p.delta:+.4f}{ci} (n={p.n}){versus}", BLANK
    verdict = "" if p.distinguishable else " (not distinguishable)"
    return f"{p.delta:+.4f}{ci} (n={p.n}){versus}", f"{p.p_value:.3g}{verdict}"


def runs_cell(row: Row) -> str:
    return f"reported ({row.source})" if row.reported else str(row.seeds)


def notes(row: Row) -> str:
    return ("stand-in: " + "; ".join(row.stand_in)) if row.stand_in else ""


def _header(board: Board, with_notes: bool) -> list[str]:
    head = ["method", "variant", "n", *board.metrics]
    if board.compared and board.metrics:
        first = board.metrics[0]
        versus = ("its reference" if board.references else
                  f"{board.reference.method} {board.reference.label}"
                  if board.reference else "")
        head += [f"Δ {first} vs {versus} [95% CI]", "p (paired t)"]
    if with_notes:
        head.append("notes")
    return head


def _cells(board: Board, row: Row, bold: Any, with_notes: bool,
           extra: list[str] | None = None) -> list[str]:
    out = [row.method, row.label, runs_cell(row)]
    for m in board.metrics:
        text = cell(row, m)
        if not row.reported and row.mean(m) is not None and row.mean(m) == board.best(m):
            text = bold(text)
        out.append(text)
    if board.compared and board.metrics:
        out += list(delta_cell(board, row, board.metrics[0]))
    if with_notes:
        out.append(notes(row))
    return out + (extra or [])


def _with_notes(board: Board) -> bool:
    return any(r.stand_in for r in board.measured)


def render_rich(board: Board) -> Any:
    from rich.markup import escape
    from rich.table import Table

    tables = []
    with_notes = _with_notes(board)
    table = Table(title=escape(board.task), title_justify="left", caption=escape(STATS_NOTE),
                  caption_justify="left")
    for col in _header(board, with_notes):
        table.add_column(escape(col), justify="right" if col in board.metrics else "left")
    for row in board.rows:
        cells = [escape(c) for c in _cells(board, row, lambda t: t, with_notes)]
        best = [i for i, m in enumerate(board.metrics, start=3)
                if not row.reported and row.mean(m) is not None and row.mean(m) == board.best(m)]
        for i in best:
            cells[i] = f"[bold]{cells[i]}[/bold]"
        table.add_row(*cells, style="dim italic" if row.reported else None)
    tables.append(table)
    if board.apart:
        other = Table(title=f"{board.task}: measured under another protocol than the "
                            "reported rows", title_justify="left")
        for col in [*_header(board, with_notes), "differs from reported"]:
            other.add_column(escape(col))
        for row, diffs in board.apart:
            other.add_row(*(escape(c) for c in _cells(board, row, lambda t: t, with_notes,
                                                      ["; ".join(diffs)])))
        tables.append(other)
    from rich.console import Group

    return Group(*tables)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(board: Board) -> str:
    with_notes = _with_notes(board)
    head = _header(board, with_notes)
    lines = [f"### {board.task}", "", STATS_NOTE, "",
             "| " + " | ".join(_md_escape(h) for h in head) + " |", "|" + "---|" * len(head)]
    for row in board.rows:
        cells = _cells(board, row, lambda t: f"**{t}**", with_notes)
        lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    if board.apart:
        head = [*head, "differs from reported"]
        lines += ["", f"Measured under another protocol than the reported rows of "
                      f"{board.task}:", "", "| " + " | ".join(_md_escape(h) for h in head) + " |",
                  "|" + "---|" * len(head)]
        for row, diffs in board.apart:
            cells = _cells(board, row, lambda t: t, with_notes, ["; ".join(diffs)])
            lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _csv_num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def render_csv(boards: list[Board]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["task", "method", "variant", "size", "reported", "stand_in", "protocol",
                     "n", "metric", "mean", "std", "ci95_low", "ci95_high", "delta",
                     "delta_ci95_low", "delta_ci95_high", "p_value"])
    for board in boards:
        rows = [(r, "") for r in board.rows] + [(r, "; ".join(d)) for r, d in board.apart]
        for row, differs in rows:
            for m in board.metrics:
                s = row.summary(m)
                if s is None:
                    continue
                p = board.paired(row, m)
                ci = s.ci95 or (None, None)
                dci = (p.delta_ci95 if p and p.delta_ci95 else (None, None))
                writer.writerow([
                    board.task, row.method, row.label, row.size, row.reported,
                    "; ".join(row.stand_in), differs, s.n, m, _csv_num(s.mean),
                    _csv_num(s.std), _csv_num(ci[0]), _csv_num(ci[1]),
                    _csv_num(p.delta if p else None), _csv_num(dci[0]), _csv_num(dci[1]),
                    _csv_num(p.p_value if p else None),
                ])
    return buf.getvalue()


def row_json(board: Board, row: Row, differs: list[str] | None) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for m in board.metrics:
        s = row.summary(m)
        undefined = row.undefined.get(m, [])
        if s is None:
            if undefined:
                metrics[m] = {"mean": None, "std": None, "ci95": None, "n": 0,
                              "undefined_seeds": sorted(undefined)}
            continue
        entry = s.as_dict()
        if undefined:
            entry["undefined_seeds"] = sorted(undefined)
        p = board.paired(row, m)
        if p is not None:
            entry.update(p.as_dict())
        metrics[m] = entry
    ref = board.reference_of(row)
    return {
        "method": row.method, "variant": row.label, "size": row.size,
        "overrides": row.overrides, "config_key": row.key, "data_key": row.data_key,
        "reported": row.reported, "source": row.source, "n": row.seeds, "stand_in": row.stand_in,
        "reference": board.is_reference(row), "protocol_differences": differs or [],
        "run_ids": row.run_ids, "metrics": metrics,
        "compared_with": None if ref is None else {"method": ref.method, "variant": ref.label},
    }


def render_json(boards: list[Board]) -> str:
    out = []
    for board in boards:
        ref = board.reference
        out.append({
            "task": board.task,
            "metrics": board.metrics,
            "std": stats.STD_KIND,
            "reference": None if ref is None else {"method": ref.method, "variant": ref.label},
            "rows": [row_json(board, r, None) for r in board.rows],
            "apart": [row_json(board, r, d) for r, d in board.apart],
        })
    return json.dumps(out, indent=2)
