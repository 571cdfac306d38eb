"""CPU and wall time of ``mmalign run METHOD`` on each method's default (premise) task,
and of ``scripts/demo.sh``'s steps, recorded in ``results/default_runs.jsonl``.

    nice -n 10 python benchmarks/synth/default_runs.py spp-scl late-fusion:synth-clash
    python benchmarks/synth/default_runs.py --table   # rewrite the table in docs/datasets.md

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
DOC = Path(__file__).parents[2] / "docs" / "datasets.md"
START, END = "<!-- default-runs:start -->", "<!-- default-runs:end -->"


def table() -> str:
    """Every recorded run, oldest first: a killed or failed run stays visible."""
    lines = ["| command | exit status | wall s | CPU s | cores | machine |",
             "| --- | --- | --- | --- | --- | --- |"]
    for line in RESULTS.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        status = "0" if r["rc"] == 0 else f"{r['rc']} (not completed)"
        lines.append(f"| `{r['command']}` | {status} | {r['wall_s']} | {r['cpu_s']} | "
                     f"{r['cores']} | {r['machine']} |")
    return "\n".join(lines)


def write_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{table()}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="METHOD or METHOD:TASK")
    parser.add_argument("--home", type=Path, default=None, help="shared MMALIGN_HOME")
    parser.add_argument("--table", action="store_true", help="rewrite docs/datasets.md's table")
    args = parser.parse_args()
    if args.table:
        write_table()
        return
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
