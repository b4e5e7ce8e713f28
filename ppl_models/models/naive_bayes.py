"""Bayesian naive Bayes: a generative classifier p(x, y | θ) = p(y | π) Π_j p(x_j | y, θ_j).

The model, written once as a NumPyro program (:func:`naive_bayes`), gives forward sampling,
posterior inference and classification by Bayes' rule on its own joint:

    p(y = c | x, θ) = π_c Π_j p(x_j | c, θ) / Σ_c' π_c' Π_j p(x_j | c', θ),

computed per posterior draw and averaged over draws (credible intervals from the spread over
draws). Every prior is conjugate, so the posterior is also available in closed form
(:func:`conjugate_posterior`, :func:`sample_conjugate_posterior`): exact, independent draws with
no sampler, cheap enough to repeat for every split of a learning curve and ``vmap``-able over
splits of equal size.

Likelihoods and priors (``C`` classes, ``D`` features, ``K`` categories):

* class prior: ``class_prob ~ Dirichlet(class_concentration · 1_C)`` — shape ``(C,)``;
* ``"gaussian"``: per class and feature a Normal-Gamma prior,
  ``precision[c, j] ~ Gamma(precision_shape, precision_rate)``,
  ``loc[c, j] | precision ~ Normal(loc_mean, 1 / sqrt(loc_strength · precision[c, j]))``,
  ``x_j | y = c ~ Normal(loc[c, j], 1 / sqrt(precision[c, j]))``. With ``shared_variance=True``
  the precision is per feature only, ``precision[j]`` of shape ``(D,)``, shared by the classes:
  then log p(y = c | x) − log p(y = c' | x) is linear in x, the exact generative partner of
  (multiclass) logistic regression;
* ``"bernoulli"``: ``prob[c, j] ~ Beta(feature_concentration, feature_concentration)``, binary x;
* ``"categorical"``: ``probs[c, j] ~ Dirichlet(feature_concentration · 1_K)``, x in ``0..K-1``.

Plates are named ``"obs"`` (rows), ``"class"`` and ``"feature"``; the categories of
``probs`` carry the dim ``"category"`` (see :func:`naive_bayes_dims`).

The pure-JAX functions here (:func:`feature_log_lik`, :func:`class_log_joint`,
:func:`class_posterior`, :func:`conjugate_posterior`, :func:`sample_conjugate_posterior`) take
one parameter set and are composed by the caller with ``jit``/``vmap``; they import no NumPyro.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ..data import as_float_matrix, as_int_array, as_labels
from ..errors import DataError, ModelError
from ..queries import conditional

__all__ = [
    "LIKELIHOODS",
    "NaiveBayesPrior",
    "GaussianPosterior",
    "BernoulliPosterior",
    "CategoricalPosterior",
    "ClassProbabilities",
    "naive_bayes",
    "naive_bayes_dims",
    "NaiveBayesMarginal",
    "NaiveBayesConditional",
    "feature_log_lik",
    "class_log_joint",
    "class_posterior",
    "conjugate_posterior",
    "sample_conjugate_posterior",
    "posterior_class_probabilities",
    "BayesianNaiveBayes",
]

LIKELIHOODS = ("gaussian", "bernoulli", "categorical")


class NaiveBayesPrior(NamedTuple):
    """Hyperparameters of the conjugate priors (see the module docstring).

    Gaussian defaults are meant for standardized features (unit scale): a Gamma(1, 1) prior on
    the precision and a Normal(0, 1/sqrt(precision)) prior on each class mean.
    """

    class_concentration: float = 1.0
    loc_mean: float = 0.0
    loc_strength: float = 1.0
    precision_shape: float = 1.0
    precision_rate: float = 1.0
    feature_concentration: float = 1.0


class GaussianPosterior(NamedTuple):
    """Normal-Gamma posterior of Gaussian naive Bayes.

    ``class_concentration`` (C,); ``loc`` and ``loc_strength`` (C, D); ``shape`` and ``rate``
    (C, D), or (D,) with a shared variance. ``precision ~ Gamma(shape, rate)``,
    ``loc | precision ~ Normal(loc, 1/sqrt(loc_strength · precision))``.
    """

    class_concentration: jax.Array
    loc: jax.Array
    loc_strength: jax.Array
    shape: jax.Array
    rate: jax.Array


class BernoulliPosterior(NamedTuple):
    """Beta posterior: ``class_concentration`` (C,); ``prob[c, j] ~ Beta(alpha, beta)``, (C, D)."""

    class_concentration: jax.Array
    alpha: jax.Array
    beta: jax.Array


class CategoricalPosterior(NamedTuple):
    """Dirichlet posterior: ``class_concentration`` (C,); ``probs[c, j] ~ Dirichlet(concentration[c, j])``, (C, D, K)."""

    class_concentration: jax.Array
    concentration: jax.Array


class ClassProbabilities(NamedTuple):
    """Posterior class probabilities of a set of rows.

    ``mean``, ``lower``, ``upper``: (N, C) — the posterior mean of p(y = c | x, θ) and the
    equal-tailed credible interval of it; ``draws``: (S, N, C), one table per posterior draw.
    """

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    draws: np.ndarray


def _check_likelihood(likelihood: str) -> None:
    if likelihood not in LIKELIHOODS:
        raise ModelError(f"argument `likelihood`: expected one of {LIKELIHOODS}, got {likelihood!r}")


def _xp(*arrays):
    """The array namespace of the inputs: ``jax.numpy`` if any is a JAX array (or tracer), else
    NumPy. NumPy runs a one-off fit with no compilation; JAX composes with jit/vmap."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def _normalize_log(log_joint, axis: int = -1):
    """p(y | x) from log p(x, y): Bayes' rule as the toolkit's one normalisation of a joint."""
    xp = _xp(log_joint)
    return xp.exp(conditional(log_joint, axis, log=True))


