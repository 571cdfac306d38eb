"""Where a warm-cache ``mmalign run late-fusion`` spends its time, phase by phase.

    python benchmarks/core/warm_run_phases.py [--repeats 3]
        [--label after] [--home DIR] [--record benchmarks/core/results/warm_run_phases.jsonl]

Each repeat is a fresh process (after one cold run that fills the cache) that times:
start-up (interpreter start to the runner imported), task load (``Task.load``),
encoder build (``stage_context``), features (``load_features`` less the task load:
reading the cache or store), training (``train_stage``), evaluation
(``evaluate_split``) and the rest. To compare before and after, run it from an
environment of each checkout (an editable install wins over ``PYTHONPATH``). Prints
one JSON line of median seconds per phase.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = r"""
import json, sys, time
t0 = float(sys.argv[1])
from mmalign.runner import run
from mmalign.runner import RunRequest, execute
spent = {"start_up": time.time() - t0, "task_load": 0.0, "encoder_build": 0.0,
         "features": 0.0, "training": 0.0, "evaluation": 0.0}

def timed(name, fn):
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            spent[name] += time.perf_counter() - t
    return wrapper

make_task = run.make_task
def patched_make_task(*a, **k):
    task = make_task(*a, **k)
    task.load = timed("task_load", task.load)
    return task
run.make_task = patched_make_task
run.stage_context = timed("encoder_build", run.stage_context)
run.load_features = timed("features", run.load_features)
run.train_stage = timed("training", run.train_stage)
run.evaluate_split = timed("evaluation", run.evaluate_split)
t = time.perf_counter()
execute(RunRequest(method="late-fusion", seed=int(sys.argv[2]), quiet=True))
spent["features"] -= spent["task_load"]
spent["total"] = time.time() - t0
spent["other"] = spent["total"] - sum(v for k, v in spent.items() if k != "total")
print(json.dumps(spent))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--record", type=Path)
    parser.add_argument("--home", type=Path, help="reuse this MMALIGN_HOME (e.g. to time "
                        "the first run after an upgrade, which migrates the old cache)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = str(args.home or tmp)
        env = {**os.environ, "MMALIGN_HOME": home, "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1"}
        runs = []
        for i in range(args.repeats + 1):  # the first run is cold: it fills the cache
            out = subprocess.run([sys.executable, "-c", PROBE, repr(time.time()), str(i)],
                                 env=env, capture_output=True, text=True, check=True)
            if i:
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    line = {"label": args.label, "repeats": args.repeats,
            **{k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}}
    print(json.dumps(line))
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        with args.record.open("a") as fh:
            fh.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
