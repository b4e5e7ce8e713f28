"""Diagnostics: the convergence gate, LOO/WAIC model comparison, and SBC calibration.

* :func:`check_convergence` — r-hat, bulk/tail ESS and divergences against thresholds, with a
  verdict a person or a CI job can read.
* :func:`loo`, :func:`waic`, :func:`compare` — predictive model comparison through ArviZ
  (WAIC is computed here: ArviZ 1.x dropped it).
* :func:`sbc` — simulation-based calibration (Talts et al. 2018): draw θ* from the prior,
  simulate data, fit, and record the rank of θ* among thinned posterior draws; if the
  inference is right the ranks are uniform. Tested by a chi-square test on binned ranks and by
  a simultaneous ECDF band (Säilynoja et al. 2022).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import functools

import numpy as np
import pandas as pd

from .data import ModelData, as_mapping, describe
from .errors import DataError

__all__ = [
    "ConvergenceReport",
    "check_convergence",
    "loo",
    "waic",
    "compare",
    "SBCResult",
    "sbc",
    "sbc_ranks",
    "rank_uniformity",
    "ecdf_pvalue",
    "ecdf_band",
]


# --------------------------------------------------------------------------- convergence gate
@dataclass
class ConvergenceReport:
    """The verdict of :func:`check_convergence`.

    Attributes
    ----------
    passed : bool
    failures : list of str
        One line per failed criterion, naming the parameter and the value.
    table : pandas.DataFrame
        Per parameter: r_hat, ess_bulk, ess_tail and whether each passes.
    divergences : int
    thresholds : dict
    """

    passed: bool
    failures: list[str]
    table: pd.DataFrame
    divergences: int
    thresholds: dict[str, float]
    applicable: bool = True

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if not self.applicable:
            return "convergence gate: not applicable (" + "; ".join(self.failures) + ")"
        t = self.thresholds
        head = (f"convergence gate (r-hat <= {t['rhat_max']}, bulk ESS >= {t['ess_bulk_min']}, "
                f"tail ESS >= {t['ess_tail_min']}, divergences <= {t['max_divergences']}): ")
        if self.passed:
            worst = self.table
            return head + (f"PASSED (max r-hat {worst['r_hat'].max():.4f}, min bulk ESS "
                           f"{worst['ess_bulk'].min():.0f}, min tail ESS {worst['ess_tail'].min():.0f}, "
                           f"{self.divergences} divergences)")
        return head + "FAILED\n  " + "\n  ".join(self.failures)


def check_convergence(result: Any, *, rhat_max: float = 1.01, ess_bulk_min: float = 400,
                      ess_tail_min: float = 400, max_divergences: int = 0,
                      var_names: list[str] | None = None) -> ConvergenceReport:
    """Check a fit (or an ArviZ DataTree) against the convergence gate.

    Parameters
    ----------
    result : Fit or xarray.DataTree
    rhat_max, ess_bulk_min, ess_tail_min, max_divergences
        The thresholds (defaults: Vehtari et al. 2021's r-hat 1.01 and ESS 400).
    var_names : list of str, optional
        Parameters to check (default: every posterior variable).
    """
    import arviz as az

    from .fit import Fit

    thresholds = dict(rhat_max=rhat_max, ess_bulk_min=ess_bulk_min, ess_tail_min=ess_tail_min,
                      max_divergences=max_divergences)
    if isinstance(result, Fit):
        if result.method not in ("nuts", "hmc"):
            return ConvergenceReport(True, [f"method {result.method!r} has no Markov chains"],
                                     pd.DataFrame(), 0, thresholds, applicable=False)
        tree = result.to_arviz(log_likelihood=False)
    else:
        tree = result
    diag = az.summary(tree, var_names=var_names, kind="diagnostics", round_to="none")
    table = diag[["r_hat", "ess_bulk", "ess_tail"]].copy()
    n_chains = int(tree["posterior"].sizes.get("chain", 1))
    divergences = 0
    if "sample_stats" in tree.children and "diverging" in tree["sample_stats"].data_vars:
        divergences = int(np.asarray(tree["sample_stats"]["diverging"]).sum())
    failures: list[str] = []
    if n_chains < 2:
        failures.append(f"r-hat needs at least 2 chains, got {n_chains}")
    # A constant parameter (e.g. a fixed entry of an ordered vector) has no r-hat: skip NaN rows.
    rh = table["r_hat"]
    for name, value in rh[rh > rhat_max].items():
        failures.append(f"{name}: r-hat {value:.4f} > {rhat_max}")
    for col, lim, label in (("ess_bulk", ess_bulk_min, "bulk ESS"), ("ess_tail", ess_tail_min, "tail ESS")):
        col_v = table[col]
        for name, value in col_v[col_v < lim].items():
            failures.append(f"{name}: {label} {value:.0f} < {lim}")
    if divergences > max_divergences:
        failures.append(f"{divergences} divergent transitions > {max_divergences}")
    table["passed"] = (table["r_hat"].fillna(1.0) <= rhat_max) & (table["ess_bulk"].fillna(np.inf) >= ess_bulk_min) & (
        table["ess_tail"].fillna(np.inf) >= ess_tail_min)
    return ConvergenceReport(not failures, failures, table, divergences, thresholds)


# --------------------------------------------------------------------------- LOO / WAIC
def _tree(x: Any, batch_size: int | None = None):
    from .fit import Fit

    return x.to_arviz(batch_size=batch_size) if isinstance(x, Fit) else x


def loo(result: Any, *, pointwise: bool = True, batch_size: int | None = None):
    """PSIS-LOO through ArviZ (``arviz.loo``) of a fit or DataTree.

    ``batch_size``: draws per chunk when a fit's log-likelihood is computed here (a log-likelihood
    the fit already holds is reused as it is).
    """
    import arviz as az

    return az.loo(_tree(result, batch_size), pointwise=pointwise)


@dataclass
class WAIC:
    """Watanabe-Akaike information criterion on the log-predictive-density scale."""

    elpd_waic: float
    se: float
    p_waic: float
    pointwise: np.ndarray
    n_data_points: int
    warning: bool

    def __str__(self) -> str:
        w = "  (warning: some pointwise variances > 0.4; prefer LOO)" if self.warning else ""
        return (f"elpd_waic {self.elpd_waic:.2f} (SE {self.se:.2f}), p_waic {self.p_waic:.2f}, "
                f"{self.n_data_points} observations{w}")


def waic(result: Any, var_name: str | None = None, batch_size: int | None = None) -> WAIC:
    """WAIC from the log-likelihood group (Vehtari, Gelman & Gabry 2017, eq. 3-5).

    ``elpd_waic = Σ_i [log mean_s p(y_i | θ_s) - var_s log p(y_i | θ_s)]``. ``batch_size`` as in
    :func:`loo`.
    """
    from scipy.special import logsumexp

    tree = _tree(result, batch_size)
    if "log_likelihood" not in tree.children:
        raise DataError("result", "a fit with a log_likelihood group", "none")
    ds = tree["log_likelihood"].to_dataset()
    names = list(ds.data_vars)
    if var_name is None:
        if len(names) != 1:
            raise DataError("var_name", f"one of {names}", "None")
        var_name = names[0]
    ll = np.asarray(ds[var_name].values, dtype=np.float64)
    S = ll.shape[0] * ll.shape[1]
    ll = ll.reshape(S, -1)
    lppd = logsumexp(ll, axis=0) - np.log(S)
    p = ll.var(axis=0, ddof=1)
    pw = lppd - p
    n = pw.shape[0]
    return WAIC(float(pw.sum()), float(np.sqrt(n * pw.var())), float(p.sum()), pw, n, bool((p > 0.4).any()))


def compare(results: Mapping[str, Any], **kwargs):
    """Rank models by PSIS-LOO (``arviz.compare``) — fits or DataTrees by name."""
    import arviz as az

    if len(results) < 2:
        raise DataError("results", "at least two fitted models to compare", f"{len(results)}")
    return az.compare({k: _tree(v) for k, v in results.items()}, **kwargs)


# --------------------------------------------------------------------------- SBC
def sbc_ranks(draws: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Rank of each true value among its posterior draws.

    ``draws`` ``(R, L, ...)``, ``truth`` ``(R, ...)`` -> ranks ``(R, ...)`` in ``0..L``
    (ties broken at random would matter only for discrete parameters, which NUTS never samples).
    """
    return (np.asarray(draws) < np.asarray(truth)[:, None]).sum(axis=1)


