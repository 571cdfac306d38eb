"""Warm feature cache versus --no-cache for the demo run, measured side by side.

    python benchmarks/core/cache_speedup.py [--method late-fusion] [--repeats 2]

Uses a fresh MMALIGN_HOME: the first run generates the embedded task and fills the
cache (cold), then warm and --no-cache runs alternate. Prints wall times and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mmalign", "run", *args, "--quiet"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="late-fusion")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "MMALIGN_HOME": home, "HF_HUB_OFFLINE": "1"}
        cold = timed([args.method], env)
        warm, nocache = [], []
        for i in range(args.repeats):
            warm.append(timed([args.method, "--seed", str(i + 1)], env))
            nocache.append(timed([args.method, "--seed", str(i + 1), "--no-cache"], env))
    w, n = statistics.median(warm), statistics.median(nocache)
    print(f"cold (generate data + encode + train): {cold:.1f} s")
    print(f"warm cache, median of {len(warm)}: {w:.1f} s  {warm}")
    print(f"--no-cache, median of {len(nocache)}: {n:.1f} s  {nocache}")
    print(f"no-cache / warm = {n / w:.2f}x")


if __name__ == "__main__":
    main()
