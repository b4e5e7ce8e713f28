"""Time from `ppl-models run` to the first draw, with a cold and a warm compilation cache.

Each measurement is a fresh process running `ppl-models run ENTRY` with one warm-up step and
one draw on one chain, so what is timed is start-up, data loading, tracing and compilation:
the time a user waits before sampling begins. "Cold" uses an empty cache directory; "warm"
reruns with the cache that the cold run filled.

    python benchmarks/bench_startup.py [ENTRY] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(entry: str, cache: str, method: str) -> float:
    env = dict(os.environ, PPL_MODELS_CACHE_DIR=cache, MPLBACKEND="Agg")
    args = [sys.executable, "-m", "ppl_models.cli", "run", entry, "--no-progress", "--seed", "0"]
    if method in ("nuts", "hmc"):
        args += ["--num-warmup", "1", "--num-samples", "1", "--num-chains", "1"]
    else:
        args += ["--num-steps", "1"]
    t0 = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if r.returncode not in (0, 1):  # 1 = gate failed, expected with one draw
        raise SystemExit(f"run failed:\n{r.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("entry", nargs="?", default="breast_cancer_logistic")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from ppl_models.catalog import load_card

    method = load_card(args.entry).inference.get("method", "nuts")
    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            cold.append(one_run(args.entry, cache, method))
            warm.append(one_run(args.entry, cache, method))
    c, w = statistics.median(cold), statistics.median(warm)
    print(f"entry {args.entry} ({method}), median of {args.repeats} fresh processes")
    print(f"  cold cache: {c:6.2f} s   {['%.2f' % x for x in cold]}")
    print(f"  warm cache: {w:6.2f} s   {['%.2f' % x for x in warm]}")
    print(f"  ratio cold / warm: {c / w:.2f}x")


if __name__ == "__main__":
    main()
