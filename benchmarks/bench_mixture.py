"""Mixture benchmark: ppl_models against scikit-learn and PyMC, in one process, same data.

1. Palmer penguins (333 x 4, standardised), K = 3, full covariance: fit time, held-out log
   predictive density (per point, 30 % test split), adjusted Rand index against species.
   ppl_models NUTS (4 chains) vs scikit-learn ``GaussianMixture`` (EM, ``n_init=5``) and
   ``BayesianGaussianMixture`` (variational Dirichlet-process prior, K = 3).
2. Synthetic 100,000 points (D = 2, K = 3, 20,000 held out): ppl_models SVI with minibatches
   vs the same two scikit-learn estimators; ARI against the true components.
3. NUTS efficiency: the same univariate 2-component Gaussian mixture (ordered locations,
   Dirichlet(1) weights, HalfNormal(1) scales) on Old Faithful waiting times, ppl_models vs
   PyMC: min bulk ESS per second of wall time.

Run (pin BLAS/OpenMP to one thread so the baselines are timed like for like)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        .venv/bin/python benchmarks/bench_mixture.py [--quick]

Prints a Markdown report (paste into ``benchmarks/results/mixture.md``).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import ppl_models as pm
from ppl_models import diagnostics
from ppl_models.datasets.faithful import load_faithful
from ppl_models.datasets.penguins import load_penguins
from ppl_models.models import mixture as mm


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def heldout_lpd_ours(fit, X_test, max_draws=400):
    """Mean over test points of log (1/S sum_s p(x | theta_s)), the posterior predictive."""
    d = mm.posterior_predictive_density(fit, X_test, max_draws=max_draws)
    return float(np.mean(np.log(d.density)))


def bench_penguins(quick: bool):
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

    md = load_penguins()
    X = md.kwargs["X"]
    species = md.extra["species"]
    rng = np.random.default_rng(0)
    idx = rng.permutation(X.shape[0])
    n_test = int(round(0.3 * X.shape[0]))
    test, train = idx[:n_test], idx[n_test:]
    data = {"X": X[train], "num_components": 3, "covariance": "full", "order_by": 0}
    nw, ns = (200, 200) if quick else (500, 500)
    rows = []

    def ours():
        init = mm.mixture_init_strategy(mm.mvn_mixture, data)
        return pm.fit(mm.mvn_mixture, data, num_chains=4, num_warmup=nw, num_samples=ns, seed=0,
                      init_strategy=init, progress_bar=False)

    f, t = _timed(ours)
    rep = diagnostics.check_convergence(f)
    z_all = mm.posterior_assignments(f, {"X": X, **{k: v for k, v in data.items() if k != "X"}}, max_draws=400)
    rows.append(("ppl_models NUTS (4x%d)" % ns, t, heldout_lpd_ours(f, X[test]), adjusted_rand_score(species, z_all),
                 f"max r-hat {rep.table['r_hat'].max():.3f}, min bulk ESS {rep.table['ess_bulk'].min():.0f}, "
                 f"{rep.divergences} div., gate {'passed' if rep.passed else 'FAILED'}"))

    for name, est in (("sklearn GaussianMixture (EM, n_init=5)",
                       GaussianMixture(3, covariance_type="full", n_init=5, random_state=0)),
                      ("sklearn BayesianGaussianMixture (DP prior)",
                       BayesianGaussianMixture(n_components=3, covariance_type="full", max_iter=1000,
                                               weight_concentration_prior_type="dirichlet_process",
                                               n_init=5, random_state=0))):
        _, t = _timed(lambda: est.fit(X[train]))
        rows.append((name, t, float(est.score(X[test])), adjusted_rand_score(species, est.predict(X)), ""))
    return rows


def bench_synthetic(quick: bool):
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

    rng = np.random.default_rng(1)
    n, n_test = 100_000, 20_000
    w = np.array([0.25, 0.45, 0.30])
    loc = np.array([[-2.5, 0.0], [0.0, 1.5], [2.5, -0.5]])
    cov = np.array([[[0.6, 0.2], [0.2, 0.5]], [[0.4, -0.1], [-0.1, 0.7]], [[0.5, 0.0], [0.0, 0.3]]])
    z = rng.choice(3, size=n + n_test, p=w)
    L = np.linalg.cholesky(cov)
    Xall = loc[z] + np.einsum("nij,nj->ni", L[z], rng.normal(size=(n + n_test, 2)))
    X, Xt, zt = Xall[:n].astype(np.float32), Xall[n:], z[n:]
    data = {"X": X, "num_components": 3, "covariance": "full", "order_by": 0}
    steps = 1500 if quick else 4000
    rows = []

    def ours():
        init = mm.mixture_init_strategy(mm.mvn_mixture, data)
        return pm.fit(mm.mvn_mixture, data, method="svi", num_steps=steps, learning_rate=0.01,
                      subsample_size=2000, num_posterior_draws=200, init_strategy=init, seed=0, progress_bar=False)

    f, t = _timed(ours)
    zt_hat = mm.posterior_assignments(f, {**data, "X": Xt}, max_draws=200)
    rows.append((f"ppl_models SVI (AutoNormal, {steps} steps x 2000-point minibatches)", t,
                 heldout_lpd_ours(f, Xt, max_draws=200), adjusted_rand_score(zt, zt_hat), ""))
    for name, est in (("sklearn GaussianMixture (EM)", GaussianMixture(3, covariance_type="full", random_state=0)),
                      ("sklearn BayesianGaussianMixture (DP prior)",
                       BayesianGaussianMixture(n_components=3, covariance_type="full", max_iter=500,
                                               weight_concentration_prior_type="dirichlet_process",
                                               random_state=0))):
        _, t = _timed(lambda: est.fit(X))
        rows.append((name, t, float(est.score(Xt)), adjusted_rand_score(zt, est.predict(Xt)), ""))
    # the true density, as a ceiling
    from scipy.stats import multivariate_normal
    true_lpd = np.mean(np.log(sum(w[k] * multivariate_normal.pdf(Xt, loc[k], cov[k]) for k in range(3))))
    rows.append(("(true generating density)", float("nan"), float(true_lpd), adjusted_rand_score(zt, zt), ""))
    return rows


def bench_ess(quick: bool):
    import arviz as az

    md = load_faithful(columns="waiting")
    x = md.kwargs["x"]
    draws = 500 if quick else 1000
    rows = []

    data = {"x": x, "num_components": 2}
    init = mm.mixture_init_strategy(mm.gaussian_mixture, data)
    for attempt in ("cold", "warm cache"):
        f, t = _timed(lambda: pm.fit(mm.gaussian_mixture, data, num_chains=4, num_warmup=draws, num_samples=draws,
                                     seed=0, init_strategy=init, progress_bar=False))
        ess = float(az.summary(f.to_arviz(), kind="diagnostics")["ess_bulk"].min())
        rows.append((f"ppl_models NUTS ({attempt}; {f.info['chain_method']} chains)", t, ess, ess / t))

    import pymc as pmc

    with pmc.Model():
        w = pmc.Dirichlet("weights", a=np.ones(2))
        mu = pmc.Normal("loc", 0.0, 3.0, shape=2, transform=pmc.distributions.transforms.ordered,
                        initval=np.array([-1.0, 1.0]))
        sigma = pmc.HalfNormal("scale", 1.0, shape=2)
        pmc.NormalMixture("x", w=w, mu=mu, sigma=sigma, observed=x)
        idata, t = _timed(lambda: pmc.sample(draws=draws, tune=draws, chains=4, cores=2, random_seed=0,
                                             progressbar=False, compute_convergence_checks=False))
    ess = float(az.summary(idata, kind="diagnostics", var_names=["weights", "loc", "scale"])["ess_bulk"].min())
    rows.append(("PyMC pm.sample (it picked nutpie here), 4 chains, cores=2", t, ess, ess / t))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer draws/steps (a smoke run)")
    ap.add_argument("--only", choices=["penguins", "synthetic", "ess"], default=None)
    args = ap.parse_args()
    print(f"# mixture benchmark\n\nhost: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; quick={args.quick}\n")
    if args.only in (None, "penguins"):
        rows = bench_penguins(args.quick)
        print("## Penguins (333 x 4, K = 3, full covariance; 100-point held-out split)\n")
        print("| method | fit s | held-out lpd / point | ARI vs species (all 333) | notes |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.4f} | {r[3]:.3f} | {r[4]} |")
        base = rows[1][1]
        print(f"\nfit-time ratio ppl_models / sklearn EM: {rows[0][1] / base:.1f}x\n")
    if args.only in (None, "synthetic"):
        rows = bench_synthetic(args.quick)
        print("## Synthetic 100,000 x 2, K = 3 (20,000 held out)\n")
        print("| method | fit s | held-out lpd / point | ARI vs truth (held out) |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.4f} | {r[3]:.3f} |")
        print(f"\nfit-time ratio ppl_models / sklearn EM: {rows[0][1] / rows[1][1]:.1f}x\n")
    if args.only in (None, "ess"):
        rows = bench_ess(args.quick)
        print("## NUTS efficiency: Old Faithful waiting, K = 2, same model and priors\n")
        print("| sampler | wall s (incl. compile) | min bulk ESS | min bulk ESS / s |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]:.1f} | {r[2]:.0f} | {r[3]:.1f} |")
        print(f"\nESS/s ratio ppl_models (warm) / PyMC: {rows[1][3] / rows[2][3]:.2f}x\n")


if __name__ == "__main__":
    main()
