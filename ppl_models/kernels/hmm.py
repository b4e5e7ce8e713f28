"""Exact inference for discrete-state hidden Markov models, in pure JAX.

Every kernel takes the model as three arrays in log space,

* ``log_initial``      ``(K,)``    log p(z_0 = k),
* ``log_transition``   ``(K, K)``  log p(z_t = j | z_{t-1} = i) in row ``i``, column ``j``,
* ``log_likelihoods``  ``(T, K)``  log p(x_t | z_t = k), or ``(B, T, K)`` for a batch,

so that any emission model plugs in: the caller evaluates its emission log-density at each
state and hands over the ``(T, K)`` table.

Batches and missing data
------------------------
* ``mask`` ``(T,)`` / ``(B, T)`` bool: ``False`` marks a *missing* observation. Its emission
  log-likelihood is taken as 0 (the observation is marginalised out), the chain still moves.
* ``lengths`` ``()`` / ``(B,)`` int: time steps ``t >= length`` are *padding*. The chain stops
  there (the kernels use an identity transition), so padding changes no result; decoded paths
  hold ``-1`` and posterior marginals hold 0 at padded steps.

Two algorithms, chosen by ``method``
------------------------------------
* ``"sequential"``: ``lax.scan`` over time, O(T K^2) work, O(T) depth.
* ``"associative"``: ``lax.associative_scan`` over the (semiring) matrix products,
  O(T K^3) work but O(log T) depth — the parallel-in-time form for accelerators.

Two number representations, chosen by ``scaling`` (forward/backward only)
-------------------------------------------------------------------------
* ``"log"``: messages in log space combined by log-sum-exp; the most robust.
* ``"normalized"``: probability-space messages rescaled to sum to one at every step (the
  classic "scaling" implementation, matrix products instead of log-sum-exp); faster.

Both keep the messages normalised, so float32 stays finite and accurate at T = 100,000.

Compilation and checks
----------------------
Every public function is a thin Python layer over a ``jax.jit``-compiled core (``method``,
``scaling``, ``num_samples`` and ``num_timesteps`` static): a direct call compiles once per
shape and then runs compiled, and the functions compose with ``jit``, ``vmap`` and ``grad``
(inside an outer ``jit`` the inner one is inlined). The Python layer checks shapes, names
and ragged lists (a :class:`~ppl_models.errors.DataError` naming the argument) and, when the
values are concrete (not traced), that ``exp(log_initial)`` and every row of
``exp(log_transition)`` sum to one (within 1e-4). Under ``jit``/``vmap``/``grad`` the values
are traced and that check cannot run: it is the caller's job there (the NumPyro programs of
:mod:`ppl_models.models.hmm` check their probabilities). The kernels import no NumPyro.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import logsumexp

from ..errors import DataError

__all__ = [
    "FilterResult",
    "SmootherResult",
    "ViterbiResult",
    "PathSample",
    "forward_log_prob",
    "forward_filter",
    "forward_backward",
    "viterbi",
    "ffbs",
    "sample_states",
    "lengths_to_mask",
]

_METHODS = ("sequential", "associative")
_SCALINGS = ("log", "normalized")


class FilterResult(NamedTuple):
    """Result of the forward pass.

    Attributes
    ----------
    log_prob : Array ``()`` or ``(B,)``
        log p(x_{0:T-1}), the marginal log-likelihood.
    filtered_probs : Array ``(T, K)`` or ``(B, T, K)``
        p(z_t | x_{0:t}). At padded steps it repeats the last valid row.
    step_log_probs : Array ``(T,)`` or ``(B, T)``
        log p(x_t | x_{0:t-1}), the one-step-ahead predictive log-densities; they sum to
        ``log_prob`` (0 at missing and padded steps).
    """

    log_prob: jax.Array
    filtered_probs: jax.Array
    step_log_probs: jax.Array


class SmootherResult(NamedTuple):
    """Result of the forward-backward pass.

    Attributes
    ----------
    log_prob : Array ``()`` or ``(B,)``
        log p(x_{0:T-1}).
    filtered_probs : Array ``(T, K)`` or ``(B, T, K)``
        p(z_t | x_{0:t}).
    smoothed_probs : Array ``(T, K)`` or ``(B, T, K)``
        p(z_t | x_{0:T-1}); rows of padded steps are 0.
    """

    log_prob: jax.Array
    filtered_probs: jax.Array
    smoothed_probs: jax.Array


class ViterbiResult(NamedTuple):
    """Most probable state path.

    Attributes
    ----------
    path : int32 Array ``(T,)`` or ``(B, T)``
        argmax_z p(z | x); ``-1`` at padded steps.
    log_prob : Array ``()`` or ``(B,)``
        log p(path, x), the joint log-probability of that path and the data.
    """

    path: jax.Array
    log_prob: jax.Array


class PathSample(NamedTuple):
    """State paths drawn from p(z | x) by forward-filtering backward-sampling.

    Attributes
    ----------
    paths : int32 Array ``(T,)``, ``(S, T)``, ``(B, T)`` or ``(B, S, T)``
        Draws of the state path; ``-1`` at padded steps.
    log_prob : Array ``()`` or ``(B,)``
        log p(x), the marginal log-likelihood computed on the way.
    """

    paths: jax.Array
    log_prob: jax.Array


# --------------------------------------------------------------------------------------------
# argument handling


def _as_array(name, x):
    """``x`` as an array, for the checks outside ``jit``; ``None`` stays ``None``.

    Arrays (NumPy, JAX, tracers) pass untouched. Python lists and tuples are converted here,
    so that a ragged list gets an error naming its argument (and a long list does not become
    a pytree of thousands of scalars at the ``jit`` boundary)."""
    if x is None or isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return x
    try:
        out = np.asarray(x)
    except ValueError:  # NumPy >= 1.24: inhomogeneous shape
        shapes = [np.shape(e) if not isinstance(e, (list, tuple)) else len(e) for e in x] \
            if isinstance(x, (list, tuple)) else "?"
        raise DataError(name, "a rectangular array (pad sequences of different lengths and pass "
                        "`lengths`)", f"a ragged sequence (element lengths/shapes {shapes})") from None
    except TypeError:  # e.g. a list of traced arrays
        return jnp.asarray(x)
    if out.dtype == object:
        raise DataError(name, "a numeric array (pad sequences of different lengths and pass `lengths`)",
                        "an object array (ragged input?)")
    return out


def _is_concrete(x) -> bool:
    return x is not None and not isinstance(x, jax.core.Tracer)


def _check_log_distributions(name, x, axis_name):
    """Raise unless every row of the concrete array ``x`` is a log-probability vector.

    Only concrete values are checked (a direct call, or NumPy input): inside ``jit``, ``vmap``
    or ``grad`` the values are traced and cannot be inspected; the NumPyro programs check the
    probabilities themselves (:func:`ppl_models.models.hmm.check_hmm_parameters`).
    """
    if not _is_concrete(x):
        return
    a = np.asarray(x)
    if a.size == 0 or a.dtype.kind != "f":
        return
    # The fast path (a few microseconds: this runs on every direct call): the sums of the
    # exponentials, within 1e-4 of one (NaN fails the comparison, an overflow gives inf).
    with np.errstate(over="ignore", invalid="ignore"):
        sums = np.sum(np.exp(a), axis=-1, dtype=np.float64)
    if np.all(np.abs(sums - 1.0) <= _SUM_TOLERANCE):
        return
    sums = np.atleast_1d(sums)
    bad = np.flatnonzero(~(np.abs(sums - 1.0) <= _SUM_TOLERANCE))
    i = int(bad[0])
    where = f"{axis_name} {i} " if a.ndim == 2 else ""
    raise DataError(name, f"log-probabilities: exp({name}) "
                    + ("summing to one along each row" if a.ndim == 2 else "summing to one"),
                    f"{where}exp() summing to {sums[i]:.6g}")


#: How far from one the sums of exp(log_initial) and of each row of exp(log_transition) may be
#: (as :func:`ppl_models.models.hmm.check_hmm_parameters`; float32 log-probabilities sum to one
#: within ~1e-6).
_SUM_TOLERANCE = 1e-4


def _check(log_initial, log_transition, log_likelihoods, mask, lengths, method, scaling="log"):
    """Checks of the public entry points, outside ``jit`` (they read shapes and, for concrete
    inputs, values). Returns the arguments as arrays (lists converted)."""
    if method not in _METHODS:
        raise DataError("method", f"one of {_METHODS}", repr(method))
    if scaling not in _SCALINGS:
        raise DataError("scaling", f"one of {_SCALINGS}", repr(scaling))
    log_initial, log_transition, K = _check_chain(log_initial, log_transition)
    log_likelihoods = _as_array("log_likelihoods", log_likelihoods)
    mask = _as_array("mask", mask)
    lengths = _as_array("lengths", lengths)
    shape = np.shape(log_likelihoods)
    if len(shape) not in (2, 3) or shape[-1] != K:
        raise DataError("log_likelihoods", f"an array of shape (T, {K}) or (B, T, {K})", f"shape {shape}")
    if shape[-2] < 1:
        raise DataError("log_likelihoods", "at least one time step", "0 time steps")
    if mask is not None and np.shape(mask) != shape[:-1]:
        raise DataError("mask", f"a boolean array of shape {shape[:-1]}", f"shape {np.shape(mask)}")
    if lengths is not None:
        if np.shape(lengths) != shape[:-2]:
            raise DataError("lengths", f"an integer array of shape {shape[:-2]}", f"shape {np.shape(lengths)}")
        if _is_concrete(lengths) and not np.issubdtype(np.asarray(lengths).dtype, np.integer):
            raise DataError("lengths", "integers", f"dtype {np.asarray(lengths).dtype}")
    return log_initial, log_transition, log_likelihoods, mask, lengths


def _check_chain(log_initial, log_transition):
    """The Markov chain's arrays checked (shapes; on concrete values, normalised rows): ``(π, A, K)``."""
    log_initial = _as_array("log_initial", log_initial)
    log_transition = _as_array("log_transition", log_transition)
    if np.ndim(log_initial) != 1:
        raise DataError("log_initial", "a 1-dimensional array (K,)", f"shape {np.shape(log_initial)}")
    K = np.shape(log_initial)[0]
    if np.shape(log_transition) != (K, K):
        raise DataError("log_transition", f"an array of shape ({K}, {K})", f"shape {np.shape(log_transition)}")
    _check_log_distributions("log_initial", log_initial, "entry")
    _check_log_distributions("log_transition", log_transition, "row")
    return log_initial, log_transition, K


