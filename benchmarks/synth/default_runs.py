"""CPU and wall time of ``mmalign run METHOD`` on each method's default (premise) task,
and of ``scripts/demo.sh``'s steps, recorded in ``results/default_runs.jsonl``.

    nice -n 10 python benchmarks/synth/default_runs.py spp-scl late-fusion:synth-clash

An argument is ``METHOD`` or ``METHOD:TASK``. Each run gets a fresh ``MMALIGN_HOME``
unless ``--home`` is given (then features cached by an earlier run are reused, as in
the demo). The last lines of the run's output are kept (they name the metrics and,
for ti-jepa, the optimizer steps).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "default_runs.jsonl"
MMALIGN = Path(sys.executable).with_name("mmalign")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="METHOD or METHOD:TASK")
    parser.add_argument("--home", type=Path, default=None, help="shared MMALIGN_HOME")
    args = parser.parse_args()
    for spec in args.runs:
        method, _, task = spec.partition(":")
        home = args.home or Path(tempfile.mkdtemp(prefix="mmalign-default-"))
        env = {**os.environ, "MMALIGN_HOME": str(home), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
        cmd = [str(MMALIGN), "run", method] + (["--task", task] if task else [])
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        record = {
            "command": " ".join(["mmalign", *cmd[1:]]), "rc": proc.returncode,
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "cores": os.cpu_count(),
            "load_1min_before": load, "machine": platform.node(),
            "output_tail": (proc.stdout + proc.stderr).splitlines()[-25:],
        }  # fmt: skip
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        print(json.dumps({k: v for k, v in record.items() if k != "output_tail"}))
        print("\n".join(record["output_tail"]))


if __name__ == "__main__":
    main()