def _logsumexp(a, axis: int = -1):
    xp = _xp(a)
    m = xp.max(a, axis=axis, keepdims=True)
    return xp.squeeze(m, axis) + xp.log(xp.sum(xp.exp(a - m), axis=axis))


def _one_hot(codes, n: int, dtype):
    xp = _xp(codes)
    return (codes[..., None] == xp.arange(n)).astype(dtype)


# ----------------------------------------------------------------------------------------------
# Kernels: pure functions of NumPy or JAX arrays (no NumPyro). Parameters may carry leading
# batch axes (posterior draws, splits): every function broadcasts over them.
# ----------------------------------------------------------------------------------------------


def feature_log_lik(X, params: Mapping[str, Any], likelihood: str = "gaussian"):
    """Σ_j log p(x_ij | y = c, θ) for every row and class.

    Parameters
    ----------
    X : array (N, D)
        Features (float for ``"gaussian"``, 0/1 for ``"bernoulli"``, integers ``0..K-1`` for
        ``"categorical"``).
    params : mapping
        Parameters with the program's site names, with optional leading batch axes ``B...``:
        ``loc`` (B..., C, D) and ``precision`` (B..., C, D) or (B..., D); or ``prob``
        (B..., C, D); or ``probs`` (B..., C, D, K).
    likelihood : {"gaussian", "bernoulli", "categorical"}

    Returns
    -------
    array (B..., N, C)
    """
    _check_likelihood(likelihood)
    if likelihood == "gaussian":
        loc = params["loc"]
        prec = params["precision"]
        xp = _xp(X, loc, prec)
        if prec.ndim == loc.ndim - 1:  # shared variance: (B..., D) -> (B..., 1, D)
            prec = prec[..., None, :]
        prec = xp.broadcast_to(prec, loc.shape)
        X = xp.asarray(X, dtype=loc.dtype)
        tr = lambda a: xp.swapaxes(a, -1, -2)  # noqa: E731
        # Expanding the square turns the (N, C, D) sum into three matrix products.
        quad = (X * X) @ tr(prec) - 2.0 * (X @ tr(prec * loc)) + xp.sum(prec * loc * loc, -1)[..., None, :]
        norm = xp.sum(xp.log(prec), -1)[..., None, :] - loc.shape[-1] * math.log(2.0 * math.pi)
        return 0.5 * (norm - quad)
    if likelihood == "bernoulli":
        prob = params["prob"]
        xp = _xp(X, prob)
        X = xp.asarray(X, dtype=prob.dtype)
        return X @ xp.swapaxes(xp.log(prob), -1, -2) + (1.0 - X) @ xp.swapaxes(xp.log1p(-prob), -1, -2)
    probs = params["probs"]
    xp = _xp(X, probs)
    onehot = _one_hot(xp.asarray(X).astype(xp.int32), probs.shape[-1], probs.dtype)
    return xp.einsum("ndk,...cdk->...nc", onehot, xp.log(probs))


def class_log_joint(X, params: Mapping[str, Any], likelihood: str = "gaussian"):
    """log p(x_i, y_i = c | θ) = log π_c + Σ_j log p(x_ij | c, θ); (N, D) -> (B..., N, C)."""
    xp = _xp(params["class_prob"])
    return xp.log(params["class_prob"])[..., None, :] + feature_log_lik(X, params, likelihood)


def class_posterior(X, params: Mapping[str, Any], likelihood: str = "gaussian"):
    """Bayes' rule on the joint: p(y = c | x_i, θ), (N, D) -> (B..., N, C)."""
    return _normalize_log(class_log_joint(X, params, likelihood), axis=-1)


