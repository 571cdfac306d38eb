"""Where a warm-cache ``mmalign run late-fusion`` spends its time, phase by phase,
for several checkouts measured side by side in one run.

    python benchmarks/core/warm_run_phases.py --repeats 3 \
        --checkout before=/tmp/before-d880a04 --checkout after=. \
        [--set key=value ...] [--record benchmarks/core/results/warm_run_phases]

A checkout is ``LABEL=PATH``: ``.`` is this environment's install; any other path is
a source tree (e.g. ``git archive d880a04 | tar -x -C /tmp/before-d880a04``) put on
``PYTHONPATH`` with its ``plugins/*`` folders ahead of the editable installs, and
each process prints the ``mmalign.__file__`` it imported, so a wrong import shows.
Every checkout gets its own ``MMALIGN_HOME``, one untimed cold run that fills its
cache, then the timed warm runs, interleaved (ABAB, then BABA) so the shared
machine's load falls on both sides alike; compare the ratios, not one side's
seconds. Each run is a fresh process timing, exclusively (a nested phase is not
counted in its caller): start-up (interpreter start to the runner imported),
plugin load (the first registry), task load (``Task.load``), encoder build
(``stage_context`` and any deferred encoder built later), features
(``load_features`` less the task load: reading the cache or store), training
(``train_stage``), evaluation (``evaluate_split``) and the rest. ``--record P``
writes ``P.json`` (every run, the medians, the ratios, the command) and ``P.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = ["start_up", "plugin_load", "task_load", "encoder_build", "features", "training",
          "evaluation", "other", "total"]

PROBE = r"""
import json, sys, time
t0 = float(sys.argv[1])
import mmalign
from mmalign.runner import run
from mmalign.runner import RunRequest, execute
from mmalign import plugins
spent = {"start_up": time.time() - t0, "plugin_load": 0.0, "task_load": 0.0,
         "encoder_build": 0.0, "features": 0.0, "training": 0.0, "evaluation": 0.0}
stack = []

def timed(name, fn):
    def wrapper(*a, **k):
        now = time.perf_counter()
        if stack:
            spent[stack[-1][0]] += now - stack[-1][1]
        stack.append([name, now])
        try:
            return fn(*a, **k)
        finally:
            end = time.perf_counter()
            spent[name] += end - stack.pop()[1]
            if stack:
                stack[-1][1] = end
    return wrapper

make_task = run.make_task
def patched_make_task(*a, **k):
    task = make_task(*a, **k)
    task.load = timed("task_load", task.load)
    return task
run.make_task = patched_make_task
first_host = plugins.get_host
def timed_host():
    return first_host()
plugins.get_host = run.get_host = timed("plugin_load", timed_host)
run.stage_context = timed("encoder_build", run.stage_context)
run.load_features = timed("features", run.load_features)
run.train_stage = timed("training", run.train_stage)
run.evaluate_split = timed("evaluation", run.evaluate_split)
import importlib.util
if importlib.util.find_spec("mmalign.store"):  # the "before" code has no feature store
    from mmalign.store.deferred import DeferredEncoder
    DeferredEncoder.real = timed("encoder_build", DeferredEncoder.real)
