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
The library functions do not ``jit`` themselves; ``method``, ``scaling`` and ``num_samples``
are static arguments when the caller does.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
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


def _check(log_initial, log_transition, log_likelihoods, method, scaling="log"):
    if method not in _METHODS:
        raise DataError("method", f"one of {_METHODS}", repr(method))
    if scaling not in _SCALINGS:
        raise DataError("scaling", f"one of {_SCALINGS}", repr(scaling))
    log_initial = jnp.asarray(log_initial)
    log_transition = jnp.asarray(log_transition)
    log_likelihoods = jnp.asarray(log_likelihoods)
    if log_initial.ndim != 1:
        raise DataError("log_initial", "a 1-dimensional array (K,)", f"shape {log_initial.shape}")
    K = log_initial.shape[0]
    if log_transition.shape != (K, K):
        raise DataError("log_transition", f"an array of shape ({K}, {K})", f"shape {log_transition.shape}")
    if log_likelihoods.ndim not in (2, 3) or log_likelihoods.shape[-1] != K:
        raise DataError("log_likelihoods", f"an array of shape (T, {K}) or (B, T, {K})",
                        f"shape {log_likelihoods.shape}")
    if log_likelihoods.shape[-2] < 1:
        raise DataError("log_likelihoods", "at least one time step", "0 time steps")
    dtype = jnp.result_type(log_initial.dtype, log_transition.dtype, log_likelihoods.dtype, jnp.float32)
    return log_initial.astype(dtype), log_transition.astype(dtype), log_likelihoods.astype(dtype)


def lengths_to_mask(lengths, num_timesteps: int) -> jax.Array:
    """Boolean ``(..., T)`` array, True for ``t < lengths[...]``.

    Parameters
    ----------
    lengths : int Array ``()`` or ``(B,)``
    num_timesteps : int
        T, the padded length.
    """
    return jnp.arange(num_timesteps) < jnp.asarray(lengths)[..., None]


def _batch_args(log_likelihoods, mask, lengths):
    """Masks of observed and of valid (not padded) steps, shaped like ``log_likelihoods[..., 0]``."""
    shape = log_likelihoods.shape[:-1]
    T = shape[-1]
    if mask is None:
        observed = jnp.ones(shape, bool)
    else:
        observed = jnp.asarray(mask, bool)
        if observed.shape != shape:
            raise DataError("mask", f"a boolean array of shape {shape}", f"shape {observed.shape}")
    if lengths is None:
        # None, not an all-True array: the kernels then skip every padding select (a static
        # choice; the selects cost up to ~2x in the sequential scans).
        valid = None
    else:
        lengths = jnp.asarray(lengths)
        if lengths.shape != shape[:-1]:
            raise DataError("lengths", f"an integer array of shape {shape[:-1]}", f"shape {lengths.shape}")
        valid = lengths_to_mask(lengths, T)
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

    The carried message is kept in its own representation (log or probability) and converted
    to log once, outside the scan.
    """
    if scaling == "log":
        def predict(msg):
            return logsumexp(msg[:, None] + log_A, axis=0)

        def update(pred, ll_t):
            new = pred + ll_t
            c = logsumexp(new)
            return new - _finite_or_zero(c), c

        init_pred, to_log = log_pi, (lambda x: x)
    else:
        A = jnp.exp(log_A)

        def predict(msg):
            return msg @ A

        def update(pred, ll_t):
            m = _finite_or_zero(jnp.max(ll_t))
            new = pred * jnp.exp(ll_t - m)
            c = jnp.sum(new)
            return new / jnp.where(c > 0, c, jnp.ones_like(c)), jnp.log(c) + m

        init_pred, to_log = jnp.exp(log_pi), jnp.log

    first, c0 = update(init_pred, ll[0])
    first = _sel(_head(valid), first, init_pred)
    c0 = _sel(_head(valid), c0, jnp.zeros_like(c0))

    def step(carry, inp):
        msg, total = carry
        ll_t, v_t = inp
        new, c = update(predict(msg), ll_t)
        msg = _sel(v_t, new, msg)
        c = _sel(v_t, c, jnp.zeros_like(c))
        return (msg, total + c), ((msg, c) if store else None)

    (_, total), out = lax.scan(step, (first, c0), (ll[1:], _tail(valid)))
    if not store:
        return None, total, None
    rest, cs = out
    return to_log(jnp.concatenate([first[None], rest], axis=0)), total, jnp.concatenate([c0[None], cs])


def _seq_log_prob(log_pi, log_A, ll, valid, scaling):
    """log p(x) only: the same recursion without storing messages (the NUTS inner loop)."""
    return _seq_forward(log_pi, log_A, ll, valid, scaling, store=False)[1]


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
    """
    log_pi, log_A, ll = _check(log_initial, log_transition, log_likelihoods, method, scaling)
    observed, valid = _batch_args(ll, mask, lengths)
    ll = _masked_ll(ll, observed)

    def single(ll_s, obs_s, valid_s):
        if method == "sequential":
            return _seq_log_prob(log_pi, log_A, ll_s, valid_s, scaling)
        return _assoc_forward(log_pi, log_A, ll_s, valid_s, scaling)[1]

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
    log_pi, log_A, ll = _check(log_initial, log_transition, log_likelihoods, method, scaling)
    observed, valid = _batch_args(ll, mask, lengths)
    ll = _masked_ll(ll, observed)

    def single(ll_s, obs_s, valid_s):
        log_filtered, total, steps = _forward(log_pi, log_A, ll_s, valid_s, method, scaling)
        return FilterResult(total, jnp.exp(log_filtered), steps)

    return _batched(single, ll, observed, valid)