def conjugate_posterior(X, y, *, num_classes: int, likelihood: str = "gaussian",
                        shared_variance: bool = False, num_categories: int | None = None,
                        prior: NaiveBayesPrior = NaiveBayesPrior()):
    """The exact posterior of :func:`naive_bayes` given labelled data.

    Sums are matrix products with a one-hot class matrix (no data-dependent shapes), so under
    JAX the function jit-compiles once per (N, D) and ``vmap``s over equally sized splits;
    with NumPy inputs it runs at once, in float64.

    Parameters
    ----------
    X : array (N, D)
    y : int array (N,)
        Class codes ``0..C-1``.
    num_classes : int
    likelihood : {"gaussian", "bernoulli", "categorical"}
    shared_variance : bool
        Gaussian only: one precision per feature shared by the classes.
    num_categories : int
        Categorical only: K.
    prior : NaiveBayesPrior

    Returns
    -------
    GaussianPosterior | BernoulliPosterior | CategoricalPosterior
    """
    _check_likelihood(likelihood)
    xp = _xp(X, y)
    dtype = jnp.result_type(float) if xp is jnp else np.float64
    onehot = _one_hot(xp.asarray(y).astype(xp.int32), num_classes, dtype)  # (N, C)
    n_c = onehot.sum(0)  # (C,)
    class_conc = prior.class_concentration + n_c
    if likelihood == "gaussian":
        X = xp.asarray(X, dtype=dtype)
        sum_x = onehot.T @ X  # (C, D)
        n = n_c[:, None]
        mean = sum_x / xp.maximum(n, 1.0)
        # Within-class sum of squares around the class mean, from centred values for stability.
        resid = X[None, :, :] - mean[:, None, :]  # (C, N, D)
        ss = xp.einsum("nc,cnd->cd", onehot, resid * resid)
        k0, m0 = prior.loc_strength, prior.loc_mean
        kn = k0 + n
        loc = (k0 * m0 + sum_x) / kn
        # Rate increment of one class: ½ SS + κ0 n (x̄ − m0)² / (2 κn).
        rate_inc = 0.5 * ss + 0.5 * k0 * n * (mean - m0) ** 2 / kn
        if shared_variance:
            # Integrating each class mean out leaves τ_j with shape a0 + N/2 and the summed rates.
            shape = prior.precision_shape + 0.5 * xp.sum(n_c) * xp.ones(X.shape[1], dtype=dtype)
            rate = prior.precision_rate + rate_inc.sum(0)
        else:
            shape = prior.precision_shape + 0.5 * xp.broadcast_to(n, sum_x.shape)
            rate = prior.precision_rate + rate_inc
        return GaussianPosterior(class_conc, loc, xp.broadcast_to(kn, loc.shape), shape, rate)
    if likelihood == "bernoulli":
        X = xp.asarray(X, dtype=dtype)
        ones = onehot.T @ X
        a = prior.feature_concentration
        return BernoulliPosterior(class_conc, a + ones, a + n_c[:, None] - ones)
    if num_categories is None:
        raise ModelError("argument `num_categories`: expected an int for the categorical likelihood, got None")
    counts = xp.einsum("nc,ndk->cdk", onehot, _one_hot(xp.asarray(X).astype(xp.int32), num_categories, dtype))
    return CategoricalPosterior(class_conc, prior.feature_concentration + counts)


def _dirichlet_np(rng: np.random.Generator, conc: np.ndarray, num_samples: int) -> np.ndarray:
    g = rng.standard_gamma(conc, size=(num_samples,) + conc.shape)
    return g / g.sum(-1, keepdims=True)


def sample_conjugate_posterior(rng, posterior, num_samples: int) -> dict[str, Any]:
    """Independent exact draws from a conjugate posterior, named as the program's sites.

    Parameters
    ----------
    rng : jax PRNG key or numpy.random.Generator
        A JAX key draws with ``jax.random`` (jit/vmap-able); a NumPy ``Generator`` draws with
        NumPy (no compilation: a one-off fit costs microseconds instead of a compile).
    posterior : GaussianPosterior | BernoulliPosterior | CategoricalPosterior
    num_samples : int
        S.

    Returns
    -------
    dict
        ``class_prob`` (S, C) and ``loc``/``precision`` (S, C, D) [(S, D) shared],
        or ``prob`` (S, C, D), or ``probs`` (S, C, D, K).
    """
    S = int(num_samples)
    if isinstance(rng, np.random.Generator):
        post = type(posterior)(*(np.asarray(v, dtype=np.float64) for v in posterior))
        out = {"class_prob": _dirichlet_np(rng, post.class_concentration, S)}
        if isinstance(post, GaussianPosterior):
            precision = rng.standard_gamma(post.shape, size=(S,) + post.shape.shape) / post.rate
            full = np.broadcast_to(precision if precision.ndim == 3 else precision[:, None, :], (S,) + post.loc.shape)
            out["loc"] = post.loc + rng.standard_normal(full.shape) / np.sqrt(post.loc_strength * full)
            out["precision"] = precision
        elif isinstance(post, BernoulliPosterior):
            out["prob"] = rng.beta(post.alpha, post.beta, size=(S,) + post.alpha.shape)
        elif isinstance(post, CategoricalPosterior):
            out["probs"] = _dirichlet_np(rng, post.concentration, S)
        else:
            raise ModelError(f"argument `posterior`: expected a conjugate posterior, got {type(posterior).__name__}")
        return out
    k_pi, k1, k2 = jax.random.split(rng, 3)
    out = {"class_prob": jax.random.dirichlet(k_pi, posterior.class_concentration, (S,))}
    if isinstance(posterior, GaussianPosterior):
        precision = jax.random.gamma(k1, posterior.shape, (S,) + posterior.shape.shape) / posterior.rate
        full = jnp.broadcast_to(precision if precision.ndim == 3 else precision[:, None, :], (S,) + posterior.loc.shape)
        loc = posterior.loc + jax.random.normal(k2, full.shape, full.dtype) / jnp.sqrt(posterior.loc_strength * full)
        out.update(loc=loc, precision=precision)
    elif isinstance(posterior, BernoulliPosterior):
        out["prob"] = jax.random.beta(k1, posterior.alpha, posterior.beta, (S,) + posterior.alpha.shape)
    elif isinstance(posterior, CategoricalPosterior):
        out["probs"] = jax.random.dirichlet(k1, posterior.concentration, (S,) + posterior.concentration.shape[:-1])
    else:
        raise ModelError(f"argument `posterior`: expected a conjugate posterior, got {type(posterior).__name__}")
    return out


