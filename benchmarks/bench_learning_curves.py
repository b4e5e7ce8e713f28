"""Run time of the learning-curve study: vectorized Bayesian fits against the same fits one by one.

Three measurements on breast cancer (569 × 30), in one process, one BLAS thread:

1. the whole Bayesian grid (14 log-spaced sizes × 100 splits = 1400 fits per model) through
   :func:`ppl_models.learning_curves.learning_curves` — exact naive Bayes (per-class and shared
   variances) and Laplace logistic regression, each compiled once and ``vmap``-ed — against
   fitting the same estimators split by split (``clone(est).fit(...).predict_proba(...)``, their
   NumPy/SciPy paths, which compile nothing);
2. one batch of 100 splits at m = 68 (one vectorized call) against 100 one-by-one fits;
3. NUTS logistic regression on ``--nuts-splits`` splits at m = 68: one ``fit_many`` call
   against as many ``BayesianLogisticRegression(method="nuts", num_chains=1)`` fits, each of
   which compiles its own sampler.

Run::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_learning_curves.py

The printed lines are also written to ``benchmarks/results/learning_curves.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

# "First call" must mean a real compilation: without this, JAX's persistent cache (which the
# library turns on at import) would serve programs compiled by an earlier run of the study.
os.environ.setdefault("PPL_MODELS_NO_COMPILATION_CACHE", "1")

import numpy as np  # noqa: E402
from sklearn.base import clone  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import ppl_models.learning_curves as lc  # noqa: E402
from ppl_models.datasets.ng_jordan import load_set  # noqa: E402
from ppl_models.learning_curves import (  # noqa: E402
    batched_laplace_proba,
    batched_naive_bayes_proba,
    learning_curves,
    log_sizes,
    stratified_train_masks,
)
from ppl_models.models.logistic import BayesianLogisticRegression  # noqa: E402
from ppl_models.models.naive_bayes import BayesianNaiveBayes  # noqa: E402

DRAWS = 64  # as benchmarks/ng_jordan_study.py
OUT = Path(__file__).resolve().parent / "results" / "learning_curves.md"
LINES: list[str] = []
SUMMARY: dict = {}


def say(line: str = "") -> None:
    print(line, flush=True)
    LINES.append(line)


def one_by_one(est, X, y, masks) -> float:
    t0 = time.perf_counter()
    for tr in masks:
        clone(est).fit(X[tr], y[tr]).predict_proba(X)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=100)
    ap.add_argument("--nuts-splits", type=int, default=8)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    SUMMARY["splits"], SUMMARY["out"] = args.splits, args.out
    ds = load_set("breast_cancer")
    X, y = ds.X, ds.y
    sizes = log_sizes(len(y), 14)
    models = {"bayes_nb": BayesianNaiveBayes(num_samples=DRAWS),
              "bayes_nb_shared": BayesianNaiveBayes(shared_variance=True, num_samples=DRAWS),
              "bayes_lr": BayesianLogisticRegression(method="laplace", num_samples=DRAWS)}
    say(f"breast cancer {X.shape}, sizes {sizes.tolist()}, {args.splits} splits per size")
    with threadpool_limits(1):
        # 1. The whole grid.
        t0 = time.perf_counter()
        df = learning_curves(models, X, y, sizes, n_splits=args.splits, seed=0)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        learning_curves(models, X, y, sizes, n_splits=args.splits, seed=0)
        warm = time.perf_counter() - t0
        rng = np.random.SeedSequence(0).spawn(len(sizes))
        masks = np.concatenate([stratified_train_masks(y, int(m), args.splits, np.random.default_rng(s))
                                for m, s in zip(sizes, rng)])
        loop = {name: one_by_one(est, X, y, masks) for name, est in models.items()}
        n = masks.shape[0]
        say(f"\n1. whole grid, {n} fits per model x {len(models)} models")
        say(f"   vectorized (learning_curves): {cold:.1f} s first call (compiles), {warm:.1f} s second call")
        say(f"   per model, first call: " + ", ".join(f"{k} {v:.1f} s" for k, v in df.attrs["seconds"].items()))
        say(f"   one by one (estimators):      {sum(loop.values()):.1f} s  (" +
              ", ".join(f"{k} {v:.1f} s" for k, v in loop.items()) + ")")
        say(f"   ratio one-by-one / vectorized: {sum(loop.values()) / cold:.2f} (first call), "
              f"{sum(loop.values()) / warm:.2f} (second call)")
        SUMMARY["grid_cold"] = sum(loop.values()) / cold
        SUMMARY["fits"] = n
        SUMMARY["grid_warm"] = sum(loop.values()) / warm

        # 1b. Padding: the Laplace fits gathered per size group against one group padded to the
        # largest m (every fit then costs what the largest costs).
        blr = {"bayes_lr": models["bayes_lr"]}
        learning_curves(blr, X, y, sizes, n_splits=args.splits, seed=0)  # compiled (grouped)
        t0 = time.perf_counter()
        learning_curves(blr, X, y, sizes, n_splits=args.splits, seed=0)
        grouped = time.perf_counter() - t0
        saved = lc._GROUP_FRACTIONS
        lc._GROUP_FRACTIONS = ()
        try:
            learning_curves(blr, X, y, sizes, n_splits=args.splits, seed=0)  # compiles the one group
            t0 = time.perf_counter()
            learning_curves(blr, X, y, sizes, n_splits=args.splits, seed=0)
            single = time.perf_counter() - t0
        finally:
            lc._GROUP_FRACTIONS = saved
        say(f"   bayes_lr padding, compiled: gathered per size group (m <= N/8, rest) {grouped:.1f} s; "
            f"one group padded to the largest m {single:.1f} s; ratio {single / grouped:.2f}")

        # 2. One batch of splits at one size.
        m = 68
        batch = stratified_train_masks(y, m, args.splits, np.random.default_rng(1))
        say(f"\n2. one batch: {args.splits} splits at m = {m}")
        for name, est in models.items():
            f = batched_naive_bayes_proba if isinstance(est, BayesianNaiveBayes) else batched_laplace_proba
            t0 = time.perf_counter()
            f(est, X, y, batch, num_classes=2)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            f(est, X, y, batch, num_classes=2)
            again = time.perf_counter() - t0
            single = one_by_one(est, X, y, batch)
            say(f"   {name}: vectorized {first:.2f} s first call / {again:.2f} s compiled; one by one {single:.2f} s;"
                  f" ratio {single / again:.1f}x compiled, {single / first:.2f}x with compile")
            SUMMARY.setdefault("batch_cold", []).append(single / first)
            SUMMARY.setdefault("batch_warm", []).append(single / again)

        # 3. NUTS.
        k = args.nuts_splits
        nm = stratified_train_masks(y, m, k, np.random.default_rng(2))
        nuts = BayesianLogisticRegression(method="nuts", num_warmup=300, num_samples=300, num_chains=1,
                                          random_state=0)
        t0 = time.perf_counter()
        learning_curves({"nuts": nuts}, X, y, [m], n_splits=k, seed=2)
        batched_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for tr in nm:
            clone(nuts).fit(X[tr], y[tr]).predict_proba(X)
        loop_s = time.perf_counter() - t0
        say(f"\n3. NUTS logistic regression, {k} splits at m = {m}, 300 warm-up + 300 draws, one chain each")
        say(f"   fit_many (one compile, vmapped): {batched_s:.1f} s; one by one: {loop_s:.1f} s; "
              f"ratio {loop_s / batched_s:.2f}")


def short(S: dict) -> str:
    """The benchmark in two sentences, worded from the measured ratios (one-by-one / vectorized)."""
    def verdict(r: float) -> str:
        return f"{r:.2f}× faster" if r >= 1 else f"{1 / r:.1f}× slower"

    bc, bw = S["batch_cold"], S["batch_warm"]
    return ("**In short.** Counting its compilation, the vectorized route is "
            f"{verdict(S['grid_cold'])} than fitting the estimators one by one on the whole grid "
            f"({S['fits']} fits per model), and {verdict(max(bc))} to {verdict(min(bc))} for one batch of "
            f"{S['splits']} splits at one size{', where the compilation costs more than the fits' if max(bc) < 1 else ''}. "
            "Once compiled (a "
            "second call in the same process, or a compilation-cache hit) it is "
            f"{verdict(S['grid_warm'])} on the grid and {verdict(min(bw))} to {verdict(max(bw))} per batch. The "
            "one-by-one route compiles nothing (NumPy/SciPy). Wall times on a shared machine: compare the "
            "ratios, measured in one process, not the seconds.")


if __name__ == "__main__":
    load0 = os.getloadavg()
    main()
    load1 = os.getloadavg()
    out = SUMMARY["out"]
    out.parent.mkdir(parents=True, exist_ok=True)
    head = ["# Learning curves: vectorized Bayesian fits against one-by-one fits", "",
            "Command: `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_learning_curves.py` "
            f"({platform.machine()}, {os.cpu_count()} logical CPUs shared with other jobs: load average "
            f"{load0[0]:.1f} at the start, {load1[0]:.1f} at the end; Python {platform.python_version()}; "
            f"{DRAWS} posterior draws per naive-Bayes fit; the two-class Laplace predictive is computed exactly, "
            "without draws, in the vectorized route and from the draws in the estimator).", "",
            short(SUMMARY), "",
            "Output:", "", "```"]
    out.write_text("\n".join(head + LINES + ["```", ""]))
