"""Sanity baselines of the structured embedded tasks, recorded before any method runs.

For each task and structure (``premise``, ``control``) this generates the data at
its default size (a task without presets, such as the probe task ``synth-where``,
once), encodes it with the embedded frozen encoders and fits linear
probes per modality and on the concatenation (what late fusion can reach on
frozen features), and reads the generator's truth file for its noise ceiling and
for the measured knob values. One JSON per task and structure in ``results/``.

    python benchmarks/synth/baselines.py synth-clash synth-speakers synth-events synth-scenes
    python benchmarks/synth/baselines.py synth-clash --structure premise \
        --set image_decides=0.5 --tag image-decides
    python benchmarks/synth/baselines.py synth-where

Feature extraction dominates; run it with ``nice`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

import mmalign
from mmalign.atomic import write_text
from mmalign.data.synth.structure import read_truth
from mmalign.encoders.catalogue import ENCODERS

RESULTS = Path(__file__).parent / "results"
#: the encoders of each modality (the video backbone differs from the image one)
ENCODER_REFS: dict[str, tuple[str, dict[str, Any]]] = {
    "text": ("minilm-l6", {}),
    "image": ("efficientnet-lite0", {}),
    "audio": ("audio-mel", {"trainable": False}),
    "video": (
        "video-frames",
        {
            "frame_encoder": "timm",
            "frame_encoder_config": {"model": "resnet18", "weights": "random", "image_size": 64},
            "num_frames": 4,
        },
    ),
}


def encode(modality: str, items: list[Any], key: str = "pooled") -> np.ndarray:
    name, config = ENCODER_REFS[modality]
    cls = ENCODERS[name]
    encoder = cls(cls.Config.model_validate(config)).freeze()
    prepared = [encoder.preprocess(x) for x in items]
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(prepared), 64):
            feats = encoder(encoder.collate(prepared[start : start + 64]))
            chunks.append(feats[key].float().numpy())
    return np.concatenate(chunks)


def probe_hits(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray):
    """Per test item, whether a linear probe fitted on ``train`` gets it right."""
    scaler = StandardScaler().fit(train)
    clf = LogisticRegression(C=0.01, max_iter=2000).fit(scaler.transform(train), y_train)
    return clf.predict(scaler.transform(test)) == y_test


def probe_acc(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray):
    return float(probe_hits(train, y_train, test, y_test).mean())


def ridge_mae(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray):
    scaler = StandardScaler().fit(train)
    model = Ridge(alpha=10.0).fit(scaler.transform(train), y_train)
    return float(np.abs(model.predict(scaler.transform(test)) - y_test).mean())


def load(task_name: str, structure: str | None, data_dir: Path, sets: dict[str, Any]) -> Any:
    cls = mmalign.get_registry().get("task", task_name)
    preset = {} if structure is None else {"structure": structure}
    task = cls(cls.Config(**preset, **sets), data_dir / task_name)
    task.prepare()
    return task, task.load()


def clash(task: Any, data: Any) -> dict[str, Any]:
    truth = {int(r["id"]): r for r in read_truth(task.root)}
    names = list(task.label_names)
    splits = {s: data.splits[s] for s in ("train", "test")}
    feats = {
        (s, m): encode(m, [x.inputs[m] for x in v])
        for s, v in splits.items()
        for m in task.modalities
    }
    y = {s: np.array([int(x.label) for x in v]) for s, v in splits.items()}
    out = {}
    for label, mods in (("text", ["text"]), ("image", ["image"]), ("concat", ["text", "image"])):
        train = np.hstack([feats["train", m] for m in mods])
        test = np.hstack([feats["test", m] for m in mods])
        out[f"{label}_acc"] = probe_acc(train, y["train"], test, y["test"])
    rows = [truth[int(x.id)] for x in splits["test"]]
    agree = [r["label"] == names[x.label] for r, x in zip(rows, splits["test"], strict=True)]
    out["noise_ceiling_acc"] = float(np.mean(agree))
    kept = [truth[int(x.id)] for v in data.splits.values() for x in v]
    polar = [r for r in kept if r["label"] != "neutral"]
    out["measured_contradiction"] = float(np.mean([r["contradicts"] == "1" for r in polar]))
    out["measured_shared"] = float(np.mean([r["text_object"] == r["image_object"] for r in kept]))
    contradicting = [r for r in polar if r["contradicts"] == "1"]
    if contradicting and "decided_by" in contradicting[0]:
        decided = [r["decided_by"] == "image" for r in contradicting]
        out["measured_image_decided"] = float(np.mean(decided))
    return out


def where(task: Any, data: Any) -> dict[str, Any]:
    """Linear probes per modality and on the concatenation, overall and on the
    where-questions (true or false place) apart from the what-questions (absent shape):
    the where-questions need the caption's place bound to the image's layout."""
    truth = {int(r["id"]): r for r in read_truth(task.root)}
    splits = {s: data.splits[s] for s in ("train", "test")}
    feats = {(s, m): encode(m, [x.inputs[m] for x in v]) for s, v in splits.items()
             for m in task.modalities}  # fmt: skip
    y = {s: np.array([int(x.label) for x in v]) for s, v in splits.items()}
    asks_where = np.array([truth[int(x.id)]["statement"] != "absent" for x in splits["test"]])
    out = {}
    for label, mods in (("text", ["text"]), ("image", ["image"]), ("concat", ["text", "image"])):
        train = np.hstack([feats["train", m] for m in mods])
        test = np.hstack([feats["test", m] for m in mods])
        hit = probe_hits(train, y["train"], test, y["test"])
        out[f"{label}_acc"] = float(hit.mean())
        out[f"{label}_where_acc"] = float(hit[asks_where].mean())
    out["majority_where_acc"] = float(max(np.mean(y["test"][asks_where] == k)
                                          for k in set(y["test"][asks_where])))
    out["noise_ceiling_acc"] = 1.0  # labels are the statements' truth, without noise
    return out


def stats(x: np.ndarray, length: int) -> np.ndarray:
    x = np.nan_to_num(x[:length], neginf=0.0, posinf=0.0)
    return np.concatenate([x.mean(0), x.std(0)])


def speakers(task: Any, data: Any) -> dict[str, Any]:
    truth = {r["id"]: r for r in read_truth(task.root)}
    splits = {s: data.splits[s] for s in ("train", "test")}
    feats = {(s, "text"): encode("text", [x.inputs["text"] for x in v]) for s, v in splits.items()}
    for s, v in splits.items():
        for m in ("audio", "video"):
            feats[s, m] = np.stack([stats(np.asarray(x.inputs[m]), len(x.inputs[m])) for x in v])
    y = {s: np.array([float(x.label) for x in v]) for s, v in splits.items()}
    out = {}
    combos = {
        "text": ["text"], "audio": ["audio"], "video": ["video"],
        "text_audio": ["text", "audio"], "concat": ["text", "audio", "video"],
    }.items()  # fmt: skip
    for label, mods in combos:
        train = np.hstack([feats["train", m] for m in mods])
        test = np.hstack([feats["test", m] for m in mods])
        out[f"{label}_mae"] = ridge_mae(train, y["train"], test, y["test"])
    rows = [truth[x.id] for x in splits["test"]]
    clean = np.array([float(r["clean_score"]) for r in rows])
    out["noise_ceiling_mae"] = float(np.abs(clean - y["test"]).mean())
    every = [truth[x.id] for v in data.splits.values() for x in v]
    out["measured_corrupt"] = float(
        np.mean([r[k] != "clean" for r in every for k in ("audio_state", "video_state")])
    )
    # nearest neighbour of each training clip in text + audio space: from its own video?
    joint = StandardScaler().fit_transform(
        np.hstack([feats["train", "text"], feats["train", "audio"]])
    )
    joint /= np.linalg.norm(joint, axis=1, keepdims=True)
    sim = joint @ joint.T
    np.fill_diagonal(sim, -np.inf)
    videos = np.array([x.id.split("$_$")[0] for x in splits["train"]])
    nn_idx = sim.argmax(1)
    out["nn_same_video"] = float((videos[nn_idx] == videos).mean())
    cue = np.array([float(truth[x.id]["audio_cue"]) for x in splits["train"]])
    out["nn_abs_cue_gap"] = float(np.abs(cue[nn_idx] - cue).mean())
    out["random_abs_cue_gap"] = float(np.abs(cue[:, None] - cue[None, :]).mean())
    return out


def recall_at_1(q: np.ndarray, g: np.ndarray, q_keys: np.ndarray, g_keys: np.ndarray) -> float:
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    return float((g_keys[(q @ g.T).argmax(1)] == q_keys).mean())


def events(task: Any, data: Any) -> dict[str, Any]:
    mods = task.modalities
    by = {
        (s, m): [x for x in data.splits[s] if x.meta["modality"] == m]
        for s in ("train", "test")
        for m in mods
    }
    feats = {k: encode(k[1], [x.inputs[k[1]] for x in v]) for k, v in by.items()}
    cats = {k: np.array([x.label for x in v]) for k, v in by.items()}
    evs = {k: np.array([x.id.split("/")[1].rsplit(".", 1)[0] for x in v]) for k, v in by.items()}
    out: dict[str, Any] = {"chance_r@1": 1 / len(task.data_label_names() or [1])}
    for m in mods:
        out[f"{m}_category_acc"] = probe_acc(
            feats["train", m], cats["train", m], feats["test", m], cats["test", m]
        )
    cat_r1, ev_r1 = [], []
    for a in mods:
        for b in mods:
            if a == b:
                continue
            # a linear map from a's to b's features, fitted on train items of the same event
            order = {e: i for i, e in enumerate(evs["train", b])}
            rows_a = np.array([i for i, e in enumerate(evs["train", a]) if e in order])
            rows_b = np.array([order[e] for e in evs["train", a][rows_a]])
            sa, sb = (
                StandardScaler().fit(feats["train", a]),
                StandardScaler().fit(feats["train", b]),
            )
            xa, xb = (
                sa.transform(feats["train", a])[rows_a],
                sb.transform(feats["train", b])[rows_b],
            )
            ridge = Ridge(alpha=100.0).fit(xa, xb)
            q, g = ridge.predict(sa.transform(feats["test", a])), sb.transform(feats["test", b])
            cat_r1.append(recall_at_1(q, g, cats["test", a], cats["test", b]))
            ev_r1.append(recall_at_1(q, g, evs["test", a], evs["test", b]))
    out["linear_map_mean_r@1"] = float(np.mean(cat_r1))
    out["linear_map_event_r@1"] = float(np.mean(ev_r1))
    out["chance_event_r@1"] = 1 / len(by["test", "text"])
    truth = read_truth(task.root)
    out["measured_coupling"] = float(np.mean([r["coupled"] == "1" for r in truth]))
    out["test_items_per_category_and_modality"] = int(
        min(np.bincount(cats["test", m]).min() for m in mods)
    )
    return out


def scenes(task: Any, data: Any) -> dict[str, Any]:
    """Text -> image-region prediction: ridge from caption features to 3x3 cell features."""
    truth = {int(r["image_id"]): r for r in read_truth(task.root)}
    splits = {s: data.splits[s] for s in ("train", "test")}
    out = {}
    cells = {}
    for s, v in splits.items():
        tokens = encode("image", [x.inputs["image"] for x in v], key="tokens")  # [N, 49, C]
        grid = tokens.reshape(len(v), 7, 7, -1)
        edges = [0, 2, 5, 7]
        cells[s] = np.stack([grid[:, edges[r]:edges[r + 1], edges[c]:edges[c + 1]].mean((1, 2))
                             for r in range(3) for c in range(3)], axis=1)  # fmt: skip
    text = {s: encode("text", [x.inputs["text"] for x in v]) for s, v in splits.items()}
    occupied = {}
    for s, v in splits.items():
        occ = np.zeros((len(v), 9), dtype=int)
        for i, x in enumerate(v):
            for obj in truth[int(x.meta["image_id"])]["layout"].split(";"):
                occ[i, int(obj.rsplit("@", 1)[1])] = 1
        occupied[s] = occ
    target_train = cells["train"].reshape(len(splits["train"]), -1)
    target_test = cells["test"].reshape(len(splits["test"]), -1)
    sy = StandardScaler().fit(target_train)
    yt, ye = sy.transform(target_train), sy.transform(target_test)
    sx = StandardScaler().fit(text["train"])
    pred = (
        Ridge(alpha=1000.0).fit(sx.transform(text["train"]), yt).predict(sx.transform(text["test"]))
    )
    out["text_to_regions_r2"] = float(1 - ((pred - ye) ** 2).sum() / ((ye - ye.mean(0)) ** 2).sum())
    accs = []
    for cell in range(9):
        yo = occupied["train"][:, cell]
        clf = LogisticRegression(C=0.1, max_iter=2000).fit(sx.transform(text["train"]), yo)
        accs.append((clf.predict(sx.transform(text["test"])) == occupied["test"][:, cell]).mean())
    out["text_occupancy_acc"] = float(np.mean(accs))
    out["majority_occupancy_acc"] = float(
        np.mean([max(o.mean(), 1 - o.mean()) for o in occupied["test"].T])
    )
    img_accs = []
    for cell in range(9):
        si = StandardScaler().fit(cells["train"][:, cell])
        clf = LogisticRegression(C=0.1, max_iter=2000).fit(
            si.transform(cells["train"][:, cell]), occupied["train"][:, cell]
        )
        img_accs.append(
            (clf.predict(si.transform(cells["test"][:, cell])) == occupied["test"][:, cell]).mean()
        )
    out["image_cell_occupancy_acc"] = float(np.mean(img_accs))
    out["measured_positions"] = float(np.mean([r["places_named"] == "1" for r in truth.values()]))
    return out


BASELINES = {
    "synth-clash": clash,
    "synth-where": where,
    "synth-speakers": speakers,
    "synth-events": events,
    "synth-scenes": scenes,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="+", choices=sorted(BASELINES))
    parser.add_argument("--structure", choices=["premise", "control", "both"], default="both")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE task config")
    parser.add_argument("--tag", default="", help="record as {task}-{structure}-{tag}.json "
                        "(a setting beside the presets, e.g. with --set)")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    sets = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    torch.set_num_threads(int(os.environ.get("MMALIGN_THREADS", "1")))
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="synth-baselines-"))
    structures = ["premise", "control"] if args.structure == "both" else [args.structure]
    for name in args.tasks:
        structured = "structure" in mmalign.get_registry().get("task", name).Config.model_fields
        for structure in structures if structured else [None]:
            start = time.perf_counter()
            task, data = load(name, structure, data_dir, sets)
            generated = time.perf_counter() - start
            result = BASELINES[name](task, data)
            record = {
                "task": name, "structure": structure, "config": task.config.model_dump(),
                "splits": {s: len(v) for s, v in data.splits.items()}, "baselines": result,
                "generate_s": round(generated, 1), "total_s": round(time.perf_counter() - start, 1),
                "machine": platform.node(), "torch_threads": torch.get_num_threads(),
            }  # fmt: skip
            print(json.dumps(record))
            if args.no_record:
                continue
            stem = "-".join(x for x in (name, structure, args.tag) if x)
            path = RESULTS / f"{stem}.json"
            RESULTS.mkdir(parents=True, exist_ok=True)
            write_text(path, json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