# ----------------------------------------------------------------------------------------------
# The NumPyro program.
# ----------------------------------------------------------------------------------------------


def _component(params: Mapping[str, jax.Array], y: jax.Array, likelihood: str) -> dist.Distribution:
    """p(x | y, θ) for a batch of class codes ``y``: batch shape y.shape, event (D,)."""
    if likelihood == "gaussian":
        loc = params["loc"]
        precision = jnp.broadcast_to(params["precision"], loc.shape)
        return dist.Normal(loc[y], 1.0 / jnp.sqrt(precision[y])).to_event(1)
    if likelihood == "bernoulli":
        return dist.Bernoulli(probs=params["prob"][y]).to_event(1)
    return dist.Categorical(probs=params["probs"][y]).to_event(1)


class NaiveBayesConditional(dist.Distribution):
    """p(x_i | y_i, θ) for rows with known classes: batch shape (N,), event shape (D,).

    ``log_prob`` selects row i's class from :func:`feature_log_lik`'s (N, C) table with a
    one-hot mask instead of gathering ``loc[y]``: the gradient of a gather is a scatter-add,
    which XLA runs serially on a CPU: on breast cancer (569 × 30) one gradient of the potential
    took 480 µs with the gather and 74 µs with the mask. ``sample`` gathers (no gradient is
    taken through it).
    """

    pytree_data_fields = ("y", "params")
    pytree_aux_fields = ("likelihood",)

    def __init__(self, y, params, likelihood: str, *, validate_args=None):
        self.y = y
        self.params = dict(params)
        self.likelihood = likelihood
        self._num_classes, self._num_features = _param_shape(self.params, likelihood)
        super().__init__(batch_shape=jnp.shape(y), event_shape=(self._num_features,),
                         validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=1)
    def support(self):
        return _support(self.params, self.likelihood)

    def sample(self, key, sample_shape=()):
        y = jnp.broadcast_to(self.y, sample_shape + self.batch_shape)
        return _component(self.params, y, self.likelihood).sample(key)

    def log_prob(self, value):
        flat = value.reshape((-1, self._num_features))
        table = feature_log_lik(flat, self.params, self.likelihood)  # (M, C)
        y = jnp.broadcast_to(self.y, value.shape[:-1]).reshape(-1)
        mask = (y[:, None] == jnp.arange(self._num_classes)).astype(table.dtype)
        return jnp.sum(mask * table, -1).reshape(value.shape[:-1])


def _param_shape(params, likelihood: str) -> tuple[int, int]:
    first = params["loc"] if likelihood == "gaussian" else params["prob" if likelihood == "bernoulli" else "probs"]
    return first.shape[0], first.shape[1]


def _support(params, likelihood: str):
    if likelihood == "gaussian":
        return constraints.real_vector
    if likelihood == "bernoulli":
        return constraints.independent(constraints.boolean, 1)
    return constraints.independent(constraints.integer_interval(0, params["probs"].shape[-1] - 1), 1)


class NaiveBayesMarginal(dist.Distribution):
    """p(x | θ) = Σ_c π_c p(x | c, θ): naive Bayes with the class marginalized exactly.

    ``log_prob`` is the log-sum-exp over classes of :func:`class_log_joint`; ``sample`` draws a
    class and then the features. Event shape (D,), batch shape ().
    """

    pytree_data_fields = ("class_prob", "params")
    pytree_aux_fields = ("likelihood",)

    def __init__(self, class_prob, params, likelihood: str, *, validate_args=None):
        self.class_prob = class_prob
        self.params = dict(params)
        self.likelihood = likelihood
        self._num_features = _param_shape(self.params, likelihood)[1]
        super().__init__(batch_shape=(), event_shape=(self._num_features,), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=1)
    def support(self):
        return _support(self.params, self.likelihood)

    def sample(self, key, sample_shape=()):
        k_y, k_x = jax.random.split(key)
        y = jax.random.categorical(k_y, jnp.log(self.class_prob), shape=sample_shape)
        return _component(self.params, y, self.likelihood).sample(k_x)

    def log_prob(self, value):
        flat = value.reshape((-1, self._num_features))
        joint = class_log_joint(flat, {"class_prob": self.class_prob, **self.params}, self.likelihood)
        return jax.scipy.special.logsumexp(joint, -1).reshape(value.shape[:-1])