def _cast(log_initial, log_transition, log_likelihoods):
    """The three model arrays in one floating dtype (at least float32); inside ``jit``."""
    log_initial = jnp.asarray(log_initial)
    log_transition = jnp.asarray(log_transition)
    log_likelihoods = jnp.asarray(log_likelihoods)
    dtype = jnp.result_type(log_initial.dtype, log_transition.dtype, log_likelihoods.dtype, jnp.float32)
    return log_initial.astype(dtype), log_transition.astype(dtype), log_likelihoods.astype(dtype)


@functools.partial(jax.jit, static_argnames=("num_timesteps",))
def _lengths_to_mask(lengths, num_timesteps):
    return jnp.arange(num_timesteps) < jnp.asarray(lengths)[..., None]


def lengths_to_mask(lengths, num_timesteps: int) -> jax.Array:
    """Boolean ``(..., T)`` array, True for ``t < lengths[...]``.

    Parameters
    ----------
    lengths : int Array ``()`` or ``(B,)``
    num_timesteps : int
        T, the padded length.
    """
    return _lengths_to_mask(_as_array("lengths", lengths), num_timesteps=int(num_timesteps))


def _batch_args(log_likelihoods, mask, lengths):
    """Masks of observed and of valid (not padded) steps, shaped like ``log_likelihoods[..., 0]``
    (shapes were checked by :func:`_check`)."""
    shape = log_likelihoods.shape[:-1]
    T = shape[-1]
    observed = jnp.ones(shape, bool) if mask is None else jnp.asarray(mask, bool)
    if lengths is None:
        # None, not an all-True array: the kernels then skip every padding select (a static
        # choice; the selects cost up to ~2x in the sequential scans).
        valid = None
    else:
        valid = jnp.arange(T) < jnp.asarray(lengths)[..., None]
    return observed, valid