@functools.lru_cache(maxsize=32)
def _ecdf_tables(R: int, L: int) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise two-sided tail probabilities of the rank ECDF, and the Poisson cell masses.

    Under uniform ranks on 0..L the count ``C_k`` of ranks <= k is Binomial(R, (k+1)/(L+1));
    ``table[k, c] = min(1, 2 min(P(C_k <= c), P(C_k >= c)))`` for k = 0..L-1, c = 0..R.
    """
    from scipy.stats import binom, poisson

    z = (np.arange(L) + 1.0) / (L + 1.0)
    c = np.arange(R + 1)
    lower = binom.cdf(c[None, :], R, z[:, None])
    upper = binom.sf(c[None, :] - 1, R, z[:, None])
    table = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    return table, poisson.pmf(c, R / (L + 1.0))


def _band_coverage(allowed: np.ndarray, R: int, L: int) -> float:
    """P(every ``C_k`` lies in ``allowed[k]``) for uniform ranks, exactly.

    The L+1 cell counts are multinomial, i.e. independent Poisson(R/(L+1)) counts conditioned
    on their sum being R: a forward recursion over the cells on the cumulative count (the
    recursion of Säilynoja et al. 2022's optimisation method), divided by P(sum = R).
    """
    from scipy.stats import poisson

    _, pmf = _ecdf_tables(R, L)
    v = pmf * allowed[0]
    for k in range(1, L):
        v = np.convolve(v, pmf)[: R + 1] * allowed[k]
    return float(np.dot(v, pmf[::-1]) / poisson.pmf(R, R))


def ecdf_pvalue(ranks: np.ndarray, L: int) -> float:
    """Exact p-value of the simultaneous ECDF test of ranks in ``0..L`` against uniformity.

    The statistic is the smallest pointwise two-sided binomial tail probability of the rank
    ECDF over the grid 0..L-1 (Säilynoja, Bürkner & Vehtari 2022: their simultaneous band is
    the set of ECDFs whose smallest pointwise probability exceeds a threshold). Its null
    distribution is computed exactly (:func:`_band_coverage`), so the p-value has no Monte
    Carlo floor and can be compared with any Bonferroni level.
    """
    ranks = np.asarray(ranks).astype(int)
    R = ranks.shape[0]
    if L < 1:
        return 1.0
    table, _ = _ecdf_tables(R, L)
    counts = np.cumsum(np.bincount(ranks, minlength=L + 1)[: L + 1])[:L]
    t_obs = float(table[np.arange(L), counts].min())
    # P(T <= t_obs) = 1 - P(every pointwise probability > t_obs); the relative margin keeps the
    # observed ECDF itself out of the band despite rounding
    cover = _band_coverage(table > t_obs * (1 + 1e-9), R, L)
    return float(min(1.0, max(0.0, 1.0 - cover)))


def ecdf_band(R: int, L: int, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """The simultaneous ``prob`` band of the rank ECDF at 0..L-1: (lower, upper) ECDF values.

    Every ECDF of R uniform ranks on 0..L stays inside it with probability >= ``prob``; an ECDF
    leaves it exactly when :func:`ecdf_pvalue` <= 1 - ``prob``.
    """
    table, _ = _ecdf_tables(R, L)
    # coverage falls as the threshold rises: find the largest threshold with coverage >= prob
    levels = np.unique(table)
    lo, hi = 0, len(levels) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _band_coverage(table >= levels[mid], R, L) >= prob:
            lo = mid
        else:
            hi = mid - 1
    inside = table >= levels[lo]
    c = np.arange(R + 1)
    lower = np.where(inside, c, R + 1).min(axis=1) / R
    upper = np.where(inside, c, -1).max(axis=1) / R
    return lower, upper


def rank_uniformity(ranks: np.ndarray, L: int, *, bins: int | None = None) -> tuple[float, float]:
    """(chi-square p-value, ECDF p-value) for ranks in ``0..L`` under uniformity.

    The chi-square test is on ``bins`` equal groups of ranks; the ECDF test
    (:func:`ecdf_pvalue`) is exact and sees smooth departures (a shift, a too wide or too
    narrow posterior) that binning dilutes.
    """
    from scipy.stats import chisquare

    ranks = np.asarray(ranks).astype(int)
    R = ranks.shape[0]
    if bins is None:
        bins = int(max(2, min(20, R // 5, L + 1)))
    # Bin edges that split 0..L into `bins` groups of (near-)equal size, so the expected counts
    # are exact under the discrete uniform.
    edges = np.linspace(0, L + 1, bins + 1)
    counts = np.histogram(ranks, bins=edges)[0]
    widths = np.diff(np.floor(edges))
    expected = R * widths / (L + 1)
    p_chi = float(chisquare(counts, expected * counts.sum() / expected.sum()).pvalue)
    return p_chi, ecdf_pvalue(ranks, L)


@dataclass
class SBCResult:
    """Simulation-based calibration: ranks per parameter component and their uniformity tests.

    Attributes
    ----------
    ranks : dict
        Parameter -> ``(R, ...)`` ranks in ``0..L``.
    table : pandas.DataFrame
        One row per scalar parameter component: chi-square and ECDF p-values, pass/fail.
    num_draws : int
        L, the number of thinned draws the ranks are taken among.
    alpha : float
        Family-wise level: a component fails when either of its p-values is below
        ``alpha / (2 * number of components)`` (Bonferroni).
    """

    ranks: dict[str, np.ndarray]
    table: pd.DataFrame
    num_draws: int
    alpha: float
    num_replications: int
    divergences: int = 0
    truth: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.table["passed"].all())

    def __str__(self) -> str:
        lines = [f"SBC: {self.num_replications} replications, ranks among {self.num_draws} draws, "
                 f"family-wise alpha {self.alpha}, {self.divergences} divergent transitions"]
        for name, row in self.table.iterrows():
            verdict = "pass" if row["passed"] else "FAIL"
            lines.append(f"  {name:<24} chi2 p={row['chi2_p']:.3f}  ecdf p={row['ecdf_p']:.3f}  {verdict}")
        lines.append("SBC " + ("PASSED" if self.passed else "FAILED"))
        return "\n".join(lines)

    @property
    def level(self) -> float:
        """The level each single test is held to: ``alpha / (2 * number of components)``."""
        return self.alpha / max(1, 2 * len(self.table))

    def plot(self, path: str | None = None, max_params: int = 12):
        """Per component: the rank histogram with the 99% band of a uniform bin count, and the
        ECDF difference (rank ECDF minus the uniform CDF) with the simultaneous band at the
        level the test uses: a component fails the ECDF test exactly when its line leaves that
        band. Saved to ``path`` if given; the figure is returned."""
        import matplotlib.pyplot as plt
        from scipy.stats import binom

        names = list(self.table.index)[:max_params]
        ncol = min(4, len(names))
        nrow = int(np.ceil(len(names) / ncol))
        fig, axes = plt.subplots(2 * nrow, ncol, figsize=(3.2 * ncol, 4.4 * nrow), squeeze=False,
                                 gridspec_kw={"height_ratios": [1, 1] * nrow})
        R, L = self.num_replications, self.num_draws
        bins = int(max(2, min(20, R // 5, L + 1)))
        lo, hi = binom.ppf([0.005, 0.995], R, 1 / bins)
        grid = np.arange(L)
        cdf = (grid + 1.0) / (L + 1.0)
        band_lo, band_hi = ecdf_band(R, L, 1.0 - self.level)
        for i, name in enumerate(names):
            ax_h, ax_e = axes[2 * (i // ncol), i % ncol], axes[2 * (i // ncol) + 1, i % ncol]
            ranks = self._component(name)
            failed = not bool(self.table.loc[name, "passed"])
            ax_h.hist(ranks, bins=np.linspace(0, L + 1, bins + 1), color="C3" if failed else "C0")
            ax_h.axhspan(lo, hi, color="0.85", zorder=0)
            ax_h.set_title(name + ("  (FAIL)" if failed else ""), fontsize=9)
            ax_h.set_yticks([])
            ecdf = np.cumsum(np.bincount(ranks, minlength=L + 1)[: L + 1])[:L] / R
            ax_e.fill_between(grid, band_lo - cdf, band_hi - cdf, step="post", color="0.85", lw=0)
            ax_e.step(grid, ecdf - cdf, where="post", color="C3" if failed else "C0", lw=1.2)
            ax_e.axhline(0.0, color="0.5", lw=0.6)
            ax_e.set_xlim(0, L)
            ax_e.tick_params(labelsize=7)
            ax_e.set_ylabel("ECDF diff.", fontsize=7)
        for ax in list(axes.flat):
            if not ax.has_data():
                ax.axis("off")
        fig.suptitle(f"SBC ranks of {R} replications among {L} draws; ECDF band at level {self.level:.2g}",
                     fontsize=9)
        fig.tight_layout()
        if path:
            fig.savefig(path, dpi=100)
        return fig

    def _component(self, label: str) -> np.ndarray:
        name, _, idx = label.partition("[")
        r = self.ranks[name]
        if idx:
            index = tuple(int(i) for i in idx.rstrip("]").split(","))
            return r[(slice(None),) + index]
        return r


def sbc(
    model: Callable,
    data: Mapping[str, Any] | ModelData,
    *,
    num_replications: int = 100,
    num_warmup: int = 300,
    num_samples: int = 300,
    thin: int | None = None,
    params: list[str] | None = None,
    observed: list[str] | tuple[str, ...] | None = None,
    simulator: Callable | None = None,
    seed: int = 0,
    alpha: float = 0.01,
    chunk_size: int | None = None,
    target_accept_prob: float = 0.8,
    progress: bool = False,
) -> SBCResult:
    """Simulation-based calibration of NUTS on ``model`` (Talts et al. 2018).

    For each replication: draw θ* and data from the prior predictive (of ``simulator``, which
    defaults to ``model`` itself), fit ``model`` to that data with NUTS, thin the draws to
    about independent ones, and rank θ* among them. All replications are fitted at once by
    :func:`ppl_models.batched.fit_many` (one compilation).

    Parameters
    ----------
    model : callable
        The program whose inference is checked.
    data : mapping or ModelData
        Its keyword arguments; the observed ones are replaced by simulated data.
    num_replications : int
        R, the number of simulated data sets.
    num_warmup, num_samples : int
        NUTS settings per replication.
    thin : int, optional
        Keep every ``thin``-th draw (default: ``max(1, num_samples // 100)``, so ranks are
        among about 100 nearly independent draws).
    params : list of str, optional
        Parameters to rank (default: every latent site).
    simulator : callable, optional
        A different program to simulate from. Giving one with another prior is how to check
        that SBC detects a wrong model: the ranks are then not uniform.
    alpha : float
        Family-wise level over all components and both tests (Bonferroni).
    progress : bool
        Show a progress bar (the replications then run in ten chunks).
    """
    import jax

    from ._trace import observed_kwargs
    from .batched import fit_many
    from .inference import inspect_program, sample_prior

    kwargs = as_mapping("data", data)
    md_obs = data.observed if isinstance(data, ModelData) else None
    if not isinstance(num_replications, int) or num_replications < 10:
        raise DataError("num_replications", "an integer >= 10", describe(num_replications))
    # traced only: the observed values are replaced by simulations, whose inputs sample_prior checks
    sites, _ = inspect_program(model, kwargs, seed=seed, check_values=False)
    obs_names = observed_kwargs(sites, kwargs, observed or md_obs)
    if not obs_names:
        # data given with the observations left as None: those arguments are the observed ones
        obs_names = [k for k, v in kwargs.items() if v is None and k in sites.latent]
    if not obs_names:
        raise DataError("observed", "the names of the model's observed keyword arguments",
                        "none found", "pass observed=[...]")
    names = params or [s for s in sites.latent if s not in obs_names]
    unknown = [p for p in names if p not in sites.latent + sites.deterministic]
    if unknown:
        raise DataError("params", f"latent sites of the model {sites.latent}", f"{unknown}")
    sim_model = simulator if simulator is not None else model
    prior = sample_prior(sim_model, kwargs, num_samples=num_replications, seed=seed, observed=obs_names)
    obs_site_for = {k: k for k in obs_names}
    missing = [k for k in obs_names if k not in prior]
    if missing:
        raise DataError("observed", "observed keyword arguments named like their sites", f"{missing}")
    batched = {k: prior[obs_site_for[k]] for k in obs_names}
    static = {k: v for k, v in kwargs.items() if k not in obs_names}
    thin = thin if thin is not None else max(1, num_samples // 100)
    if progress and chunk_size is None:
        chunk_size = max(1, num_replications // 10)
    draws = fit_many(model, batched, static, seed=seed + 7, num_warmup=num_warmup, num_samples=num_samples,
                     target_accept_prob=target_accept_prob, chunk_size=chunk_size, progress=progress)
    jax.block_until_ready(draws)
    divergences = int(draws["diverging"].sum())
    L = len(range(0, num_samples, thin))
    ranks: dict[str, np.ndarray] = {}
    truth: dict[str, np.ndarray] = {}
    rows = []
    for name in names:
        if name not in prior:
            raise DataError("params", "sites drawn by the simulator", repr(name))
        th = np.asarray(prior[name])
        dr = np.asarray(draws[name])[:, ::thin]
        r = sbc_ranks(dr, th)
        ranks[name] = r
        truth[name] = th
        for idx in np.ndindex(*r.shape[1:]):
            label = name if not idx else f"{name}[{','.join(map(str, idx))}]"
            comp = r[(slice(None),) + idx]
            if np.all(dr[(slice(None), slice(None)) + idx] == th[(slice(None),) + idx][:, None]):
                continue  # a fixed component (e.g. the first of an ordered vector pinned at 0)
            p_chi, p_ecdf = rank_uniformity(comp, L)
            rows.append({"parameter": label, "chi2_p": p_chi, "ecdf_p": p_ecdf})
    table = pd.DataFrame(rows).set_index("parameter")
    # Bonferroni over every test made, so that `alpha` is the chance that a correct inference
    # fails anywhere (a 31-coefficient regression would otherwise fail by chance half the time).
    level = alpha / max(1, 2 * len(table))  # = SBCResult.level
    table["passed"] = (table["chi2_p"] >= level) & (table["ecdf_p"] >= level)
    return SBCResult(ranks=ranks, table=table, num_draws=L, alpha=alpha,
                     num_replications=num_replications, divergences=divergences, truth=truth)