# --------------------------------------------------------------------------------------------
# forward-backward


def _seq_backward(log_A, ll, valid, scaling):
    """Normalised log backward messages ``(T, K)``; beta at the last step is uniform."""
    K = log_A.shape[0]
    if scaling == "log":
        def update(log_beta, ll_next):
            new = logsumexp(log_A + (ll_next + log_beta)[None, :], axis=1)
            return new - _finite_or_zero(logsumexp(new))

        last, to_log = jnp.full((K,), -jnp.log(K), ll.dtype), (lambda x: x)
    else:
        A = jnp.exp(log_A)

        def update(beta, ll_next):
            m = _finite_or_zero(jnp.max(ll_next))
            b = A @ (jnp.exp(ll_next - m) * beta)
            total = jnp.sum(b)
            return b / jnp.where(total > 0, total, jnp.ones_like(total))

        last, to_log = jnp.full((K,), 1.0 / K, ll.dtype), jnp.log

    def step(beta, inp):
        ll_next, v_next = inp
        beta = _sel(v_next, update(beta, ll_next), beta)
        return beta, beta

    _, rest = lax.scan(step, last, (ll[1:], _tail(valid)), reverse=True)
    return to_log(jnp.concatenate([rest, last[None]], axis=0))


def _normalise_rows(log_p):
    return jnp.exp(log_p - _finite_or_zero(logsumexp(log_p, axis=-1, keepdims=True)))


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
    log_pi, log_A, ll = _check(log_initial, log_transition, log_likelihoods, method, scaling)
    observed, valid = _batch_args(ll, mask, lengths)
    ll = _masked_ll(ll, observed)

    def single(ll_s, obs_s, valid_s):
        if method == "sequential":
            log_filtered, total, _ = _seq_forward(log_pi, log_A, ll_s, valid_s, scaling)
            log_beta = _seq_backward(log_A, ll_s, valid_s, scaling)
            smoothed = _normalise_rows(log_filtered + log_beta)
        else:
            def f(offset):
                log_filtered, total, _ = _assoc_forward(log_pi, log_A, ll_s + offset, valid_s, scaling)
                return total, log_filtered

            (total, log_filtered), smoothed = jax.value_and_grad(f, has_aux=True)(jnp.zeros_like(ll_s))
        smoothed = _sel(valid_s, smoothed, jnp.zeros_like(smoothed))
        return SmootherResult(total, jnp.exp(log_filtered), smoothed)

    return _batched(single, ll, observed, valid)


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
            bp = jnp.argmax(scores, axis=0).astype(jnp.int32)
            new = jnp.max(scores, axis=0) + _sel(v_t, ll_t, jnp.zeros_like(ll_t))
            # Re-centre so the scores stay O(1) in float32; the offset keeps the total.
            m = _finite_or_zero(jnp.max(new))
            return (new - m, offset + m), bp

        (delta, offset), bps = lax.scan(step, (delta0 - m0, m0), (ll[1:], _tail(valid)))
        log_prob = offset + jnp.max(delta)
        last = jnp.argmax(delta).astype(jnp.int32)

        def back(z_next, bp):
            z = bp[z_next]
            return z, z

        _, path = lax.scan(back, last, bps, reverse=True)
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
    log_pi, log_A, ll = _check(log_initial, log_transition, log_likelihoods, method)
    observed, valid = _batch_args(ll, mask, lengths)
    ll = _masked_ll(ll, observed)

    def single(ll_s, obs_s, valid_s):
        return ViterbiResult(*_viterbi_single(log_pi, log_A, ll_s, valid_s, method))

    return _batched(single, ll, observed, valid)


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
    log_pi, log_A, ll = _check(log_initial, log_transition, log_likelihoods, method, scaling)
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


# --------------------------------------------------------------------------------------------
# forward simulation


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
