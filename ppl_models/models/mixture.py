"""Finite and Dirichlet-process mixture models with the assignment marginalized exactly.

Every program draws its parameters, builds a :class:`FiniteMixture` (a NumPyro distribution
whose ``log_prob`` is ``log sum_k w_k p(x | theta_k)``, computed by the pure-JAX kernel
:func:`ppl_models.kernels.mixture.mixture_log_likelihood`), and observes the data through it:
NUTS, HMC and SVI only ever see continuous parameters, the ``log_likelihood`` group is
pointwise and exact (LOO works), and forward simulation draws the components too.

Label switching
---------------
A finite mixture's likelihood is invariant under permuting the components, so an unconstrained
posterior has ``K!`` copies of every mode and chains that visit different copies fail r-hat.
The programs remove the symmetry by construction:

* Gaussian and multivariate Gaussian mixtures: the component locations (the ``order_by``
  coordinate for multivariate data) are **strictly increasing**, ``loc[0] < ... < loc[K-1]``.
* Poisson mixtures: the rates are strictly increasing.
* Latent-class models: the mixing weights are **decreasing**, ``weights[0] >= ... >=
  weights[K-1]`` (component 0 is the most prevalent class).

The ordered prior is the order-statistic distribution of ``K`` i.i.d. draws
(:class:`OrderedIID`): its density is ``K!`` times the i.i.d. density on the ordered set, so it is
proper, samples forward (prior predictive, SBC) and is exchangeable before sorting. Pass
``ordered=False`` to get the unconstrained model (to see label switching) and undo the switching
post hoc with :func:`relabel`.

Sites
-----
``weights`` (K,) mixing weights, ``loc`` (K,) or (K, D) locations, ``scale`` (K,) or (K, D)
standard deviations, ``corr_chol`` (K, D, D) LKJ correlation Cholesky factors, ``rate`` (K,)
Poisson rates, ``probs`` (K, J, C) item-response probabilities; the observed site has the name of
its keyword argument (``x``, ``X`` or ``y``) and lies in the plate ``"obs"``.
"""

from __future__ import annotations

from ..kernels import mixture as _kernel_module

from functools import partial
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to
from numpyro.infer.initialization import init_to_median

from ..data import ModelData, describe
from ..errors import DataError, ModelError
from ..kernels.mixture import (  # re-exported: ``mixture.responsibilities`` works from here too
    KMeansResult,
    MixtureLogLikelihood,
    PredictiveDensity,
    Relabelling,
    Responsibilities,
    all_permutations,
    apply_permutation,
    bernoulli_component_log_prob,
    categorical_component_log_prob,
    diag_normal_component_log_prob,
    hard_assignments,
    kmeans,
    match_to_reference,
    mixture_log_likelihood,
    mvn_component_log_prob,
    normal_component_log_prob,
    poisson_component_log_prob,
    predictive_density,
    relabel_by_sorting,
    responsibilities,
    stephens_relabel,
    stick_breaking_weights,
)

__all__ = [
    # distributions
    "FiniteMixture",
    "OrderedIID",
    "ItemResponses",
    # programs
    "gaussian_mixture",
    "mvn_mixture",
    "poisson_mixture",
    "latent_class",
    "dp_mixture",
    # initialisation
    "initial_values",
    "init_to_jittered_values",
    "mixture_init_strategy",
    # post-fit helpers
    "PosteriorResponsibilities",
    "DensityOnGrid",
    "ForwardDraws",
    "posterior_responsibilities",
    "posterior_assignments",
    "posterior_predictive_density",
    "sample_with_components",
    "relabel",
    "catalog_report",
    "COMPONENT_SITES",
] + list(_kernel_module.__all__)  # the kernels, re-exported


# ============================================================================================
# Distributions
# ============================================================================================