def _batched(single, log_likelihoods, observed, valid, *extra):
    """Apply a single-sequence kernel to ``(T, K)`` or, vmapped, to ``(B, T, K)``."""
    if log_likelihoods.ndim == 2:
        return single(log_likelihoods, observed, valid, *extra)
    return jax.vmap(single)(log_likelihoods, observed, valid, *extra)


def _sel(valid, new, old):
    """``new`` where ``valid`` (broadcast from the left), else ``old``; ``new`` if no padding."""
    if valid is None:
        return new
    valid = jnp.asarray(valid)
    return jnp.where(valid.reshape(valid.shape + (1,) * (jnp.ndim(new) - valid.ndim)), new, old)


def _tail(valid):
    return None if valid is None else valid[1:]


def _head(valid):
    return None if valid is None else valid[0]


# Unrolling of the sequential scans (``lax.scan(..., unroll=n)``): n steps per loop iteration.
# Measured on XLA:CPU, one thread, K = 4 and 16, T = 1e3 and 1e4 (same-process minimum of
# repeats, load ~14 on 2 cores): unrolling by 2 gains ~5-10% in the normalised forward and
# backward scans; 4 and 8 gain nothing more, and every unrolling slows Viterbi. Overridable for
# measurements: ``_UNROLL[name] = {K: n}`` (``None``: any K), then ``jax.clear_caches()``.
_UNROLL: dict = {"fwd_norm": {None: 2}, "bwd_norm": {None: 2}}


def _unroll(name: str, K: int) -> int:
    table = _UNROLL.get(name, {})
    return int(table.get(K, table.get(None, 1)))


def _log_eye(K, dtype):
    return jnp.where(jnp.eye(K, dtype=bool), jnp.zeros((), dtype), -jnp.inf)


def _finite_or_zero(x):
    # A step whose observation is impossible under every state gives -inf; keeping the message
    # finite there lets the total come out as -inf instead of NaN.
    return jnp.where(jnp.isfinite(x), x, jnp.zeros_like(x))


# --------------------------------------------------------------------------------------------
# forward pass, sequential


def _seq_forward(log_pi, log_A, ll, valid, scaling, store=True):
    """Normalised log filtered messages ``(T, K)``, log p(x) and the per-step terms ``(T,)``.

    With ``store=False`` only log p(x) is computed (the messages and terms are None).
    """
    if scaling != "log":
        return _seq_forward_normalized(log_pi, log_A, ll, valid, store)

    def update(pred, ll_t):
        new = pred + ll_t
        c = logsumexp(new)
        return new - _finite_or_zero(c), c

    first, c0 = update(log_pi, ll[0])
    first = _sel(_head(valid), first, log_pi)
    c0 = _sel(_head(valid), c0, jnp.zeros_like(c0))

    def step(carry, inp):
        msg, total = carry
        ll_t, v_t = inp
        new, c = update(logsumexp(msg[:, None] + log_A, axis=0), ll_t)
        msg = _sel(v_t, new, msg)
        c = _sel(v_t, c, jnp.zeros_like(c))
        return (msg, total + c), ((msg, c) if store else None)

    (_, total), out = lax.scan(step, (first, c0), (ll[1:], _tail(valid)), unroll=_unroll('fwd_log', log_A.shape[0]))
    if not store:
        return None, total, None
    rest, cs = out
    return jnp.concatenate([first[None], rest], axis=0), total, jnp.concatenate([c0[None], cs])


def _matvec(msg, A):
    # msg @ A. For very small K a broadcast-multiply-and-sum fuses into one loop with the rest
    # of the step on the CPU, where a dot is a library call with its own overhead; from K ~ 16
    # the dot is several times faster (measured on XLA:CPU, where a fused reduction whose input
    # is itself a product is not vectorised well).
    if A.shape[0] <= 8:
        return jnp.sum(msg[:, None] * A, axis=0)
    return msg @ A


