"""Mixture benchmark: ppl_models against scikit-learn and PyMC, in one process, same data.

1. Palmer penguins (333 x 4, standardised), K = 3, full covariance: fit time, held-out log
   predictive density (per point, 30 % test split), adjusted Rand index against species.
   ppl_models NUTS (4 chains) vs scikit-learn ``GaussianMixture`` (EM, ``n_init=5``) and
   ``BayesianGaussianMixture`` (variational Dirichlet-process prior, K = 3).
2. Synthetic 100,000 points (D = 2, K = 3, 20,000 held out): ppl_models SVI with minibatches
   vs the same two scikit-learn estimators; ARI against the true components.
3. NUTS efficiency: the same univariate 2-component Gaussian mixture (ordered locations,
   Dirichlet(1) weights, HalfNormal(1) scales) on Old Faithful waiting times, ppl_models vs
   PyMC (sampled by nutpie): min bulk ESS per second, like for like. Both start cold (the
   ESS section gives this process fresh, empty compilation caches: ppl_models' persistent JAX
   cache and PyTensor's compile directory), then each runs again warm in the same process.
   Per run: the wall time including compilation, and the sampling-only time (ppl_models: the
   wall time less the seconds JAX spent tracing, lowering and compiling or loading from the
   cache, from ``jax.monitoring``; nutpie: ``nutpie.sample`` alone, after
   ``nutpie.compile_pymc_model``).

Run (pin BLAS/OpenMP to one thread so the baselines are timed like for like)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        .venv/bin/python benchmarks/bench_mixture.py [--quick] [--only penguins|synthetic|ess]

PyMC and nutpie are not dependencies: install them in a separate target and put it on the
path for the ESS section only (``pip install --target /tmp/peers_mix pymc nutpie``, then
``PYTHONPATH=/tmp/peers_mix``); without them the section reports ppl_models alone.

The catalog card's figures (``penguins_gmm`` on all 333 birds: the gate and the adjusted Rand
index against species) come from ``ppl-models run penguins_gmm``, which prints the card's
report.

Prints a Markdown report (paste into ``benchmarks/results/mixture.md``).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time


def _parse_args(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer draws/steps (a smoke run)")
    ap.add_argument("--only", choices=["penguins", "synthetic", "ess"], default=None)
    ap.add_argument("--keep-caches", action="store_true",
                    help="ESS section: keep the usual compilation caches (the 'cold' run is then not cold)")
    return ap.parse_args(argv)


ARGS = _parse_args() if __name__ == "__main__" else None
FRESH_CACHES = None
if ARGS is not None and ARGS.only in (None, "ess") and not ARGS.keep_caches:
    # Before ppl_models (JAX) and PyTensor are imported: both read their cache locations once.
    FRESH_CACHES = tempfile.mkdtemp(prefix="bench_mixture_caches_")
    os.environ["PPL_MODELS_CACHE_DIR"] = os.path.join(FRESH_CACHES, "jax")
    os.environ["PYTENSOR_FLAGS"] = ",".join(
        f for f in (os.environ.get("PYTENSOR_FLAGS", ""), f"compiledir={os.path.join(FRESH_CACHES, 'pytensor')}") if f)

import numpy as np  # noqa: E402

import ppl_models as pm  # noqa: E402
from ppl_models import diagnostics  # noqa: E402
from ppl_models.datasets.faithful import load_faithful  # noqa: E402
from ppl_models.datasets.penguins import load_penguins  # noqa: E402
from ppl_models.models import mixture as mm  # noqa: E402


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


class CompileClock:
    """Seconds JAX spends tracing, lowering and compiling (or loading compiled code from the
    persistent cache) while :meth:`timing` is active: the union of the time spans of JAX's
    ``/jax/core/compile/*`` monitoring events (nested traces count once)."""

    EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")

    def __init__(self):
        import jax.monitoring

        self.spans: list[tuple[float, float]] = []
        self.active = False
        jax.monitoring.register_event_time_span_listener(self._on_span)

    def _on_span(self, event, start, end, **_):
        if self.active and event in self.EVENTS:
            self.spans.append((start, end))

    def timing(self, fn):
        """``(result, wall seconds, compile seconds)`` of ``fn()``."""
        self.spans, self.active = [], True
        try:
            out, wall = _timed(fn)
        finally:
            self.active = False
        total, cur_start, cur_end = 0.0, None, None
        for a, b in sorted(self.spans):
            if cur_end is None or a > cur_end:
                if cur_end is not None:
                    total += cur_end - cur_start
                cur_start, cur_end = a, b
            else:
                cur_end = max(cur_end, b)
        if cur_end is not None:
            total += cur_end - cur_start
        return out, wall, min(total, wall)


_CLOCK = None


def compile_clock() -> CompileClock:
    global _CLOCK
    if _CLOCK is None:
        _CLOCK = CompileClock()
    return _CLOCK


#: The penguins fit on the 233 training birds (see bench_penguins).
PENGUINS_WARMUP, PENGUINS_SAMPLES, PENGUINS_DENSE = 1000, 2000, True


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
    # The catalog card's program and priors (penguins_gmm: K = 3, full covariance, ordered on bill
    # length, the program's k-means start); on the 233 training birds the card's 500 + 500 draws
    # with a diagonal mass matrix fail the gate, so this fit adapts a dense mass matrix over
    # PENGUINS_WARMUP steps (see benchmarks/results/mixture.md).
    data = {"X": X[train], "num_components": 3, "covariance": "full", "order_by": 0}
    nw, ns = (200, 200) if quick else (PENGUINS_WARMUP, PENGUINS_SAMPLES)
    rows = []

    def ours():
        init = mm.mvn_mixture.default_init_strategy(data, seed=0)  # what the card's run uses
        return pm.fit(mm.mvn_mixture, data, num_chains=4, num_warmup=nw, num_samples=ns, seed=0,
                      dense_mass=PENGUINS_DENSE, init_strategy=init, progress_bar=False)

    f, t, t_compile = compile_clock().timing(ours)
    rep = diagnostics.check_convergence(f)
    z_all = mm.posterior_assignments(f, {"X": X, **{k: v for k, v in data.items() if k != "X"}}, max_draws=400)
    rows.append((f"ppl_models NUTS (4 x {ns}, {nw} warm-up, {'dense' if PENGUINS_DENSE else 'diagonal'} mass, "
                 f"k-means init)", t, heldout_lpd_ours(f, X[test]), adjusted_rand_score(species, z_all),
                 f"{'passed' if rep.passed else 'FAILED'} (max r-hat {rep.table['r_hat'].max():.4f}, "
                 f"min bulk ESS {rep.table['ess_bulk'].min():.0f}, min tail ESS {rep.table['ess_tail'].min():.0f}, "
                 f"{rep.divergences} div.)",
                 f"{t_compile:.1f} s of it tracing/compiling"))

    for name, est in (("sklearn GaussianMixture (EM, n_init=5)",
                       GaussianMixture(3, covariance_type="full", n_init=5, random_state=0)),
                      ("sklearn BayesianGaussianMixture (DP prior)",
                       BayesianGaussianMixture(n_components=3, covariance_type="full", max_iter=1000,
                                               weight_concentration_prior_type="dirichlet_process",
                                               n_init=5, random_state=0))):
        _, t = _timed(lambda: est.fit(X[train]))
        rows.append((name, t, float(est.score(X[test])), adjusted_rand_score(species, est.predict(X)),
                     "n/a (EM/variational)", ""))
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


class EssRow:
    def __init__(self, name, wall, sampling, ess, note=""):
        self.name, self.wall, self.sampling, self.ess, self.note = name, wall, sampling, ess, note

    @property
    def per_s_wall(self):
        return self.ess / self.wall

    @property
    def per_s_sampling(self):
        return self.ess / self.sampling


def bench_ess(quick: bool):
    """Cold then warm, ppl_models then PyMC + nutpie, same model, data, draws and chains."""
    import arviz as az

    md = load_faithful(columns="waiting")
    x = md.kwargs["x"]
    draws = 500 if quick else 1000
    rows = []

    data = {"x": x, "num_components": 2}
    init = mm.mixture_init_strategy(mm.gaussian_mixture, data)
    for attempt in ("cold", "warm: second run, persistent cache filled by the first"):
        f, wall, comp = compile_clock().timing(
            lambda: pm.fit(mm.gaussian_mixture, data, num_chains=4, num_warmup=draws, num_samples=draws,
                           seed=0, init_strategy=init, progress_bar=False))
        ess = float(az.summary(f.to_arviz(log_likelihood=False), kind="diagnostics")["ess_bulk"].min())
        rows.append(EssRow(f"ppl_models NUTS ({attempt}; {f.info['chain_method']} chains)", wall, wall - comp, ess,
                           f"{comp:.1f} s tracing/compiling"))

    try:
        import nutpie
        import pymc as pmc
    except ImportError as exc:
        rows.append(EssRow(f"PyMC + nutpie: not installed ({exc})", float("nan"), float("nan"), float("nan")))
        return rows

    def pymc_model():
        with pmc.Model() as model:
            w = pmc.Dirichlet("weights", a=np.ones(2))
            mu = pmc.Normal("loc", 0.0, 3.0, shape=2, transform=pmc.distributions.transforms.ordered,
                            initval=np.array([-1.0, 1.0]))
            sigma = pmc.HalfNormal("scale", 1.0, shape=2)
            pmc.NormalMixture("x", w=w, mu=mu, sigma=sigma, observed=x)
        return model

    for attempt in ("cold", "warm: second compile in this process"):
        compiled, t_compile = _timed(lambda: nutpie.compile_pymc_model(pymc_model()))
        idata, t_sample = _timed(lambda: nutpie.sample(compiled, draws=draws, tune=draws, chains=4, cores=2, seed=0,
                                                       progress_bar=False))
        ess = float(az.summary(idata, kind="diagnostics", var_names=["weights", "loc", "scale"])["ess_bulk"].min())
        rows.append(EssRow(f"PyMC {pmc.__version__} + nutpie {nutpie.__version__} ({attempt})",
                           t_compile + t_sample, t_sample, ess, f"{t_compile:.1f} s compile_pymc_model"))
    return rows


def main(args=None):
    args = args or ARGS or _parse_args()
    print(f"# mixture benchmark\n\nhost: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; quick={args.quick}; "
          f"load average at start {_load()}\n")
    if args.only in (None, "penguins"):
        rows = bench_penguins(args.quick)
        print("## Penguins (333 x 4, K = 3, full covariance; 100-point held-out split)\n")
        print("| method | fit s | held-out lpd / point | convergence gate (r-hat <= 1.01, ESS >= 400, 0 div.) "
              "| ARI vs species (all 333) | notes |\n|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.4f} | {r[4]} | {r[3]:.3f} | {r[5]} |")
        base = rows[1][1]
        print(f"\nfit-time ratio ppl_models / sklearn EM: {rows[0][1] / base:.1f}x; "
              f"held-out lpd ppl_models - EM: {rows[0][2] - rows[1][2]:+.4f} nats/point; "
              f"load average after: {_load()}\n")
    if args.only in (None, "synthetic"):
        rows = bench_synthetic(args.quick)
        print("## Synthetic 100,000 x 2, K = 3 (20,000 held out)\n")
        print("| method | fit s | held-out lpd / point | ARI vs truth (held out) |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.4f} | {r[3]:.3f} |")
        print(f"\nfit-time ratio ppl_models / sklearn EM: {rows[0][1] / rows[1][1]:.1f}x\n")
    if args.only in (None, "ess"):
        rows = bench_ess(args.quick)
        caches = (f"fresh, empty compilation caches under {FRESH_CACHES}" if FRESH_CACHES
                  else "the usual compilation caches (--keep-caches)")
        print(f"## NUTS efficiency: Old Faithful waiting, K = 2, same model and priors ({caches})\n")
        print("| sampler | wall s (incl. compile) | sampling-only s | min bulk ESS | ESS / s (wall) "
              "| ESS / s (sampling only) | notes |\n|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r.name} | {r.wall:.1f} | {r.sampling:.1f} | {r.ess:.0f} | {r.per_s_wall:.1f} "
                  f"| {r.per_s_sampling:.1f} | {r.note} |")
        if len(rows) == 4:
            ours_cold, ours_warm, py_cold, py_warm = rows
            print(f"\nESS/s ratios ppl_models / PyMC+nutpie: cold vs cold (wall incl. compile) "
                  f"{ours_cold.per_s_wall / py_cold.per_s_wall:.2f}x; warm vs warm (wall) "
                  f"{ours_warm.per_s_wall / py_warm.per_s_wall:.2f}x; sampling only (cold runs) "
                  f"{ours_cold.per_s_sampling / py_cold.per_s_sampling:.2f}x, (warm runs) "
                  f"{ours_warm.per_s_sampling / py_warm.per_s_sampling:.2f}x")
        print(f"\nload average after: {_load()}\n")


if __name__ == "__main__":
    main()
