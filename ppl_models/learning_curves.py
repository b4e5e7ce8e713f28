"""Learning curves: test error against training-set size, for generative and discriminative
classifiers (Ng & Jordan, NIPS 2001).

:func:`learning_curves` draws, for every training size ``m`` of a grid, ``n_splits`` random
stratified train/test splits (the test set is every row not in the training set), fits every
model on every split and records test 0-1 error, log loss and expected calibration error in a
tidy :class:`pandas.DataFrame` with columns ``dataset, model, m, split, metric, value``. The
splits are shared by all models (a paired design), which :func:`summarize_curves` uses for a
paired bootstrap over splits.

How each kind of model is fitted:

* :class:`~ppl_models.models.naive_bayes.BayesianNaiveBayes` with ``method="exact"``
  (Gaussian with per-class or shared variances, Bernoulli, categorical): the **exact**
  conjugate posterior (:func:`~ppl_models.models.naive_bayes.conjugate_posterior`), ``vmap``-ed
  over every split *and every size at once* (in batches of ``batch_size`` fits inside one
  compiled ``lax.map``). Each training set is padded to the full data set with a row mask, so
  one XLA compilation serves the whole grid of one data set. Prediction is
  the posterior mean of p(y | x, θ) over ``num_samples`` exact draws, as the estimator's own
  ``predict_proba``.
* :class:`~ppl_models.models.logistic.BayesianLogisticRegression` with ``method="laplace"``:
  an **approximate** (Gaussian at the mode) posterior, :func:`weighted_laplace_posterior`,
  the same Laplace approximation as
  :func:`~ppl_models.models.logistic.laplace_posterior` with 0/1 row weights, so that training
  sets of different sizes padded to one length share a compilation and ``vmap`` together. The
  training rows are gathered and padded per group of sizes (m ≤ N/8 and the rest: two
  compilations per data set), so that a small fit does not cost what a large one does; the mode is found by
  Newton's method and every fit is checked to have reached it (gradient below tolerance; a fit
  that has not is flagged, and left out of the curves). With two classes the predictive
  probabilities are the exact mean of p(y | x, β) under the Gaussian (a one-dimensional
  integral per row, :func:`expected_sigmoid`), not a Monte Carlo average. The approximation is
  poorest for small or separable training sets, where the true posterior is skewed: there the
  Laplace predictive is much less confident than the exact posterior's (NUTS).
* ``BayesianLogisticRegression(method="nuts")``: the exact posterior up to Monte Carlo error,
  by :func:`ppl_models.batched.fit_many` (one NUTS chain per split, compiled once per ``m``
  and ``vmap``-ed over the splits of that size). Much slower; use it on small grids to check
  the Laplace curves where it matters (small ``m``).
* Any other scikit-learn classifier (``GaussianNB``, ``LogisticRegression``, a ``Pipeline``,
  or our estimators with other methods): cloned and fitted split by split.

Bad input: non-finite features, non-finite labels, fewer than two classes in ``y`` or a class
with a single row (it cannot be in both the training and the test rows) raise
:class:`~ppl_models.errors.DataError`; a size ``m`` that cannot give every class at least one
training and one test row (``m`` below the number of classes, or ``m`` too close to or above
the number of rows) is skipped, with the reason recorded in ``df.attrs["skipped"]`` and a
warning.
"""

from __future__ import annotations

import functools
import time
import warnings
from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from sklearn.base import clone

from .errors import DataError
from .models import logistic as _lr
from .models import naive_bayes as _nb

__all__ = [
    "METRICS",
    "CurveSummary",
    "log_sizes",
    "stratified_allocation",
    "stratified_train_masks",
    "expected_calibration_error",
    "model_kind",
    "weighted_laplace_posterior",
    "batched_naive_bayes_posterior",
    "batched_naive_bayes_proba",
    "batched_laplace_posterior",
    "batched_laplace_proba",
    "expected_sigmoid",
    "learning_curves",
    "plateau_m",
    "crossover_m",
    "summarize_curves",
    "plot_learning_curves",
]

METRICS = ("error", "log_loss", "ece")

# Probabilities are clipped here for the log loss: a prediction of exactly 0 for the true class
# would otherwise give an infinite loss that swamps every mean (scikit-learn clips likewise).
_EPS = 1e-15


# ----------------------------------------------------------------------------------------------
# Grid and splits.
# ----------------------------------------------------------------------------------------------


def log_sizes(n_rows: int, num: int = 14, *, smallest: int = 4, largest_fraction: float = 0.7) -> np.ndarray:
    """``num`` log-spaced training sizes from ``smallest`` to ``floor(largest_fraction · n_rows)``.

    Rounding can merge neighbouring sizes at the small end; duplicates are dropped, so fewer
    than ``num`` sizes may come back for a small range.

    Returns
    -------
    int array (≤ num,), increasing
    """
    largest = int(np.floor(largest_fraction * n_rows))
    if largest < smallest:
        raise DataError("n_rows", f"at least {int(np.ceil(smallest / largest_fraction))} rows for sizes "
                        f"from {smallest}", n_rows)
    return np.unique(np.round(np.geomspace(smallest, largest, num)).astype(int))


def stratified_allocation(counts: np.ndarray, m: int) -> tuple[np.ndarray | None, str]:
    """Training rows per class for a stratified training set of ``m`` rows.

    Proportional to the class counts, with at least one training row and at least one held-out
    row of every class (so that every split has every class in both parts).

    Returns
    -------
    (alloc, reason)
        ``alloc`` int array (C,) summing to ``m``, or ``None`` with the reason it is impossible.
    """
    counts = np.asarray(counts, dtype=int)
    C, n = len(counts), int(counts.sum())
    if np.any(counts < 2):
        few = np.flatnonzero(counts < 2).tolist()
        return None, (f"class(es) at position {few} of the sorted labels have fewer than 2 rows "
                      f"(counts {counts.tolist()}): a split cannot hold such a class in both its "
                      "training and its test rows")
    if m < C:
        return None, f"m={m} is below the number of classes ({C}): a split cannot hold every class"
    if m > n - C:
        return None, (f"m={m} leaves fewer than one test row per class (data set of {n} rows, "
                      f"{C} classes)")
    alloc = np.clip(np.floor(m * counts / n).astype(int), 1, counts - 1)
    # Hand out (or take back) the rounding remainder where the allocation is furthest from
    # proportional, respecting the bounds [1, n_c - 1].
    while alloc.sum() < m:
        room = np.where(alloc < counts - 1, m * counts / n - alloc, -np.inf)
        alloc[int(np.argmax(room))] += 1
    while alloc.sum() > m:
        room = np.where(alloc > 1, alloc - m * counts / n, -np.inf)
        alloc[int(np.argmax(room))] -= 1
    return alloc, ""