def _matvec_right(A, v):
    # A @ v, with the same small-K form as :func:`_matvec` (measured 2x faster for K = 4 in a
    # batch of 64 sequences on XLA:CPU).
    if A.shape[0] <= 8:
        return jnp.sum(A * v[None, :], axis=1)
    return A @ v


def _seq_forward_normalized(log_pi, log_A, ll, valid, store, as_log=True):
    """The "scaling" forward pass: probability-space messages normalised at every step.

    Everything that does not depend on the previous message is computed outside the scan in
    one vectorised pass: the emission probabilities ``exp(ll_t - max_k ll_t)`` (each row's
    largest entry is 1, so nothing underflows as a whole) and, afterwards, the logs of the
    normalisers. The loop body is one K x K matrix-vector product, a product, a sum and a
    division.
    """
    A = jnp.exp(log_A)
    m = _finite_or_zero(jnp.max(ll, axis=-1))  # (T,)
    e = jnp.exp(ll - m[:, None])  # (T, K)

    def normalise(n):
        c = jnp.sum(n)
        return n / jnp.where(c > 0, c, jnp.ones_like(c)), c

    pi = jnp.exp(log_pi)
    first, c0 = normalise(pi * e[0])
    first = _sel(_head(valid), first, pi)

    def step(msg, inp):
        e_t, v_t = inp
        new, c = normalise(_matvec(msg, A) * e_t)
        msg = _sel(v_t, new, msg)
        return msg, ((msg, c) if store else c)

    _, out = lax.scan(step, first, (e[1:], _tail(valid)), unroll=_unroll('fwd_norm', A.shape[0]))
    rest, cs = out if store else (None, out)
    cs = jnp.concatenate([c0[None], cs])
    terms = jnp.log(cs) + m
    if valid is not None:
        terms = jnp.where(valid, terms, jnp.zeros_like(terms))
    total = jnp.sum(terms)
    if not store:
        return None, total, None
    filtered = jnp.concatenate([first[None], rest], axis=0)
    if as_log:
        return jnp.log(filtered), total, terms
    # and r_t = e_t / c_t = p(x_t | z_t) / p(x_t | x_{<t}), for the scaled backward pass
    return filtered, total, terms, e / jnp.where(cs > 0, cs, jnp.ones_like(cs))[:, None]


def _seq_log_prob(log_pi, log_A, ll, valid, scaling):
    """log p(x) only: the same recursion without storing messages (the NUTS inner loop).

    Differentiated by the forward-backward identities instead of by reverse-mode through the
    scan (:func:`_seq_log_prob_jvp`)."""
    if valid is None:
        valid = jnp.ones(ll.shape[:1], bool)
    return _seq_log_prob_fb(log_pi, log_A, ll, valid, scaling)


@functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
def _seq_log_prob_fb(log_pi, log_A, ll, valid, scaling):
    return _seq_forward(log_pi, log_A, ll, valid, scaling, store=False)[1]


def _scaled_smoother(log_pi, log_A, ll, valid, scaling):
    """Forward pass, then a backward scan of normalised messages in probability space.

    Returns log p(x), the filtered marginals alpha ``(T, K)``, the scaled backward messages
    beta (``sum_k alpha_t(k) beta_t(k) = 1``, so that alpha * beta is the smoothed marginal)
    and r ``(T, K)``, ``r_t(j) = p(x_t | z_t = j) / p(x_t | x_{<t})``, the factor the scaled
    recursions multiply by. ``valid`` is a ``(T,)`` bool array or None (no padding).
    """
    if scaling == "log":
        log_alpha, total, terms = _seq_forward(log_pi, log_A, ll, valid, scaling, store=True)
        alpha = jnp.exp(log_alpha)  # (T, K), rows sum to one
        r = jnp.exp(ll - terms[:, None])
    else:
        alpha, total, _, r = _seq_forward_normalized(log_pi, log_A, ll, valid, True, as_log=False)
    A = jnp.exp(log_A)
    K = log_pi.shape[0]

    def back(b, inp):
        r_t, v_t = inp
        nb = _matvec_right(A, r_t * b)
        c = jnp.sum(nb)
        nb = nb / jnp.where(c > 0, c, jnp.ones_like(c))
        b = _sel(v_t, nb, b)
        return b, b

    last = jnp.full((K,), 1.0 / K, ll.dtype)
    _, rest = lax.scan(back, last, (r[1:], _tail(valid)), reverse=True, unroll=_unroll('bwd_norm', K))
    beta = jnp.concatenate([rest, last[None]], axis=0)  # proportional to the scaled betas
    # Rescale each row so that sum_k alpha_t(k) beta_t(k) = 1 (the scaled beta's identity).
    norm = jnp.sum(alpha * beta, axis=1, keepdims=True)
    beta = beta / jnp.where(norm > 0, norm, jnp.ones_like(norm))
    return total, alpha, beta, r


def _log_prob_grads(log_pi, log_A, ll, valid, scaling):
    """log p(x) and its gradients with respect to log pi, log A and the log-likelihoods.

    p(x) is multilinear in the entries of pi, A and exp(ll), so each gradient is an expected
    count under the posterior over paths: d/d log pi_k = gamma_0(k), d/d ll_t(k) = gamma_t(k)
    and d/d log A_ij = sum_t xi_t(i, j). One forward pass (storing the normalised filtered
    messages), one backward scan of normalised messages and one K x T @ T x K product give
    them all, for two to three times the cost of the forward pass; reverse-mode through the
    scan costs several times more.
    """
    total, alpha, beta, r = _scaled_smoother(log_pi, log_A, ll, valid, scaling)
    gamma = _sel(valid, alpha * beta, jnp.zeros_like(alpha))
    w = _sel(_tail(valid), r[1:] * beta[1:], jnp.zeros_like(r[1:]))
    xi = jnp.exp(log_A) * (alpha[:-1].T @ w)
    return total, gamma[0], xi, gamma


