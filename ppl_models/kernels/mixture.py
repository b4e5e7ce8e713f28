"""Pure-JAX kernels for finite mixtures: marginal log-likelihood, responsibilities, relabelling.

Everything here is a function of arrays built from ``jax.numpy`` and ``jax.lax`` only (no
NumPyro), works in log space, and does not ``jit`` itself: the caller composes ``jit``/``vmap``.

Conventions
-----------
``N`` data points, ``K`` components, ``D`` features, ``S`` posterior draws, ``G`` grid points.
A *component log-density matrix* ``component_log_prob`` has shape ``(..., N, K)`` and holds
``log p(x_i | theta_k)``; ``log_weights`` has shape ``(..., K)`` (or ``(..., N, K)``) and holds
``log w_k``. The marginal ``log p(x_i) = logsumexp_k(log w_k + log p(x_i | theta_k))`` sums out
the assignment ``z_i`` exactly.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.special import gammaln, logsumexp

__all__ = [
    "MixtureLogLikelihood",
    "Responsibilities",
    "PredictiveDensity",
    "Relabelling",
    "KMeansResult",
    "mixture_log_likelihood",
    "responsibilities",
    "hard_assignments",
    "predictive_density",
    "normal_component_log_prob",
    "mvn_component_log_prob",
    "diag_normal_component_log_prob",
    "poisson_component_log_prob",
    "categorical_component_log_prob",
    "bernoulli_component_log_prob",
    "stick_breaking_weights",
    "all_permutations",
    "apply_permutation",
    "relabel_by_sorting",
    "match_to_reference",
    "stephens_relabel",
    "kmeans",
]


class MixtureLogLikelihood(NamedTuple):
    """Marginal log-likelihood of a mixture.

    Attributes
    ----------
    pointwise : Array, shape (..., N)
        ``log p(x_i)`` with the assignment summed out.
    total : Array, shape (...)
        ``sum_i log p(x_i)``.
    """

    pointwise: jax.Array
    total: jax.Array


class Responsibilities(NamedTuple):
    """Posterior assignment probabilities ``p(z_i = k | x_i, theta)``.

    Attributes
    ----------
    log_resp : Array, shape (..., N, K)
        Log responsibilities; ``logsumexp`` over the last axis is zero.
    resp : Array, shape (..., N, K)
        Responsibilities; rows sum to one.
    """

    log_resp: jax.Array
    resp: jax.Array


class PredictiveDensity(NamedTuple):
    """Posterior predictive density on a grid, averaged over posterior draws.

    Attributes
    ----------
    log_density : Array, shape (G,)
        ``log (1/S sum_s p(x_g | theta_s))``, the log posterior predictive density.
    density : Array, shape (G,)
        ``exp(log_density)``.
    draws : Array, shape (S, G)
        The mixture density of every draw ``p(x_g | theta_s)`` (for credible bands).
    """

    log_density: jax.Array
    density: jax.Array
    draws: jax.Array


class Relabelling(NamedTuple):
    """Result of a post-hoc relabelling.

    Attributes
    ----------
    permutation : Array, shape (S, K), int
        For draw ``s``, new label ``k`` takes old label ``permutation[s, k]``; apply it with
        :func:`apply_permutation`.
    reference : Array, shape (..., K) or (N, K)
        What the draws were matched to (sorted keys, or the Stephens reference responsibilities).
    cost : Array, shape (S,)
        The matching cost of each draw under its chosen permutation (0 for sorting).
    """

    permutation: jax.Array
    reference: jax.Array
    cost: jax.Array


class KMeansResult(NamedTuple):
    """Lloyd's k-means.

    Attributes
    ----------
    centers : Array, shape (K, D)
    labels : Array, shape (N,), int
    inertia : Array, shape ()
        Sum of squared distances to the assigned center.
    """

    centers: jax.Array
    labels: jax.Array
    inertia: jax.Array


# --------------------------------------------------------------------------------------------
# Marginal likelihood and responsibilities
# --------------------------------------------------------------------------------------------


def _joint(component_log_prob: jax.Array, log_weights: jax.Array) -> jax.Array:
    """``log w_k + log p(x_i | theta_k)``, broadcasting ``(..., K)`` weights over ``N``."""
    component_log_prob = jnp.asarray(component_log_prob)
    log_weights = jnp.asarray(log_weights)
    if log_weights.ndim < component_log_prob.ndim:
        # (..., K) weights are shared by every point: insert the N axis.
        log_weights = jnp.expand_dims(log_weights, -2)
    joint = component_log_prob + log_weights
    # A component with weight zero (log w = -inf) must not produce NaN through -inf + inf.
    return jnp.where(jnp.isnan(joint), -jnp.inf, joint)


def mixture_log_likelihood(component_log_prob: jax.Array, log_weights: jax.Array) -> MixtureLogLikelihood:
    """Marginal log-likelihood of a finite mixture by log-sum-exp over components.

    Parameters
    ----------
    component_log_prob : Array, shape (..., N, K)
        ``log p(x_i | theta_k)``.
    log_weights : Array, shape (..., K) or (..., N, K)
        Log mixing weights (need not be normalised: they are used as given, so pass
        ``log_softmax`` of logits).

    Returns
    -------
    MixtureLogLikelihood
        ``pointwise`` of shape (..., N) and ``total`` of shape (...).
    """
    pointwise = logsumexp(_joint(component_log_prob, log_weights), axis=-1)
    return MixtureLogLikelihood(pointwise=pointwise, total=jnp.sum(pointwise, axis=-1))


def responsibilities(component_log_prob: jax.Array, log_weights: jax.Array) -> Responsibilities:
    """Posterior assignment probabilities ``p(z_i = k | x_i, theta)`` by Bayes' rule.

    Parameters
    ----------
    component_log_prob : Array, shape (..., N, K)
    log_weights : Array, shape (..., K) or (..., N, K)

    Returns
    -------
    Responsibilities
        ``log_resp`` and ``resp``, each of shape (..., N, K).
    """
    joint = _joint(component_log_prob, log_weights)
    log_resp = joint - logsumexp(joint, axis=-1, keepdims=True)
    return Responsibilities(log_resp=log_resp, resp=jnp.exp(log_resp))


def hard_assignments(resp: jax.Array) -> jax.Array:
    """Most probable component of every point.

    Parameters
    ----------
    resp : Array, shape (..., N, K)
        Responsibilities or log responsibilities (argmax is the same).

    Returns
    -------
    Array, shape (..., N), int32
    """
    return jnp.argmax(jnp.asarray(resp), axis=-1).astype(jnp.int32)


def predictive_density(component_log_prob: jax.Array, log_weights: jax.Array) -> PredictiveDensity:
    """Posterior predictive density on a grid from per-draw component log-densities.

    Parameters
    ----------
    component_log_prob : Array, shape (S, G, K)
        ``log p(x_g | theta_{s,k})`` for every draw ``s`` and grid point ``g``.
    log_weights : Array, shape (S, K)

    Returns
    -------
    PredictiveDensity
        The Monte Carlo average over draws, in log space.
    """
    per_draw = mixture_log_likelihood(component_log_prob, log_weights).pointwise  # (S, G)
    num_draws = per_draw.shape[0]
    log_density = logsumexp(per_draw, axis=0) - jnp.log(num_draws)
    return PredictiveDensity(log_density=log_density, density=jnp.exp(log_density), draws=jnp.exp(per_draw))


# --------------------------------------------------------------------------------------------
# Component log-density matrices
# --------------------------------------------------------------------------------------------

_LOG_2PI = math.log(2.0 * math.pi)


def normal_component_log_prob(x: jax.Array, loc: jax.Array, scale: jax.Array) -> jax.Array:
    """Univariate normal components.

    Parameters
    ----------
    x : Array, shape (N,)
    loc, scale : Array, shape (..., K)

    Returns
    -------
    Array, shape (..., N, K)
    """
    x = jnp.asarray(x)[:, None]
    loc = jnp.expand_dims(jnp.asarray(loc), -2)
    scale = jnp.expand_dims(jnp.asarray(scale), -2)
    z = (x - loc) / scale
    return -0.5 * z**2 - jnp.log(scale) - 0.5 * _LOG_2PI


def diag_normal_component_log_prob(X: jax.Array, loc: jax.Array, scale: jax.Array) -> jax.Array:
    """Multivariate normal components with diagonal covariance.

    Parameters
    ----------
    X : Array, shape (N, D)
    loc, scale : Array, shape (..., K, D)
        Means and per-feature standard deviations.

    Returns
    -------
    Array, shape (..., N, K)
    """
    X = jnp.asarray(X)[:, None, :]  # (N, 1, D)
    loc = jnp.expand_dims(jnp.asarray(loc), -3)  # (..., 1, K, D)
    scale = jnp.expand_dims(jnp.asarray(scale), -3)
    z = (X - loc) / scale
    return jnp.sum(-0.5 * z**2 - jnp.log(scale) - 0.5 * _LOG_2PI, axis=-1)


def mvn_component_log_prob(X: jax.Array, loc: jax.Array, scale_tril: jax.Array) -> jax.Array:
    """Multivariate normal components with full covariance ``L L^T``.

    Parameters
    ----------
    X : Array, shape (N, D)
    loc : Array, shape (..., K, D)
    scale_tril : Array, shape (..., K, D, D)
        Lower Cholesky factors of the component covariances.

    Returns
    -------
    Array, shape (..., N, K)
    """
    X = jnp.asarray(X)
    loc = jnp.asarray(loc)
    scale_tril = jnp.asarray(scale_tril)
    D = X.shape[-1]
    # diff[..., k, d, n] = X[n, d] - loc[..., k, d]; solving L y = diff for all points at once.
    diff = X.T[None, :, :] - loc[..., :, :, None]  # (..., K, D, N)
    y = jax.scipy.linalg.solve_triangular(scale_tril, diff, lower=True)
    maha = jnp.sum(y**2, axis=-2)  # (..., K, N)
    half_log_det = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(scale_tril, axis1=-2, axis2=-1))), axis=-1)
    out = -0.5 * maha - half_log_det[..., None] - 0.5 * D * _LOG_2PI
    return jnp.swapaxes(out, -1, -2)


def poisson_component_log_prob(y: jax.Array, rate: jax.Array) -> jax.Array:
    """Poisson components.

    Parameters
    ----------
    y : Array, shape (N,)
        Non-negative counts.
    rate : Array, shape (..., K)

    Returns
    -------
    Array, shape (..., N, K)
    """
    y = jnp.asarray(y, dtype=jnp.result_type(float))[:, None]
    rate = jnp.expand_dims(jnp.asarray(rate), -2)
    return jax.scipy.special.xlogy(y, rate) - rate - gammaln(y + 1.0)


def categorical_component_log_prob(X: jax.Array, probs: jax.Array) -> jax.Array:
    """Latent-class components: ``J`` independent categorical items given the class.

    Parameters
    ----------
    X : Array, shape (N, J), int
        Responses coded ``0..C-1``.
    probs : Array, shape (..., K, J, C)
        ``probs[..., k, j, c] = p(X_j = c | z = k)``.

    Returns
    -------
    Array, shape (..., N, K)
    """
    X = jnp.asarray(X, dtype=jnp.int32)
    probs = jnp.asarray(probs)  # (..., K, J, C)
    C = probs.shape[-1]
    onehot = jax.nn.one_hot(X, C, dtype=probs.dtype)  # (N, J, C)
    # sum_j sum_c onehot[n, j, c] log p[k, j, c], exactly -inf when a response has probability 0.
    return _safe_log_dot("njc,...kjc->...nk", onehot, probs)


def bernoulli_component_log_prob(X: jax.Array, probs: jax.Array) -> jax.Array:
    """Latent-class components on binary items.

    Parameters
    ----------
    X : Array, shape (N, J), values in {0, 1}
    probs : Array, shape (..., K, J)
        ``p(X_j = 1 | z = k)``.

    Returns
    -------
    Array, shape (..., N, K)
    """
    X = jnp.asarray(X, dtype=jnp.result_type(float))
    probs = jnp.asarray(probs)
    # xlogy-style: at p = 0 (or 1) an item answered 0 (or 1) adds log 1 = 0, one answered 1
    # (or 0) makes the component impossible (-inf); never 0 * -inf = NaN.
    return (_safe_log_dot("nj,...kj->...nk", X, probs)
            + _safe_log_dot("nj,...kj->...nk", 1.0 - X, 1.0 - probs, log1p_neg=probs))


def _safe_log_dot(subscripts: str, weights: jax.Array, probs: jax.Array,
                  log1p_neg: jax.Array | None = None) -> jax.Array:
    """``einsum(subscripts, weights, log(probs))`` with ``0 * log 0 = 0`` and ``w * log 0 = -inf``.

    ``weights`` are non-negative (counts, indicators). The finite part is one einsum over
    ``log(probs)`` with zeros replaced by 1 (so its gradient stays finite); a second einsum of the
    weights against the zero pattern marks the outputs that use a zero probability, which are
    ``-inf``. ``log1p_neg``: compute the log as ``log1p(-log1p_neg)`` (``probs = 1 - log1p_neg``)
    for accuracy near probability 1.
    """
    zero = probs <= 0
    safe = jnp.where(zero, 1.0, probs)
    if log1p_neg is None:
        log_p = jnp.log(safe)
    else:
        log_p = jnp.where(zero, 0.0, jnp.log1p(-jnp.where(zero, 0.0, log1p_neg)))
    finite = jnp.einsum(subscripts, weights, log_p)
    uses_zero = jnp.einsum(subscripts, weights, zero.astype(log_p.dtype)) > 0
    return jnp.where(uses_zero, -jnp.inf, finite)


def stick_breaking_weights(fractions: jax.Array) -> jax.Array:
    """Weights of a truncated stick-breaking process.

    Parameters
    ----------
    fractions : Array, shape (..., T - 1)
        Stick fractions ``v_t`` in (0, 1).

    Returns
    -------
    Array, shape (..., T)
        ``w_t = v_t prod_{s<t} (1 - v_s)`` for ``t < T``, and the remainder for the last atom,
        so that the weights sum to one exactly.
    """
    fractions = jnp.asarray(fractions)
    one = jnp.ones(fractions.shape[:-1] + (1,), fractions.dtype)
    v = jnp.concatenate([fractions, one], axis=-1)
    remaining = jnp.concatenate([one, jnp.cumprod(1.0 - fractions, axis=-1)], axis=-1)
    return v * remaining


# --------------------------------------------------------------------------------------------
# Relabelling
# --------------------------------------------------------------------------------------------


def all_permutations(num_components: int) -> jax.Array:
    """Every permutation of ``0..K-1`` as rows, shape ``(K!, K)``.

    Brute-force matching is exact and vectorises; it is meant for ``K <= 8`` (40,320 rows).
    """
    if num_components < 1:
        raise ValueError(f"num_components must be >= 1, got {num_components}")
    if num_components > 8:
        raise ValueError(
            f"brute-force relabelling enumerates K! permutations; K={num_components} is too many "
            "(use an assignment solver such as scipy.optimize.linear_sum_assignment on the cost)"
        )
    return jnp.asarray(list(itertools.permutations(range(num_components))), dtype=jnp.int32)


def apply_permutation(values: jax.Array, permutation: jax.Array, axis: int = 1) -> jax.Array:
    """Reorder the component axis of per-draw values.

    Parameters
    ----------
    values : Array, shape (S, ..., K, ...)
        Per-draw values whose ``axis`` is the component axis.
    permutation : Array, shape (S, K), int
        ``new[s, k] = old[s, permutation[s, k]]`` along ``axis``.
    axis : int
        The component axis of ``values`` (default 1: values of shape ``(S, K, ...)``).

    Returns
    -------
    Array, the shape of ``values``
    """
    values = jnp.asarray(values)
    axis = axis % values.ndim
    shape = [1] * values.ndim
    shape[0] = permutation.shape[0]
    shape[axis] = permutation.shape[1]
    index = jnp.reshape(permutation, shape)
    return jnp.take_along_axis(values, index, axis=axis)


def relabel_by_sorting(key: jax.Array) -> Relabelling:
    """Relabel each draw so that a scalar per-component key is increasing.

    Parameters
    ----------
    key : Array, shape (S, K)
        E.g. the component means.

    Returns
    -------
    Relabelling
        ``reference`` is the sorted key, ``cost`` zeros.
    """
    key = jnp.asarray(key)
    perm = jnp.argsort(key, axis=-1).astype(jnp.int32)
    return Relabelling(permutation=perm, reference=jnp.take_along_axis(key, perm, axis=-1),
                       cost=jnp.zeros(key.shape[0], key.dtype))


def match_to_reference(cost: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Cheapest permutation of every draw for a ``(S, K, K)`` assignment cost.

    Parameters
    ----------
    cost : Array, shape (S, K, K)
        ``cost[s, j, k]`` is the cost of giving old label ``j`` of draw ``s`` the new label ``k``.

    Returns
    -------
    permutation : Array, shape (S, K), int
        ``permutation[s, k]`` is the old label that becomes ``k``.
    total : Array, shape (S,)
        The cost of that permutation.

    Notes
    -----
    Exact, by enumerating the ``K!`` permutations (the Hungarian algorithm gives the same
    answer; enumeration is branch-free and vectorises over draws). ``K <= 8``.
    """
    cost = jnp.asarray(cost)
    K = cost.shape[-1]
    perms = all_permutations(K)  # (P, K)
    # total[s, p] = sum_k cost[s, perms[p, k], k]
    gathered = cost[:, perms, jnp.arange(K)[None, :]]  # (S, P, K)
    totals = jnp.sum(gathered, axis=-1)
    best = jnp.argmin(totals, axis=-1)
    return perms[best], jnp.take_along_axis(totals, best[:, None], axis=-1)[:, 0]


