"""NUTS on Bayesian logistic regression: ppl_models (NumPyro) vs PyMC's default sampler vs nutpie.

The model, the same in all three: breast cancer (569 × 30, standardized), coef_j ~ N(0, 2.5²),
intercept ~ N(0, 2.5²), y_i ~ Bernoulli(logit⁻¹(x_i·coef + intercept)); 4 chains × 1000
warm-up × 1000 draws, diagonal mass matrix, target acceptance 0.8, seed 0.

PyMC 6's ``pm.sample`` picks nutpie as its NUTS when nutpie is installed (it is here), so
"PyMC's default sampler" is measured as it comes (``pm.sample()``) and PyMC's own NUTS is added
(``nuts_sampler="pymc"``, the default where nutpie is absent).

Measure: the smallest bulk ESS over the 31 parameters (ArviZ, same code for all three) per
second of sampling. "Sampling" is the wall time of the call that runs warm-up and draws, after a
first short call has compiled the model (JAX compile / PyTensor C or numba compile), so the
figure is the sampler's speed, not its start-up; the start-up (the first call) is printed too.
Every library gets the machine's cores for its chains: NumPyro 4 host devices (parallel
chains), PyMC ``cores`` = CPU count, nutpie its default thread pool.

Run: ``.venv/bin/python benchmarks/bench_logistic.py`` (``--draws``/``--tune`` to shorten).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import ppl_models as pm  # first: it asks XLA for host devices before JAX starts

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402

from ppl_models.datasets.sklearn_sets import load_breast_cancer  # noqa: E402
from ppl_models.models.logistic import logistic_regression  # noqa: E402

SCALE = 2.5


def min_bulk_ess(tree, names=("coef", "intercept")) -> float:
    ess = az.ess(tree, var_names=list(names), method="bulk")
    return float(min(float(np.min(ess[v].values)) for v in names))


def run_ppl_models(data, draws, tune, chains, seed):
    t0 = time.perf_counter()
    pm.fit(logistic_regression, data, method="nuts", seed=seed, num_chains=chains, num_warmup=20,
           num_samples=20, progress_bar=False)
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = pm.fit(logistic_regression, data, method="nuts", seed=seed, num_chains=chains, num_warmup=tune,
                 num_samples=draws, progress_bar=False)
    seconds = time.perf_counter() - t0
    return res.to_arviz(), seconds, startup, int(res.num_divergences), res.info.get("chain_method")


def _pymc_model(X, y):
    import pymc

    with pymc.Model() as model:
        coef = pymc.Normal("coef", 0.0, SCALE, shape=X.shape[1])
        intercept = pymc.Normal("intercept", 0.0, SCALE)
        pymc.Bernoulli("y", logit_p=pymc.math.dot(X, coef) + intercept, observed=y)
    return model


def run_pymc(X, y, draws, tune, chains, seed, nuts_sampler=None):
    """``pm.sample``; ``nuts_sampler=None`` is PyMC's default choice (PyMC 6 picks nutpie when it
    is installed), ``"pymc"`` its own NUTS."""
    import pymc

    model = _pymc_model(X, y)
    cores = os.cpu_count() or 1
    opts = {} if nuts_sampler is None else {"nuts_sampler": nuts_sampler}
    t0 = time.perf_counter()
    with model:
        pymc.sample(draws=20, tune=20, chains=chains, cores=cores, random_seed=seed, progressbar=False,
                    compute_convergence_checks=False, **opts)
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    with model:
        tree = pymc.sample(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
                           progressbar=False, compute_convergence_checks=False, **opts)
    seconds = time.perf_counter() - t0
    div = int(np.asarray(tree["sample_stats"]["diverging"]).sum())
    return tree, seconds, startup, div


def run_nutpie(X, y, draws, tune, chains, seed):
    import nutpie

    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(_pymc_model(X, y))
    nutpie.sample(compiled, draws=20, tune=20, chains=chains, seed=seed, progress_bar=False)
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    tree = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed, progress_bar=False)
    seconds = time.perf_counter() - t0
    div = int(np.asarray(tree["sample_stats"]["diverging"]).sum())
    return tree, seconds, startup, div


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    md = load_breast_cancer(standardize=True, model="logistic")
    X, y = md.kwargs["X"], md.kwargs["y"]
    data = {"X": X, "y": y, "prior_scale": SCALE, "intercept_scale": SCALE}
    import jax
    import nutpie
    import pymc

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"jax {jax.__version__} ({jax.local_device_count()} host devices), pymc {pymc.__version__}, "
          f"nutpie {nutpie.__version__}")
    print(f"breast cancer {X.shape[0]}x{X.shape[1]}, {args.chains} chains x {args.tune} warm-up x {args.draws} draws")
    rows = {}
    tree, s, st, div, cm = run_ppl_models(data, args.draws, args.tune, args.chains, args.seed)
    rows[f"ppl_models (NumPyro NUTS, {cm})"] = (min_bulk_ess(tree), s, st, div)
    tree, s, st, div = run_pymc(X, y, args.draws, args.tune, args.chains, args.seed)
    rows["PyMC default (pm.sample)"] = (min_bulk_ess(tree), s, st, div)
    tree, s, st, div = run_pymc(X, y, args.draws, args.tune, args.chains, args.seed, nuts_sampler="pymc")
    rows["PyMC's own NUTS (nuts_sampler='pymc')"] = (min_bulk_ess(tree), s, st, div)
    tree, s, st, div = run_nutpie(X, y, args.draws, args.tune, args.chains, args.seed)
    rows["nutpie (numba)"] = (min_bulk_ess(tree), s, st, div)

    ours = rows[next(iter(rows))]
    ours_rate = ours[0] / ours[1]
    print(f"\n{'sampler':40s} {'min bulk ESS':>12s} {'sampling s':>10s} {'ESS/s':>8s} {'ratio':>7s} "
          f"{'start-up s':>10s} {'div':>4s}")
    for name, (ess, sec, startup, div) in rows.items():
        rate = ess / sec
        print(f"{name:40s} {ess:12.0f} {sec:10.2f} {rate:8.1f} {ours_rate / rate:7.2f} {startup:10.2f} {div:4d}")
    print("\nratio = ppl_models ESS/s divided by that sampler's ESS/s (> 1: ppl_models is faster)")


if __name__ == "__main__":
    main()