@_seq_log_prob_fb.defjvp
def _seq_log_prob_jvp(scaling, primals, tangents):
    log_pi, log_A, ll, valid = primals
    d_pi, d_A, d_ll, _ = tangents
    total, g_pi, g_A, g_ll = _log_prob_grads(log_pi, log_A, ll, valid, scaling)
    return total, jnp.sum(g_pi * d_pi) + jnp.sum(g_A * d_A) + jnp.sum(g_ll * d_ll)


# --------------------------------------------------------------------------------------------
# forward pass, associative (parallel in time)
#
# Element t is the matrix E_t[i, j] = p(z_t = j, x_t | z_{t-1} = i) (E_0 has the initial
# distribution in every row); prefix products E_0 ... E_t have identical rows, equal to the
# unnormalised forward message. Each element is stored as (M, s): M scaled so that its largest
# entry is 1 (log: 0) and the log-scale s carried apart, so nothing overflows or underflows.


def _log_compose(a, b):
    Ma, sa = a
    Mb, sb = b
    C = logsumexp(Ma[..., :, :, None] + Mb[..., None, :, :], axis=-2)
    m = _finite_or_zero(jnp.max(C, axis=(-2, -1)))
    return C - m[..., None, None], sa + sb + m


def _prob_compose(a, b):
    Pa, sa = a
    Pb, sb = b
    C = Pa @ Pb
    m = jnp.max(C, axis=(-2, -1))
    safe = jnp.where(m > 0, m, jnp.ones_like(m))
    return C / safe[..., None, None], sa + sb + jnp.log(m)


def _assoc_elements(log_pi, log_A, ll, valid):
    """Log elements ``(T, K, K)``: transition times emission, identity at padded steps."""
    K = log_pi.shape[0]
    E = log_A[None, :, :] + ll[:, None, :]
    E = E.at[0].set(jnp.broadcast_to(log_pi + ll[0], (K, K)))
    eye = _log_eye(K, ll.dtype)
    first_pad = jnp.broadcast_to(log_pi, (K, K))
    pad = jnp.concatenate([first_pad[None], jnp.broadcast_to(eye, (ll.shape[0] - 1, K, K))], axis=0)
    return _sel(valid, E, pad)


def _assoc_forward(log_pi, log_A, ll, valid, scaling):
    E = _assoc_elements(log_pi, log_A, ll, valid)
    m = _finite_or_zero(jnp.max(E, axis=(-2, -1)))
    if scaling == "log":
        M, s = lax.associative_scan(_log_compose, (E - m[:, None, None], m))
        row = M[:, 0, :]
    else:
        P, s = lax.associative_scan(_prob_compose, (jnp.exp(E - m[:, None, None]), m))
        row = jnp.log(P[:, 0, :])
    norm = logsumexp(row, axis=-1)
    log_filtered = row - _finite_or_zero(norm)[:, None]
    cumulative = s + norm  # log p(x_{0:t})
    steps = jnp.concatenate([cumulative[:1], jnp.diff(cumulative)])
    return log_filtered, cumulative[-1], steps


def _forward(log_pi, log_A, ll, valid, method, scaling):
    if method == "sequential":
        return _seq_forward(log_pi, log_A, ll, valid, scaling)
    return _assoc_forward(log_pi, log_A, ll, valid, scaling)


def _masked_ll(ll, observed):
    # jnp.where (not multiplication) so that a NaN log-likelihood at a missing step is dropped.
    return jnp.where(observed[..., None], ll, jnp.zeros_like(ll))


@functools.partial(jax.jit, static_argnames=("method", "scaling"))
def _forward_log_prob(log_initial, log_transition, log_likelihoods, mask, lengths, *, method, scaling):
    log_pi, log_A, ll = _cast(log_initial, log_transition, log_likelihoods)
    observed, valid = _batch_args(ll, mask, lengths)
    ll = _masked_ll(ll, observed)

    def single(ll_s, obs_s, valid_s):
        if method == "sequential":
            return _seq_log_prob(log_pi, log_A, ll_s, valid_s, scaling)
        return _assoc_forward(log_pi, log_A, ll_s, valid_s, scaling)[1]

    return _batched(single, ll, observed, valid)


def forward_log_prob(log_initial, log_transition, log_likelihoods, *, mask=None, lengths=None,
                     method: str = "sequential", scaling: str = "log") -> jax.Array:
    """Marginal log-likelihood log p(x) by the forward algorithm.

    Parameters
    ----------
    log_initial : Array ``(K,)``
    log_transition : Array ``(K, K)``
        Row ``i`` is log p(z_t | z_{t-1} = i).
    log_likelihoods : Array ``(T, K)`` or ``(B, T, K)``
        log p(x_t | z_t = k).
    mask : bool Array ``(T,)`` or ``(B, T)``, optional
        False where the observation is missing.
    lengths : int Array ``()`` or ``(B,)``, optional
        Valid length of each (padded) sequence.
    method : {"sequential", "associative"}
    scaling : {"log", "normalized"}

    Returns
    -------
    Array ``()`` or ``(B,)``
        log p(x_{0:T-1}). Differentiable in all three parameter arrays.

    Raises
    ------
    DataError
        Naming the argument: a wrong shape, a ragged list, an unknown ``method`` or
        ``scaling``, or (for concrete, i.e. not traced, inputs) ``log_initial`` or a row of
        ``log_transition`` that is not a log-probability vector.
    """
    args = _check(log_initial, log_transition, log_likelihoods, mask, lengths, method, scaling)
    return _forward_log_prob(*args, method=method, scaling=scaling)