def naive_bayes(X=None, y=None, *, num_classes: int, likelihood: str = "gaussian",
                num_features: int | None = None, num_obs: int | None = None,
                num_categories: int | None = None, shared_variance: bool = False,
                class_concentration: float = 1.0, loc_mean: float = 0.0, loc_strength: float = 1.0,
                precision_shape: float = 1.0, precision_rate: float = 1.0,
                feature_concentration: float = 1.0):
    """Naive Bayes with conjugate priors, as a NumPyro program.

    Parameters
    ----------
    X : array (N, D) or None
        Features; ``None`` samples them (forward simulation).
    y : int array (N,) or None
        Class codes ``0..C-1``. ``None`` with ``X`` given marginalizes the class exactly
        (:class:`NaiveBayesMarginal`) and records the per-row class posterior as the
        deterministic site ``class_posterior`` (N, C) — Bayes' rule on the model's own joint, so
        the posterior predictive of new rows is their classification. (Fitting that unlabelled
        model is a mixture and is not identified up to relabelling; fit with labels.) ``None``
        with ``X`` ``None`` samples the classes too.
    num_classes : int
        C.
    likelihood : {"gaussian", "bernoulli", "categorical"}
    num_features, num_obs : int, optional
        D and N when ``X`` (and ``y``) are ``None``.
    num_categories : int, optional
        K, required for ``"categorical"``.
    shared_variance : bool
        Gaussian only: one precision per feature, shared by the classes.
    class_concentration, loc_mean, loc_strength, precision_shape, precision_rate, feature_concentration : float
        Prior hyperparameters (:class:`NaiveBayesPrior`).

    Sites
    -----
    ``class_prob`` (C,); ``loc`` (C, D) and ``precision`` (C, D) or (D,); or ``prob`` (C, D);
    or ``probs`` (C, D, K); observed ``y`` (N,) and ``X`` (N, D).
    """
    _check_likelihood(likelihood)
    if num_classes < 1:
        raise ModelError(f"argument `num_classes`: expected an int >= 1, got {num_classes!r}")
    if X is not None:
        X = jnp.asarray(X)
        n_rows, n_feat = X.shape
    else:
        n_feat = num_features
        n_rows = y.shape[0] if y is not None else num_obs
    if n_feat is None:
        raise ModelError("argument `num_features`: expected an int when X is None, got None")
    if n_rows is None:
        raise ModelError("argument `num_obs`: expected an int when X and y are None, got None")
    if likelihood == "categorical" and num_categories is None:
        raise ModelError("argument `num_categories`: expected an int for the categorical likelihood, got None")

    class_prob = numpyro.sample("class_prob", dist.Dirichlet(jnp.full(num_classes, float(class_concentration))))
    params: dict[str, Any] = {}
    with numpyro.plate("feature", n_feat, dim=-1):
        if likelihood == "gaussian" and shared_variance:
            params["precision"] = numpyro.sample("precision", dist.Gamma(precision_shape, precision_rate))
        with numpyro.plate("class", num_classes, dim=-2):
            if likelihood == "gaussian":
                if not shared_variance:
                    params["precision"] = numpyro.sample("precision", dist.Gamma(precision_shape, precision_rate))
                params["loc"] = numpyro.sample(
                    "loc", dist.Normal(loc_mean, 1.0 / jnp.sqrt(loc_strength * params["precision"])))
            elif likelihood == "bernoulli":
                params["prob"] = numpyro.sample("prob", dist.Beta(feature_concentration, feature_concentration))
            else:
                params["probs"] = numpyro.sample(
                    "probs", dist.Dirichlet(jnp.full(num_categories, float(feature_concentration))))

    with numpyro.plate("obs", n_rows):
        if y is None and X is not None:
            numpyro.sample("X", NaiveBayesMarginal(class_prob, params, likelihood), obs=X)
            numpyro.deterministic("class_posterior",
                                  class_posterior(X, {"class_prob": class_prob, **params}, likelihood))
        else:
            y = numpyro.sample("y", dist.Categorical(probs=class_prob), obs=None if y is None else jnp.asarray(y))
            numpyro.sample("X", NaiveBayesConditional(y, params, likelihood), obs=X)


def naive_bayes_dims(likelihood: str = "gaussian", shared_variance: bool = False) -> dict[str, list[str]]:
    """ArviZ dims of every site of :func:`naive_bayes` (give them all: ArviZ drops plate names
    as soon as any dims are passed)."""
    _check_likelihood(likelihood)
    # "X" is left out on purpose: Fit uses one dims list for both the observed_data group
    # ((obs, feature)) and the log_likelihood group ((obs,): X is one event per row), so naming
    # it would break the latter; X's plate name "obs" is inferred instead.
    dims = {"class_prob": ["class"], "y": ["obs"], "class_posterior": ["obs", "class"]}
    if likelihood == "gaussian":
        dims["loc"] = ["class", "feature"]
        dims["precision"] = ["feature"] if shared_variance else ["class", "feature"]
    elif likelihood == "bernoulli":
        dims["prob"] = ["class", "feature"]
    else:
        dims["probs"] = ["class", "feature", "category"]
    return dims


# ----------------------------------------------------------------------------------------------
# Posterior class probabilities over draws.
# ----------------------------------------------------------------------------------------------

_PARAM_SITES = ("class_prob", "loc", "precision", "prob", "probs")