def stratified_train_masks(codes: np.ndarray, m: int, n_splits: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean training masks (n_splits, N) of stratified random training sets of size ``m``.

    Raises :class:`DataError` when :func:`stratified_allocation` finds ``m`` impossible.
    """
    codes = np.asarray(codes)
    classes = np.unique(codes)
    counts = np.array([(codes == c).sum() for c in classes])
    alloc, reason = stratified_allocation(counts, m)
    if alloc is None:
        raise DataError("m", "a size that leaves every class in both training and test rows", reason)
    rows = [np.flatnonzero(codes == c) for c in classes]
    masks = np.zeros((n_splits, codes.shape[0]), dtype=bool)
    for s in range(n_splits):
        for r, a in zip(rows, alloc):
            masks[s, rng.choice(r, a, replace=False)] = True
    return masks


# ----------------------------------------------------------------------------------------------
# Metrics.
# ----------------------------------------------------------------------------------------------


def _metrics(proba: np.ndarray, codes: np.ndarray, test: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """Test metrics of B fits at once. proba (B, N, C), codes (N,), test mask (B, N)."""
    w = test.astype(np.float64)
    n_test = w.sum(1)
    p_true = np.take_along_axis(proba, np.broadcast_to(codes[None, :, None], proba.shape[:2] + (1,)), -1)[..., 0]
    pred = np.argmax(proba, -1)
    correct = (pred == codes[None, :]).astype(np.float64)
    error = 1.0 - (w * correct).sum(1) / n_test
    log_loss = -(w * np.log(np.clip(p_true, _EPS, 1.0))).sum(1) / n_test
    conf = proba.max(-1)
    # Equal-width bins on the confidence; a confidence of exactly 1 falls in the top bin.
    b = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    onehot = (b[..., None] == np.arange(n_bins)).astype(np.float64) * w[..., None]  # (B, N, bins)
    gap = np.einsum("bnk,bn->bk", onehot, correct - conf)
    ece = np.abs(gap).sum(1) / n_test
    return {"error": error, "log_loss": log_loss, "ece": ece}


def expected_calibration_error(y_true, proba, n_bins: int = 10) -> float:
    """Expected calibration error of class probabilities.

    ECE = Σ_b (n_b / n) |accuracy_b − confidence_b| over ``n_bins`` equal-width bins of the
    confidence (the largest class probability).

    Parameters
    ----------
    y_true : int array (N,)
        Class codes ``0..C-1`` (columns of ``proba``).
    proba : array (N, C)
    n_bins : int

    Returns
    -------
    float
    """
    proba = np.asarray(proba, dtype=np.float64)
    codes = np.asarray(y_true)
    if proba.ndim != 2 or codes.shape != proba.shape[:1]:
        raise DataError("proba", "an (N, C) array matching y_true (N,)", f"shapes {proba.shape}, {codes.shape}")
    return float(_metrics(proba[None], codes, np.ones((1, codes.shape[0]), bool), n_bins)["ece"][0])


# ----------------------------------------------------------------------------------------------
# Model kinds.
# ----------------------------------------------------------------------------------------------


def model_kind(estimator) -> str:
    """``"generative"`` (naive Bayes), ``"discriminative"`` (logistic regression) or ``"other"``.

    A scikit-learn ``Pipeline`` is classified by its last step.
    """
    est = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if isinstance(est, _nb.BayesianNaiveBayes) or type(est).__module__.startswith("sklearn.naive_bayes"):
        return "generative"
    name = type(est).__name__
    if isinstance(est, _lr.BayesianLogisticRegression) or name in ("LogisticRegression", "LogisticRegressionCV"):
        return "discriminative"
    return "other"


def _route(estimator) -> str:
    if isinstance(estimator, _nb.BayesianNaiveBayes) and estimator.method == "exact":
        return "nb_exact"
    if isinstance(estimator, _lr.BayesianLogisticRegression) and estimator.method == "laplace":
        return "lr_laplace"
    if isinstance(estimator, _lr.BayesianLogisticRegression) and estimator.method == "nuts":
        return "lr_nuts"
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict_proba")):
        raise DataError("models", "classifiers with fit and predict_proba", type(estimator).__name__)
    return "generic"


# ----------------------------------------------------------------------------------------------
# Vectorized Bayesian fits.
# ----------------------------------------------------------------------------------------------


def _padded(masks: np.ndarray, keys, batch_size: int):
    """Pad the fits to a multiple of the batch size (repeating the last one): ``lax.map``
    compiles its body a second time for a remainder batch, and compilation is the cost here."""
    B = masks.shape[0]
    bs = max(1, min(int(batch_size), B))
    pad = (-B) % bs
    if pad:
        masks = np.concatenate([masks, np.repeat(masks[-1:], pad, 0)])
        keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], pad, 0)])
    return masks, keys, bs


def _padded_arrays(keys, arrays, batch_size: int):
    """:func:`_padded` for several per-fit arrays."""
    B = arrays[0].shape[0]
    bs = max(1, min(int(batch_size), B))
    pad = (-B) % bs
    if pad:
        arrays = [np.concatenate([a, np.repeat(a[-1:], pad, 0)]) for a in arrays]
        keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], pad, 0)])
    return keys, arrays, bs


def _weighted_moments(X, w):
    """Mean and scale of the rows with weight 1, as the estimators standardize.

    ``np.where(sd > 0, sd, 1)`` in the estimators; here a relative threshold, because a
    constant column's float sd computed through a weighted sum can come out at round-off level
    instead of exactly 0.
    """
    n = jnp.sum(w)
    mean = (w @ X) / n
    sd = jnp.sqrt((w @ (X - mean) ** 2) / n)
    return mean, jnp.where(sd > 1e-10 * jnp.maximum(1.0, jnp.abs(mean)), sd, 1.0)


def _masked_standardize(X, w):
    """Standardize by the mean and sd of the rows with weight 1 (:func:`_weighted_moments`)."""
    mean, scale = _weighted_moments(X, w)
    return (X - mean) / scale


def _nb_setup(est, X: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The features the naive Bayes program sees and its static options (checked once)."""
    p = est.get_params()
    lik = p["likelihood"]
    _nb._check_likelihood(lik)
    opts = dict(likelihood=lik, shared_variance=bool(p["shared_variance"]), standardize=False, K=None,
                prior=_nb.NaiveBayesPrior(float(p["class_concentration"]), float(p["loc_mean"]),
                                          float(p["loc_strength"]), float(p["precision_shape"]),
                                          float(p["precision_rate"]), float(p["feature_concentration"])),
                num_samples=int(p["num_samples"]))
    if lik == "gaussian":
        opts["standardize"] = bool(p["standardize"])
        return X, opts
    if lik == "bernoulli":
        if p["binarize"] is not None:
            return (X > p["binarize"]).astype(np.float64), opts
        if not np.all((X == 0) | (X == 1)):
            raise DataError("X", "binary features (0/1) for the Bernoulli likelihood", "values other than 0 and 1",
                            "set binarize=threshold on the estimator")
        return X, opts
    if np.any(X < 0) or np.any(X != np.round(X)):
        raise DataError("X", "category codes 0..K-1 for the categorical likelihood", "negative or non-integer values")
    # K is fixed from the whole data set (or the estimator's num_categories), so that a test
    # row with a category absent from a small training set still has a (prior) probability.
    k_data = int(X.max()) + 1
    K = int(p["num_categories"]) if p["num_categories"] is not None else k_data
    if K < k_data:
        raise DataError("num_categories", f"at least {k_data} (the largest code + 1)", K)
    opts["K"] = K
    return X, opts


def _nb_one_posterior(mask, X, codes, *, num_classes, likelihood, shared_variance, standardize, K, prior):
    """The exact posterior given the rows of ``mask``, and the features the program sees."""
    w = mask.astype(X.dtype)
    Z = _masked_standardize(X, w) if standardize else X
    # Rows outside the training set get the code ``num_classes``: their one-hot row is zero,
    # so the conjugate sums leave them out (one compiled shape for every training size).
    y = jnp.where(mask, codes, num_classes)
    post = _nb.conjugate_posterior(Z, y, num_classes=num_classes, likelihood=likelihood,
                                   shared_variance=shared_variance, num_categories=K, prior=prior)
    return post, Z


_NB_STATIC = ("num_classes", "likelihood", "shared_variance", "standardize", "K", "prior")


@functools.partial(jax.jit, static_argnames=_NB_STATIC + ("num_samples", "batch_size"))
def _nb_proba_jit(keys, masks, X, codes, *, num_samples, batch_size, **static):
    def one(args):
        key, mask = args
        post, Z = _nb_one_posterior(mask, X, codes, **static)
        draws = _nb.sample_conjugate_posterior(key, post, num_samples)
        return jnp.mean(_nb.class_posterior(Z, draws, static["likelihood"]), axis=0)

    return jax.lax.map(one, (keys, masks), batch_size=batch_size)


@functools.partial(jax.jit, static_argnames=_NB_STATIC)
def _nb_posterior_jit(masks, X, codes, **static):
    return jax.vmap(lambda mask: _nb_one_posterior(mask, X, codes, **static)[0])(masks)


def _nb_static(opts: dict, num_classes: int) -> dict[str, Any]:
    return dict(num_classes=int(num_classes), likelihood=opts["likelihood"], shared_variance=opts["shared_variance"],
                standardize=opts["standardize"], K=opts["K"], prior=opts["prior"])


def batched_naive_bayes_posterior(estimator, X, codes, masks, *, num_classes: int):
    """The exact conjugate posteriors of many naive Bayes fits, ``vmap``-ed, one compilation.

    Parameters as :func:`batched_naive_bayes_proba`.

    Returns
    -------
    GaussianPosterior | BernoulliPosterior | CategoricalPosterior
        Every field with a leading axis B (one posterior per training mask), equal to the
        ``posterior_`` of ``estimator`` fitted on each training set alone.
    """
    Xs, opts = _nb_setup(estimator, np.asarray(X, np.float64))
    with jax.enable_x64(True):
        post = _nb_posterior_jit(jnp.asarray(np.asarray(masks, bool)), jnp.asarray(Xs, jnp.float64),
                                 jnp.asarray(codes, jnp.int32), **_nb_static(opts, num_classes))
        return type(post)(*(np.asarray(v) for v in post))


def batched_naive_bayes_proba(estimator, X, codes, masks, *, num_classes: int, seed: int = 0,
                              batch_size: int = 32) -> np.ndarray:
    """Posterior-mean class probabilities of many exact naive Bayes fits, one compilation.

    The posterior is **exact** (conjugate); the probabilities are the mean of p(y | x, θ) over
    ``estimator.num_samples`` independent posterior draws, as ``BayesianNaiveBayes.predict_proba``.

    Parameters
    ----------
    estimator : BayesianNaiveBayes
        Supplies the likelihood, priors, ``standardize``/``binarize``/``num_categories``.
    X : array (N, D)
    codes : int array (N,)
        Class codes ``0..C-1``.
    masks : bool array (B, N)
        Training rows of each of the B fits (any sizes: all fits share one compiled shape).
    num_classes : int
    seed : int
    batch_size : int
        Fits evaluated together inside the compiled loop (memory).

    Returns
    -------
    array (B, N, C)
        Class probabilities of every row (training rows included) under each fit.
    """
    Xs, opts = _nb_setup(estimator, np.asarray(X, np.float64))
    masks = np.asarray(masks, bool)
    B = masks.shape[0]
    keys = jax.random.split(jax.random.PRNGKey(seed), B)
    masks, keys, bs = _padded(masks, keys, batch_size)
    with jax.enable_x64(True):
        out = _nb_proba_jit(keys, jnp.asarray(masks), jnp.asarray(Xs, jnp.float64), jnp.asarray(codes, jnp.int32),
                            num_samples=opts["num_samples"], batch_size=bs, **_nb_static(opts, num_classes))
        return np.asarray(out)[:B]


def _coef_log_prior(coef, prior: str, prior_scale: float, prior_df: float):
    if prior == "normal":
        return jnp.sum(-0.5 * (coef / prior_scale) ** 2 - jnp.log(prior_scale) - 0.5 * jnp.log(2 * jnp.pi))
    if prior == "student_t":
        return jnp.sum(jax.scipy.stats.t.logpdf(coef, prior_df, 0.0, prior_scale))
    raise DataError("prior", f"one of {list(_lr.PRIORS)}", repr(prior))


def weighted_laplace_posterior(X, y, weights, *, num_classes: int = 2, prior: str = "normal",
                               prior_scale: float = 2.5, prior_df: float = 3.0, intercept: bool = True,
                               intercept_scale: float = 2.5, gtol: float | None = None,
                               max_iter: int = 100) -> _lr.LaplacePosterior:
    """Laplace approximation of the logistic posterior with row weights (pure JAX).

    The objective is that of :func:`ppl_models.models.logistic.laplace_posterior` with each
    row's log-likelihood multiplied by its weight: with 0/1 weights it is the posterior given
    the rows of weight 1, so training sets of different sizes padded to one shape share one
    compilation and ``vmap`` together. The mode is found by Newton's method with a line search
    from zero (:func:`ppl_models.models.logistic.newton_minimize`; quadratic convergence, so a separable training set —
    where the mode under a Normal prior exists but lies far out — takes a few more steps, not
    thousands) and the covariance is the inverse Hessian there: an **approximation** (Gaussian
    at the mode), poorest for small or separable training sets, where the posterior is skewed.
    Same layout as :class:`~ppl_models.models.logistic.LaplacePosterior`; ``converged`` is
    True only when the largest gradient component at the returned mode is at most ``gtol``.

    Parameters
    ----------
    X : array (N, D)
    y : int array (N,)
        Codes ``0..C-1`` (any valid code on rows of weight 0).
    weights : array (N,)
    num_classes, prior, prior_scale, prior_df, intercept, intercept_scale
        As :func:`ppl_models.models.logistic.logistic_regression`.
    gtol : float, optional
        Gradient tolerance (default ``1e-8 · max(1, Σ weights)`` in float64, ``1e-3 · max(1,
        Σ weights)`` in float32).
    max_iter : int
        Newton steps at most.

    Returns
    -------
    LaplacePosterior
    """
    X = jnp.asarray(X, jnp.result_type(float))
    y = jnp.asarray(y, jnp.int32)
    w = jnp.asarray(weights, X.dtype)
    D, K = X.shape[1], num_classes - 1
    onehot = (y[:, None] == jnp.arange(num_classes)).astype(X.dtype)

    def objective(theta):
        coef = theta[: D * K].reshape(D, K)
        b0 = theta[D * K:] if intercept else jnp.zeros(K, X.dtype)
        logp = jax.nn.log_softmax(_lr.class_logits(X, coef, b0), -1)
        loglik = jnp.sum(w * jnp.sum(onehot * logp, -1))
        lp = _coef_log_prior(coef, prior, prior_scale, prior_df)
        if intercept:
            lp = lp + _coef_log_prior(b0, "normal", intercept_scale, 0.0)
        return -(loglik + lp)

    if gtol is None:
        gtol = (1e-8 if X.dtype == jnp.float64 else 1e-3) * jnp.maximum(1.0, jnp.sum(w))
    n_par = D * K + (K if intercept else 0)
    mode, _, converged = _lr.newton_minimize(objective, jnp.zeros(n_par, X.dtype), gtol=gtol, max_iter=max_iter)
    hess = jax.hessian(objective)(mode)
    cov = jnp.linalg.inv(0.5 * (hess + hess.T))
    return _lr.LaplacePosterior(mode, 0.5 * (cov + cov.T), converged)


def _lr_opts(est) -> dict[str, Any]:
    p = est.get_params()
    if p["prior"] not in _lr.PRIORS:
        raise DataError("prior", f"one of {list(_lr.PRIORS)}", repr(p["prior"]))
    return dict(prior=p["prior"], prior_scale=float(p["prior_scale"]), prior_df=float(p["prior_df"]),
                intercept=bool(p["fit_intercept"]), intercept_scale=float(p["intercept_scale"]))


def _laplace_one(idx, w, X, codes, num_classes, standardize, opts):
    """One Laplace fit on the training rows ``X[idx]`` of weight ``w`` (0 on padding), and every
    row of ``X`` on the scale the fit sees (standardized by the training rows)."""
    Xt = X[idx]
    if standardize:
        mean, scale = _weighted_moments(Xt, w)
        Zt, Z = (Xt - mean) / scale, (X - mean) / scale
    else:
        Zt, Z = Xt, X
    return weighted_laplace_posterior(Zt, codes[idx], w, num_classes=num_classes, **opts), Z


# Fits are grouped by training size, and each group's training sets are gathered and padded to
# the group's largest m (not to the N rows of the data set), so that a Newton step costs
# O(m·P²), not O(N·P²), at small m. Each group compiles once, and a compilation costs more than
# hundreds of small fits (benchmarks/results/learning_curves.md), so there are two groups:
# m ≤ N/8 and the rest.
_GROUP_FRACTIONS = (1 / 8,)


def _laplace_groups(masks: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(fits, idx, w)`` per group: fit positions, gathered row indices (G, L) padded with
    row 0, and 0/1 weights (G, L)."""
    m = masks.sum(1)
    N = masks.shape[1]
    bounds = [N * f for f in _GROUP_FRACTIONS] + [np.inf]
    label = np.searchsorted(np.asarray(bounds), m, side="left")
    out = []
    for g in np.unique(label):
        fits = np.flatnonzero(label == g)
        L = int(m[fits].max())
        idx = np.zeros((len(fits), L), dtype=np.int64)
        w = np.zeros((len(fits), L))
        for j, i in enumerate(fits):
            rows = np.flatnonzero(masks[i])
            idx[j, : len(rows)] = rows
            w[j, : len(rows)] = 1.0
        out.append((fits, idx, w))
    return out


# Trapezoid nodes for :func:`expected_sigmoid` (step 0.5; exponentially accurate for these
# analytic integrands): standard-normal z on [-10, 10] and standard-logistic L on [-40, 40].
_Z_NODES = np.arange(-10.0, 10.0 + 1e-9, 0.5)
_Z_WEIGHTS = 0.5 * np.exp(-0.5 * _Z_NODES**2) / np.sqrt(2.0 * np.pi)
_L_NODES = np.arange(-40.0, 40.0 + 1e-9, 0.5)
_L_WEIGHTS = 0.5 / (4.0 * np.cosh(0.5 * _L_NODES) ** 2)


def expected_sigmoid(mean, sd):
    """E[σ(a)] for a ~ Normal(mean, sd²), elementwise, to about 1e-14 (pure JAX).

    σ(a) = P(L < a) for a standard logistic L, so E[σ(a)] = ∫ φ(z) σ(mean + sd·z) dz =
    ∫ p_L(l) Φ((mean + l) / sd) dl. The first integrand varies on a scale 1/sd in z, the second
    on a scale sd in l: the trapezoid rule (step 0.5) on the first for sd ≤ 1 and on the second
    for sd > 1 converges exponentially in both cases (checked against adaptive quadrature to
    1e-13 for sd from 0 to 1000 and |mean| up to 60).
    """
    mean = jnp.asarray(mean)
    sd = jnp.asarray(sd, mean.dtype)
    small = jnp.sum(_Z_WEIGHTS * jax.nn.sigmoid(mean[..., None] + sd[..., None] * _Z_NODES), -1)
    big = jnp.sum(_L_WEIGHTS * jax.scipy.stats.norm.cdf((mean[..., None] + _L_NODES) /
                                                         jnp.maximum(sd, 1.0)[..., None]), -1)
    return jnp.where(sd <= 1.0, small, big)


def _laplace_binary_proba(Z, post: _lr.LaplacePosterior, intercept: bool):
    """Exact class probabilities of two classes under the Laplace Gaussian: the logit of each
    row is Normal(aᵀμ, aᵀΣa), and E[σ(logit)] is a one-dimensional integral."""
    A = jnp.concatenate([Z, jnp.ones((Z.shape[0], 1), Z.dtype)], 1) if intercept else Z
    mean = A @ post.mode
    sd = jnp.sqrt(jnp.maximum(jnp.einsum("np,pq,nq->n", A, post.cov, A), 0.0))
    # Each class from its own integral: 1 − p loses the small probabilities the log loss needs.
    return jnp.stack([expected_sigmoid(-mean, sd), expected_sigmoid(mean, sd)], -1)


@functools.partial(jax.jit, static_argnames=("num_classes", "standardize", "num_samples", "batch_size", "opts"))
def _laplace_proba_jit(keys, idx, w, X, codes, *, num_classes, standardize, num_samples, batch_size, opts):
    opts = dict(opts)

    def one(args):
        key, i, wi = args
        post, Z = _laplace_one(i, wi, X, codes, num_classes, standardize, opts)
        if num_classes == 2:
            return _laplace_binary_proba(Z, post, opts["intercept"]), post.converged
        draws = _lr.sample_laplace(key, post, num_samples, num_features=X.shape[1], num_classes=num_classes,
                                   intercept=opts["intercept"])
        coef = draws["coef"] if num_classes > 2 else draws["coef"][..., None]
        b0 = draws.get("intercept", jnp.zeros((num_samples, num_classes - 1), X.dtype)).reshape(num_samples, -1)
        probs = jax.vmap(_lr.class_probabilities, in_axes=(None, 0, 0))(Z, coef, b0)
        return jnp.mean(probs, 0), post.converged

    return jax.lax.map(one, (keys, idx, w), batch_size=batch_size)


@functools.partial(jax.jit, static_argnames=("num_classes", "standardize", "opts"))
def _laplace_posterior_jit(idx, w, X, codes, *, num_classes, standardize, opts):
    return jax.vmap(lambda i, wi: _laplace_one(i, wi, X, codes, num_classes, standardize, dict(opts))[0])(idx, w)


def batched_laplace_posterior(estimator, X, codes, masks, *, num_classes: int) -> _lr.LaplacePosterior:
    """Laplace posteriors of many logistic fits, ``vmap``-ed (one compilation per size group).

    Parameters as :func:`batched_laplace_proba`.

    Returns
    -------
    LaplacePosterior
        ``mode`` (B, P), ``cov`` (B, P, P), ``converged`` (B,), on the standardized scale when
        ``estimator.standardize`` (as ``estimator.laplace_`` after fitting on each training set).
    """
    opts = tuple(sorted(_lr_opts(estimator).items()))
    masks = np.asarray(masks, bool)
    parts = []
    with jax.enable_x64(True):
        Xj, cj = jnp.asarray(X, jnp.float64), jnp.asarray(codes, jnp.int32)
        for fits, idx, w in _laplace_groups(masks):
            post = _laplace_posterior_jit(jnp.asarray(idx), jnp.asarray(w), Xj, cj, num_classes=int(num_classes),
                                          standardize=bool(estimator.standardize), opts=opts)
            parts.append((fits, [np.asarray(v) for v in post]))
    out = []
    for k in range(3):
        first = parts[0][1][k]
        field = np.empty((masks.shape[0],) + first.shape[1:], first.dtype)
        for fits, vals in parts:
            field[fits] = vals[k]
        out.append(field)
    return _lr.LaplacePosterior(*out)


def batched_laplace_proba(estimator, X, codes, masks, *, num_classes: int, seed: int = 0,
                          batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Posterior-mean class probabilities of many Laplace logistic fits, compiled once per size group.

    The fits are grouped by training size (m ≤ N/8 and larger) and each group's
    training rows are gathered and padded to the group's largest m, so that the cost of a fit
    grows with its m rather than with the N rows of the data set; predictions are for all N rows.

    The posterior is the **Laplace approximation** (:func:`weighted_laplace_posterior`);
    probabilities are the mean of p(y | x, β) under it. With two classes that mean is computed
    exactly (the logit is Gaussian: :func:`expected_sigmoid`, a one-dimensional integral), where
    ``BayesianLogisticRegression(method="laplace").predict_proba`` estimates it from
    ``num_samples`` draws; with more classes it is the average over ``estimator.num_samples``
    draws, as the estimator's. (Where the logit's posterior sd is large — separable training
    sets — a 64-draw average misclassifies many rows whose exact mean is on the right side of
    1/2: on digits 0-vs-1 at m = 4 it doubled the test error, 0.199 against 0.090.)

    Parameters
    ----------
    estimator : BayesianLogisticRegression
    X : array (N, D)
    codes : int array (N,)
    masks : bool array (B, N)
        Training rows of each fit.
    num_classes : int
    seed, batch_size : int

    Returns
    -------
    proba : array (B, N, C)
    converged : bool array (B,)
        Whether each fit's Newton iterations reached the gradient tolerance
        (:func:`weighted_laplace_posterior`).
    """
    masks = np.asarray(masks, bool)
    B, N = masks.shape
    keys = jax.random.split(jax.random.PRNGKey(seed), B)
    opts = tuple(sorted(_lr_opts(estimator).items()))
    proba = np.empty((B, N, int(num_classes)))
    conv = np.empty(B, bool)
    with jax.enable_x64(True):
        Xj, cj = jnp.asarray(X, jnp.float64), jnp.asarray(codes, jnp.int32)
        for fits, idx, w in _laplace_groups(masks):
            G = len(fits)
            k, (idx_p, w_p), bs = _padded_arrays(keys[fits], [idx, w], batch_size)
            p, c = _laplace_proba_jit(k, jnp.asarray(idx_p), jnp.asarray(w_p), Xj, cj, num_classes=int(num_classes),
                                      standardize=bool(estimator.standardize),
                                      num_samples=int(estimator.num_samples), batch_size=bs, opts=opts)
            proba[fits] = np.asarray(p)[:G]
            conv[fits] = np.asarray(c)[:G]
    return proba, conv


def _nuts_proba(est, X, codes, masks, sizes_of_fit, num_classes, seed) -> np.ndarray:
    """Logistic regression by NUTS: ``fit_many`` over the splits of each size (one compile per m)."""
    from .batched import fit_many

    opts = _lr_opts(est)
    out = np.zeros(masks.shape + (num_classes,))
    for m in np.unique(sizes_of_fit):
        idx = np.flatnonzero(sizes_of_fit == m)
        Zs, Zall, ys = [], [], []
        for i in idx:
            tr = masks[i]
            Xt = X[tr]
            if est.standardize:
                mean, sd = Xt.mean(0), Xt.std(0)
                sd = np.where(sd > 0, sd, 1.0)
            else:
                mean, sd = np.zeros(X.shape[1]), np.ones(X.shape[1])
            Zs.append((Xt - mean) / sd)
            Zall.append((X - mean) / sd)
            ys.append(codes[tr])
        draws = fit_many(_lr.logistic_regression, {"X": np.stack(Zs), "y": np.stack(ys)},
                         {"num_classes": num_classes, **opts}, seed=seed + int(m),
                         num_warmup=int(est.num_warmup), num_samples=int(est.num_samples))
        for j, i in enumerate(idx):
            samples = {k: draws[k][j] for k in ("coef", "intercept") if k in draws}
            out[i] = _lr.posterior_class_probabilities(Zall[j], samples).mean
    return out


def _generic_proba(est, X, codes, masks) -> np.ndarray:
    """Fit a clone of a scikit-learn classifier on each split, one by one."""
    C = int(codes.max()) + 1
    out = np.zeros(masks.shape + (C,))
    for i, tr in enumerate(masks):
        model = clone(est).fit(X[tr], codes[tr])
        cols = np.asarray(model.classes_).astype(int)
        out[i][:, cols] = model.predict_proba(X)
    return out


# ----------------------------------------------------------------------------------------------
# The study.
# ----------------------------------------------------------------------------------------------


def _check_inputs(X, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Xa = np.asarray(X, dtype=np.float64) if not hasattr(X, "to_numpy") else X.to_numpy(dtype=np.float64)
    if Xa.ndim != 2:
        raise DataError("X", "a 2-dimensional array (n_rows, n_features)", f"shape {Xa.shape}")
    bad = ~np.isfinite(Xa)
    if bad.any():
        rows = np.flatnonzero(bad.any(1))
        raise DataError("X", "finite features (no NaN or inf)",
                        f"{int(bad.sum())} non-finite value(s) in {len(rows)} row(s), first rows {rows[:5].tolist()}")
    ya = np.asarray(y)
    if ya.shape != (Xa.shape[0],):
        raise DataError("y", f"labels of shape ({Xa.shape[0]},)", f"shape {ya.shape}")
    if np.issubdtype(ya.dtype, np.floating) and not np.all(np.isfinite(ya)):
        raise DataError("y", "finite labels (no NaN or inf)", f"{int((~np.isfinite(ya)).sum())} non-finite label(s)")
    classes, codes = np.unique(ya, return_inverse=True)
    if len(classes) < 2:
        raise DataError("y", "labels of at least two classes", f"only {classes.tolist()}")
    return Xa, codes.astype(np.int64), classes


def learning_curves(models: Mapping[str, Any], X, y, sizes: Sequence[int], n_splits: int = 100, seed: int = 0,
                    *, dataset: str = "data", n_bins: int = 10, batch_size: int = 32,
                    progress: bool = False) -> pd.DataFrame:
    """Test error, log loss and calibration of every model at every training size.

    Parameters
    ----------
    models : mapping
        Name -> unfitted classifier: ``BayesianNaiveBayes`` (``method="exact"``: exact
        conjugate posterior, vectorized), ``BayesianLogisticRegression`` (``method="laplace"``:
        Laplace approximation, vectorized; ``method="nuts"``: NUTS by ``fit_many``, per size),
        or any scikit-learn classifier with ``predict_proba`` (fitted split by split).
    X : array (N, D)
        Features, finite.
    y : array (N,)
        Labels (any hashable type), at least two classes.
    sizes : sequence of int
        Training-set sizes m (e.g. :func:`log_sizes`).
    n_splits : int
        Random stratified splits per size; split ``s`` at size ``m`` is the same for all models.
    seed : int
        Seeds the splits (and the posterior draws).
    dataset : str
        Value of the ``dataset`` column.
    n_bins : int
        Confidence bins of the expected calibration error.
    batch_size : int
        Fits evaluated together inside a compiled Bayesian fit (memory).
    progress : bool
        Print a line per model with its run time.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, model, m, split, metric, value`` with ``metric`` in
        ``("error", "log_loss", "ece")``. ``attrs``: ``"skipped"`` (list of dicts ``m``,
        ``reason``), ``"kinds"`` (model -> generative/discriminative/other), ``"seconds"``
        (model -> wall time of its fits), ``"laplace_not_converged"`` (model -> count of Laplace
        fits whose mode was not reached) and ``"laplace_not_converged_fits"`` (list of dicts
        ``model``, ``m``, ``split``): those fits' rows hold NaN, so that the curves (means over
        the finite splits) and :func:`summarize_curves` leave them out.
    """
    if not models:
        raise DataError("models", "a non-empty mapping name -> classifier", "an empty mapping")
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise DataError("n_splits", "an int >= 1", repr(n_splits))
    Xa, codes, classes = _check_inputs(X, y)
    C = len(classes)
    sizes_arr = np.asarray(sizes)
    if sizes_arr.ndim != 1 or sizes_arr.size == 0 or not np.all(sizes_arr == np.round(sizes_arr)) or np.any(sizes_arr < 1):
        raise DataError("sizes", "a non-empty sequence of positive integers", repr(sizes))
    routes = {name: _route(est) for name, est in models.items()}

    counts = np.bincount(codes, minlength=C)
    if np.any(counts < 2):
        few = classes[counts < 2].tolist()
        raise DataError("y", "at least 2 rows of every class (one for training, one for testing)",
                        f"class(es) {few} with {counts[counts < 2].tolist()} row(s)")
    skipped: list[dict[str, Any]] = []
    blocks, block_m = [], []
    seqs = np.random.SeedSequence(seed).spawn(len(sizes_arr))
    for m, ss in zip(sizes_arr.astype(int), seqs):
        alloc, reason = stratified_allocation(counts, int(m))
        if alloc is None:
            skipped.append({"m": int(m), "reason": reason})
            warnings.warn(f"learning_curves: skipped {reason}", UserWarning, stacklevel=2)
            continue
        blocks.append(stratified_train_masks(codes, int(m), int(n_splits), np.random.default_rng(ss)))
        block_m.append(int(m))
    if not blocks:
        raise DataError("sizes", f"at least one size usable on {Xa.shape[0]} rows and {C} classes",
                        "; ".join(s["reason"] for s in skipped))
    masks = np.concatenate(blocks)
    fit_m = np.repeat(block_m, n_splits)
    fit_split = np.tile(np.arange(n_splits), len(block_m))

    frames, seconds, not_conv, not_conv_fits = [], {}, {}, []
    for k, (name, est) in enumerate(models.items()):
        t0 = time.perf_counter()
        route = routes[name]
        if route == "nb_exact":
            proba = batched_naive_bayes_proba(est, Xa, codes, masks, num_classes=C, seed=seed + 7919 * (k + 1),
                                              batch_size=batch_size)
        elif route == "lr_laplace":
            proba, conv = batched_laplace_proba(est, Xa, codes, masks, num_classes=C, seed=seed + 7919 * (k + 1),
                                                batch_size=batch_size)
            not_conv[name] = int((~conv).sum())
        elif route == "lr_nuts":
            proba = _nuts_proba(est, Xa, codes, masks, fit_m, C, seed + 7919 * (k + 1))
        else:
            proba = _generic_proba(est, Xa, codes, masks)
        seconds[name] = time.perf_counter() - t0
        if progress:
            print(f"  {dataset}: {name} ({route}) {masks.shape[0]} fits in {seconds[name]:.1f} s", flush=True)
        if not np.all(np.isfinite(proba)):
            raise DataError(f"models[{name!r}]", "finite class probabilities", "NaN or inf predictions")
        mets = _metrics(proba, codes, ~masks, n_bins)
        if route == "lr_laplace" and not conv.all():
            # A mode the optimizer did not reach is not the Laplace posterior: its metrics are
            # left out of the curves (NaN), and the fits are listed.
            bad = np.flatnonzero(~conv)
            for metric in METRICS:
                mets[metric] = np.where(conv, mets[metric], np.nan)
            not_conv_fits.extend({"model": name, "m": int(fit_m[i]), "split": int(fit_split[i])} for i in bad)
            warnings.warn(f"learning_curves: {len(bad)} Laplace fit(s) of {name!r} did not converge (gradient "
                          "above tolerance); their metrics are NaN and listed in df.attrs['laplace_not_converged_fits']",
                          UserWarning, stacklevel=2)
        for metric in METRICS:
            frames.append(pd.DataFrame({"dataset": dataset, "model": name, "m": fit_m, "split": fit_split,
                                        "metric": metric, "value": mets[metric]}))
    df = pd.concat(frames, ignore_index=True)
    df.attrs["skipped"] = skipped
    df.attrs["kinds"] = {name: model_kind(est) for name, est in models.items()}
    df.attrs["seconds"] = seconds
    df.attrs["laplace_not_converged"] = not_conv
    df.attrs["laplace_not_converged_fits"] = not_conv_fits
    return df


# ----------------------------------------------------------------------------------------------
# Summaries.
# ----------------------------------------------------------------------------------------------


def plateau_m(curves, sizes, tolerance: float = 0.01):
    """The smallest m from which a curve stays within ``tolerance`` of its plateau.

    The plateau is the curve's value at the largest m.

    Parameters
    ----------
    curves : array (..., M)
        Mean errors at the sizes, increasing m.
    sizes : array (M,)
    tolerance : float

    Returns
    -------
    array (...)
        An m from ``sizes`` (the largest m when only the last point is within tolerance).
    """
    curves = np.asarray(curves, dtype=float)
    sizes = np.asarray(sizes)
    within = np.abs(curves - curves[..., -1:]) <= tolerance
    # stays[k]: every point from k on is within tolerance (a reversed cumulative AND).
    stays = np.flip(np.cumprod(np.flip(within, -1), -1), -1).astype(bool)
    return sizes[np.argmax(stays, -1)]


def crossover_m(generative, discriminative, sizes):
    """The first m after which the discriminative curve stays below the generative one.

    Parameters
    ----------
    generative, discriminative : array (..., M)
        Mean errors at the sizes, increasing m.
    sizes : array (M,)

    Returns
    -------
    (m, status)
        ``m`` float array (...): the crossover size, NaN where the discriminative curve is not
        below at the largest m; ``status`` int array: 0 crossover inside the grid, 1 the
        discriminative model is better at every m (m is the smallest size: the crossover is at
        or below it), 2 no crossover.
    """
    g = np.asarray(generative, dtype=float)
    d = np.asarray(discriminative, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    better = d < g
    stays = np.flip(np.cumprod(np.flip(better, -1), -1), -1).astype(bool)
    first = np.argmax(stays, -1)
    has = stays[..., -1]
    m = np.where(has, sizes[first], np.nan)
    status = np.where(~has, 2, np.where(first == 0, 1, 0))
    return m, status


_STATUS = {0: "crossover", 1: "discriminative better at every m", 2: "no crossover"}


class CurveSummary(NamedTuple):
    """What :func:`summarize_curves` returns.

    ``models``: one row per (dataset, model): ``kind``, ``m_max``, ``asymptotic_error`` (mean
    error at the largest m), ``asymptotic_se``, ``log_loss``/``ece`` at the largest m,
    ``plateau_m`` with its bootstrap interval ``plateau_m_lo``/``plateau_m_hi``.
    ``crossovers``: one row per (dataset, generative, discriminative): ``crossover_m`` (from the
    mean curves), ``status``, its bootstrap interval ``crossover_m_lo``/``crossover_m_hi`` and
    median, and ``p_crossover`` (fraction of bootstrap replicates where the discriminative
    model is better at the largest m).
    """

    models: pd.DataFrame
    crossovers: pd.DataFrame


def _curve_matrix(sub: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    table = sub.pivot_table(index="m", columns="split", values="value", aggfunc="mean").sort_index()
    return table.index.to_numpy(), table.to_numpy()


def summarize_curves(df: pd.DataFrame, *, pairs: Sequence[tuple[str, str]] | None = None, metric: str = "error",
                     tolerance: float = 0.01, n_boot: int = 1000, ci: float = 0.9, seed: int = 0) -> CurveSummary:
    """Asymptotic errors, plateau sizes and crossovers, with uncertainty from the splits.

    Uncertainty is a paired bootstrap over splits: replicate ``b`` resamples the split indices
    with replacement, the same indices for every model of a data set (split ``s`` is one
    train/test partition shared by all models), and recomputes the mean curves, the plateau m
    and the crossover m.

    Parameters
    ----------
    df : DataFrame
        Output of :func:`learning_curves` (several data sets may be concatenated).
    pairs : sequence of (generative, discriminative) model names, optional
        Default: every generative × discriminative pair of ``df.attrs["kinds"]``.
    metric : str
        The curve summarized (``"error"``).
    tolerance : float
        Plateau tolerance (0.01 in Ng & Jordan's comparison).
    n_boot : int
    ci : float
        Mass of the bootstrap intervals.
    seed : int

    Returns
    -------
    CurveSummary
    """
    need = {"dataset", "model", "m", "split", "metric", "value"}
    if not need <= set(df.columns):
        raise DataError("df", f"a learning_curves frame with columns {sorted(need)}", sorted(df.columns))
    if metric not in set(df["metric"]):
        raise DataError("metric", f"one of {sorted(set(df['metric']))}", repr(metric))
    kinds = dict(df.attrs.get("kinds", {}))
    if pairs is None:
        gen = [k for k, v in kinds.items() if v == "generative"]
        dis = [k for k, v in kinds.items() if v == "discriminative"]
        pairs = [(g, d) for g in gen for d in dis]
    tail = 0.5 * (1.0 - ci)
    rng = np.random.default_rng(seed)
    rows, cross = [], []
    for ds, dsub in df.groupby("dataset", sort=False):
        curves, sizes_of = {}, {}
        for model, msub in dsub[dsub["metric"] == metric].groupby("model", sort=False):
            sizes_of[model], curves[model] = _curve_matrix(msub)
        n_split = max(c.shape[1] for c in curves.values())
        boot_idx = rng.integers(0, n_split, size=(n_boot, n_split))
        boot = {}
        for model, E in curves.items():
            # (n_boot, M): mean over resampled splits; nanmean tolerates splits a model lacks.
            boot[model] = np.nanmean(E[:, boot_idx[:, :E.shape[1]]], axis=-1).T if E.shape[1] == n_split else \
                np.nanmean(E[:, rng.integers(0, E.shape[1], (n_boot, E.shape[1]))], axis=-1).T
            sizes = sizes_of[model]
            mean = np.nanmean(E, 1)
            last = E[-1][np.isfinite(E[-1])]
            pm = plateau_m(boot[model], sizes, tolerance)
            row = {"dataset": ds, "model": model, "kind": kinds.get(model, "other"), "m_max": int(sizes[-1]),
                   "asymptotic_error": float(mean[-1]),
                   "asymptotic_se": float(last.std(ddof=1) / np.sqrt(len(last))) if len(last) > 1 else np.nan,
                   "plateau_m": int(plateau_m(mean, sizes, tolerance)),
                   "plateau_m_lo": float(np.quantile(pm, tail)), "plateau_m_hi": float(np.quantile(pm, 1 - tail))}
            for other in ("log_loss", "ece"):
                osub = dsub[(dsub["metric"] == other) & (dsub["model"] == model) & (dsub["m"] == sizes[-1])]
                row[other] = float(osub["value"].mean()) if len(osub) else np.nan
            rows.append(row)
        for g, d in pairs:
            if g not in curves or d not in curves:
                continue
            sizes = sizes_of[g]
            if not np.array_equal(sizes, sizes_of[d]):
                raise DataError("df", f"the same sizes for {g!r} and {d!r}", f"{sizes} and {sizes_of[d]}")
            m0, st0 = crossover_m(np.nanmean(curves[g], 1), np.nanmean(curves[d], 1), sizes)
            mb, stb = crossover_m(boot[g], boot[d], sizes)
            ok = np.isfinite(mb)
            cross.append({"dataset": ds, "generative": g, "discriminative": d,
                          "crossover_m": float(m0), "status": _STATUS[int(st0)],
                          "crossover_m_median": float(np.median(mb[ok])) if ok.any() else np.nan,
                          "crossover_m_lo": float(np.quantile(mb[ok], tail)) if ok.any() else np.nan,
                          "crossover_m_hi": float(np.quantile(mb[ok], 1 - tail)) if ok.any() else np.nan,
                          "p_crossover": float(ok.mean())})
    cols = ["dataset", "generative", "discriminative", "crossover_m", "status", "crossover_m_median",
            "crossover_m_lo", "crossover_m_hi", "p_crossover"]
    return CurveSummary(pd.DataFrame(rows), pd.DataFrame(cross, columns=cols))


def plot_learning_curves(df: pd.DataFrame, *, metric: str = "error", models: Sequence[str] | None = None,
                         axes=None, ncols: int = 3):
    """Mean ``metric`` with ±2 standard-error bands (over splits) against log m, a panel per data set.

    Parameters
    ----------
    df : DataFrame
        Output of :func:`learning_curves` (data sets may be concatenated), or its per-m
        aggregate with columns ``dataset, model, m, metric, mean, se`` (as saved by
        ``benchmarks/ng_jordan_study.py``), so that saved curves can be re-drawn.
    metric : {"error", "log_loss", "ece"}
    models : sequence of str, optional
        Models to draw (default all), in legend order; each keeps one colour in every panel,
        and each panel has its own legend.
    axes : matplotlib Axes or array of Axes, optional
    ncols : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    sub = df[df["metric"] == metric]
    if sub.empty:
        raise DataError("metric", f"one of {sorted(set(df['metric']))}", repr(metric))
    datasets = list(dict.fromkeys(sub["dataset"]))
    names = list(models) if models is not None else list(dict.fromkeys(sub["model"]))
    if axes is None:
        nc = min(ncols, len(datasets))
        nr = int(np.ceil(len(datasets) / nc))
        fig, axes = plt.subplots(nr, nc, figsize=(4.2 * nc, 3.3 * nr), squeeze=False)
    else:
        axes = np.atleast_1d(axes)
        fig = axes.flat[0].figure
    flat = list(np.ravel(axes))
    for ax, ds in zip(flat, datasets):
        d = sub[sub["dataset"] == ds]
        for i, name in enumerate(names):
            dm = d[d["model"] == name]
            if dm.empty:
                continue
            if "value" in dm.columns:
                g = dm.groupby("m")["value"]
                mean, se = g.mean(), g.std(ddof=1) / np.sqrt(g.count())
            else:  # an aggregate frame: one row per m
                dm = dm.sort_values("m").set_index("m")
                mean, se = dm["mean"], dm["se"]
            ax.plot(mean.index, mean.values, marker="o", ms=3, color=f"C{i % 10}", label=name)
            ax.fill_between(mean.index, mean - 2 * se, mean + 2 * se, color=f"C{i % 10}", alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_title(ds)
        ax.set_xlabel("training size m")
        ax.set_ylabel({"error": "test 0-1 error", "log_loss": "test log loss", "ece": "ECE"}.get(metric, metric))
        # A legend per panel: the models differ between data sets (e.g. CategoricalNB only on
        # categorical features).
        ax.legend(fontsize=7)
    for ax in flat[len(datasets):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