@functools.partial(jax.jit, static_argnames=("method", "scaling"))
def _forward_filter(log_initial, log_transition, log_likelihoods, mask, lengths, *, method, scaling):
    log_pi, log_A, ll = _cast(log_initial, log_transition, log_likelihoods)
    observed, valid = _batch_args(ll, mask, lengths)
    ll = _masked_ll(ll, observed)

    def single(ll_s, obs_s, valid_s):
        log_filtered, total, steps = _forward(log_pi, log_A, ll_s, valid_s, method, scaling)
        return FilterResult(total, jnp.exp(log_filtered), steps)

    return _batched(single, ll, observed, valid)


def forward_filter(log_initial, log_transition, log_likelihoods, *, mask=None, lengths=None,
                   method: str = "sequential", scaling: str = "log") -> FilterResult:
    """Forward pass: the marginal log-likelihood and the filtered state probabilities.

    Parameters are those of :func:`forward_log_prob`.

    Returns
    -------
    FilterResult
        ``log_prob`` ``()``/``(B,)`` and ``filtered_probs`` ``(T, K)``/``(B, T, K)``.
    """
    args = _check(log_initial, log_transition, log_likelihoods, mask, lengths, method, scaling)
    return _forward_filter(*args, method=method, scaling=scaling)


# --------------------------------------------------------------------------------------------
# forward-backward


def _seq_backward_log(log_A, ll, valid):
    """Normalised log backward messages ``(T, K)`` in log space; beta at the last step is
    uniform. (The "normalized" smoother is :func:`_scaled_smoother`.)"""
    K = log_A.shape[0]

    def step(log_beta, inp):
        ll_next, v_next = inp
        new = logsumexp(log_A + (ll_next + log_beta)[None, :], axis=1)
        new = new - _finite_or_zero(logsumexp(new))
        log_beta = _sel(v_next, new, log_beta)
        return log_beta, log_beta

    last = jnp.full((K,), -jnp.log(K), ll.dtype)
    _, rest = lax.scan(step, last, (ll[1:], _tail(valid)), reverse=True, unroll=_unroll('bwd_log', K))
    return jnp.concatenate([rest, last[None]], axis=0)


def _normalise_rows(log_p):
    return jnp.exp(log_p - _finite_or_zero(logsumexp(log_p, axis=-1, keepdims=True)))


@functools.partial(jax.jit, static_argnames=("method", "scaling"))
def _forward_backward(log_initial, log_transition, log_likelihoods, mask, lengths, *, method, scaling):
    log_pi, log_A, ll = _cast(log_initial, log_transition, log_likelihoods)
    observed, valid = _batch_args(ll, mask, lengths)
    ll = _masked_ll(ll, observed)

    def single(ll_s, obs_s, valid_s):
        if method == "sequential" and scaling == "normalized":
            total, filtered, beta, _ = _scaled_smoother(log_pi, log_A, ll_s, valid_s, scaling)
            smoothed = filtered * beta
            smoothed = _sel(valid_s, smoothed, jnp.zeros_like(smoothed))
            return SmootherResult(total, filtered, smoothed)
        if method == "sequential":
            log_filtered, total, _ = _seq_forward(log_pi, log_A, ll_s, valid_s, scaling)
            log_beta = _seq_backward_log(log_A, ll_s, valid_s)
            smoothed = _normalise_rows(log_filtered + log_beta)
        else:
            def f(offset):
                log_filtered, total, _ = _assoc_forward(log_pi, log_A, ll_s + offset, valid_s, scaling)
                return total, log_filtered

            (total, log_filtered), smoothed = jax.value_and_grad(f, has_aux=True)(jnp.zeros_like(ll_s))
        smoothed = _sel(valid_s, smoothed, jnp.zeros_like(smoothed))
        return SmootherResult(total, jnp.exp(log_filtered), smoothed)

    return _batched(single, ll, observed, valid)


def forward_backward(log_initial, log_transition, log_likelihoods, *, mask=None, lengths=None,
                     method: str = "sequential", scaling: str = "log") -> SmootherResult:
    """Posterior state marginals p(z_t | x_{0:T-1}) by the forward-backward algorithm.

    With ``method="sequential"`` the backward pass is the classic recursion; with
    ``"associative"`` the smoothed marginals are the gradient of log p(x) with respect to the
    emission log-likelihoods (d log p(x) / d log p(x_t | z_t = k) = p(z_t = k | x)), which
    reverse-mode differentiation of the parallel scan computes in parallel too.

    Parameters are those of :func:`forward_log_prob`.

    Returns
    -------
    SmootherResult
        ``log_prob``, ``filtered_probs`` and ``smoothed_probs`` (rows of padded steps are 0).
    """
    args = _check(log_initial, log_transition, log_likelihoods, mask, lengths, method, scaling)
    return _forward_backward(*args, method=method, scaling=scaling)


# --------------------------------------------------------------------------------------------
# Viterbi