sets = json.loads(sys.argv[3])
execute(RunRequest(method="late-fusion", seed=int(sys.argv[2]), sets=sets, quiet=True))
spent["total"] = time.time() - t0
spent["other"] = spent["total"] - sum(v for k, v in spent.items() if k != "total")
print(json.dumps({"mmalign": mmalign.__file__, **spent}))
"""


def checkout_env(path: str, home: str) -> dict[str, str]:
    env = {**os.environ, "MMALIGN_HOME": home, "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    if path != ".":
        root = Path(path).resolve()
        extra = [str(root)] + sorted(str(p) for p in (root / "plugins").glob("*") if p.is_dir())
        env["PYTHONPATH"] = os.pathsep.join(extra + [env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep)
    return env


def one_run(env: dict[str, str], seed: int, sets: dict[str, object]) -> dict[str, float]:
    """One fresh process, started in its home folder: ``python -c`` puts the working
    directory first on ``sys.path``, and a source tree there would win."""
    Path(env["MMALIGN_HOME"]).mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, repr(time.time()), str(seed), json.dumps(sets)],
        env=env, capture_output=True, text=True, cwd=env["MMALIGN_HOME"],
    )
    if out.returncode:
        raise SystemExit(f"probe failed ({env.get('PYTHONPATH', 'installed')}):\n"
                         f"{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_sets(items: list[str]) -> dict[str, object]:
    sets: dict[str, object] = {}
    for item in items:
        key, _, raw = item.partition("=")
        try:
            sets[key] = json.loads(raw)
        except json.JSONDecodeError:
            sets[key] = raw
    return sets


def render(result: dict) -> str:
    labels = list(result["checkouts"])
    base = labels[0]
    lines = [
        "# Warm-cache `mmalign run late-fusion`, phase by phase (generated by "
        "`benchmarks/core/warm_run_phases.py`)",
        "",
        f"Command: `{result['command']}`",
        "",
        *([result["note"], ""] if result.get("note") else []),
        f"{result['repeats']} warm runs per checkout (fresh processes, interleaved), median "
        f"seconds; load average {result['load_before']} before, {result['load_after']} after "
        "(2 CPUs shared with other benchmarks): read the ratios, not the seconds.",
        "",
        "| checkout | imported mmalign from |",
        "|---|---|",
        *[f"| {lab} | `{c['mmalign']}` |" for lab, c in result["checkouts"].items()],
        "",
        "| phase | " + " | ".join(f"{lab} s" for lab in labels)
        + "".join(f" | {lab} / {base}" for lab in labels[1:]) + " |",
        "|---|" + "---:|" * (len(labels) + len(labels) - 1),
    ]
    for phase in PHASES:
        vals = [result["checkouts"][lab]["median"][phase] for lab in labels]
        ratios = [result["ratios"][lab][phase] for lab in labels[1:]]
        lines.append(f"| {phase} | " + " | ".join(f"{v:.2f}" for v in vals)
                     + "".join(f" | {r:.2f}" if r is not None else " | –" for r in ratios)
                     + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkout", action="append", default=[],
                        help="LABEL=PATH; the first is the baseline of the ratios")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="a run override KEY=VALUE (JSON value), for every checkout")
    parser.add_argument("--record", type=Path, help="write RECORD.json and RECORD.md "
                        "(after every warm run: a stopped benchmark keeps what it measured)")
    parser.add_argument("--work", type=Path, help="keep each checkout's MMALIGN_HOME in "
                        "WORK/home-LABEL (a rerun skips the cold runs already done)")
    parser.add_argument("--note", default="", help="what the checkouts are (recorded)")
    parser.add_argument("--render", type=Path, help="rewrite RENDER.md from RENDER.json "
                        "(with --note: record that note too); measures nothing")
    args = parser.parse_args()
    if args.render:
        done = json.loads(args.render.with_suffix(".json").read_text())
        done["note"] = args.note or done.get("note", "")
        args.render.with_suffix(".json").write_text(json.dumps(done, indent=2) + "\n")
        args.render.with_suffix(".md").write_text(render(done))
        return
    checkouts = dict(c.split("=", 1) for c in (args.checkout or ["this checkout=."]))
    sets = parse_sets(args.sets)
    load_before = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        envs = {lab: checkout_env(path, str(work / f"home-{lab}"))
                for lab, path in checkouts.items()}
        cold = {lab: one_run(env, 0, sets) for lab, env in envs.items()}
        runs: dict[str, list[dict[str, float]]] = {lab: [] for lab in checkouts}
        for i in range(1, args.repeats + 1):
            order = list(checkouts) if i % 2 else list(reversed(checkouts))
            for lab in order:
                runs[lab].append(one_run(envs[lab], i, sets))
                if all(runs.values()):
                    summarize(args, checkouts, sets, load_before, cold, runs)
    summarize(args, checkouts, sets, load_before, cold, runs, final=True)


def summarize(args: argparse.Namespace, checkouts: dict[str, str], sets: dict[str, object],
              load_before: float, cold: dict[str, dict[str, float]],
              runs: dict[str, list[dict[str, float]]], final: bool = False) -> None:
    labels = list(checkouts)
    result: dict = {
        "command": "python benchmarks/core/warm_run_phases.py " + shlex.join(sys.argv[1:]),
        "repeats": min(len(r) for r in runs.values()),
        "sets": sets,
        "note": args.note,
        "load_before": load_before,
        "load_after": round(os.getloadavg()[0], 1),
        "checkouts": {
            lab: {
                "path": checkouts[lab],
                "mmalign": runs[lab][0]["mmalign"],
                "cold_total": round(cold[lab]["total"], 2),
                "median": {p: round(statistics.median(r[p] for r in runs[lab]), 2)
                           for p in PHASES},
                "runs": [{p: round(r[p], 3) for p in PHASES} for r in runs[lab]],
            }
            for lab in labels
        },
    }
    base = result["checkouts"][labels[0]]["median"]
    result["ratios"] = {
        lab: {p: (round(result["checkouts"][lab]["median"][p] / base[p], 2)
                  if base[p] > 0.005 else None) for p in PHASES}
        for lab in labels[1:]
    }
    if final:
        print(json.dumps(result))
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        args.record.with_suffix(".md").write_text(render(result))


if __name__ == "__main__":
    main()