def posterior_class_probabilities(X, samples: Mapping[str, Any], likelihood: str = "gaussian",
                                  interval_prob: float = 0.9) -> ClassProbabilities:
    """p(y = c | x, θ) per posterior draw, its posterior mean and equal-tailed interval.

    Parameters
    ----------
    X : array (N, D)
    samples : mapping
        Posterior draws with a leading draw axis S (``class_prob`` (S, C), ...), e.g.
        ``Fit.get_samples()`` or :func:`sample_conjugate_posterior`.
    likelihood : {"gaussian", "bernoulli", "categorical"}
    interval_prob : float
        Mass of the credible interval, in (0, 1).

    Returns
    -------
    ClassProbabilities
    """
    if not 0.0 < interval_prob < 1.0:
        raise DataError("interval_prob", "a probability in (0, 1)", repr(interval_prob))
    # NumPy, float64: prediction needs no compilation, whatever the number of rows.
    params = {k: np.asarray(v, dtype=np.float64) for k, v in samples.items() if k in _PARAM_SITES}
    draws = class_posterior(np.asarray(X), params, likelihood)
    tail = 0.5 * (1.0 - interval_prob)
    lower, upper = np.quantile(draws, [tail, 1.0 - tail], axis=0)
    return ClassProbabilities(draws.mean(0), lower, upper, draws)


# ----------------------------------------------------------------------------------------------
# scikit-learn estimator.
# ----------------------------------------------------------------------------------------------


def _seed_from(random_state) -> int:
    """An int seed from sklearn's ``random_state`` convention (None: fresh entropy)."""
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    return int(rng.randint(0, 2**31 - 1))