def _compose_maps_suffix(maps):
    """``out[t] = maps[t][maps[t+1][... maps[T-1][j]]]`` for every t, by an associative scan.

    ``maps`` ``(T, K)`` int: ``maps[t][j]`` is the state at t given state j at t+1
    (``maps[T-1]`` is the identity), so ``out[t][z_{T-1}]`` is the state at t. This backtracks
    Viterbi and FFBS in O(log T) depth.
    """
    flipped = maps[::-1]

    K = maps.shape[-1]
    states = jnp.arange(K, dtype=maps.dtype)

    def op(later, earlier):
        # ``later`` is the composition of maps nearer the end; apply ``earlier`` after it:
        # out[j] = earlier[later[j]]. Written as a one-hot select rather than a gather, because
        # XLA compiled the gather form of this scan for minutes on the CPU at T = 1e5.
        hit = later[..., :, None] == states
        return jnp.sum(jnp.where(hit, earlier[..., None, :], 0), axis=-1).astype(maps.dtype)

    return lax.associative_scan(op, flipped)[::-1]


def _maxplus_compose(a, b):
    Ma, sa = a
    Mb, sb = b
    C = jnp.max(Ma[..., :, :, None] + Mb[..., None, :, :], axis=-2)
    m = _finite_or_zero(jnp.max(C, axis=(-2, -1)))
    return C - m[..., None, None], sa + sb + m


def _max_and_argmax(scores):
    """Column maxima of ``scores`` ``(K, K)`` and their (first) row indices, in one variadic
    reduction: ``jnp.max`` and ``jnp.argmax`` would each reduce the matrix again (measured
    1.5-3x faster per Viterbi step on the CPU)."""
    idx = lax.broadcasted_iota(jnp.int32, scores.shape, 0)

    def pick(a, b):
        (va, ia), (vb, ib) = a, b
        take_b = (vb > va) | ((vb == va) & (ib < ia))
        return jnp.where(take_b, vb, va), jnp.where(take_b, ib, ia)

    init = (jnp.array(-jnp.inf, scores.dtype), jnp.array(0, jnp.int32))
    return lax.reduce((scores, idx), init, pick, (0,))


def _viterbi_single(log_pi, log_A, ll, valid, method):
    K = log_pi.shape[0]
    eye = _log_eye(K, ll.dtype)
    if method == "sequential":
        delta0 = _sel(_head(valid), log_pi + ll[0], log_pi)
        m0 = _finite_or_zero(jnp.max(delta0))

        def step(carry, inp):
            delta, offset = carry
            ll_t, v_t = inp
            scores = delta[:, None] + _sel(v_t, log_A, eye)
            best, bp = _max_and_argmax(scores)
            new = best + _sel(v_t, ll_t, jnp.zeros_like(ll_t))
            # Re-centre so the scores stay O(1) in float32; the offset keeps the total.
            m = _finite_or_zero(jnp.max(new))
            return (new - m, offset + m), bp

        (delta, offset), bps = lax.scan(step, (delta0 - m0, m0), (ll[1:], _tail(valid)),
                                        unroll=_unroll('viterbi', K))
        log_prob = offset + jnp.max(delta)
        last = jnp.argmax(delta).astype(jnp.int32)

        def back(z_next, bp):
            z = bp[z_next]
            return z, z

        _, path = lax.scan(back, last, bps, reverse=True, unroll=_unroll('backtrack', K))
        path = jnp.concatenate([path, last[None]])
    else:
        E = _assoc_elements(log_pi, log_A, ll, valid)
        m = _finite_or_zero(jnp.max(E, axis=(-2, -1)))
        M, s = lax.associative_scan(_maxplus_compose, (E - m[:, None, None], m))
        delta = M[:, 0, :]  # (T, K), each row known up to the constant s[t]
        trans = _sel(_tail(valid), jnp.broadcast_to(log_A, (ll.shape[0] - 1, K, K)), eye[None])
        bps = jnp.argmax(delta[:-1, :, None] + trans, axis=1).astype(jnp.int32)  # (T-1, K)
        last = jnp.argmax(delta[-1]).astype(jnp.int32)
        log_prob = s[-1] + jnp.max(delta[-1])
        maps = jnp.concatenate([bps, jnp.arange(K, dtype=jnp.int32)[None]], axis=0)
        # maps[t] sends the state at t+1 to the state at t; the suffix composition sends the
        # last state to the state at t.
        path = _compose_maps_suffix(maps)[:, last]
    return _sel(valid, path, jnp.full_like(path, -1)), log_prob


@functools.partial(jax.jit, static_argnames=("method",))
def _viterbi(log_initial, log_transition, log_likelihoods, mask, lengths, *, method):
    log_pi, log_A, ll = _cast(log_initial, log_transition, log_likelihoods)
    observed, valid = _batch_args(ll, mask, lengths)
    ll = _masked_ll(ll, observed)

    def single(ll_s, obs_s, valid_s):
        return ViterbiResult(*_viterbi_single(log_pi, log_A, ll_s, valid_s, method))

    return _batched(single, ll, observed, valid)


def viterbi(log_initial, log_transition, log_likelihoods, *, mask=None, lengths=None,
            method: str = "sequential") -> ViterbiResult:
    """Most probable state path argmax_z p(z, x) and its joint log-probability.

    Parameters are those of :func:`forward_log_prob` (there is no ``scaling``: max-product
    runs in log space, where it is exact).

    Returns
    -------
    ViterbiResult
        ``path`` int32 ``(T,)``/``(B, T)`` (``-1`` at padded steps) and ``log_prob``.
    """
    args = _check(log_initial, log_transition, log_likelihoods, mask, lengths, method)
    return _viterbi(*args, method=method)


# --------------------------------------------------------------------------------------------
# forward-filtering backward-sampling