def stephens_relabel(log_resp: jax.Array, num_iters: int = 20) -> Relabelling:
    """Stephens' (2000) relabelling by Kullback-Leibler matching of responsibilities.

    Iterates: (1) the reference ``Q[i, k]`` is the mean over draws of the relabelled
    responsibilities; (2) each draw takes the permutation minimising
    ``sum_i KL(P_s[i, perm] || Q[i])``. Each step cannot increase the total cost, so it
    converges to a fixed point in a few iterations.

    Parameters
    ----------
    log_resp : Array, shape (S, N, K)
        Per-draw log responsibilities ``log p(z_i = k | x_i, theta_s)`` of the unconstrained fit.
    num_iters : int
        Number of iterations (a fixed number so the loop is a ``lax.fori_loop``).

    Returns
    -------
    Relabelling
        ``reference`` of shape (N, K) and the per-draw KL ``cost``.
    """
    log_resp = jnp.asarray(log_resp)
    S, N, K = log_resp.shape
    resp = jnp.exp(log_resp)
    # sum_i p log p does not depend on the permutation; keep it so that `cost` is a real KL.
    neg_entropy = jnp.sum(jnp.where(resp > 0, resp * log_resp, 0.0), axis=(1, 2))
    tiny = jnp.finfo(log_resp.dtype).tiny

    def reference(perm):
        return jnp.mean(apply_permutation(resp, perm, axis=2), axis=0)  # (N, K)

    def assign(perm):
        log_ref = jnp.log(jnp.maximum(reference(perm), tiny))
        # cross[s, j, k] = -sum_i p[s, i, j] log q[i, k]: the permutation-dependent part of KL.
        cross = -jnp.einsum("snj,nk->sjk", resp, log_ref)
        return match_to_reference(cross)

    # Start from the labels as sampled; each iteration re-matches every draw to the reference.
    init = jnp.broadcast_to(jnp.arange(K, dtype=jnp.int32), (S, K))
    perm = lax.fori_loop(0, num_iters, lambda _, p: assign(p)[0], init)
    ref = reference(perm)
    log_ref = jnp.log(jnp.maximum(ref, tiny))
    kl = neg_entropy - jnp.einsum("snk,nk->s", apply_permutation(resp, perm, axis=2), log_ref)
    return Relabelling(permutation=perm, reference=ref, cost=kl)