class _BayesianClassifier(ClassifierMixin, BaseEstimator):
    """What the Bayesian classifiers share: input validation with sklearn's feature-name
    bookkeeping (``n_features_in_``, ``feature_names_in_``; a DataFrame that lacks a fitted
    column raises :class:`DataError` named ``X``), and prediction from the subclass's
    ``predict_proba_interval(X)``."""

    def predict_proba(self, X) -> np.ndarray:
        """Posterior mean class probabilities, (N, C), columns ordered as ``classes_``."""
        return self.predict_proba_interval(X).mean

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`, (N, C)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The class of highest posterior mean probability, (N,)."""
        proba = self.predict_proba(X)  # checks fitted state first
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy. A label of ``y`` outside ``classes_`` raises :class:`DataError` (sklearn's
        own ``score`` would count it as an error silently)."""
        pred = self.predict(X)
        codes, _ = as_labels("y", y, classes=self.classes_, n_rows=pred.shape[0])
        return float(np.average(self.classes_[codes] == pred, weights=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    def _validate_X(self, X, *, reset: bool) -> tuple[np.ndarray, list[str]]:
        """A finite (N, D) float matrix; at predict time also D and the column names of fit."""
        X = _dense_real("X", X)
        cols = getattr(X, "columns", None)
        names = None
        if cols is not None and all(isinstance(c, str) for c in cols):
            names = np.asarray(list(cols), dtype=object)
        if reset:
            arr, columns = as_float_matrix("X", X)
            if arr.shape[1] == 0:
                raise DataError("X", "at least one feature column",
                                f"0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
            self.n_features_in_ = arr.shape[1]
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return arr, columns
        fitted = getattr(self, "feature_names_in_", None)
        cls = type(self).__name__
        if fitted is not None and names is not None:
            if list(names) != list(fitted):
                missing = [c for c in fitted if c not in set(names)]
                unexpected = [c for c in names if c not in set(fitted)]
                got = (f"missing column(s) {missing}" if missing else
                       f"unexpected column(s) {unexpected}" if unexpected else "the columns in another order")
                raise DataError("X", f"the columns seen in fit, in order: {list(fitted)}", got,
                                "The feature names should match those that were passed during fit. "
                                "Feature names must be in the same order as they were in fit.")
        elif fitted is not None and cols is None:
            warnings.warn(f"X does not have valid feature names, but {cls} was fitted with feature names",
                          UserWarning, stacklevel=3)
        elif fitted is None and names is not None:
            warnings.warn(f"X has feature names, but {cls} was fitted without feature names",
                          UserWarning, stacklevel=3)
        arr, columns = as_float_matrix("X", X)
        if arr.shape[1] != self.n_features_in_:
            raise DataError("X", f"{self.n_features_in_} feature column(s)", f"{arr.shape[1]}",
                            f"X has {arr.shape[1]} features, but {cls} is expecting "
                            f"{self.n_features_in_} features as input")
        return arr, columns

    def _validate_y(self, y, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Class codes 0..C-1 and the classes, from labels of any hashable type."""
        if y is None:
            raise DataError("y", "class labels", "None",
                            f"{type(self).__name__} requires y to be passed, but the target y is None")
        if getattr(y, "ndim", 1) == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it is raveled",
                          DataConversionWarning, stacklevel=3)
        arr = np.asarray(y)
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            bad = int((~np.isfinite(arr)).sum())
            raise DataError("y", "finite labels (no NaN or inf)", f"{bad} non-finite label(s)",
                            "Input y contains NaN or infinity.")
        kind = type_of_target(arr) if arr.dtype != object else "multiclass"
        if kind.startswith("continuous"):
            raise DataError("y", "class labels (discrete values)", "continuous values",
                            f"Unknown label type: {kind}; a classifier needs discrete labels")
        return as_labels("y", y, n_rows=n_rows)


class _DataTypeError(DataError, TypeError):
    """A :class:`DataError` that is also a ``TypeError`` (values that are not numbers at all),
    as scikit-learn expects for such input."""


def _dense_real(name: str, X):
    """Reject sparse and complex input and turn object arrays of numbers into floats."""
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise DataError(name, "a dense array", f"a sparse {type(X).__name__}",
                        "sparse input is not supported; pass X.toarray()")
    if getattr(X, "columns", None) is not None:
        return X  # a DataFrame: as_float_matrix checks its column dtypes
    if isinstance(X, (list, tuple)) or not hasattr(X, "dtype"):
        try:
            X = np.asarray(X)
        except Exception:
            return X  # as_float_matrix reports a ragged input
    if np.issubdtype(X.dtype, np.complexfloating):
        raise DataError(name, "real values", "complex values", "Complex data not supported")
    if X.dtype == object:
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise _DataTypeError(name, "numeric values", "non-numeric objects", str(exc)) from None
    if X.ndim == 1:
        raise DataError(name, "a 2-dimensional array (n_samples, n_features)", f"shape {X.shape}",
                        "Reshape your data: X.reshape(-1, 1) for a single feature, "
                        "X.reshape(1, -1) for a single sample")
    return X


class BayesianNaiveBayes(_BayesianClassifier):
    """Bayesian naive Bayes classifier (Gaussian, Bernoulli or categorical features).

    One class for the three likelihoods: they share the class prior, the fitting methods and
    Bayes'-rule prediction, and a single class lets a learning-curve study switch likelihood
    with ``set_params(likelihood=...)``. The priors are those of :func:`naive_bayes`.

    Parameters
    ----------
    likelihood : {"gaussian", "bernoulli", "categorical"}
    shared_variance : bool
        Gaussian only: one variance per feature shared by the classes (linear decision
        boundaries, the generative partner of logistic regression).
    method : {"exact", "nuts", "svi"}
        ``"exact"`` (default) draws independently from the closed-form conjugate posterior:
        exact and fast (one compile per data shape). ``"nuts"``/``"svi"`` fit the NumPyro
        program through :func:`ppl_models.fit`.
    num_samples : int
        Posterior draws kept (per chain for NUTS).
    num_warmup, num_chains : int
        NUTS only.
    num_steps : int
        SVI only.
    standardize : bool
        Gaussian only: centre and scale each feature by its training mean and sd before the
        model sees it, so that the unit-scale default priors fit any units. (This makes the prior
        data-dependent — a mild empirical-Bayes choice; predictions apply the same transform.)
    binarize : float or None
        Bernoulli only: threshold features at this value (``x > binarize``). ``None``: the
        features must already be 0/1.
    num_categories : int or None
        Categorical only: K; ``None`` takes the largest training value + 1.
    class_concentration, loc_mean, loc_strength, precision_shape, precision_rate, feature_concentration : float
        Prior hyperparameters.
    interval_prob : float
        Mass of the credible intervals of :meth:`predict_proba_interval`.
    random_state : int, RandomState or None

    Attributes
    ----------
    classes_ : array (C,)
    n_features_in_ : int
    feature_names_in_ : array of str (only when fitted on a DataFrame with string columns)
    posterior_ : conjugate posterior NamedTuple (``method="exact"`` only)
    samples_ : dict of arrays
        Posterior draws, leading axis S.
    fit_ : ppl_models.Fit
        The fit (built with ``Fit.from_samples`` for exact draws, as one chain).
    mean_, scale_ : arrays (D,)
        The standardization (Gaussian with ``standardize=True``).

    Notes
    -----
    scikit-learn compatibility: every check of ``sklearn.utils.estimator_checks`` applies and
    passes; none is excluded. The test suite runs them all (``parametrize_with_checks``) with
    ``method="exact"`` on three configurations: Gaussian with per-class variances, Gaussian
    with a shared variance, and Bernoulli with ``binarize=0.0``. ``"nuts"``/``"svi"`` share
    the same validation and prediction code (they differ only in how ``samples_`` is drawn)
    and are tested for the interface separately. Only ``check_array_api_input`` is skipped,
    by scikit-learn itself, unless ``SCIPY_ARRAY_API=1`` is set.
    """

    def __init__(self, likelihood="gaussian", shared_variance=False, method="exact", num_samples=500,
                 num_warmup=500, num_chains=4, num_steps=5000, standardize=True, binarize=None,
                 num_categories=None, class_concentration=1.0, loc_mean=0.0, loc_strength=1.0,
                 precision_shape=1.0, precision_rate=1.0, feature_concentration=1.0,
                 interval_prob=0.9, random_state=None):
        self.likelihood = likelihood
        self.shared_variance = shared_variance
        self.method = method
        self.num_samples = num_samples
        self.num_warmup = num_warmup
        self.num_chains = num_chains
        self.num_steps = num_steps
        self.standardize = standardize
        self.binarize = binarize
        self.num_categories = num_categories
        self.class_concentration = class_concentration
        self.loc_mean = loc_mean
        self.loc_strength = loc_strength
        self.precision_shape = precision_shape
        self.precision_rate = precision_rate
        self.feature_concentration = feature_concentration
        self.interval_prob = interval_prob
        self.random_state = random_state

    # -- helpers ---------------------------------------------------------------------------

    def _prior(self) -> NaiveBayesPrior:
        return NaiveBayesPrior(float(self.class_concentration), float(self.loc_mean), float(self.loc_strength),
                               float(self.precision_shape), float(self.precision_rate),
                               float(self.feature_concentration))

    def _transform(self, X: np.ndarray, *, fitting: bool) -> np.ndarray:
        if self.likelihood == "gaussian":
            if self.standardize:
                if fitting:
                    self.mean_ = X.mean(0)
                    sd = X.std(0)
                    # A constant feature carries no class information; unit scale keeps it finite.
                    self.scale_ = np.where(sd > 0, sd, 1.0)
                return (X - self.mean_) / self.scale_
            return X
        if self.likelihood == "bernoulli":
            if self.binarize is not None:
                return (X > self.binarize).astype(np.float64)
            if not np.all((X == 0) | (X == 1)):
                raise DataError("X", "binary features (0/1) for the Bernoulli likelihood",
                                "values other than 0 and 1", "set binarize=threshold to binarize them")
            return X
        codes = as_int_array("X", X, low=0)
        if fitting:
            k = int(codes.max()) + 1 if codes.size else 1
            self.num_categories_ = int(self.num_categories) if self.num_categories is not None else k
            if k > self.num_categories_:
                raise DataError("X", f"category codes below num_categories={self.num_categories_}",
                                f"maximum {k - 1}")
        elif codes.size and codes.max() >= self.num_categories_:
            raise DataError("X", f"category codes in 0..{self.num_categories_ - 1} (seen in fit)",
                            f"maximum {codes.max()}")
        return codes

    def _model_kwargs(self, X, y) -> dict[str, Any]:
        p = self._prior()
        return dict(X=X, y=y, num_classes=len(self.classes_), likelihood=self.likelihood,
                    num_categories=getattr(self, "num_categories_", None),
                    shared_variance=bool(self.shared_variance), class_concentration=p.class_concentration,
                    loc_mean=p.loc_mean, loc_strength=p.loc_strength, precision_shape=p.precision_shape,
                    precision_rate=p.precision_rate, feature_concentration=p.feature_concentration)

    # -- sklearn API -----------------------------------------------------------------------

    def fit(self, X, y):
        """Condition on labelled rows. X (N, D), y (N,) labels of any hashable type."""
        _check_likelihood(self.likelihood)
        if self.method not in ("exact", "nuts", "svi"):
            raise DataError("method", "one of 'exact', 'nuts', 'svi'", repr(self.method))
        Xa, columns = self._validate_X(X, reset=True)
        codes, self.classes_ = self._validate_y(y, Xa.shape[0])
        Z = self._transform(Xa, fitting=True)
        seed = _seed_from(self.random_state)
        kwargs = self._model_kwargs(Z, codes)
        coords = {"feature": columns, "class": [str(c) for c in self.classes_]}
        dims = naive_bayes_dims(self.likelihood, bool(self.shared_variance))
        self.posterior_ = None
        if self.method == "exact":
            # NumPy end to end: exact, float64, and no compilation per data shape.
            self.posterior_ = conjugate_posterior(
                Z, codes, num_classes=len(self.classes_), likelihood=self.likelihood,
                shared_variance=bool(self.shared_variance), num_categories=getattr(self, "num_categories_", None),
                prior=self._prior())
            self.samples_ = sample_conjugate_posterior(np.random.default_rng(seed), self.posterior_,
                                                       int(self.num_samples))
            # The Fit is built on first access of ``fit_``: it traces the program, which costs
            # more than the exact fit itself and is not needed for prediction.
            self._fit = None
            self._fit_args = (kwargs, coords, dims)
        else:
            from .. import fit as _fit  # the core workflow

            options = (dict(num_chains=int(self.num_chains), num_warmup=int(self.num_warmup),
                            num_samples=int(self.num_samples)) if self.method == "nuts"
                       else dict(num_steps=int(self.num_steps), num_posterior_draws=int(self.num_samples)))
            self._fit = _fit(naive_bayes, kwargs, method=self.method, seed=seed, coords=coords, dims=dims,
                             progress_bar=False, **options)
            self.samples_ = {k: np.asarray(v) for k, v in self._fit.get_samples().items() if k in _PARAM_SITES}
        return self

    @property
    def fit_(self):
        """The :class:`ppl_models.Fit` of the last ``fit`` (exact draws: one chain)."""
        check_is_fitted(self, "samples_")
        if self._fit is None:
            kwargs, coords, dims = self._fit_args
            self._fit = _fit_from_samples(naive_bayes, kwargs, self.samples_, self.method, coords, dims)
        return self._fit

    def predict_proba_interval(self, X) -> ClassProbabilities:
        """Posterior mean and ``interval_prob`` credible interval of p(y = c | x); each (N, C)."""
        check_is_fitted(self, "samples_")
        Xa, _ = self._validate_X(X, reset=False)
        return posterior_class_probabilities(self._transform(Xa, fitting=False), self.samples_,
                                             self.likelihood, float(self.interval_prob))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = self.likelihood == "categorical"
        return tags


def _fit_from_samples(model, kwargs, samples, method, coords, dims):
    """A :class:`ppl_models.Fit` around draws made here: ``samples`` are (S, ...), one chain."""
    from ..fit import Fit

    return Fit.from_samples(model, kwargs, samples, method, group_by_chain=False, coords=coords, dims=dims)
