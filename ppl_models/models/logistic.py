"""Bayesian logistic regression: the discriminative classifier, p(y | x, β) directly.

Binary (``num_classes=2``)::

    coef[j] ~ prior(0, prior_scale)        j = 1..D           plate "feature"
    intercept ~ Normal(0, intercept_scale)
    y_i ~ Bernoulli(sigmoid(x_i · coef + intercept))          plate "obs"

Multiclass softmax (``num_classes=C > 2``) with a **reference class**: the logit of class 0
is fixed at 0 and the C − 1 others have free coefficients, ``coef`` (D, C−1) and
``intercept`` (C−1,). Softmax is invariant to adding one vector to every class's
coefficients, so without this constraint the likelihood has a flat direction; fixing one class
removes it (the binary model is the case C = 2). The ``"class"`` dim of ``coef`` and
``intercept`` therefore lists the classes ``1..C-1`` only (:func:`logistic_dims`).

``prior`` is ``"normal"`` (Normal(0, prior_scale)) or ``"student_t"``
(StudentT(prior_df, 0, prior_scale), heavier tails that shrink small effects and leave large
ones). Priors are stated on the scale of the features the program sees; standardize features
(the loaders and the estimator can) so that one ``prior_scale`` suits every feature.

Besides NUTS/HMC/SVI/MAP through :func:`ppl_models.fit`, :func:`laplace_posterior` gives a
fast Gaussian approximation at the posterior mode (Newton, then the inverse Hessian) as pure
JAX, ``vmap``-able over equally sized data sets — for learning curves with many small fits.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from sklearn.utils.validation import check_is_fitted

from ..errors import DataError, ModelError
from .naive_bayes import _BayesianClassifier, _seed_from

__all__ = [
    "PRIORS",
    "logistic_regression",
    "logistic_dims",
    "class_logits",
    "class_probabilities",
    "LaplacePosterior",
    "laplace_posterior",
    "newton_minimize",
    "laplace_posterior_numpy",
    "sample_laplace",
    "LogisticProbabilities",
    "posterior_class_probabilities",
    "BayesianLogisticRegression",
]

PRIORS = ("normal", "student_t")


def _coef_prior(prior: str, scale: float, df: float) -> dist.Distribution:
    if prior == "normal":
        return dist.Normal(0.0, scale)
    if prior == "student_t":
        return dist.StudentT(df, 0.0, scale)
    raise ModelError(f"argument `prior`: expected one of {PRIORS}, got {prior!r}")


def logistic_regression(X, y=None, *, num_classes: int = 2, prior: str = "normal", prior_scale: float = 2.5,
                        prior_df: float = 3.0, intercept: bool = True, intercept_scale: float = 2.5):
    """Bayesian logistic (C = 2) or softmax (C > 2, reference class 0) regression.

    Parameters
    ----------
    X : array (N, D)
        Features (always given: this model does not describe x).
    y : int array (N,) or None
        Class codes ``0..C-1``; ``None`` samples them (prior/posterior predictive).
    num_classes : int
        C >= 2.
    prior : {"normal", "student_t"}
        Prior family of the coefficients, centred at 0.
    prior_scale : float
        Its scale.
    prior_df : float
        Degrees of freedom of the Student-t prior.
    intercept : bool
        Include an intercept (Normal(0, intercept_scale) prior).
    intercept_scale : float

    Sites
    -----
    ``coef`` (D,) binary or (D, C−1); ``intercept`` () or (C−1,); observed ``y`` (N,).
    """
    if num_classes < 2:
        raise ModelError(f"argument `num_classes`: expected an int >= 2, got {num_classes!r}")
    X = jnp.asarray(X)
    n_rows, n_feat = X.shape
    coef_prior = _coef_prior(prior, prior_scale, prior_df)
    if num_classes == 2:
        with numpyro.plate("feature", n_feat):
            coef = numpyro.sample("coef", coef_prior)
        b0 = numpyro.sample("intercept", dist.Normal(0.0, intercept_scale)) if intercept else 0.0
        with numpyro.plate("obs", n_rows):
            numpyro.sample("y", dist.Bernoulli(logits=X @ coef + b0), obs=y)
        return
    with numpyro.plate("class", num_classes - 1, dim=-1):
        with numpyro.plate("feature", n_feat, dim=-2):
            coef = numpyro.sample("coef", coef_prior)
        b0 = numpyro.sample("intercept", dist.Normal(0.0, intercept_scale)) if intercept else 0.0
    free = X @ coef + b0
    logits = jnp.concatenate([jnp.zeros(free.shape[:-1] + (1,), free.dtype), free], axis=-1)
    with numpyro.plate("obs", n_rows):
        numpyro.sample("y", dist.Categorical(logits=logits), obs=y)


def logistic_dims(num_classes: int = 2, intercept: bool = True) -> dict[str, list[str]]:
    """ArviZ dims of every site of :func:`logistic_regression` (``"class"`` = classes 1..C−1)."""
    dims = {"coef": ["feature"] if num_classes == 2 else ["feature", "class"], "y": ["obs"]}
    if intercept:
        dims["intercept"] = [] if num_classes == 2 else ["class"]
    return dims


# ----------------------------------------------------------------------------------------------
# Kernels: pure JAX.
# ----------------------------------------------------------------------------------------------


def class_logits(X: jax.Array, coef: jax.Array, intercept: jax.Array | float = 0.0) -> jax.Array:
    """Logits of every class, reference class 0 at zero.

    Parameters
    ----------
    X : array (N, D)
    coef : array (D,) (binary) or (D, C−1)
    intercept : scalar or array (C−1,)

    Returns
    -------
    array (N, C)
    """
    coef = jnp.asarray(coef)
    free = X @ (coef[:, None] if coef.ndim == 1 else coef) + jnp.reshape(jnp.asarray(intercept), (-1,))
    return jnp.concatenate([jnp.zeros((X.shape[0], 1), free.dtype), free], axis=-1)


def class_probabilities(X: jax.Array, coef: jax.Array, intercept: jax.Array | float = 0.0) -> jax.Array:
    """p(y = c | x, β), (N, C)."""
    return jax.nn.softmax(class_logits(X, coef, intercept), axis=-1)


class LaplacePosterior(NamedTuple):
    """Gaussian approximation at the posterior mode.

    ``mode`` (P,) and ``cov`` (P, P) over the flat vector ``[coef.ravel(), intercept]`` with
    P = D·K + K·intercept, K = 1 (binary) or C − 1; ``converged``: whether the gradient at
    ``mode`` is within the optimizer's tolerance.
    """

    mode: jax.Array
    cov: jax.Array
    converged: jax.Array


def _unflatten(theta, n_feat, n_free, intercept):
    coef = theta[: n_feat * n_free].reshape(n_feat, n_free)
    b0 = theta[n_feat * n_free:] if intercept else jnp.zeros(n_free, theta.dtype)
    return coef, b0


def _neg_log_posterior(theta, X, y, num_classes, prior, prior_scale, prior_df, intercept, intercept_scale):
    n_free = num_classes - 1
    coef, b0 = _unflatten(theta, X.shape[1], n_free, intercept)
    logits = class_logits(X, coef, b0)
    loglik = jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits, -1), y[:, None], axis=-1))
    logprior = jnp.sum(_coef_prior(prior, prior_scale, prior_df).log_prob(coef))
    if intercept:
        logprior = logprior + jnp.sum(dist.Normal(0.0, intercept_scale).log_prob(b0))
    return -(loglik + logprior)


def newton_minimize(objective, theta0, *, gtol, max_iter: int = 100, max_halvings: int = 40,
                    decrement_tol=None):
    """Minimize a smooth objective by Newton's method with a backtracking (Armijo) line search.

    Pure JAX (``jit``/``vmap``-able). The step solves ``|H| d = −g`` where ``|H|`` is the
    Hessian with its eigenvalues replaced by their absolute values (floored at a tiny fraction
    of the largest): for a convex objective (logistic likelihood and Normal prior) this is the
    plain Newton step, and where a Student-t prior makes the Hessian indefinite it is still a
    descent direction. The step is halved until the objective decreases by at least 1e-4 of
    the predicted decrease. Stops, converged, when ``max|g| ≤ gtol`` or, with
    ``decrement_tol``, when the Newton decrement ``gᵀ|H|⁻¹g ≤ decrement_tol`` (scale-free: for
    a log posterior it is the squared distance to the mode in posterior standard deviations);
    stops, not converged, after ``max_iter`` steps or when no halving decreases the objective.

    Returns
    -------
    (theta, grad_max, converged)
    """
    value_and_grad = jax.value_and_grad(objective)
    hessian = jax.hessian(objective)
    f0, g0 = value_and_grad(theta0)
    dtol = -jnp.inf if decrement_tol is None else decrement_tol

    def cond(state):
        k, _, _, g, stuck, done = state
        return (k < max_iter) & (jnp.max(jnp.abs(g)) > gtol) & ~stuck & ~done

    def body(state):
        k, theta, f, g, _, _ = state
        h = hessian(theta)
        lam, vec = jnp.linalg.eigh(0.5 * (h + h.T))
        a = jnp.abs(lam)
        a = jnp.maximum(a, 1e-12 * jnp.max(a))
        d = -(vec @ ((vec.T @ g) / a))
        slope = g @ d  # < 0: a descent direction; -slope is the Newton decrement
        done = -slope <= dtol

        def ls_cond(ls):
            j, t, f_new = ls
            return (j < max_halvings) & ~(f_new <= f + 1e-4 * t * slope)

        def ls_body(ls):
            j, t, _ = ls
            t = 0.5 * t
            return j + 1, t, objective(theta + t * d)

        f1 = objective(theta + d)
        f1 = jnp.where(jnp.isfinite(f1), f1, jnp.inf)
        j, t, f_new = jax.lax.while_loop(ls_cond, ls_body, (0, jnp.asarray(1.0, theta.dtype), f1))
        ok = (f_new <= f + 1e-4 * t * slope) & ~done
        theta_new = jnp.where(ok, theta + t * d, theta)
        f_new, g_new = value_and_grad(theta_new)
        return k + 1, theta_new, f_new, g_new, ~ok & ~done, done

    state = (0, theta0, f0, g0, jnp.asarray(False), jnp.asarray(False))
    _, theta, _, g, _, done = jax.lax.while_loop(cond, body, state)
    gmax = jnp.max(jnp.abs(g))
    return theta, gmax, (gmax <= gtol) | done


def laplace_posterior(X: jax.Array, y: jax.Array, *, num_classes: int = 2, prior: str = "normal",
                      prior_scale: float = 2.5, prior_df: float = 3.0, intercept: bool = True,
                      intercept_scale: float = 2.5) -> LaplacePosterior:
    """Laplace approximation of :func:`logistic_regression`'s posterior.

    The mode is found by Newton's method with a line search from zero (:func:`newton_minimize`;
    ``converged`` is True when the Newton decrement puts it within 1e-6 posterior sd of the
    mode in float64, 1e-3 in float32); the covariance is the inverse Hessian of the negative log
    posterior there. With a Normal prior the posterior is log-concave and unimodal, so the
    mode is unique; the approximation is good when N is large relative to D and poorer for
    (nearly) separable data, where the posterior is skewed — use NUTS there.

    Parameters
    ----------
    X : array (N, D)
    y : int array (N,)
    num_classes, prior, prior_scale, prior_df, intercept, intercept_scale
        As :func:`logistic_regression`.

    Returns
    -------
    LaplacePosterior
    """
    X = jnp.asarray(X, jnp.result_type(float))
    y = jnp.asarray(y, jnp.int32)
    n_free = num_classes - 1
    n_par = X.shape[1] * n_free + (n_free if intercept else 0)
    objective = functools.partial(_neg_log_posterior, X=X, y=y, num_classes=num_classes, prior=prior,
                                  prior_scale=prior_scale, prior_df=prior_df, intercept=intercept,
                                  intercept_scale=intercept_scale)
    # converged: the mode within 1e-6 (float64) or 1e-3 (float32) posterior sd, by the Newton
    # decrement; a gradient tolerance would have to shrink with N (the sd shrinks like 1/√N)
    f64 = X.dtype == jnp.float64
    mode, _, converged = newton_minimize(objective, jnp.zeros(n_par, X.dtype), gtol=0.0,
                                         decrement_tol=1e-12 if f64 else 1e-6)
    hess = jax.hessian(objective)(mode)
    # Symmetrize before inverting: float32 round-off leaves the Hessian slightly asymmetric.
    cov = jnp.linalg.inv(0.5 * (hess + hess.T))
    return LaplacePosterior(mode, 0.5 * (cov + cov.T), converged)


def sample_laplace(rng_key: jax.Array, posterior: LaplacePosterior, num_samples: int, *, num_features: int,
                   num_classes: int = 2, intercept: bool = True) -> dict[str, jax.Array]:
    """Draws from a :class:`LaplacePosterior`, named and shaped as the program's sites.

    ``rng_key`` is a JAX key (jit/vmap-able) or a ``numpy.random.Generator`` (NumPy draws).

    Returns
    -------
    dict
        ``coef`` (S, D) or (S, D, C−1); ``intercept`` (S,) or (S, C−1) when ``intercept``.
    """
    n_free = num_classes - 1
    if isinstance(rng_key, np.random.Generator):  # NumPy draws, no compilation
        mode, cov = np.asarray(posterior.mode, np.float64), np.asarray(posterior.cov, np.float64)
        theta = mode + rng_key.standard_normal((num_samples, mode.shape[0])) @ np.linalg.cholesky(cov).T
    else:
        chol = jnp.linalg.cholesky(posterior.cov)
        z = jax.random.normal(rng_key, (num_samples, posterior.mode.shape[0]), posterior.mode.dtype)
        theta = posterior.mode + z @ chol.T
    coef = theta[:, : num_features * n_free].reshape(num_samples, num_features, n_free)
    out = {"coef": coef[..., 0] if num_classes == 2 else coef}
    if intercept:
        b0 = theta[:, num_features * n_free:]
        out["intercept"] = b0[:, 0] if num_classes == 2 else b0
    return out


def _np_objective(theta, Xa, Y, prior, prior_scale, prior_df, intercept, intercept_scale):
    """Negative log posterior, its gradient and Hessian, in NumPy float64, closed form.

    ``theta`` is ``W.ravel()`` for ``W`` (D', K): the D coefficient rows then, with an
    intercept, the intercept row (the layout of :class:`LaplacePosterior`).
    """
    n_par_rows, K = Xa.shape[1], Y.shape[1]
    W = theta.reshape(n_par_rows, K)
    free = Xa @ W
    top = np.maximum(free.max(1, keepdims=True), 0.0)  # the reference logit 0 is in the max too
    expf = np.exp(free - top)
    denom = np.exp(-top) + expf.sum(1, keepdims=True)
    P = expf / denom  # (N, K): probabilities of the free classes
    loglik = np.sum(Y * free) - np.sum(top + np.log(denom))
    grad = Xa.T @ (Y - P)
    # Hessian of the log-likelihood: −Σ_n x_n x_nᵀ ⊗ (diag(p_n) − p_n p_nᵀ).
    cov_n = P[:, :, None] * np.eye(K)[None] - P[:, :, None] * P[:, None, :]
    hess = -np.einsum("na,nkl,nb->akbl", Xa, cov_n, Xa).reshape(n_par_rows * K, n_par_rows * K)
    scale = np.full_like(W, float(prior_scale))
    is_coef = np.ones_like(W, dtype=bool)
    if intercept:
        scale[-1] = float(intercept_scale)
        is_coef[-1] = False
    w = W
    if prior == "normal":
        lp = -0.5 * np.sum((w / scale) ** 2)
        g_p = -w / scale**2
        h_p = -1.0 / scale**2
    else:
        nu = float(prior_df)
        t2 = nu * scale**2 + w * w
        lp_t = -0.5 * (nu + 1.0) * np.log1p(w * w / (nu * scale**2))
        g_t = -(nu + 1.0) * w / t2
        h_t = -(nu + 1.0) * (nu * scale**2 - w * w) / t2**2
        # The intercept keeps its Normal prior.
        lp = np.sum(np.where(is_coef, lp_t, -0.5 * (w / scale) ** 2))
        g_p = np.where(is_coef, g_t, -w / scale**2)
        h_p = np.where(is_coef, h_t, -1.0 / scale**2)
    value = -(loglik + lp)
    return value, -(grad + g_p).ravel(), -(hess + np.diag(np.ravel(np.broadcast_to(h_p, W.shape))))


def laplace_posterior_numpy(X, y, *, num_classes: int = 2, prior: str = "normal", prior_scale: float = 2.5,
                            prior_df: float = 3.0, intercept: bool = True,
                            intercept_scale: float = 2.5) -> LaplacePosterior:
    """:func:`laplace_posterior` for one data set in NumPy float64 (no compilation).

    The mode comes from SciPy's trust-region Newton method with the exact gradient and Hessian
    (robust where a Student-t prior makes the objective non-convex); the covariance is the
    inverse Hessian at the mode. Same layout and meaning as :func:`laplace_posterior`.
    """
    from scipy.optimize import minimize

    X = np.asarray(X, dtype=np.float64)
    n_rows = X.shape[0]
    Xa = np.hstack([X, np.ones((n_rows, 1))]) if intercept else X
    Y = (np.asarray(y)[:, None] == np.arange(1, num_classes)[None, :]).astype(np.float64)
    args = (Xa, Y, prior, prior_scale, prior_df, intercept, intercept_scale)
    res = minimize(lambda t: _np_objective(t, *args)[:2], np.zeros(Xa.shape[1] * Y.shape[1]), jac=True,
                   hess=lambda t: _np_objective(t, *args)[2], method="trust-exact",
                   options={"gtol": 1e-8, "maxiter": 500})
    _, grad, hess = _np_objective(res.x, *args)
    cov = np.linalg.inv(hess)
    # SciPy sometimes reports failure at a point whose gradient is already ~1e-9 (no further
    # predicted improvement); what matters is the gradient at the returned point.
    converged = bool(res.success) or float(np.max(np.abs(grad))) < 1e-6 * max(1.0, n_rows)
    return LaplacePosterior(res.x, 0.5 * (cov + cov.T), np.asarray(converged))


class LogisticProbabilities(NamedTuple):
    """Posterior class probabilities: ``mean``, ``lower``, ``upper`` (N, C); ``draws`` (S, N, C)."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    draws: np.ndarray


def posterior_class_probabilities(X, samples: Mapping[str, Any], interval_prob: float = 0.9) -> LogisticProbabilities:
    """p(y = c | x, β) per draw, averaged, with an equal-tailed ``interval_prob`` interval.

    Parameters
    ----------
    X : array (N, D)
    samples : mapping
        ``coef`` (S, D) or (S, D, C−1) and optionally ``intercept`` (S,) or (S, C−1).
    interval_prob : float

    Returns
    -------
    LogisticProbabilities
    """
    if not 0.0 < interval_prob < 1.0:
        raise DataError("interval_prob", "a probability in (0, 1)", repr(interval_prob))
    # NumPy float64: no compilation per number of rows.
    coef = np.asarray(samples["coef"], np.float64)
    coef = coef[..., None] if coef.ndim == 2 else coef  # (S, D, K)
    b0 = samples.get("intercept")
    b0 = np.zeros((coef.shape[0], coef.shape[2])) if b0 is None else np.asarray(b0, np.float64).reshape(coef.shape[0], -1)
    free = np.einsum("nd,sdk->snk", np.asarray(X, np.float64), coef) + b0[:, None, :]
    logits = np.concatenate([np.zeros(free.shape[:-1] + (1,)), free], axis=-1)
    logits -= logits.max(-1, keepdims=True)
    draws = np.exp(logits)
    draws /= draws.sum(-1, keepdims=True)
    tail = 0.5 * (1.0 - interval_prob)
    lower, upper = np.quantile(draws, [tail, 1.0 - tail], axis=0)
    return LogisticProbabilities(draws.mean(0), lower, upper, draws)


# ----------------------------------------------------------------------------------------------
# scikit-learn estimator.
# ----------------------------------------------------------------------------------------------

_METHODS = ("nuts", "hmc", "svi", "map", "laplace")


class BayesianLogisticRegression(_BayesianClassifier):
    """Bayesian logistic / softmax regression as a scikit-learn classifier.

    Parameters
    ----------
    prior : {"normal", "student_t"}
    prior_scale, prior_df : float
        Coefficient prior, on the standardized scale when ``standardize=True``.
    fit_intercept : bool
    intercept_scale : float
    method : {"nuts", "hmc", "svi", "map", "laplace"}
        ``"nuts"`` (default) samples the exact posterior through :func:`ppl_models.fit`;
        ``"laplace"`` is the fast Gaussian approximation (:func:`laplace_posterior`);
        ``"map"`` is the posterior mode only (plug-in probabilities, no intervals).
    num_samples : int
        Draws kept (per chain for MCMC; in all for ``"svi"``/``"laplace"``).
    num_warmup, num_chains : int
        MCMC settings.
    num_steps, learning_rate : int, float
        SVI/MAP settings.
    standardize : bool
        Centre and scale each feature by its training mean and sd before the model sees it (the
        prior then has one meaning for every feature). ``coef_``/``intercept_`` are reported in
        the input's units.
    interval_prob : float
        Mass of :meth:`predict_proba_interval`'s credible intervals.
    random_state : int, RandomState or None

    Attributes
    ----------
    classes_ : array (C,)
    coef_ : array (1, D) binary or (C, D), posterior mean in the input's units (row 0 of a
        multiclass fit is the reference class, zero).
    intercept_ : array (1,) or (C,)
    samples_ : dict
        Posterior draws of ``coef`` and ``intercept`` on the model's (standardized) scale.
    fit_ : ppl_models.Fit
    laplace_ : LaplacePosterior (``method="laplace"`` only)
    mean_, scale_ : arrays (D,) — the standardization.

    Notes
    -----
    scikit-learn compatibility: every check of ``sklearn.utils.estimator_checks`` applies and
    passes; none is excluded. The test suite runs them all (``parametrize_with_checks``) with
    ``method="laplace"`` (twice: normal prior with intercept and standardization, Student-t
    prior without either) and with ``method="nuts"`` (one chain of 20 + 20 draws, a slow
    test). Only ``check_array_api_input`` is skipped, by scikit-learn itself, unless
    ``SCIPY_ARRAY_API=1`` is set.
    """

    def __init__(self, prior="normal", prior_scale=2.5, prior_df=3.0, fit_intercept=True, intercept_scale=2.5,
                 method="nuts", num_samples=1000, num_warmup=1000, num_chains=4, num_steps=3000,
                 learning_rate=0.01, standardize=True, interval_prob=0.9, random_state=None):
        self.prior = prior
        self.prior_scale = prior_scale
        self.prior_df = prior_df
        self.fit_intercept = fit_intercept
        self.intercept_scale = intercept_scale
        self.method = method
        self.num_samples = num_samples
        self.num_warmup = num_warmup
        self.num_chains = num_chains
        self.num_steps = num_steps
        self.learning_rate = learning_rate
        self.standardize = standardize
        self.interval_prob = interval_prob
        self.random_state = random_state

    def _transform(self, X: np.ndarray, *, fitting: bool) -> np.ndarray:
        if not self.standardize:
            return X
        if fitting:
            self.mean_ = X.mean(0)
            sd = X.std(0)
            # A constant column carries no information; unit scale keeps the transform finite.
            self.scale_ = np.where(sd > 0, sd, 1.0)
        return (X - self.mean_) / self.scale_

    def _model_kwargs(self, Z, codes) -> dict[str, Any]:
        return dict(X=Z, y=codes, num_classes=len(self.classes_), prior=self.prior,
                    prior_scale=float(self.prior_scale), prior_df=float(self.prior_df),
                    intercept=bool(self.fit_intercept), intercept_scale=float(self.intercept_scale))

    def fit(self, X, y):
        """Condition on labelled rows: X (N, D), y (N,) with at least two classes."""
        if self.method not in _METHODS:
            raise DataError("method", f"one of {list(_METHODS)}", repr(self.method))
        if self.prior not in PRIORS:
            raise DataError("prior", f"one of {list(PRIORS)}", repr(self.prior))
        Xa, columns = self._validate_X(X, reset=True)
        codes, self.classes_ = self._validate_y(y, Xa.shape[0])
        if len(self.classes_) < 2:
            raise DataError("y", "labels of at least two classes", f"only one class {self.classes_.tolist()}")
        Z = self._transform(Xa, fitting=True)
        C = len(self.classes_)
        seed = _seed_from(self.random_state)
        kwargs = self._model_kwargs(Z, codes)
        coords = {"feature": columns, "class": [str(c) for c in self.classes_[1:]]}
        dims = logistic_dims(C, bool(self.fit_intercept))
        self.laplace_ = None
        if self.method == "laplace":
            # NumPy/SciPy: one fit costs milliseconds and compiles nothing (vmap-ed batches of
            # fits use the JAX laplace_posterior instead).
            self.laplace_ = laplace_posterior_numpy(
                Z, codes, num_classes=C, prior=self.prior, prior_scale=float(self.prior_scale),
                prior_df=float(self.prior_df), intercept=bool(self.fit_intercept),
                intercept_scale=float(self.intercept_scale))
            self.samples_ = sample_laplace(np.random.default_rng(seed), self.laplace_, int(self.num_samples),
                                           num_features=Z.shape[1], num_classes=C,
                                           intercept=bool(self.fit_intercept))
            # Built on first access of ``fit_`` (tracing the program costs more than the fit).
            self._fit = None
            self._fit_args = (kwargs, coords, dims)
        else:
            from .. import fit as _fit

            if self.method in ("nuts", "hmc"):
                options = dict(num_chains=int(self.num_chains), num_warmup=int(self.num_warmup),
                               num_samples=int(self.num_samples))
            else:
                options = dict(num_steps=int(self.num_steps), learning_rate=float(self.learning_rate),
                               num_posterior_draws=int(self.num_samples))
            self._fit = _fit(logistic_regression, kwargs, method=self.method, seed=seed, coords=coords,
                             dims=dims, progress_bar=False, **options)
            self.samples_ = {k: np.asarray(v) for k, v in self._fit.get_samples().items()
                             if k in ("coef", "intercept")}
        self._set_point_estimates(Xa.shape[1])
        return self

    def _set_point_estimates(self, n_feat: int) -> None:
        coef = self.samples_["coef"].mean(0)
        coef = coef[:, None] if coef.ndim == 1 else coef  # (D, K)
        b0 = self.samples_["intercept"].mean(0).reshape(-1) if "intercept" in self.samples_ else np.zeros(coef.shape[1])
        if self.standardize:
            # logits = ((x − m)/s)·β + b = x·(β/s) + (b − m·β/s).
            coef = coef / self.scale_[:, None]
            b0 = b0 - self.mean_ @ coef
        if len(self.classes_) == 2:
            self.coef_, self.intercept_ = coef.T, b0
        else:
            self.coef_ = np.vstack([np.zeros((1, n_feat)), coef.T])
            self.intercept_ = np.concatenate([[0.0], b0])

    @property
    def fit_(self):
        """The :class:`ppl_models.Fit` of the last ``fit`` (Laplace draws: one chain)."""
        check_is_fitted(self, "samples_")
        if self._fit is None:
            from ..fit import Fit

            kwargs, coords, dims = self._fit_args
            self._fit = Fit.from_samples(logistic_regression, kwargs, self.samples_, "laplace",
                                         group_by_chain=False, coords=coords, dims=dims)
        return self._fit

    def predict_proba_interval(self, X) -> LogisticProbabilities:
        """Posterior mean and ``interval_prob`` credible interval of p(y = c | x); each (N, C)."""
        check_is_fitted(self, "samples_")
        Xa, _ = self._validate_X(X, reset=False)
        return posterior_class_probabilities(self._transform(Xa, fitting=False), self.samples_,
                                             float(self.interval_prob))
