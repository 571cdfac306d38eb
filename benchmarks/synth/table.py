"""The table of structured embedded tasks in docs/datasets.md, from the recorded baselines.

    python benchmarks/synth/table.py            # rewrite the table in docs/datasets.md
    python benchmarks/synth/table.py --print    # print it only

Reads ``results/{task}-{structure}.json`` written by ``baselines.py``; a task without
recorded results is listed with "not recorded".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mmalign
from mmalign.atomic import write_text

HERE = Path(__file__).parent
DOC = HERE.parents[1] / "docs" / "datasets.md"
START, END = "<!-- synth-table:start -->", "<!-- synth-table:end -->"
PREMISE = {
    "synth-clash": "pairs share an object beyond the label; polar pairs contradict",
    "synth-speakers": "a video's clips recur (near-duplicates); audio/video lost or noised",
    "synth-events": "one latent per event rendered in all four modalities",
    "synth-scenes": "captions say which object is where",
}  # fmt: skip
#: settings recorded beside the presets (``baselines.py --tag``): tag -> (knobs, premise)
TAGGED = {
    "synth-clash": {
        "image-decides": ("image_decides 0.5, otherwise the premise's",
                          "as the premise, but contradicting pairs of half the object "
                          "colours take the image's sentiment: text alone cannot decide them"),
    },
}
#: probe tasks without presets (the premise is in the pretraining): task -> what it asks
PROBES = {
    "synth-where": "whether the caption's shape is at its named place (a pretrained model "
                   "probed on binding text to layout; premise and control are the pretraining's)",
}
KNOBS = {
    "synth-clash": ("shared", "contradiction", "one_sided"),
    "synth-speakers": ("clips_per_video", "shared_cues", "corrupt"),
    "synth-events": ("coupling",),
    "synth-scenes": ("positions",),
    "synth-where": ("false_share", "absent_share"),
}
#: which baselines to show, in order; the ceiling is listed on its own
SHOWN = {
    "synth-clash": ("text_acc", "image_acc", "concat_acc"),
    "synth-speakers": ("text_mae", "audio_mae", "video_mae", "concat_mae", "nn_same_video"),
    "synth-events": ("text_category_acc", "image_category_acc", "audio_category_acc",
                     "video_category_acc", "linear_map_mean_r@1", "linear_map_event_r@1"),
    "synth-scenes": ("text_occupancy_acc", "majority_occupancy_acc", "image_cell_occupancy_acc",
                     "text_to_regions_r2"),
    "synth-where": ("text_acc", "image_acc", "concat_acc", "concat_where_acc",
                    "majority_where_acc"),
}  # fmt: skip
CEILING = {
    "synth-clash": ("noise_ceiling_acc", "acc"),
    "synth-speakers": ("noise_ceiling_mae", "MAE"),
    "synth-events": ("chance_r@1", "chance R@1"),
    "synth-scenes": ("image_cell_occupancy_acc", "occupancy from the image"),
    "synth-where": ("noise_ceiling_acc", "acc"),
}


def fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def cell(record: dict | None, task: str) -> str:
    if record is None:
        return "not recorded"
    b = record["baselines"]
    return "<br>".join(f"{k} {fmt(b[k])}" for k in SHOWN[task] if k in b)


def recorded(stem: str) -> dict | None:
    """``results/{stem}.json`` as ``baselines.py`` wrote it; None when not recorded."""
    path = HERE / "results" / f"{stem}.json"
    return json.loads(path.read_text()) if path.exists() else None


def table() -> str:
    registry = mmalign.get_registry()
    lines = [
        "| task | modalities | premise (what `control` removes) | knobs premise / control "
        "| baselines, premise | baselines, control | ceiling (premise / control) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task in PREMISE:
        records = {}
        for structure in ("premise", "control"):
            records[structure] = recorded(f"{task}-{structure}")
        presets = registry.get("task", task).Config.PRESETS
        knobs = ", ".join(
            f"{k} {fmt(presets['premise'].get(k, '-'))} / {fmt(presets['control'].get(k, '-'))}"
            for k in KNOBS[task]
        )
        key, what = CEILING[task]
        ceilings = " / ".join(
            fmt(r["baselines"][key]) if r else "not recorded" for r in records.values()
        )
        modalities = ", ".join(registry.get("task", task).modalities)
        lines.append(
            f"| `{task}` | {modalities} | {PREMISE[task]} | {knobs} "
            f"| {cell(records['premise'], task)} | {cell(records['control'], task)} "
            f"| {what}: {ceilings} |"
        )
        for tag, (knobs, premise) in TAGGED.get(task, {}).items():
            record = recorded(f"{task}-premise-{tag}")
            ceiling = fmt(record["baselines"][key]) if record else "not recorded"
            lines.append(f"| `{task}` ({tag}) | {modalities} | {premise} | {knobs} "
                         f"| {cell(record, task)} | (the control above) | {what}: {ceiling} |")
    for task, asks in PROBES.items():
        record = recorded(task)
        defaults = registry.get("task", task).Config()
        knobs = ", ".join(f"{k} {fmt(getattr(defaults, k))}" for k in KNOBS[task])
        key, what = CEILING[task]
        ceiling = fmt(record["baselines"][key]) if record else "not recorded"
        modalities = ", ".join(registry.get("task", task).modalities)
        lines.append(f"| `{task}` (probe) | {modalities} | {asks} | {knobs} "
                     f"| {cell(record, task)} | (none) | {what}: {ceiling} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print instead of rewriting")
    args = parser.parse_args()
    text = table()
    if args.print:
        print(text)
        return
    doc = DOC.read_text(encoding="utf-8")
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOC}: the markers {START} and {END} are missing")
    head, rest = doc.split(START, 1)
    tail = rest.split(END, 1)[1]
    write_text(DOC, f"{head}{START}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    main()
