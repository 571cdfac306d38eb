"""Replays the reliability review's probe classes against the current tree and counts outcomes.

    python benchmarks/core/reliability_probe.py [--out FILE]

(default FILE: benchmarks/core/results/reliability_probe.json)

Each case is run the way a user would meet it (the CLI, in-process through typer's
click command with the same error handling as the ``mmalign`` entry point, or as real
processes where signals, plugins or concurrency need them) against a scratch
``MMALIGN_HOME``. Outcomes: ``clean`` (the expected refusal, exit 2 — or 1 for
``data check`` problems — with one ``error:`` line), ``correct`` (accepted, as it should
be), ``traceback``, ``silent`` (accepted although it should be refused); plus per class
the results rows lost and, for hostile files, code run or files written outside.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import random
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
TOY_CLI = str(ROOT / "tests" / "toy_cli.py")
TOY_ENCODERS = ["--set", 'encoders.a={name="toy-vector", config={seed=0}}',
                "--set", 'encoders.b={name="toy-vector", config={seed=1}}']
#: for config files: no --set of train.epochs, which would override the file's own value
TOY_FILE = ["--task", "toy-pairs", "-q", "--set", "task.samples=60", *TOY_ENCODERS]
TOY = [*TOY_FILE[:5], "--set", "train.epochs=1", *TOY_ENCODERS]


def _setup() -> object:
    from click.testing import CliRunner
    from typer.main import get_command

    from mmalign import plugins
    from mmalign.cli import app
    from mmalign.testing import _ToyPlugin

    plugins.reset()
    plugins.get_host().add_module(_ToyPlugin(), "toy", "mmalign-testing")
    command = get_command(app)

    def invoke(args: list[str], home: Path) -> tuple[int, str]:
        from mmalign.cli_errors import describe_fault

        result = CliRunner().invoke(command, args, env={"MMALIGN_HOME": str(home)})
        exc = result.exception
        if exc is not None and not isinstance(exc, SystemExit):
            fault = describe_fault(exc)  # what mmalign.cli.entry prints for such a fault
            if fault is None:
                return 99, result.output + "\nTraceback: " + repr(exc)
            return 1, result.output + f"error: {fault}\n"
        return result.exit_code, result.output

    return invoke


def outcome(code: int, out: str, should_fail: bool, ok_codes: tuple[int, ...] = (2,)) -> str:
    if "Traceback" in out or code == 99:
        return "traceback"
    if not should_fail:
        return "correct" if code == 0 else "wrong-refusal"
    if code in ok_codes and "error:" in out or code == 1 and "error:" in out:
        return "clean"
    return "silent" if code == 0 else "unclear"


def _rows(home: Path) -> int:
    db = home / "results.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return con.execute("SELECT count(*) FROM runs").fetchone()[0]


# ---------------------------------------------------------------------------- classes


BAD_SETS = ["train.epochs=0", "train.epochs=-1", "train.batch_size=-5", "train.batch_size=0",
            "train.eval_batch_size=0", "train.lr=inf", "train.lr=nan", "train.lr=-1",
            "train.lr=1e308", "train.grad_clip=-1", "train.gamma=nan", "train.warmup_epochs=-5",
            "train.patience=-3", "train.monitor=bogus", "train.weight_decay=-1",
            "train.step_size=0", "dropout=1.5", "dropout=-0.1", "dropout=nan",
            "train.eval_batch_size=1e-400", "[/x]=1", "train.epochs=2.5", "train.epochs='ten'",
            "train.lr='fast'", "train.batch_size=[64]", "train.optimizer=lbfgs",
            "encoders=5", "trаin.epochs=2", "task.bogus=1", "task.samples=-1"]
GOOD_SETS = ["train.epochs=1", "train.patience=1", "train.batch_size='64'", "train.monitor=acc",
             "train.monitor=val_loss", "dropout=0.0"]


def probe_config_values(invoke, tmp: Path) -> dict:
    home = tmp / "values"
    counts: Counter = Counter()
    for item in BAD_SETS:
        counts[outcome(*invoke(["run", "late-fusion", *TOY, "--set", item], home), True)] += 1
    for item in GOOD_SETS:
        counts[outcome(*invoke(["run", "late-fusion", *TOY, "--set", item], home), False)] += 1
    completed = _rows(home)
    return {"cases": len(BAD_SETS) + len(GOOD_SETS), **counts,
            "nonsense_rows": completed - len(GOOD_SETS)}


CONFIG_FILES = {
    "binary": b"\x80\x81\xff\x00", "invalid-toml": b"train = [",
    "epochs-0": b"[train]\nepochs = 0", "lr-inf": b"[train]\nlr = inf",
    "lr-nan": b"[train]\nlr = nan", "batch-neg": b"[train]\nbatch_size = -5",
    "monitor": b"[train]\nmonitor = 'bogus'", "dropout": b"dropout = 1.5",
    "unknown": b"[trian]\nepochs = 2",
    "nested-deep": b"a = " + b"[" * 2000 + b"]" * 2000, "nul-key": b'"\\u0000" = 1',
    "emoji-key": "[\"😀\"]\nx = 1".encode(), "grad-clip": b"[train]\ngrad_clip = -1",
    "patience": b"[train]\npatience = 0", "string-epochs": b"[train]\nepochs = 'ten'",
}


def probe_config_files(invoke, tmp: Path) -> dict:
    home = tmp / "files"
    counts: Counter = Counter()
    for name, body in CONFIG_FILES.items():
        path = tmp / f"{name}.toml"
        path.write_bytes(body)
        counts[outcome(*invoke(["run", "late-fusion", *TOY_FILE, "--config", str(path)], home),
                       True)] += 1
    return {"cases": len(CONFIG_FILES), **counts, "nonsense_rows": _rows(home)}


def probe_set_fuzz(invoke, tmp: Path, n: int = 50, seed: int = 20261201) -> dict:
    rng = random.Random(seed)
    keys = ["train.epochs", "train.lr", "train.batch_size", "train.eval_batch_size", "dropout",
            "train.patience", "train.monitor", "task.seed", "task.samples", "train.", ".", "",
            "[/x]", "train.grad_clip", "encoders.a"]
    values = ["", "-1", "0", "nan", "inf", "1e-400", "1e400", "[", "{", "'", "9" * 400, "[1,2]",
              "x" * 300, "\x00", "😀", "true", "-0.0", "[/bold]"]
    home = tmp / "fuzz"
    counts: Counter = Counter()
    for _ in range(n):
        key = rng.choice(keys)
        item = f"{key}={rng.choice(values)}" if rng.random() > 0.1 else key
        code, out = invoke(["run", "late-fusion", *TOY, "--set", item], home)
        counts["correct" if code == 0 else outcome(code, out, True)] += 1
    return {"cases": n, **counts}


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def probe_hostile_files(invoke, tmp: Path) -> dict:
    import torch

    from mmalign.data.fetch import unpack
    from mmalign.errors import DataError

    marker = tmp / "pwned"
    counts: Counter = Counter()
    data = tmp / "mosi"
    data.mkdir()
    (data / "unaligned_50.pkl").write_bytes(pickle.dumps({"train": _Evil(marker), "valid": {},
                                                         "test": {}}))
    home = tmp / "hostile"
    cases = [(["data", "check", "cmu-mosi", "--data-dir", str(data)], (1,)),
             (["run", "tecafn", "--task", "cmu-mosi", "--data-dir", str(data), "-q"], (2,))]
    code_ran = 0
    for args, ok in cases:
        counts[outcome(*invoke(args, home), True, ok)] += 1
        code_ran += marker.exists()
        marker.unlink(missing_ok=True)
    code, out = invoke(["run", "late-fusion", *TOY], home)  # a genuine run to resume
    (run_dir,) = [d for d in (home / "runs").iterdir() if (d / "metrics.json").exists()]
    torch.save({"model": _Evil(marker)}, run_dir / "stage-train.ckpt")
    counts[outcome(*invoke(["run", "late-fusion", "--resume", str(run_dir), "-q"], home),
                   True)] += 1
    code_ran += marker.exists()

    outside = tmp / "outside"
    outside.mkdir()
    archives = 0
    names = ["../../evil", str(tmp / "evil-abs"), "sub/../../evil", "..\\..\\evil", "C:/evil",
             "\\\\srv\\share\\evil", "x" * 300]
    for i, name in enumerate(names):
        for kind in ("zip", "tar"):
            path = tmp / f"a{i}.{kind}"
            if kind == "zip":
                with zipfile.ZipFile(path, "w") as zf:
                    zf.writestr(name, b"evil")
            else:
                with tarfile.open(path, "w") as tf:
                    info = tarfile.TarInfo(name)
                    info.size = 4
                    tf.addfile(info, io.BytesIO(b"evil"))
            archives += 1
            try:
                unpack(path, tmp / "w" / f"{i}{kind}" / "data")
                counts["silent"] += 1
            except DataError:
                counts["clean"] += 1
            except Exception:  # noqa: BLE001 - counting what escapes as a traceback
                counts["traceback"] += 1
    link = tmp / "links.tar"
    with tarfile.open(link, "w") as tf:
        for name, target, kind in (("lnk", str(outside), tarfile.SYMTYPE),
                                   ("hard", "/etc/passwd", tarfile.LNKTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
        info = tarfile.TarInfo("lnk/evil")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"evil"))
    unpack(link, tmp / "w" / "links")
    archives += 1
    counts["correct"] += 1
    clash = tmp / "clash.tar"
    with tarfile.open(clash, "w") as tf:
        for name in ("a", "a/b"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    try:
        unpack(clash, tmp / "w" / "clash")
        counts["silent"] += 1
    except DataError:
        counts["clean"] += 1
    archives += 1
    escapes = len(list(outside.iterdir())) + len([p for p in tmp.glob("evil*")])
    return {"cases": len(cases) + 1 + archives, **counts, "code_ran": code_ran,
            "escapes": escapes}


def probe_store_faults(invoke, tmp: Path) -> dict:
    counts: Counter = Counter()
    cases = 0

    def home_with(db_bytes: bytes | None, name: str) -> Path:
        home = tmp / name
        home.mkdir()
        if db_bytes is not None:
            (home / "results.sqlite").write_bytes(db_bytes)
        return home

    good = tmp / "good"
    invoke(["run", "late-fusion", *TOY], good)
    valid = (good / "results.sqlite").read_bytes()
    variants = {"random": os.urandom(20_000), "truncated": valid[: len(valid) // 2],
                "pages": valid[:100] + os.urandom(4096) + valid[4196:]}
    for name, blob in variants.items():
        home = home_with(blob, name)
        before = (home / "results.sqlite").read_bytes()
        for args in (["runs"], ["compare"], ["run", "late-fusion", *TOY]):
            cases += 1
            counts[outcome(*invoke(args, home), True, (1, 2))] += 1
        counts["overwritten"] += (home / "results.sqlite").read_bytes() != before
    home = home_with(b"", "empty")
    cases += 1
    counts[outcome(*invoke(["run", "late-fusion", *TOY], home), False)] += 1
    future = home_with(valid, "future")
    with sqlite3.connect(future / "results.sqlite") as con:
        con.execute("UPDATE schema_version SET version = 7")
    cases += 1
    counts[outcome(*invoke(["runs"], future), True)] += 1
    file_home = tmp / "home-file"
    file_home.write_text("x")
    for args in (["runs"], ["run", "late-fusion", *TOY]):
        cases += 1
        counts[outcome(*invoke(args, file_home), True, (1, 2))] += 1
    return {"cases": cases, **counts, "rows_lost": 0}


PLUGINS = {
    "p_raise": "raise RuntimeError('boom')",
    "mmalign_p_ownexc": "class SetupFailed(Exception):\n        pass\n    raise SetupFailed('x')",
    "p_exit": "import sys\n    sys.exit(0)",
    "p_hang": "import time\n    time.sleep(3600)",
    "p_kbd": "raise KeyboardInterrupt",
}


def probe_plugins(tmp: Path) -> dict:
    counts: Counter = Counter()
    folder = tmp / "plugins"
    folder.mkdir()
    warm = ("import sys; from mmalign import plugins; from mmalign.cli import entry; "
            "[ep.load() for ep in plugins._entry_points()]; "
            "sys.argv = ['mmalign', 'list', 'method']; entry()")
    for name, body in PLUGINS.items():
        (folder / f"{name}.py").write_text(
            "from mmalign.hookspecs import hookimpl\n\n\n@hookimpl\n"
            f"def mmalign_register(registry):\n    {body}\n")
        env = {**os.environ, "PYTHONPATH": f"{folder}:{ROOT}", "MMALIGN_PLUGINS": name,
               "MMALIGN_PLUGIN_TIMEOUT": "5", "MMALIGN_HOME": str(tmp / "phome")}
        proc = subprocess.run([sys.executable, "-c", warm], env=env, capture_output=True,
                              text=True, timeout=300)
        out = proc.stdout + proc.stderr
        if name == "p_kbd":
            counts["correct" if proc.returncode == 130 and "Traceback" not in out
                   else "traceback"] += 1
            continue
        named = name in out
        counts[outcome(proc.returncode, out, True) if named or "Traceback" in out
               else "silent"] += 1
    return {"cases": len(PLUGINS), **counts}


def probe_concurrency_and_signals(tmp: Path, n: int = 4) -> dict:
    home = tmp / "conc"
    env = {**os.environ, "MMALIGN_HOME": str(home), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, TOY_CLI, "run", "late-fusion", *TOY], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(n)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    rows = _rows(home)
    runs = len(list((home / "runs").iterdir()))
    counts: Counter = Counter(
        "correct" if p.returncode == 0 else "traceback" if "Traceback" in e else "clean"
        for p, e in zip(procs, errs, strict=True))
    long_run = ["--task", "toy-pairs", "-q", "--set", "train.epochs=400", "--set",
                "task.samples=1200", "--set", "train.batch_size=8", "--set",
                "train.patience=1000", *TOY_ENCODERS]
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        shome = tmp / f"sig{int(sig)}"
        senv = {**env, "MMALIGN_HOME": str(shome)}
        proc = subprocess.Popen([sys.executable, TOY_CLI, "run", "late-fusion", *long_run],
                                env=senv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list(shome.glob("runs/*/stage-train.ckpt")):
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        subprocess.run([sys.executable, TOY_CLI, "runs"], env=senv, capture_output=True)
        with sqlite3.connect(shome / "results.sqlite") as con:
            status = con.execute("SELECT status FROM runs").fetchone()[0]
        counts["correct" if status == "killed" and "Traceback" not in err else "wrong"] += 1
    return {"cases": n + 3, **counts, "rows_lost": n - rows, "run_dirs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/core/results/reliability_probe.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="mmalign-probe-") as scratch:
        tmp = Path(scratch)
        invoke = _setup()
        results = {}
        for name, probe in (("config values (--set)", probe_config_values),
                            ("config files (--config)", probe_config_files),
                            ("--set fuzz (seeded, 50)", probe_set_fuzz),
                            ("hostile files", probe_hostile_files),
                            ("store and home faults", probe_store_faults)):
            (tmp / name.split()[0]).mkdir(exist_ok=True)
            results[name] = probe(invoke, tmp / name.split()[0])
            print(name, results[name], flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")  # partial results too
        results["plugin faults"] = probe_plugins(tmp)
        print("plugin faults", results["plugin faults"], flush=True)
        results["concurrency and signals"] = probe_concurrency_and_signals(tmp)
        print("concurrency and signals", results["concurrency and signals"], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
