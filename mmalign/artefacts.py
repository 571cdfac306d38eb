"""What a run keeps: its selected weights (safetensors), per-sample test predictions and
plots, and :func:`load_run` to get a trained model back and predict with it.

Resume checkpoints (``stage-*.ckpt``: optimizer state, RNG) are dropped on completion;
the selected weights stay as ``weights-<stage>.safetensors``, which is small, loads
without unpickling and is what notebooks and later analysis need.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mmalign import atomic, paths
from mmalign.errors import ResumeError
from mmalign.interfaces import Encoder, Objective, Sample, StageSpec, Task

log = logging.getLogger("mmalign.artefacts")
PREDICTIONS = "predictions-test.jsonl"


def weights_path(run_dir: Path, stage: str) -> Path:
    return run_dir / f"weights-{stage}.safetensors"


def save_weights(run_dir: Path, stage: str, model: nn.Module, objective: Objective) -> Path:
    """The stage's selected model and objective parameters, in one safetensors file."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"objective.{k}": v for k, v in objective.state_dict().items()})
    # clone: safetensors refuses tensors that share storage (tied weights, views)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()
               if isinstance(v, Tensor)}
    path = weights_path(run_dir, stage)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={"stage": stage})
    tmp.replace(path)
    return path


def load_weights(run_dir: Path, stage: str, model: nn.Module, objective: Objective) -> None:
    from safetensors.torch import load_file

    path = weights_path(run_dir, stage)
    if not path.exists():
        raise ResumeError(f"Run {run_dir.name} kept no weights for stage '{stage}' ({path} "
                          "is missing; runs recorded before weights were kept cannot load)")
    tensors = load_file(str(path))
    for prefix, module in (("model.", model), ("objective.", objective)):
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        module.load_state_dict(state)


def _rows(task: Task, outputs: dict[str, Any], ids: list[str],
          labels: Tensor | None) -> list[dict[str, Any]]:
    rows = []
    if "logits" in outputs:
        probs = torch.softmax(outputs["logits"].float(), dim=-1)
        for i, sid in enumerate(ids):
            rows.append({"id": sid, "label": None if labels is None else int(labels[i]),
                         "prediction": int(probs[i].argmax()),
                         "probabilities": [round(float(p), 6) for p in probs[i]]})
    elif "prediction" in outputs:
        for i, sid in enumerate(ids):
            rows.append({"id": sid, "label": None if labels is None else float(labels[i]),
                         "prediction": float(outputs["prediction"][i])})
    return rows