# --------------------------------------------------------------------------------------------
# k-means (initialisation of mixture samplers)
# --------------------------------------------------------------------------------------------


def _sq_dist(X: jax.Array, centers: jax.Array) -> jax.Array:
    return jnp.sum((X[:, None, :] - centers[None, :, :]) ** 2, axis=-1)


def kmeans(rng_key: jax.Array, X: jax.Array, num_components: int, num_iters: int = 50) -> KMeansResult:
    """Lloyd's k-means with k-means++ seeding.

    Parameters
    ----------
    rng_key : PRNG key
    X : Array, shape (N, D)
    num_components : int
        ``K``, static.
    num_iters : int
        Lloyd iterations (fixed, so the loop is a ``lax.fori_loop``).

    Returns
    -------
    KMeansResult
        Centers sorted by their first coordinate (a deterministic labelling that matches the
        ordered-location constraint of the mixture models).
    """
    X = jnp.asarray(X)
    N, D = X.shape
    K = num_components
    key0, key_rest = jax.random.split(rng_key)
    first = X[jax.random.randint(key0, (), 0, N)]
    centers = jnp.zeros((K, D), X.dtype).at[0].set(first)

    def seed_step(k, carry):
        centers, key = carry
        key, sub = jax.random.split(key)
        d2 = _sq_dist(X, centers)
        # Only the centers chosen so far count: mask the rest with +inf.
        d2 = jnp.where(jnp.arange(K)[None, :] < k, d2, jnp.inf)
        nearest = jnp.min(d2, axis=1)
        idx = jax.random.categorical(sub, jnp.log(jnp.maximum(nearest, 1e-30)))
        return centers.at[k].set(X[idx]), key

    centers, _ = lax.fori_loop(1, K, seed_step, (centers, key_rest))

    def lloyd(_, centers):
        labels = jnp.argmin(_sq_dist(X, centers), axis=1)
        onehot = jax.nn.one_hot(labels, K, dtype=X.dtype)
        counts = onehot.sum(0)
        sums = onehot.T @ X
        # An empty cluster keeps its previous center instead of becoming NaN.
        return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centers)

    centers = lax.fori_loop(0, num_iters, lloyd, centers)
    centers = centers[jnp.argsort(centers[:, 0])]
    d2 = _sq_dist(X, centers)
    labels = jnp.argmin(d2, axis=1).astype(jnp.int32)
    inertia = jnp.sum(jnp.min(d2, axis=1))
    return KMeansResult(centers=centers, labels=labels, inertia=inertia)