class FiniteMixture(dist.MixtureSameFamily):
    """``p(x) = sum_k w_k p(x | theta_k)`` with the assignment summed out exactly.

    A :class:`numpyro.distributions.MixtureSameFamily` whose ``log_prob`` is the log-sum-exp
    kernel of :mod:`ppl_models.kernels.mixture`, with the extra methods the post-fit helpers use.

    Parameters
    ----------
    weights : Array, shape (..., K)
        Mixing weights (a simplex).
    component_distribution : Distribution
        Batch shape ``(..., K)``: component ``k`` is the slice ``[..., k]``.

    Notes
    -----
    ``sample_with_intermediates`` (inherited) returns ``(x, [z])``: forward draws and the
    components that generated them. Under ``numpyro.sample`` the components land in the trace
    site's ``"intermediates"``.
    """

    def __init__(self, weights: jax.Array, component_distribution: dist.Distribution, *, validate_args=None):
        super().__init__(dist.Categorical(probs=weights), component_distribution, validate_args=validate_args)

    @property
    def log_weights(self) -> jax.Array:
        """Log mixing weights, shape (..., K)."""
        return jax.nn.log_softmax(self.mixing_distribution.logits, axis=-1)

    def component_log_prob(self, value: jax.Array) -> jax.Array:
        """``log p(value | z = k)``, shape ``value.batch + (K,)`` (no weights)."""
        return self.component_distribution.log_prob(jnp.expand_dims(value, self.mixture_dim))

    def log_prob(self, value: jax.Array, intermediates=None) -> jax.Array:
        del intermediates
        comp = self.component_log_prob(value)
        return mixture_log_likelihood(comp[..., None, :], self.log_weights[..., None, :]).pointwise[..., 0]

    def responsibilities(self, value: jax.Array) -> Responsibilities:
        """``p(z = k | value, theta)``, shape ``value.batch + (K,)``."""
        r = responsibilities(self.component_log_prob(value)[..., None, :], self.log_weights[..., None, :])
        return Responsibilities(log_resp=r.log_resp[..., 0, :], resp=r.resp[..., 0, :])

    def sample_with_components(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> tuple[jax.Array, jax.Array]:
        """Forward draws and their generating components ``(x, z)``."""
        x, (z,) = self.sample_with_intermediates(key, sample_shape)
        return x, z


class ItemResponses(dist.Distribution):
    """``J`` independent categorical responses: ``X_j ~ Categorical(probs[..., j, :])``.

    A latent-class component. NumPyro's ``Categorical`` has a parameter-dependent support
    (``0..C-1``), which ``MixtureSameFamily`` refuses; here the support is the parameter-free
    non-negative integers (a value ``>= C`` has log-probability ``-inf``).

    Parameters
    ----------
    probs : Array, shape (..., J, C)

    Batch shape ``...``, event shape ``(J,)``.
    """

    arg_constraints = {"probs": constraints.simplex}
    support = constraints.independent(constraints.nonnegative_integer, 1)
    pytree_data_fields = ("probs",)

    def __init__(self, probs: jax.Array, *, validate_args=None):
        self.probs = jnp.asarray(probs)
        super().__init__(batch_shape=jnp.shape(self.probs)[:-2], event_shape=jnp.shape(self.probs)[-2:-1],
                         validate_args=validate_args)

    @property
    def is_discrete(self) -> bool:
        return True

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + self.batch_shape + self.event_shape
        return jax.random.categorical(key, jnp.log(self.probs), axis=-1, shape=shape)

    def log_prob(self, value):
        C = jnp.shape(self.probs)[-1]
        value = jnp.asarray(value, dtype=jnp.int32)
        onehot = jax.nn.one_hot(value, C, dtype=self.probs.dtype)  # (..., J, C); all zero if >= C
        log_p = jnp.log(self.probs)
        # a response given probability zero must give -inf, not 0 * -inf = NaN
        picked = jnp.sum(jnp.where(onehot > 0, log_p, 0.0), axis=-1)
        in_range = (value >= 0) & (value < C)
        return jnp.sum(jnp.where(in_range, picked, -jnp.inf), axis=-1)


class OrderedIID(dist.Distribution):
    """The order statistics of ``K`` i.i.d. draws from a scalar distribution.

    ``sample`` sorts ``K`` i.i.d. draws; ``log_prob(v) = log K! + sum_k log p(v_k)`` on the
    strictly increasing vectors. With a real-valued base the support is
    ``constraints.ordered_vector``, with a positive base ``positive_ordered_vector``, so NUTS
    works in an unconstrained space through NumPyro's ordered bijections.

    Parameters
    ----------
    base : Distribution
        A scalar distribution (batch shape ``()``, event shape ``()``).
    size : int
        ``K``.
    """

    pytree_data_fields = ("base",)
    pytree_aux_fields = ("size",)

    def __init__(self, base: dist.Distribution, size: int, *, validate_args=None):
        if base.batch_shape != () or base.event_shape != ():
            raise ModelError(f"OrderedIID needs a scalar base distribution, got batch {base.batch_shape} "
                             f"and event {base.event_shape}")
        self.base = base
        self.size = int(size)
        super().__init__(batch_shape=(), event_shape=(self.size,), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=1)
    def support(self):
        base = self.base.support
        if base is constraints.positive:
            return constraints.positive_ordered_vector
        if base is constraints.real:
            return constraints.ordered_vector
        raise ModelError(f"OrderedIID supports a real or positive base, got support {base}")

    def sample(self, key, sample_shape=()):
        draws = self.base.sample(key, tuple(sample_shape) + (self.size,))
        return jnp.sort(draws, axis=-1)

    def log_prob(self, value):
        return jnp.sum(self.base.log_prob(value), axis=-1) + gammaln(self.size + 1.0)


# ============================================================================================
# Input checks (run on concrete arrays only; under jit the arguments are tracers)
# ============================================================================================


def _is_concrete(x: Any) -> bool:
    return x is not None and not isinstance(x, jax.core.Tracer)


def _check_num_components(name: str, k: Any, minimum: int = 1) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < minimum:
        raise ModelError(f"argument `{name}`: expected an integer >= {minimum}, got {describe(k)}")
    return int(k)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(name, "an integer >= 1", describe(value))
    return int(value)


def _check_data(name: str, x: Any, *, ndim: int, num_components: int, num_obs: int | None,
                integer: bool = False, low: float | None = None, high: int | None = None,
                num_features: int | None = None, components_arg: str | None = "num_components") -> Any:
    """Validate the observed array (when concrete) and return it as a JAX array.

    ``components_arg`` names the argument that sets the minimum number of rows
    (``num_components``); ``None`` asks for at least one row without naming one.
    """
    if not _is_concrete(x):
        return x
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(name, "numeric values", f"dtype {arr.dtype}")
    if arr.ndim != ndim:
        shape_word = "(num_obs,)" if ndim == 1 else "(num_obs, num_features)"
        raise DataError(name, f"a {ndim}-dimensional array of shape {shape_word}", f"shape {arr.shape}")
    bad = ~np.isfinite(arr.astype(np.float64))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(name, "finite values (no NaN or inf)",
                        f"{int(bad.sum())} non-finite value(s), the first at index {idx}")
    if integer and not np.all(arr == np.round(arr)):
        raise DataError(name, "integer counts", "non-integer values")
    if low is not None and arr.min() < low:
        raise DataError(name, f"values >= {low:g}", f"minimum {arr.min()!r}")
    if high is not None and arr.max() >= high:
        raise DataError(name, f"values < {high}", f"maximum {arr.max()!r}")
    n = arr.shape[0]
    if components_arg is None and n < 1:
        raise DataError(name, "at least one observation", f"{n}")
    if components_arg is not None and n < num_components:
        raise DataError(name, f"at least {components_arg}={num_components} observations", f"{n}")
    if num_obs is not None and int(num_obs) != n:
        raise DataError("num_obs", f"the number of rows of `{name}` ({n})", f"{num_obs}")
    if num_features is not None and ndim == 2 and arr.shape[1] != int(num_features):
        raise DataError(name, f"num_features={num_features} columns", f"{arr.shape[1]}")
    # a JAX array is returned as it is, so data sharded across devices stay sharded
    return x if isinstance(x, jax.Array) else jnp.asarray(arr)


def _num_obs(name: str, x: Any, num_obs: Any, num_components: int) -> int:
    if x is not None:
        return int(np.shape(x)[0])
    if num_obs is None:
        raise DataError("num_obs", f"the number of points to simulate when `{name}` is None", "None")
    if isinstance(num_obs, bool) or not isinstance(num_obs, (int, np.integer)) or num_obs < 1:
        raise DataError("num_obs", "an integer >= 1", describe(num_obs))
    return int(num_obs)


def _observe(name: str, mixture: FiniteMixture, x: Any, n: int, subsample_size: int | None):
    """Observe ``x`` through the mixture in the plate ``"obs"``; minibatches scale the likelihood."""
    with numpyro.plate("obs", n, subsample_size=subsample_size) as idx:
        obs = x if (x is None or subsample_size is None) else x[idx]
        return numpyro.sample(name, mixture, obs=obs)


def _ordered_or_iid(name: str, base: dist.Distribution, k: int, ordered: bool):
    if ordered:
        return numpyro.sample(name, OrderedIID(base, k))
    return numpyro.sample(name, base.expand([k]).to_event(1))


# ============================================================================================
# Programs
# ============================================================================================


def gaussian_mixture(x=None, *, num_components: int = 2, num_obs: int | None = None,
                     loc_mean: float = 0.0, loc_scale: float = 3.0, scale_scale: float = 1.0,
                     concentration: float = 1.0, ordered: bool = True, subsample_size: int | None = None):
    """Univariate Gaussian mixture with ordered locations.

    Generative story::

        weights ~ Dirichlet(concentration * 1_K)
        loc     ~ order statistics of K iid Normal(loc_mean, loc_scale)   (loc[0] < ... < loc[K-1])
        scale_k ~ HalfNormal(scale_scale)
        z_i     ~ Categorical(weights);  x_i | z_i ~ Normal(loc[z_i], scale[z_i])

    ``z`` is summed out in :class:`FiniteMixture`. The default priors suit standardised data.

    Parameters
    ----------
    x : array, shape (N,), optional
        Observations; ``None`` simulates ``num_obs`` points.
    num_components : int
        ``K >= 1``.
    num_obs : int, optional
        ``N`` when ``x`` is None (must equal ``len(x)`` otherwise).
    loc_mean, loc_scale, scale_scale, concentration : float
        Prior hyperparameters.
    ordered : bool
        ``True`` (default): the identifiability constraint ``loc[0] < ... < loc[K-1]``.
        ``False``: i.i.d. locations, the label-switching model.
    subsample_size : int, optional
        Minibatch size for SVI (the likelihood is scaled by ``N / subsample_size``).
    """
    K = _check_num_components("num_components", num_components)
    x = _check_data("x", x, ndim=1, num_components=K, num_obs=num_obs)
    n = _num_obs("x", x, num_obs, K)
    weights = numpyro.sample("weights", dist.Dirichlet(jnp.full((K,), float(concentration))))
    loc = _ordered_or_iid("loc", dist.Normal(loc_mean, loc_scale), K, ordered)
    with numpyro.plate("component", K):
        scale = numpyro.sample("scale", dist.HalfNormal(scale_scale))
    return _observe("x", FiniteMixture(weights, dist.Normal(loc, scale)), x, n, subsample_size)


def mvn_mixture(X=None, *, num_components: int = 2, num_obs: int | None = None,
                num_features: int | None = None, covariance: str = "full", order_by: int = 0,
                loc_mean: float = 0.0, loc_scale: float = 3.0, scale_scale: float = 1.0,
                lkj_concentration: float = 2.0, concentration: float = 1.0, ordered: bool = True,
                subsample_size: int | None = None):
    """Multivariate Gaussian mixture, full (LKJ-Cholesky) or diagonal covariance.

    Generative story::

        weights            ~ Dirichlet(concentration * 1_K)
        loc[:, order_by]   ~ order statistics of K iid Normal(loc_mean, loc_scale)   (increasing)
        loc[:, other]      ~ Normal(loc_mean, loc_scale)
        scale[k, d]        ~ HalfNormal(scale_scale)
        corr_chol[k]       ~ LKJCholesky(D, lkj_concentration)           (covariance="full")
        Sigma_k            = diag(scale_k) corr_chol_k corr_chol_k^T diag(scale_k)
        x_i | z_i          ~ MultivariateNormal(loc[z_i], Sigma_{z_i})

    Parameters
    ----------
    X : array, shape (N, D), optional
        Observations (standardise the columns for the default priors); ``None`` simulates.
    num_components : int
        ``K >= 1``.
    num_obs, num_features : int, optional
        ``N`` and ``D`` when ``X`` is None.
    covariance : {"full", "diag"}
    order_by : int
        The feature whose component locations are constrained increasing (pick one on which
        the components differ).
    ordered : bool
        ``False`` drops the ordering constraint (label switching).
    subsample_size : int, optional
        Minibatch size for SVI.
    """
    K = _check_num_components("num_components", num_components)
    if covariance not in ("full", "diag"):
        raise ModelError(f"argument `covariance`: expected 'full' or 'diag', got {covariance!r}")
    X = _check_data("X", X, ndim=2, num_components=K, num_obs=num_obs, num_features=num_features)
    n = _num_obs("X", X, num_obs, K)
    if X is not None:
        D = int(np.shape(X)[1])
    elif num_features is None:
        raise DataError("num_features", "the number of features to simulate when `X` is None", "None")
    else:
        D = int(num_features)
    if not 0 <= int(order_by) < D:
        raise DataError("order_by", f"a feature index in [0, {D})", f"{order_by}")
    j = int(order_by)
    weights = numpyro.sample("weights", dist.Dirichlet(jnp.full((K,), float(concentration))))
    loc_first = _ordered_or_iid("loc_order", dist.Normal(loc_mean, loc_scale), K, ordered)
    if D > 1:
        with numpyro.plate("component", K, dim=-2), numpyro.plate("feature_other", D - 1, dim=-1):
            loc_rest = numpyro.sample("loc_other", dist.Normal(loc_mean, loc_scale))
        cols = [loc_rest[:, :j], loc_first[:, None], loc_rest[:, j:]]
        loc = numpyro.deterministic("loc", jnp.concatenate(cols, axis=1))
    else:
        loc = numpyro.deterministic("loc", loc_first[:, None])
    with numpyro.plate("component", K, dim=-2), numpyro.plate("feature", D, dim=-1):
        scale = numpyro.sample("scale", dist.HalfNormal(scale_scale))
    if covariance == "full":
        # Not in the "component" plate: that plate sits at dim -2 above, and autoguides need a
        # plate to keep one dim; the K factors are one event instead (same density).
        corr_chol = numpyro.sample("corr_chol", dist.LKJCholesky(D, lkj_concentration).expand([K]).to_event(1))
        component = dist.MultivariateNormal(loc, scale_tril=scale[..., None] * corr_chol)
    else:
        component = dist.Normal(loc, scale).to_event(1)
    return _observe("X", FiniteMixture(weights, component), X, n, subsample_size)


def poisson_mixture(y=None, *, num_components: int = 2, num_obs: int | None = None,
                    rate_shape: float = 2.0, rate_rate: float = 0.1, concentration: float = 1.0,
                    ordered: bool = True, subsample_size: int | None = None):
    """Poisson mixture for over-dispersed counts, with ordered rates.

    Generative story::

        weights ~ Dirichlet(concentration * 1_K)
        rate    ~ order statistics of K iid Gamma(rate_shape, rate_rate)  (rate[0] < ... < rate[K-1])
        y_i | z_i ~ Poisson(rate[z_i])

    The default Gamma(2, 0.1) prior (mean 20, sd 14) is weakly informative for counts up to a
    hundred; rescale it for other data.

    Parameters
    ----------
    y : array, shape (N,), non-negative integers, optional
    num_components : int
    num_obs : int, optional
    rate_shape, rate_rate, concentration : float
    ordered : bool
    subsample_size : int, optional
    """
    K = _check_num_components("num_components", num_components)
    y = _check_data("y", y, ndim=1, num_components=K, num_obs=num_obs, integer=True, low=0)
    n = _num_obs("y", y, num_obs, K)
    weights = numpyro.sample("weights", dist.Dirichlet(jnp.full((K,), float(concentration))))
    rate = _ordered_or_iid("rate", dist.Gamma(rate_shape, rate_rate), K, ordered)
    return _observe("y", FiniteMixture(weights, dist.Poisson(rate)), y, n, subsample_size)


def latent_class(X=None, *, num_components: int = 2, num_categories: int = 2, num_obs: int | None = None,
                 num_items: int | None = None, item_concentration: float = 1.0, concentration: float = 1.0,
                 ordered: bool = True, subsample_size: int | None = None):
    """Latent-class model: ``J`` categorical items, conditionally independent given the class.

    Binary (Bernoulli) items are ``num_categories=2`` with responses coded 0/1.

    Generative story::

        g       ~ order statistics of K iid Gamma(concentration, 1)   (increasing)
        weights = reverse(g) / sum(g)          -> Dirichlet(concentration), decreasing
        probs[k, j] ~ Dirichlet(item_concentration * 1_C)
        X_ij | z_i ~ Categorical(probs[z_i, j])

    The identifiability constraint is ``weights[0] >= ... >= weights[K-1]``: the Gamma
    construction of the Dirichlet lets the weights be ordered through an ordered Gamma vector;
    its total ``sum(g)`` is a nuisance with a proper Gamma(K * concentration) prior, independent of
    the weights. ``ordered=False`` samples ``weights ~ Dirichlet`` directly.

    Parameters
    ----------
    X : array, shape (N, J), integers in ``0..num_categories-1``, optional
    num_components : int
    num_categories : int
        ``C >= 2``.
    num_obs, num_items : int, optional
        ``N`` and ``J`` when ``X`` is None.
    item_concentration, concentration : float
    ordered : bool
    subsample_size : int, optional
    """
    K = _check_num_components("num_components", num_components)
    C = _check_num_components("num_categories", num_categories, minimum=2)
    X = _check_data("X", X, ndim=2, num_components=K, num_obs=num_obs, integer=True, low=0, high=C,
                    num_features=num_items)
    n = _num_obs("X", X, num_obs, K)
    if X is not None:
        J = int(np.shape(X)[1])
        X = X.astype(jnp.int32) if _is_concrete(X) else X
    elif num_items is None:
        raise DataError("num_items", "the number of items to simulate when `X` is None", "None")
    else:
        J = int(num_items)
    if ordered:
        g = numpyro.sample("weights_unnormalised", OrderedIID(dist.Gamma(concentration, 1.0), K))
        weights = numpyro.deterministic("weights", g[::-1] / jnp.sum(g))
    else:
        weights = numpyro.sample("weights", dist.Dirichlet(jnp.full((K,), float(concentration))))
    with numpyro.plate("component", K, dim=-2), numpyro.plate("item", J, dim=-1):
        probs = numpyro.sample("probs", dist.Dirichlet(jnp.full((C,), float(item_concentration))))
    component = ItemResponses(probs)  # batch (K,), event (J,)
    return _observe("X", FiniteMixture(weights, component), X, n, subsample_size)


def dp_mixture(x=None, *, truncation: int = 10, num_obs: int | None = None, alpha_shape: float = 1.0,
               alpha_rate: float = 1.0, loc_mean: float = 0.0, loc_scale: float = 3.0,
               scale_scale: float = 1.0, subsample_size: int | None = None):
    """Truncated stick-breaking Dirichlet-process mixture of Gaussians (unknown K).

    Generative story (``T = truncation`` atoms)::

        alpha   ~ Gamma(alpha_shape, alpha_rate)
        v_t     ~ Beta(1, alpha),  t < T
        weights = stick_breaking(v)            (the last atom takes the remainder)
        loc_t   ~ Normal(loc_mean, loc_scale);  scale_t ~ HalfNormal(scale_scale)
        x_i | z_i ~ Normal(loc[z_i], scale[z_i])       (1-D x)
        x_i | z_i ~ Normal(loc[z_i], scale[z_i]) per feature, independent  (2-D x, diagonal)

    The atoms are not ordered (the stick-breaking weights are only stochastically decreasing),
    so per-atom parameters switch labels; use label-invariant summaries (the predictive density,
    the number of atoms with weight above a threshold, co-clustering) or :func:`relabel`.

    Parameters
    ----------
    x : array, shape (N,) or (N, D), optional
    truncation : int
        ``T >= 2`` atoms; choose it so the last atoms carry negligible weight.
    num_obs : int, optional
    alpha_shape, alpha_rate, loc_mean, loc_scale, scale_scale : float
    subsample_size : int, optional
    """
    T = _check_num_components("truncation", truncation, minimum=2)
    if _is_concrete(x) and np.ndim(x) not in (1, 2):
        raise DataError("x", "a 1- or 2-dimensional array", f"shape {np.shape(x)}")
    ndim = 1 if x is None else int(np.ndim(x))
    x = _check_data("x", x, ndim=ndim, num_components=1, num_obs=num_obs, components_arg=None)
    n = _num_obs("x", x, num_obs, 1)
    alpha = numpyro.sample("alpha", dist.Gamma(alpha_shape, alpha_rate))
    with numpyro.plate("stick", T - 1):
        v = numpyro.sample("v", dist.Beta(1.0, alpha))
    weights = numpyro.deterministic("weights", stick_breaking_weights(v))
    if ndim == 1:
        with numpyro.plate("component", T):
            loc = numpyro.sample("loc", dist.Normal(loc_mean, loc_scale))
            scale = numpyro.sample("scale", dist.HalfNormal(scale_scale))
        component = dist.Normal(loc, scale)
    else:
        D = int(np.shape(x)[1])
        with numpyro.plate("component", T, dim=-2), numpyro.plate("feature", D, dim=-1):
            loc = numpyro.sample("loc", dist.Normal(loc_mean, loc_scale))
            scale = numpyro.sample("scale", dist.HalfNormal(scale_scale))
        component = dist.Normal(loc, scale).to_event(1)
    return _observe("x", FiniteMixture(weights, component), x, n, subsample_size)


_OBSERVED_ARG = {gaussian_mixture: "x", mvn_mixture: "X", poisson_mixture: "y", latent_class: "X", dp_mixture: "x"}

#: Sites whose first axis (after the draw axis) is the component axis, for :func:`relabel`.
COMPONENT_SITES = ("weights", "loc", "scale", "corr_chol", "rate", "probs", "loc_order", "loc_other")


# ============================================================================================
# Initialisation
# ============================================================================================


def _strictly_increasing(v: np.ndarray, gap: float) -> np.ndarray:
    """Nudge a sorted vector so that it is strictly increasing (ties would sit on the boundary)."""
    v = np.sort(np.asarray(v, dtype=np.float64))
    for i in range(1, v.size):
        if v[i] <= v[i - 1]:
            v[i] = v[i - 1] + gap
    return v


def _kmeans_np(X: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    res = kmeans(jax.random.PRNGKey(seed), jnp.asarray(X, dtype=jnp.float32), k)
    return np.asarray(res.centers, dtype=np.float64), np.asarray(res.labels)


def initial_values(model: Callable, data: Mapping[str, Any] | ModelData, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Starting values of the latent sites from k-means on the data.

    Locations (rates) are the k-means centers, sorted to satisfy the ordering constraint; scales,
    correlations and weights are the within-cluster statistics. A degenerate cluster (one point)
    falls back to the overall spread.

    Parameters
    ----------
    model : one of the programs of this module
    data : mapping or ModelData
        The program's keyword arguments, including the observed array.
    seed : int
        k-means++ seed.

    Returns
    -------
    dict
        Site name -> value in the constrained space.
    """
    kwargs = dict(data.kwargs) if isinstance(data, ModelData) else dict(data)
    if model not in _OBSERVED_ARG:
        raise ModelError(f"initial_values knows the programs of ppl_models.models.mixture, got {model!r}")
    name = _OBSERVED_ARG[model]
    if kwargs.get(name) is None:
        raise DataError(name, "the observed data (k-means initialisation needs them)", "None")
    # The program's own checks (K, non-finite values, shape, counts, category range) on these
    # arguments: a bad input raises the error the fit would raise, not NaN starting values.
    handlers.trace(handlers.seed(model, jax.random.PRNGKey(0))).get_trace(**kwargs)
    x = np.asarray(kwargs[name], dtype=np.float64)
    K = int(kwargs.get("truncation" if model is dp_mixture else "num_components",
                       10 if model is dp_mixture else 2))
    if x.shape[0] < K:
        raise DataError(name, f"at least {K} observations for {K} components", f"{x.shape[0]}")
    X2 = x[:, None] if x.ndim == 1 else x
    spread = np.maximum(X2.std(axis=0), 1e-3)

    if model is latent_class:
        C = int(kwargs.get("num_categories", 2))
        onehot = np.eye(C)[x.astype(int)].reshape(x.shape[0], -1)
        _, labels = _kmeans_np(onehot, K, seed)
        sizes = np.bincount(labels, minlength=K).astype(np.float64)
        order = np.argsort(-sizes)  # component 0 = the largest cluster
        probs = np.stack([
            (np.eye(C)[x[labels == k].astype(int)].sum(0) + 1.0) / ((labels == k).sum() + C) for k in order
        ]) if x.ndim == 2 else None
        w = (sizes[order] + 1.0) / (sizes.sum() + K)
        alpha = float(kwargs.get("concentration", 1.0))
        values = {"probs": probs}
        if kwargs.get("ordered", True):
            # g ascending with sum K*alpha (its prior mean); weights = reverse(g) / sum(g).
            g = _strictly_increasing(w[::-1] * K * alpha, 1e-3 * alpha)
            values["weights_unnormalised"] = g
        else:
            values["weights"] = w
        return values

    centers, labels = _kmeans_np(X2 / spread, K, seed)
    centers = centers * spread
    scales = np.stack([X2[labels == k].std(axis=0) if (labels == k).sum() > 1 else spread for k in range(K)])
    scales = np.maximum(scales, 0.05 * spread)
    sizes = np.bincount(labels, minlength=K).astype(np.float64)
    w = (sizes + 1.0) / (sizes.sum() + K)

    if model is gaussian_mixture:
        order = np.argsort(centers[:, 0])
        loc = centers[order, 0]
        if kwargs.get("ordered", True):
            loc = _strictly_increasing(loc, 1e-3 * spread[0])
        return {"weights": w[order], "loc": loc, "scale": scales[order, 0]}
    if model is poisson_mixture:
        order = np.argsort(centers[:, 0])
        rate = np.maximum(centers[order, 0], 0.1)
        if kwargs.get("ordered", True):
            rate = _strictly_increasing(rate, 1e-2)
        return {"weights": w[order], "rate": rate}
    if model is mvn_mixture:
        j = int(kwargs.get("order_by", 0))
        order = np.argsort(centers[:, j])
        centers, scales, w = centers[order], scales[order], w[order]
        labels = np.argsort(order)[labels]
        D = X2.shape[1]
        loc_order = centers[:, j]
        if kwargs.get("ordered", True):
            loc_order = _strictly_increasing(loc_order, 1e-3 * spread[j])
        values = {"weights": w, "loc_order": loc_order, "scale": scales}
        if D > 1:
            values["loc_other"] = np.delete(centers, j, axis=1)
        if kwargs.get("covariance", "full") == "full":
            chols = []
            for k in range(K):
                pts = X2[labels == k]
                corr = np.corrcoef(pts, rowvar=False) if pts.shape[0] > D else np.eye(D)
                corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)
                # Shrink toward the identity so the factor is well inside the LKJ support.
                corr = 0.9 * corr + 0.1 * np.eye(D)
                np.fill_diagonal(corr, 1.0)
                chols.append(np.linalg.cholesky(corr))
            values["corr_chol"] = np.stack(chols)
        return values
    # dp_mixture: the atoms take k-means centers, ordered by cluster size so the stick
    # fractions start decreasing like the prior's weights.
    order = np.argsort(-sizes)
    wd = w[order]
    remaining = 1.0 - np.concatenate([[0.0], np.cumsum(wd)[:-1]])
    v = np.clip(wd[:-1] / remaining[:-1], 0.01, 0.99)
    loc = centers[order] if x.ndim == 2 else centers[order, 0]
    scale = scales[order] if x.ndim == 2 else scales[order, 0]
    return {"alpha": np.array(1.0), "v": v, "loc": loc, "scale": scale}


def init_to_jittered_values(site=None, values: Mapping[str, Any] | None = None, radius: float = 0.1):
    """A NumPyro init strategy: given values, perturbed uniformly in the unconstrained space.

    Each chain's perturbation comes from that chain's init key, so chains start apart (r-hat
    means something) but in the same basin, whatever the chain method. Sites without a value
    fall back to ``init_to_median``.

    Use as ``init_to_jittered_values(values=..., radius=...)``.
    """
    if site is None:
        return partial(init_to_jittered_values, values=dict(values or {}), radius=radius)
    if site["type"] == "sample" and not site["is_observed"] and site["name"] in (values or {}):
        value = jnp.asarray(values[site["name"]])
        fn = site["fn"]
        transform = biject_to(fn.support)
        unconstrained = transform.inv(value)
        key = site["kwargs"].get("rng_key")
        if key is None or radius == 0:
            return value
        noise = jax.random.uniform(key, jnp.shape(unconstrained), minval=-radius, maxval=radius)
        return transform(unconstrained + noise)
    return init_to_median(site, num_samples=15)


def mixture_init_strategy(model: Callable, data: Mapping[str, Any] | ModelData, *, seed: int = 0,
                          radius: float = 0.1) -> Callable:
    """The init strategy to pass as ``ppl_models.fit(..., init_strategy=...)`` for a mixture.

    k-means starting values (:func:`initial_values`) jittered per chain
    (:func:`init_to_jittered_values`). Works with every chain method and with SVI (where it sets
    the guide's initial locations).
    """
    return init_to_jittered_values(values=initial_values(model, data, seed=seed), radius=radius)


# ``program.default_init_strategy(data, seed=...)`` returns the k-means init strategy, so that
# a caller (the core's ``fit``, a catalog runner) can start a mixture soundly when no init is given.
for _prog in _OBSERVED_ARG:
    _prog.default_init_strategy = partial(mixture_init_strategy, _prog)


# ============================================================================================
# Post-fit helpers
# ============================================================================================


class PosteriorResponsibilities(NamedTuple):
    """Posterior assignment probabilities.

    Attributes
    ----------
    mean : ndarray, shape (N, K)
        ``p(z_i = k | x) = E[p(z_i = k | x_i, theta) | x]``, averaged over posterior draws.
    log_draws : ndarray, shape (S, N, K) or None
        Per-draw log responsibilities, when asked for.
    """

    mean: np.ndarray
    log_draws: np.ndarray | None


class DensityOnGrid(NamedTuple):
    """Posterior predictive density ``p(x_new | x)`` on a grid.

    Attributes
    ----------
    grid : ndarray, shape (G,) or (G, D)
    density : ndarray, shape (G,)
        Posterior mean of the mixture density.
    lower, upper : ndarray, shape (G,)
        Pointwise equal-tailed credible band of the density (``ci_prob``).
    component_density : ndarray, shape (G, K)
        Posterior mean of ``w_k p(x | theta_k)`` (meaningful when labels are identified).
    """

    grid: np.ndarray
    density: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    component_density: np.ndarray


class ForwardDraws(NamedTuple):
    """New data drawn forward with the components that generated them.

    Attributes
    ----------
    values : ndarray, shape (S, n) or (S, n, D)
    components : ndarray, shape (S, n), int
    """

    values: np.ndarray
    components: np.ndarray


def _resolve(fit: Any, data: Mapping[str, Any] | ModelData | None, model: Callable | None):
    """(model, kwargs, flat samples) from a Fit, or from samples + model + data."""
    if isinstance(fit, Mapping):
        if model is None or data is None:
            raise DataError("model", "a model and data when a dict of samples is given", describe(model))
        samples = {k: np.asarray(v) for k, v in fit.items()}
    else:
        samples = fit.get_samples()
        model = model if model is not None else fit.model
        if data is not None:
            # New points keep the fitted program's static options (K, covariance, ...); the
            # fitted size does not apply to them.
            new = dict(data.kwargs) if isinstance(data, ModelData) else dict(data)
            base = {k: v for k, v in fit.data.items() if k != "num_obs"}
            data = {**base, **new}
        else:
            data = fit.data
    kwargs = dict(data.kwargs) if isinstance(data, ModelData) else dict(data)
    kwargs.pop("subsample_size", None)  # post-fit computations use all the data
    return model, kwargs, samples


def _unwrap(fn: dist.Distribution) -> dist.Distribution:
    while isinstance(fn, (dist.ExpandedDistribution, dist.Independent, dist.MaskedDistribution)):
        fn = fn.base_dist
    return fn


def _mixture_site(model: Callable, kwargs: dict, params: dict) -> tuple[str, FiniteMixture]:
    tr = handlers.trace(handlers.substitute(handlers.seed(model, jax.random.PRNGKey(0)), data=params)).get_trace(**kwargs)
    for name, site in tr.items():
        if site["type"] == "sample" and isinstance(_unwrap(site["fn"]), FiniteMixture):
            return name, _unwrap(site["fn"])
    raise ModelError("the model has no site observed through a FiniteMixture")


def _thin(samples: dict[str, np.ndarray], max_draws: int | None) -> dict[str, np.ndarray]:
    if max_draws is not None:
        _check_positive_int("max_draws", max_draws)
    n = next(iter(samples.values())).shape[0]
    if max_draws is None or n <= max_draws:
        return samples
    idx = np.linspace(0, n - 1, int(max_draws)).round().astype(int)
    return {k: v[idx] for k, v in samples.items()}


def _latent_only(model, kwargs, samples):
    """The latent sample sites and the deterministic sites present in ``samples``.

    The deterministic values given are substituted as they are (``handlers.substitute`` sets
    deterministic sites too), so the helpers use exactly the draws they are handed: after
    :func:`relabel` the permuted ``weights`` of a DP mixture are the weights used, not weights
    rebuilt from the stick fractions.
    """
    tr = handlers.trace(handlers.seed(model, jax.random.PRNGKey(0))).get_trace(**kwargs)
    keep = {n for n, s in tr.items()
            if (s["type"] == "sample" and not s.get("is_observed", False)) or s["type"] == "deterministic"}
    return {k: jnp.asarray(v) for k, v in samples.items() if k in keep}


def _per_draw(model, kwargs, samples, fn, batch_size):
    """Map ``fn(mixture, params)`` over draws, ``batch_size`` draws at a time (bounded memory)."""
    params = _latent_only(model, kwargs, samples)

    def one(p):
        _, mix = _mixture_site(model, kwargs, p)
        return fn(mix)

    return jax.lax.map(one, params, batch_size=batch_size)


def _batch(n_points: int, k: int) -> int:
    """Draws per step of ``lax.map`` so that one step holds about 2e7 numbers."""
    return max(1, int(2e7 // max(1, n_points * k)))


def posterior_responsibilities(fit: Any, data: Mapping[str, Any] | ModelData | None = None, *,
                               model: Callable | None = None, max_draws: int | None = None,
                               return_draws: bool = False) -> PosteriorResponsibilities:
    """Exact posterior responsibilities ``p(z_i = k | x)``.

    For each posterior draw, Bayes' rule on the joint ``w_k p(x_i | theta_k)``
    (:func:`ppl_models.kernels.mixture.responsibilities`); then the average over draws. The
    average is meaningful when labels are identified (the ordered programs, or after
    :func:`relabel`).

    Parameters
    ----------
    fit : Fit or dict of samples (draw, ...)
    data : mapping or ModelData, optional
        Points to assign (default: the fitted data). The observed argument must be set.
    model : callable, optional
        Needed when ``fit`` is a dict of samples.
    max_draws : int, optional
        Thin the posterior to about this many draws.
    return_draws : bool
        Also return the per-draw log responsibilities, shape (S, N, K).
    """
    model, kwargs, samples = _resolve(fit, data, model)
    samples = _thin(samples, max_draws)
    obs_name = _OBSERVED_ARG.get(model)
    value = jnp.asarray(kwargs[obs_name]) if obs_name else None
    if value is None:
        raise DataError(obs_name or "data", "the observed points to assign", "None")

    def resp(mix):
        return mix.responsibilities(value).log_resp

    log_draws = _per_draw(model, kwargs, samples, resp, _batch(value.shape[0], 16))
    log_draws = np.asarray(log_draws)
    mean = np.exp(log_draws).mean(axis=0)
    return PosteriorResponsibilities(mean=mean, log_draws=log_draws if return_draws else None)


def posterior_assignments(fit: Any, data=None, *, model=None, max_draws: int | None = None) -> np.ndarray:
    """Hard assignments: ``argmax_k p(z_i = k | x)``, shape (N,)."""
    r = posterior_responsibilities(fit, data, model=model, max_draws=max_draws)
    return np.asarray(hard_assignments(r.mean))


def _check_grid(model: Callable, kwargs: Mapping[str, Any], grid: Any) -> np.ndarray:
    """The grid as a float64 array, checked against the program's observations."""
    try:
        arr = np.asarray(grid)
    except Exception as exc:  # ragged lists and such
        raise DataError("grid", "an array-like of points", describe(grid), str(exc)) from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError("grid", "numeric values", f"dtype {arr.dtype}")
    obs = _OBSERVED_ARG.get(model)
    data = kwargs.get(obs) if obs else None
    ndim = D = None
    if model in (gaussian_mixture, poisson_mixture):
        ndim = 1
    elif model in (mvn_mixture, latent_class):
        ndim = 2
        D = kwargs.get("num_features" if model is mvn_mixture else "num_items")
    elif model is dp_mixture:
        ndim = int(np.ndim(data)) if data is not None else 1
    if data is not None and np.ndim(data) == 2:
        D = int(np.shape(data)[1])
    if ndim is not None and arr.ndim != ndim:
        want = "(G,) for a univariate model" if ndim == 1 else f"(G, {D if D is not None else 'D'}) for this model"
        raise DataError("grid", f"a {ndim}-dimensional array of shape {want}", f"shape {arr.shape}")
    if ndim == 2 and D is not None and arr.shape[1] != int(D):
        raise DataError("grid", f"{D} columns (one per feature of the fitted data)", f"{arr.shape[1]} columns")
    if arr.size == 0 or arr.shape[0] == 0:
        raise DataError("grid", "at least one point", f"shape {arr.shape}")
    bad = ~np.isfinite(arr.astype(np.float64))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError("grid", "finite values (no NaN or inf)",
                        f"{int(bad.sum())} non-finite value(s), the first at index {idx}")
    if model in (poisson_mixture, latent_class):
        if not np.all(arr == np.round(arr)) or arr.min() < 0:
            raise DataError("grid", "non-negative integer values (counts or category codes)",
                            f"values from {arr.min()!r} to {arr.max()!r}")
        C = int(kwargs.get("num_categories", 2))
        if model is latent_class and arr.max() >= C:
            raise DataError("grid", f"category codes < num_categories={C}", f"maximum {arr.max()!r}")
    return arr.astype(np.float64)


def posterior_predictive_density(fit: Any, grid: Any, *, data=None, model=None, max_draws: int | None = 1000,
                                 ci_prob: float = 0.9) -> DensityOnGrid:
    """Posterior predictive density of a new point on a grid.

    Parameters
    ----------
    fit : Fit or dict of samples
    grid : array, shape (G,) for univariate models or (G, D) for multivariate ones
    max_draws : int, optional
        Draws used (thinned evenly).
    ci_prob : float
        Mass of the pointwise credible band.

    Returns
    -------
    DensityOnGrid
    """
    model, kwargs, samples = _resolve(fit, data, model)
    grid = _check_grid(model, kwargs, grid)
    if isinstance(ci_prob, bool) or not isinstance(ci_prob, (int, float, np.floating)) or not 0 < ci_prob < 1:
        raise DataError("ci_prob", "a probability in (0, 1)", describe(ci_prob))
    samples = _thin(samples, max_draws)
    g = jnp.asarray(grid)

    def dens(mix):
        comp = mix.component_log_prob(g)  # (G, K)
        return comp, mix.log_weights

    comp, logw = _per_draw(model, kwargs, samples, dens, _batch(grid.shape[0], 16))
    pd_ = predictive_density(comp, logw)
    draws = np.asarray(pd_.draws)
    a = (1.0 - ci_prob) / 2.0
    comp_density = np.exp(np.asarray(comp) + np.asarray(logw)[:, None, :]).mean(axis=0)
    return DensityOnGrid(grid=grid, density=np.asarray(pd_.density), lower=np.quantile(draws, a, axis=0),
                         upper=np.quantile(draws, 1 - a, axis=0), component_density=comp_density)


def sample_with_components(fit: Any, num_obs: int, *, seed: int = 0, data=None, model=None,
                           max_draws: int | None = 100) -> ForwardDraws:
    """Draw ``num_obs`` new points per posterior draw, with the components that generated them.

    Parameters
    ----------
    fit : Fit or dict of samples
    num_obs : int
        New points per draw.
    seed : int
    max_draws : int, optional
        Posterior draws used (thinned evenly).

    Returns
    -------
    ForwardDraws
        ``values`` of shape (S, num_obs[, D]) and ``components`` of shape (S, num_obs).
    """
    num_obs = _check_positive_int("num_obs", num_obs)
    model, kwargs, samples = _resolve(fit, data, model)
    samples = _thin(samples, max_draws)
    params = _latent_only(model, kwargs, samples)
    S = next(iter(params.values())).shape[0]
    keys = jax.random.split(jax.random.PRNGKey(seed), S)

    def one(p, key):
        _, mix = _mixture_site(model, kwargs, p)
        return mix.sample_with_components(key, (int(num_obs),))

    values, comps = jax.vmap(one)(params, keys)
    return ForwardDraws(values=np.asarray(values), components=np.asarray(comps))


def relabel(fit: Any, *, method: str = "stephens", key: str = "loc", key_index: int = 0, data=None,
            model=None, num_iters: int = 20, sites: tuple[str, ...] = COMPONENT_SITES) -> tuple[dict[str, np.ndarray], Relabelling]:
    """Post-hoc relabelling of the draws of a mixture fitted without an ordering constraint.

    Parameters
    ----------
    fit : Fit or dict of samples (draw, ...)
    method : {"stephens", "sort"}
        ``"sort"``: order every draw by ``samples[key]`` (its ``key_index`` column for (K, D)
        locations). ``"stephens"``: Stephens' KL matching of per-draw responsibilities
        (:func:`ppl_models.kernels.mixture.stephens_relabel`), which does not need a separated
        coordinate.
    sites : tuple of str
        Sites whose first axis after the draws is the component axis; they are permuted.

    Returns
    -------
    samples : dict
        The draws with every component site relabelled, flat (S, ...). The sites the weights
        are built from follow the relabelled ``weights``: a DP mixture's stick fractions ``v``
        are recomputed (``v_t = w_t / (1 - sum_{s<t} w_s)``), an ordered latent-class model's
        ``weights_unnormalised`` permuted. Label-invariant quantities (the log-likelihood, the
        predictive density) are unchanged. Other sites are unchanged.
    relabelling : Relabelling
    """
    model_, kwargs, samples = _resolve(fit, data, model)
    if method == "sort":
        if key not in samples:
            raise DataError("key", f"a site among {sorted(samples)}", repr(key))
        k = samples[key]
        k = k[..., key_index] if k.ndim == 3 else k
        rl = relabel_by_sorting(jnp.asarray(k))
    elif method == "stephens":
        r = posterior_responsibilities(samples, kwargs, model=model_, return_draws=True)
        rl = stephens_relabel(jnp.asarray(r.log_draws), num_iters=num_iters)
    else:
        raise DataError("method", "'stephens' or 'sort'", repr(method))
    perm = rl.permutation
    out = {}
    for name, v in samples.items():
        if name in sites and v.ndim >= 2 and v.shape[1] == perm.shape[1]:
            out[name] = np.asarray(apply_permutation(jnp.asarray(v), perm, axis=1))
        else:
            out[name] = v
    _rebuild_weight_parameters(model_, samples, out)
    return out, rl


def _stick_fractions(weights: np.ndarray) -> np.ndarray:
    """The stick fractions ``v`` (S, T-1) whose stick-breaking weights are ``weights`` (S, T).

    ``v_t = w_t / sum_{s>=t} w_s`` (the remaining stick as a tail sum, not ``1 - sum_{s<t} w_s``,
    which cancels catastrophically and would give atoms of weight ~1e-30 a weight ~1e-8); a stick
    already used up (remainder 0) gets ``v_t = 0``.
    """
    w = np.asarray(weights, dtype=np.float64)
    tail = np.cumsum(w[..., ::-1], axis=-1)[..., ::-1]  # tail[..., t] = sum_{s>=t} w_s
    remaining = tail[..., :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(remaining > 0, w[..., :-1] / remaining, 0.0)
    return np.clip(v, 0.0, 1.0)


def _rebuild_weight_parameters(model: Callable, before: Mapping[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    """Make the sampled sites that the weights are built from agree with the relabelled weights.

    ``weights`` is deterministic in two programs: the DP's stick-breaking weights (from ``v``)
    and the ordered latent-class weights (``reverse(g) / sum(g)``, ``g = weights_unnormalised``).
    Permuting ``weights`` alone would leave those sites describing the old labelling.
    """
    if "weights" not in after or after["weights"] is before.get("weights"):
        return
    w = np.asarray(after["weights"])
    if model is dp_mixture and "v" in after:
        # float64: in float32 a fraction within 6e-8 of 1 rounds to 1, which would zero the
        # weight of every later atom (e.g. an atom of weight 1e-8 placed after one of 0.97).
        after["v"] = _stick_fractions(w)
    if model is latent_class and "weights_unnormalised" in after:
        g = np.asarray(before["weights_unnormalised"])
        # weights = g[::-1] / sum(g): the permuted g with the same total gives the new weights.
        after["weights_unnormalised"] = (w[..., ::-1] * g.sum(axis=-1, keepdims=True)).astype(g.dtype)


#: ``ModelData.extra`` keys holding a reference labelling of the rows (e.g. penguin species),
#: which :func:`catalog_report` compares the hard assignments with.
REFERENCE_LABEL_KEYS = ("species", "labels")


def catalog_report(fit: Any, model_data: ModelData, max_draws: int = 400) -> dict[str, Any]:
    """What ``ppl-models run`` prints for a mixture card (``[outputs] report``).

    Returns a dict: ``cluster_sizes``, the number of points hard-assigned to each component
    (:func:`posterior_assignments` on the fitted data, ``max_draws`` draws), and, for every
    reference labelling the data set carries in ``extra`` (:data:`REFERENCE_LABEL_KEYS`, e.g. the
    penguins' species, never used in fitting), ``adjusted_rand_index_vs_<key>``: the adjusted Rand
    index of the hard assignments against it (1 = the same partition, ~0 = chance).
    """
    from sklearn.metrics import adjusted_rand_score

    z = posterior_assignments(fit, max_draws=max_draws)
    K = int(fit.get_samples()["weights"].shape[-1])
    out: dict[str, Any] = {"cluster_sizes": np.bincount(z, minlength=K).tolist()}
    extra = getattr(model_data, "extra", None) or {}
    for key in REFERENCE_LABEL_KEYS:
        labels = extra.get(key)
        if labels is not None and len(labels) == len(z):
            out[f"adjusted_rand_index_vs_{key}"] = round(float(adjusted_rand_score(np.asarray(labels), z)), 4)
    return out