def save_predictions(run_dir: Path, task: Task, model: nn.Module, fs: Any, batch_size: int,
                     device: torch.device) -> Path | None:
    """One JSON line per test sample (id, label, prediction, class probabilities); for
    retrieval the per-modality test embeddings (safetensors) instead."""
    from mmalign.runner.evaluation import predict, predict_retrieval

    if task.label_type == "retrieval":
        from safetensors.torch import save_file

        out = predict_retrieval(model, fs, batch_size, device)
        tensors = {f"embeddings.{m}": e.contiguous() for m, e in out["embeddings"].items()}
        tensors.update({f"labels.{m}": lab.contiguous() for m, lab in out["labels"].items()})
        path = run_dir / "embeddings-test.safetensors"
        save_file(tensors, str(path))
        return path
    if task.label_type == "none":
        return None
    outputs = predict(model, fs, batch_size, device)
    rows = _rows(task, outputs, list(fs.sample_ids), fs.labels)
    if not rows:
        return None
    path = run_dir / PREDICTIONS
    atomic.write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_predictions(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / PREDICTIONS
    return [json.loads(line) for line in path.read_text().splitlines() if line]


# ------------------------------------------------------------------------ load_run


def run_dir_of(ref: str | Path) -> Path:
    path = Path(ref).expanduser()
    if (path / "run.json").exists():
        return path
    candidate = paths.runs_dir() / str(ref)
    if (candidate / "run.json").exists():
        return candidate
    raise ResumeError(f"No run '{ref}': looked for {path}/run.json and {candidate}/run.json")


@dataclass
class LoadedRun:
    """A finished run's trained model, ready to predict on new samples or a split."""

    run_id: str
    run_dir: Path
    config: Any
    method_config: Any
    task: Task
    stage: StageSpec
    model: nn.Module
    encoders: dict[str, Encoder]
    device: torch.device
    metrics: dict[str, Any]

    def features(self, samples: list[Sample], split: str = "predict") -> Any:
        from mmalign.config import config_hash
        from mmalign.features import build_feature_set, derive_features
        from mmalign.runner.device import autocast

        refs = self.stage.encoders or getattr(self.method_config, "encoders", {})
        cached = {m: refs[m].cache for m in self.encoders}
        key = config_hash([self.run_id, [s.id for s in samples]])
        fs = build_feature_set(split, samples, self.encoders, cached, key,
                               inputs={m: refs[m].inputs for m in self.encoders},
                               device=self.device, where=self.task.name)
        fs.keep_only({m: refs[m].keep for m in self.encoders if refs[m].keep is not None})
        if self.stage.precompute is not None:
            with autocast(self.device):
                derive_features(fs, self.stage.precompute, self.stage.train.eval_batch_size,
                                self.device)
        return fs

    def predict(self, samples: list[Sample] | None = None,
                split: str = "test") -> list[dict[str, Any]]:
        """Per-sample predictions (as in ``predictions-test.jsonl``) for ``samples``, or
        for a split of the run's task when no samples are given."""
        from mmalign.runner.evaluation import predict

        if samples is None:
            samples = self.task.load().splits[split]
        fs = self.features(samples, split)
        outputs = predict(self.model, fs, self.stage.train.eval_batch_size, self.device)
        return _rows(self.task, outputs, list(fs.sample_ids), fs.labels)


def load_run(run_id: str | Path, device: str | None = None) -> LoadedRun:
    """Rebuild a completed run's model stage by stage and load its kept weights."""
    from mmalign.config import RunConfig, validate
    from mmalign.plugins import get_host
    from mmalign.runner.compose import make_task
    from mmalign.runner.device import pick_device
    from mmalign.runner.run import stage_context

    run_dir = run_dir_of(run_id)
    run_cfg = RunConfig.model_validate_json((run_dir / "run.json").read_text())
    record = json.loads((run_dir / "metrics.json").read_text()) if (
        run_dir / "metrics.json").exists() else {}
    if not record:
        raise ResumeError(f"Run {run_dir.name} has not completed (no metrics.json)")
    registry = get_host().registry
    method = registry.get("method", run_cfg.method)()
    cfg = validate(method.Config, run_cfg.method_config["method"])
    data_dir = Path(run_cfg.data_dir) if getattr(run_cfg, "data_dir", None) else None
    main_task = make_task(registry, run_cfg.task, run_cfg.method_config["task"], data_dir)
    torch_device = pick_device(device)
    stages_info = record.get("extra", {}).get("stages", {})
    previous: dict[str, nn.Module] = {}
    model: nn.Module | None = None
    for stage in method.stages(cfg, main_task):
        used = stages_info.get(stage.name, {}).get("task", run_cfg.task)
        task = main_task if used == run_cfg.task else make_task(
            registry, used, stage.task_configs.get(used, {}), None)
        ctx, encoders = stage_context(stage, task, cfg, previous, torch_device)
        model, objective = stage.build(ctx)
        load_weights(run_dir, stage.name, model, objective)
        model.to(torch_device).eval()
        previous[stage.name] = model
        last = (stage, task, encoders)
    assert model is not None
    stage, task, encoders = last
    for enc in encoders.values():
        enc.to(torch_device)
    return LoadedRun(run_dir.name, run_dir, run_cfg, cfg, task, stage, model, encoders,
                     torch_device, record.get("metrics", {}))


# ------------------------------------------------------------- kept per stage


def keep_stage(run_dir: Path, stage: StageSpec, task: Task, model: nn.Module,
               objective: Objective, fsets: dict[str, Any], info: dict[str, Any],
               last: bool, device: torch.device, test_metrics: dict[str, float]) -> None:
    """After a stage: its weights; for the last stage the test predictions; the plots."""
    save_weights(run_dir, stage.name, model, objective)
    predictions = None
    if last:
        predictions = save_predictions(run_dir, task, model, fsets["test"],
                                       stage.train.eval_batch_size, device)
    try:
        draw_stage_plots(run_dir, stage, task, info, predictions)
        if last and task.label_type == "retrieval":
            draw_retrieval_heatmap(run_dir, test_metrics)
    except Exception as exc:  # noqa: BLE001 - a plot never costs a finished run
        log.warning("could not draw the plots of stage %s: %s", stage.name, exc)


def draw_stage_plots(run_dir: Path, stage: StageSpec, task: Task, info: dict[str, Any],
                     predictions: Path | None) -> list[Path]:
    """Learning curves (selected epoch marked); a confusion matrix for classification."""
    from mmalign import plots

    out = []
    history = info.get("history") or []
    if history:
        monitor = stage.train.monitor or (
            "val_loss" if task.label_type == "none" else task.primary_metric)
        out.append(plots.learning_curves(
            history, monitor, int(info.get("best_epoch", -1)),
            f"{stage.name} on {task.name}", run_dir / f"curves-{stage.name}.png"))
    if predictions is not None and predictions.name == PREDICTIONS and \
            task.label_type == "classification":
        rows = read_predictions(run_dir)
        k = task.num_classes or 1 + max(max(r["label"], r["prediction"]) for r in rows)
        counts = [[0] * k for _ in range(k)]
        for r in rows:
            counts[r["label"]][r["prediction"]] += 1
        names = list(task.label_names) or [str(i) for i in range(k)]
        out.append(plots.matrix(counts, names, names, f"{task.name} test confusion matrix",
                                "predicted", "true", run_dir / "confusion-test.png"))
    return out


def draw_retrieval_heatmap(run_dir: Path, metrics: dict[str, float]) -> Path | None:
    """Recall@k per query modality (rows) and k (columns) from the test metrics."""
    from mmalign import plots

    cells: dict[str, dict[str, float]] = {}
    for name, value in metrics.items():
        query, sep, at = name.partition("/")
        if sep and "->" in query and at.startswith("r@"):
            cells.setdefault(query, {})[at] = value
    if not cells:
        return None
    ks = sorted({k for row in cells.values() for k in row}, key=lambda k: int(k[2:]))
    queries = sorted(cells)
    values = [[cells[q].get(k, 0.0) for k in ks] for q in queries]
    return plots.matrix(values, queries, ks, "test recall@k", "k", "query -> gallery",
                        run_dir / "recall-test.png", fmt="{:.2f}")