def _backward_sample(key, log_filtered, log_A, valid, method):
    """One path z ~ p(z | x) given normalised log filtered messages ``(T, K)``."""
    T, K = log_filtered.shape
    eye = _log_eye(K, log_filtered.dtype)
    trans = _sel(_tail(valid), jnp.broadcast_to(log_A, (T - 1, K, K)), eye[None])  # (T-1, K, K)
    key_last, key_rest = jax.random.split(key)
    last = jax.random.categorical(key_last, log_filtered[-1]).astype(jnp.int32)
    if method == "sequential":
        g = jax.random.gumbel(key_rest, (T - 1, K), log_filtered.dtype)

        def back(z_next, inp):
            log_f, tr, g_t = inp
            z = jnp.argmax(g_t + log_f + tr[:, z_next]).astype(jnp.int32)
            return z, z

        _, path = lax.scan(back, last, (log_filtered[:-1], trans, g), reverse=True)
        path = jnp.concatenate([path, last[None]])
    else:
        # For every step and every possible next state j, draw z_t | z_{t+1} = j up front
        # (Gumbel-max); the path is then a composition of maps, done by an associative scan.
        g = jax.random.gumbel(key_rest, (T - 1, K, K), log_filtered.dtype)  # (t, j, i)
        scores = g + log_filtered[:-1, None, :] + jnp.swapaxes(trans, 1, 2)
        maps = jnp.argmax(scores, axis=-1).astype(jnp.int32)  # (T-1, K): j -> z_t
        maps = jnp.concatenate([maps, jnp.arange(K, dtype=jnp.int32)[None]], axis=0)
        path = _compose_maps_suffix(maps)[:, last]
    return _sel(valid, path, jnp.full_like(path, -1))


@functools.partial(jax.jit, static_argnames=("num_samples", "method", "scaling"))
def _ffbs(key, log_initial, log_transition, log_likelihoods, mask, lengths, *, num_samples, method, scaling):
    log_pi, log_A, ll = _cast(log_initial, log_transition, log_likelihoods)
    observed, valid = _batch_args(ll, mask, lengths)
    ll = _masked_ll(ll, observed)

    def single(ll_s, obs_s, valid_s, key_s):
        log_filtered, total, _ = _forward(log_pi, log_A, ll_s, valid_s, method, scaling)
        if num_samples is None:
            paths = _backward_sample(key_s, log_filtered, log_A, valid_s, method)
        else:
            keys = jax.random.split(key_s, num_samples)
            paths = jax.vmap(lambda k: _backward_sample(k, log_filtered, log_A, valid_s, method))(keys)
        return PathSample(paths, total)

    if ll.ndim == 2:
        return single(ll, observed, valid, key)
    return jax.vmap(single)(ll, observed, valid, jax.random.split(key, ll.shape[0]))


def ffbs(key, log_initial, log_transition, log_likelihoods, *, mask=None, lengths=None,
         num_samples: int | None = None, method: str = "sequential",
         scaling: str = "log") -> PathSample:
    """Draw state paths from p(z | x) by forward-filtering backward-sampling.

    Parameters
    ----------
    key : jax.random key
        Comes first, as in every JAX random function.
    log_initial, log_transition, log_likelihoods, mask, lengths, method, scaling
        As for :func:`forward_log_prob`.
    num_samples : int, optional
        Number of paths; ``None`` draws one path without a sample axis. The forward pass is
        done once and shared by all draws.

    Returns
    -------
    PathSample
        ``paths`` int32 ``(T,)``, ``(S, T)``, ``(B, T)`` or ``(B, S, T)`` (``-1`` at padded
        steps) and ``log_prob`` log p(x).
    """
    args = _check(log_initial, log_transition, log_likelihoods, mask, lengths, method, scaling)
    if num_samples is not None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise DataError("num_samples", "a positive integer or None", repr(num_samples))
        num_samples = int(num_samples)
    return _ffbs(key, *args, num_samples=num_samples, method=method, scaling=scaling)


# --------------------------------------------------------------------------------------------
# forward simulation


@functools.partial(jax.jit, static_argnames=("num_timesteps",))
def _sample_states(key, log_initial, log_transition, *, num_timesteps):
    log_initial = jnp.asarray(log_initial)
    log_transition = jnp.asarray(log_transition)
    k0, k_rest = jax.random.split(key)
    z0 = jax.random.categorical(k0, log_initial).astype(jnp.int32)
    if num_timesteps == 1:
        return z0[None]

    def step(z, k):
        z_new = jax.random.categorical(k, log_transition[z]).astype(jnp.int32)
        return z_new, z_new

    _, rest = lax.scan(step, z0, jax.random.split(k_rest, num_timesteps - 1))
    return jnp.concatenate([z0[None], rest])


def sample_states(key, log_initial, log_transition, num_timesteps: int) -> jax.Array:
    """Simulate a state path z_0 ~ pi, z_t | z_{t-1} ~ A[z_{t-1}].

    Parameters
    ----------
    key : jax.random key
    log_initial : Array ``(K,)``
    log_transition : Array ``(K, K)``
    num_timesteps : int
        T (static).

    Returns
    -------
    int32 Array ``(T,)``
    """
    if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, (int, np.integer)) or num_timesteps < 1:
        raise DataError("num_timesteps", "a positive integer", repr(num_timesteps))
    log_initial, log_transition, _ = _check_chain(log_initial, log_transition)
    return _sample_states(key, log_initial, log_transition, num_timesteps=int(num_timesteps))
