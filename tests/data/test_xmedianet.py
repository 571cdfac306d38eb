"""XMediaNet reader: one modality per sample, list-file problems, held-out validation."""

from __future__ import annotations

from pathlib import Path

import torch

from mmalign.data.check import check_task
from mmalign.data.xmedianet import XMediaNetTask
from tests.data.fixtures import write_xmedianet

LIST_PROBLEMS = [
    {"file": "list/text/train.txt", "error": "line 3: label 5 is not a category index (0..2)"},
    {"file": "list/text/train.txt", "error": "line 4: expected 'filename label'"},
    {"file": "list/text/train.txt", "error": "line 5: t1.txt already listed on line 1"},
    {"file": "text/t4.txt", "error": "missing text file"},
    {"file": "text/t5.txt", "error": "empty text"},
]


def test_samples_carry_one_modality(tmp_path: Path) -> None:
    write_xmedianet(tmp_path / "x")
    data = XMediaNetTask(data_dir=tmp_path / "x").load()
    ids = {k: [s.id for s in v] for k, v in data.splits.items()}
    assert ids == {
        "train": [
            "text/t1.txt", "text/t2.txt", "image/i1.jpg", "image/i2.jpg", "image/i3.jpg",
            "image/sub dir/i 4.jpg", "audio/a1.wav", "audio/a2.wav", "video/v1.mp4",
        ],
        "validation": ["image/i5.jpg"],
        "test": ["text/t6.txt", "audio/a3.wav", "video/v2.mp4"],
    }  # fmt: skip
    first = data.splits["train"][0]
    assert first.inputs == {"text": "a cat"} and first.label == 0
    assert first.meta == {"modality": "text"}
    assert data.splits["train"][5].inputs == {"image": tmp_path / "x" / "image/sub dir/i 4.jpg"}
    assert data.label_names == ["cat", "dog", "bird"]
    assert data.problems == LIST_PROBLEMS + [
        {"file": "image/missing.jpg", "error": "missing image file"}
    ]


def test_check_decodes_every_medium(tmp_path: Path) -> None:
    write_xmedianet(tmp_path / "x")
    report = check_task(XMediaNetTask(data_dir=tmp_path / "x"))
    assert report["samples"] == 10
    assert report["labels"] == {"cat": 5, "dog": 3, "bird": 2}
    found = {p["file"]: p["error"] for p in report["problems"]}
    assert [p for p in report["problems"] if p["file"].startswith(("list/", "text/"))] == (
        LIST_PROBLEMS
    )
    assert found["image/i3.jpg"].startswith("corrupt or truncated image")
    assert found["image/missing.jpg"] == "missing image file"
    assert found["audio/a2.wav"].startswith("corrupt audio file")
    assert found["video/v2.mp4"].startswith("corrupt video file")
    assert len(report["problems"]) == 9


def test_validation_held_out_when_no_valid_list(tmp_path: Path) -> None:
    root = tmp_path / "x"
    write_xmedianet(root)
    lines = [f"i{k}.jpg {k % 3}" for k in range(20)]
    (root / "list" / "image" / "valid.txt").unlink()
    (root / "list" / "image" / "train.txt").write_text("\n".join(lines) + "\n")
    for k in range(20):
        (root / "image" / f"i{k}.jpg").write_bytes((root / "image" / "i1.jpg").read_bytes())
    data = XMediaNetTask(data_dir=root).load()
    images = {k: [s for s in v if "image" in s.inputs] for k, v in data.splits.items()}
    assert len(images["validation"]) == 2 and len(images["train"]) == 18
    again = XMediaNetTask(data_dir=root).load()
    assert [s.id for s in again.splits["validation"]] == [s.id for s in data.splits["validation"]]


def test_retrieval_evaluation(tmp_path: Path) -> None:
    task = XMediaNetTask(data_dir=tmp_path)
    labels = {"text": torch.tensor([0, 1, 2]), "image": torch.tensor([0, 1, 2])}
    emb = torch.eye(3)
    out = task.evaluate({"embeddings": {"text": emb, "image": emb.clone()}}, labels)
    assert out["text->image/r@1"] == 1.0 and out["mean_r@1"] == 1.0
    assert set(XMediaNetTask.metrics) <= set(out)


def write_release(root: Path) -> None:
    """The PKU release's flat lists: ``txt_{split}_list.txt`` with 1-based labels and
    paths relative to the data folder, plus a categories file of three names."""
    (root / "list").mkdir(parents=True)
    (root / "text").mkdir()
    for name, words in (("t1", "a cat"), ("t2", "a dog"), ("t3", "a bird"), ("t4", "birds")):
        (root / "text" / f"{name}.txt").write_text(words, encoding="utf-8")
    (root / "list" / "categories.txt").write_text("cat\ndog\nbird\n", encoding="utf-8")
    (root / "list" / "txt_train_list.txt").write_text(
        "text/t1.txt 1\ntext/t2.txt 2\ntext/t3.txt 3\n", encoding="utf-8"
    )
    (root / "list" / "txt_test_list.txt").write_text("text/t4.txt 3\n", encoding="utf-8")


def test_release_lists_with_one_based_labels(tmp_path: Path) -> None:
    write_release(tmp_path / "x")
    cfg = XMediaNetTask.Config(lists="release", valid_fraction=0.0)
    data = XMediaNetTask(cfg, data_dir=tmp_path / "x").load()
    assert [(s.id, s.label) for s in data.splits["train"]] == [
        ("text/t1.txt", 0),
        ("text/t2.txt", 1),
        ("text/t3.txt", 2),  # category 200 of the release is index 199, not lost
    ]
    assert [(s.id, s.label) for s in data.splits["test"]] == [("text/t4.txt", 2)]
    assert data.label_names == ["cat", "dog", "bird"] and data.problems == []


def test_one_based_labels_in_the_default_layout_get_a_hint(tmp_path: Path) -> None:
    root = tmp_path / "x"
    write_release(root)
    (root / "list" / "text").mkdir()
    (root / "list" / "text" / "train.txt").write_text("t1.txt 1\nt3.txt 3\n", encoding="utf-8")
    data = XMediaNetTask(data_dir=root).load()
    assert [s.label for s in data.splits["train"] + data.splits["validation"]] == [1]
    assert data.problems == [
        {
            "file": "list/text/train.txt",
            "error": "line 2: label 3 is not a category index (0..2) "
            "(labels look 1-based: set task.label_base=1)",
        }
    ]
    declared = XMediaNetTask(XMediaNetTask.Config(label_base=1, valid_fraction=0.0), data_dir=root)
    assert [s.label for s in declared.load().splits["train"]] == [0, 2]
