"""Hidden Markov models as NumPyro programs, with the states marginalised exactly.

The model is z_0 ~ pi, z_t | z_{t-1} ~ A[z_{t-1}], x_t | z_t ~ p(x | theta_{z_t}).
:class:`MarginalHMM` is a ``numpyro.distributions.Distribution`` over a whole sequence (or a
batch of padded sequences) whose ``log_prob`` is the forward algorithm of
:mod:`ppl_models.kernels.hmm` and whose ``sample`` simulates states and emissions forward. A
program then writes ``numpyro.sample("obs", MarginalHMM(...), obs=obs)`` and gets NUTS/SVI on
the continuous parameters, a pointwise log-likelihood (per sequence) for LOO, and prior and
posterior predictive sampling with no special code.

Programs: :func:`categorical_hmm`, :func:`poisson_hmm`, :func:`gaussian_hmm` and
:func:`mvn_hmm`. Priors: Dirichlet on pi and on every row of A. Label switching is removed by
construction: the states are labelled in increasing order of an emission location (the Poisson
rate, the Gaussian mean, the first coordinate of the multivariate mean, the probability of one
chosen category), through :class:`OrderedIID` — K iid draws from the location's prior, sorted.

After a fit: :func:`posterior_viterbi`, :func:`posterior_state_probs`, :func:`posterior_ffbs`,
:func:`posterior_predictive`, :func:`step_log_likelihood` (one-step-ahead terms for LOO over
time points) and :func:`sample_hmm` (forward simulation from given parameters).

Data layout: one sequence is ``(T,)`` (``(T, D)`` for :func:`mvn_hmm`); several are padded to
``(B, T)`` with ``lengths`` ``(B,)``, or concatenated as hmmlearn does (``(sum(lengths),)``
with ``lengths``). NaN marks a missing observation.
"""

from __future__ import annotations

from ..kernels import hmm as _kernel_module

import math
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to

from ..data import ModelData, as_mapping, describe
from ..errors import DataError, ModelError
from ..kernels import hmm as kernels
from ..kernels.hmm import (  # re-exported, so that `hmm.forward_log_prob` works
    FilterResult,
    PathSample,
    SmootherResult,
    ViterbiResult,
    ffbs,
    forward_backward,
    forward_filter,
    forward_log_prob,
    lengths_to_mask,
    sample_states,
    viterbi,
)

__all__ = [
    "MarginalHMM",
    "OrderedIID",
    "categorical_hmm",
    "poisson_hmm",
    "gaussian_hmm",
    "mvn_hmm",
    "sample_hmm",
    "pad_sequences",
    "check_hmm_parameters",
    "posterior_viterbi",
    "posterior_state_probs",
    "posterior_ffbs",
    "posterior_predictive",
    "step_log_likelihood",
    "loo_over_time",
] + list(_kernel_module.__all__)  # the kernels, re-exported


def _is_concrete(x: Any) -> bool:
    return x is not None and not isinstance(x, jax.core.Tracer)


# --------------------------------------------------------------------------------------------
# parameter and data checks (run only on concrete values; traced values pass untouched)


def check_hmm_parameters(initial_probs: Any, transition_matrix: Any, *, atol: float = 1e-4) -> None:
    """Raise :class:`DataError` unless pi is a distribution and every row of A is one.

    Parameters
    ----------
    initial_probs : array ``(K,)``
    transition_matrix : array ``(K, K)``, rows ``p(z_t | z_{t-1} = i)``
    atol : float
        Tolerance on the sums (float32 Dirichlet draws sum to one within ~1e-6).
    """
    pi = np.asarray(initial_probs, dtype=np.float64)
    A = np.asarray(transition_matrix, dtype=np.float64)
    if pi.ndim != 1:
        raise DataError("initial_probs", "a 1-dimensional array (K,)", f"shape {pi.shape}")
    K = pi.shape[0]
    if A.shape != (K, K):
        raise DataError("transition_matrix", f"an array of shape ({K}, {K})", f"shape {A.shape}")
    if not np.all(np.isfinite(pi)) or np.any(pi < 0) or abs(pi.sum() - 1) > atol:
        raise DataError("initial_probs", "non-negative probabilities that sum to one",
                        f"sum {pi.sum():.6g}, minimum {pi.min():.6g}")
    sums = A.sum(axis=1)
    bad = np.flatnonzero(~np.isfinite(sums) | (np.abs(sums - 1) > atol) | np.any(A < 0, axis=1))
    if bad.size:
        i = int(bad[0])
        raise DataError("transition_matrix", "non-negative rows that each sum to one",
                        f"row {i} sums to {sums[i]:.6g} (minimum entry {A[i].min():.6g})")


def pad_sequences(sequences: Sequence[Any], fill_value: float = np.nan) -> tuple[np.ndarray, np.ndarray]:
    """Pad sequences of different lengths into one array.

    Parameters
    ----------
    sequences : sequence of arrays ``(T_b,)`` or ``(T_b, D)``
    fill_value : float
        Written at padded steps (ignored by the models, which use ``lengths``).

    Returns
    -------
    padded : array ``(B, max T_b)`` or ``(B, max T_b, D)``
    lengths : int array ``(B,)``
    """
    arrays = [np.asarray(s, dtype=np.float64) for s in sequences]
    if not arrays:
        raise DataError("sequences", "at least one sequence", "none")
    tail = arrays[0].shape[1:]
    for b, a in enumerate(arrays):
        if a.ndim == 0 or a.shape[1:] != tail:
            raise DataError("sequences", f"arrays of shape (T, {', '.join(map(str, tail))})".replace(", )", ")"),
                            f"sequence {b} of shape {a.shape}")
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int32)
    out = np.full((len(arrays), lengths.max()) + tail, fill_value, dtype=np.float64)
    for b, a in enumerate(arrays):
        out[b, : a.shape[0]] = a
    return out, lengths


def _prepare(obs: Any, lengths: Any, num_timesteps: int | None, event_ndim: int,
             name: str = "obs") -> tuple[Any, Any, int]:
    """Validate the layout of the observations; returns ``(obs, lengths, T)``.

    One sequence is ``(T, *event)``; a batch is ``(B, T, *event)`` with ``lengths`` ``(B,)``;
    hmmlearn's layout ``(sum(lengths), *event)`` with ``lengths`` is padded here.
    """
    # Concrete jax.Arrays stay jax.Arrays (a sharded batch keeps its sharding, so the forward
    # pass runs data-parallel over sequences); only their values are read here, for the checks.
    if lengths is not None and _is_concrete(lengths):
        if not isinstance(lengths, jax.Array):
            lengths = np.asarray(lengths)
        lv = np.asarray(lengths)
        if lv.ndim != 1 or lv.size == 0 or not np.issubdtype(lv.dtype, np.integer) or lv.min() < 1:
            raise DataError("lengths", "a non-empty 1-dimensional array of positive integers", describe(lv))
    if obs is None:
        if num_timesteps is None:
            if lengths is None:
                raise ModelError("to simulate (obs=None) the program needs `num_timesteps` (or `lengths`)")
            num_timesteps = int(np.max(lengths))
        return None, lengths, int(num_timesteps)
    if isinstance(obs, (list, tuple)) and len(obs) and np.ndim(obs[0]) >= 1:
        sizes = [np.shape(o)[0] for o in obs]
        if len(set(sizes)) > 1:
            raise DataError(name, "a rectangular array: pad ragged sequences with "
                            "`pad_sequences` and pass `lengths`", f"a list of sequences of lengths {sizes}")
    if _is_concrete(obs) and not isinstance(obs, jax.Array):
        obs = np.asarray(obs)
        if obs.dtype == object:
            raise DataError(name, "a numeric array", "an object array (ragged input?)",
                            "pad ragged sequences with `pad_sequences` and pass `lengths`")
    ndim = jnp.ndim(obs)
    if ndim == event_ndim + 1:
        if lengths is not None and _is_concrete(lengths):
            lengths, obs = np.asarray(lengths), np.asarray(obs)  # re-laid out on the host
            if lengths.sum() != obs.shape[0]:
                raise DataError("lengths", f"lengths summing to the {obs.shape[0]} concatenated observations "
                                "(hmmlearn's layout), or a padded (B, T) array of observations",
                                f"lengths summing to {int(lengths.sum())}")
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            obs, lengths = pad_sequences([obs[s:s + L] for s, L in zip(starts, lengths)])
        elif lengths is not None:
            raise DataError("obs", "a padded (B, T) array when `lengths` is traced", f"shape {jnp.shape(obs)}")
    elif ndim == event_ndim + 2:
        if lengths is None:
            lengths = np.full(jnp.shape(obs)[0], jnp.shape(obs)[1], dtype=np.int32)
        elif _is_concrete(lengths) and (np.shape(lengths)[0] != jnp.shape(obs)[0]
                                        or int(np.max(np.asarray(lengths))) > jnp.shape(obs)[1]):
            raise DataError("lengths", f"{jnp.shape(obs)[0]} lengths of at most {jnp.shape(obs)[1]}",
                            describe(lengths))
    else:
        expected = "(T,) or (B, T)" if event_ndim == 0 else "(T, D) or (B, T, D)"
        raise DataError(name, f"an array of shape {expected}", f"shape {jnp.shape(obs)}")
    T = int(jnp.shape(obs)[-1 - event_ndim])
    if num_timesteps is not None and int(num_timesteps) != T:
        raise DataError("num_timesteps", f"the length of `{name}` ({T})", repr(num_timesteps))
    return obs, lengths, T


def _check_values(name: str, obs: Any, *, low: int | None = None, high: int | None = None,
                  integer: bool = False) -> None:
    if not _is_concrete(obs):
        return
    x = np.asarray(obs, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return
    if not np.all(np.isfinite(x)):
        raise DataError(name, "finite values (NaN marks a missing one)", "infinite values")
    if integer and not np.all(x == np.round(x)):
        raise DataError(name, "integer values", f"non-integer values such as {x[x != np.round(x)][0]!r}")
    if low is not None and x.min() < low:
        what = "non-negative counts" if low == 0 and high is None else f"values >= {low}"
        raise DataError(name, what, f"minimum {x.min():g}")
    if high is not None and x.max() >= high:
        raise DataError(name, f"categories in 0..{high - 1}", f"the category {x.max():g}")


# --------------------------------------------------------------------------------------------
# distributions


class OrderedIID(dist.Distribution):
    """K iid draws from a scalar distribution on the real line, sorted increasingly.

    The density of the sorted vector is ``K! * prod_k base(y_k)`` on ``y_0 < ... < y_{K-1}``:
    the usual "iid prior, labelled in increasing order" that removes label switching while
    keeping a proper prior (so prior predictive checks and SBC are exact).

    Parameters
    ----------
    base : Distribution
        A scalar distribution (batch and event shape ``()``) supported on the real line.
    num : int
        K.
    """

    arg_constraints: dict = {}
    support = constraints.ordered_vector
    pytree_data_fields = ("base",)
    pytree_aux_fields = ("num",)

    def __init__(self, base: dist.Distribution, num: int, *, validate_args=None):
        if base.batch_shape != () or base.event_shape != ():
            raise ModelError(f"OrderedIID needs a scalar base distribution, got batch shape "
                             f"{base.batch_shape} and event shape {base.event_shape}")
        self.base = base
        self.num = int(num)
        super().__init__(batch_shape=(), event_shape=(self.num,), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        return jnp.sort(self.base.sample(key, tuple(sample_shape) + (self.num,)), axis=-1)

    def log_prob(self, value):
        return jnp.sum(self.base.log_prob(value), axis=-1) + gammaln(self.num + 1.0)


def _logit_beta(a: float, b: float) -> dist.Distribution:
    """The distribution of logit(p) for p ~ Beta(a, b), a scalar on the real line."""
    return dist.TransformedDistribution(dist.Beta(a, b), dist.transforms.SigmoidTransform().inv)


class MarginalHMM(dist.Distribution):
    """A hidden Markov model over whole sequences, with the states summed out.

    Parameters
    ----------
    initial_probs : array ``(K,)``
    transition_matrix : array ``(K, K)``
        Row ``i`` is p(z_t | z_{t-1} = i).
    emission : Distribution
        Batch shape ``(K,)``: the emission distribution of each state (any event shape).
    num_timesteps : int
        T, the (padded) sequence length.
    lengths : int array ``(B,)``, optional
        Makes a batch of B padded sequences (batch shape ``(B,)``); steps ``t >= lengths[b]``
        are ignored.
    mask : bool array ``(T,)`` or ``(B, T)``, optional
        False where an observation is missing (NaN values are missing too).
    method : {"sequential", "associative"}
        Forward algorithm by ``lax.scan`` or by the parallel-in-time associative scan.
    scaling : {"normalized", "log"}
        Rescaled probability-space messages (the default: about three times faster on the
        CPU, and as stable in float32 since the messages are renormalised at every step) or
        log-space ones (see :mod:`ppl_models.kernels.hmm`).

    Notes
    -----
    ``event_shape`` is ``(T, *emission.event_shape)``. ``log_prob(x)`` is log p(x_{0:T-1}), the
    exact marginal; ``sample`` draws states and emissions forward (:meth:`sample_with_states`
    returns the states too). Emission values at padded steps of a draw are draws as well and
    carry no meaning. When the parameters are concrete arrays they are checked
    (:func:`check_hmm_parameters`).

    Values outside the emission's support (a category outside the alphabet, a negative
    count) give ``log_prob = -inf``, NumPyro's convention (with its "Out-of-support" warning
    when validation is on). The programs (:func:`categorical_hmm`, :func:`poisson_hmm`, ...)
    check their data before that, so ``ppl_models.fit``, ``log_joint`` and ``sample_prior``
    on them raise a :class:`~ppl_models.errors.DataError` naming ``obs`` instead.
    """

    arg_constraints: dict = {}
    pytree_data_fields = ("initial_probs", "transition_matrix", "emission", "lengths", "observed_mask")
    pytree_aux_fields = ("num_timesteps", "method", "scaling")

    def __init__(self, initial_probs, transition_matrix, emission: dist.Distribution, num_timesteps: int,
                 *, lengths=None, mask=None, method: str = "sequential", scaling: str = "normalized",
                 validate_args=None):
        if _is_concrete(initial_probs) and _is_concrete(transition_matrix):
            check_hmm_parameters(initial_probs, transition_matrix)
        self.initial_probs = jnp.asarray(initial_probs)
        self.transition_matrix = jnp.asarray(transition_matrix)
        K = self.initial_probs.shape[-1]
        if emission.batch_shape != (K,):
            raise ModelError(f"the emission distribution needs batch shape ({K},) (one per state), "
                             f"got {emission.batch_shape}")
        if method not in ("sequential", "associative"):
            raise DataError("method", "'sequential' or 'associative'", repr(method))
        if scaling not in ("log", "normalized"):
            raise DataError("scaling", "'log' or 'normalized'", repr(scaling))
        self.emission = emission
        self.num_timesteps = int(num_timesteps)
        self.lengths = None if lengths is None else jnp.asarray(lengths)
        # not `self.mask`: that name is the method Distribution.mask(), which handlers call
        self.observed_mask = None if mask is None else jnp.asarray(mask, bool)
        self.method = method
        self.scaling = scaling
        if self.lengths is not None:
            batch_shape = tuple(self.lengths.shape)
        elif self.observed_mask is not None:
            batch_shape = tuple(self.observed_mask.shape[:-1])
        else:
            batch_shape = ()
        if len(batch_shape) > 1:
            raise ModelError(f"MarginalHMM takes one batch dimension of sequences, got {batch_shape}")
        super().__init__(batch_shape=batch_shape, event_shape=(self.num_timesteps,) + emission.event_shape,
                         validate_args=validate_args)

    @property
    def support(self):
        # The emission's support repeated over time (NaN, marking a missing value, is outside
        # it: log_prob does not validate its argument, it masks NaN).
        return constraints.independent(self.emission.support, 1)

    @property
    def num_states(self) -> int:
        return int(self.initial_probs.shape[-1])

    # ------------------------------------------------------------------ emissions
    def _event_ndim(self) -> int:
        return len(self.emission.event_shape)

    def _observed(self, value):
        """Bool ``(..., T)``: True where the observation is present."""
        nd = self._event_ndim()
        present = ~jnp.isnan(value) if jnp.issubdtype(value.dtype, jnp.floating) else jnp.ones(value.shape, bool)
        if nd:
            present = jnp.all(present, axis=tuple(range(-nd, 0)))
        if self.observed_mask is not None:
            present = present & self.observed_mask
        return present

    def log_likelihoods(self, value):
        """Emission log-likelihoods ``(..., T, K)`` (0 at missing steps) and the present mask."""
        value = jnp.asarray(value)
        nd = self._event_ndim()
        present = self._observed(value)
        if self.emission.support.is_discrete:
            fill = jnp.zeros(self.emission.event_shape, value.dtype)
        else:
            fill = biject_to(self.emission.support)(jnp.zeros(self.emission.event_shape))
            fill = fill[0] if fill.ndim > nd else fill
        # Double `where`: the safe value keeps NaN out of the emission's log-density and of
        # its gradient; the second `where` drops the missing steps.
        safe = jnp.where(present.reshape(present.shape + (1,) * nd), value, fill)
        if self.emission.support.is_discrete:
            safe = safe.astype(jnp.int32)
        ll = self.emission.log_prob(jnp.expand_dims(safe, -nd - 1))
        return jnp.where(present[..., None], ll, 0.0), present

    def _flat_ll(self, value):
        """Log-likelihoods flattened to ``(N, T, K)``, lengths ``(N,)``, and the leading shape."""
        ll, _ = self.log_likelihoods(value)
        lead = ll.shape[:-2]
        T, K = ll.shape[-2:]
        lengths = None
        if self.lengths is not None:
            lengths = jnp.broadcast_to(self.lengths, lead).reshape(-1)
        return ll.reshape((-1, T, K)), lengths, lead

    def _logs(self):
        return jnp.log(self.initial_probs), jnp.log(self.transition_matrix)

    def log_prob(self, value):
        ll, lengths, lead = self._flat_ll(value)
        lp = forward_log_prob(*self._logs(), ll, lengths=lengths, method=self.method, scaling=self.scaling)
        return lp.reshape(lead)

    # ------------------------------------------------------------------ inference on a value
    def filter(self, value) -> FilterResult:
        """Forward pass on observed sequences ``value`` (leading dims as ``log_prob``)."""
        ll, lengths, lead = self._flat_ll(value)
        r = forward_filter(*self._logs(), ll, lengths=lengths, method=self.method, scaling=self.scaling)
        return jax.tree.map(lambda a: a.reshape(lead + a.shape[1:]), r)

    def posterior_marginals(self, value) -> SmootherResult:
        """p(z_t | x) for the sequences ``value``: a :class:`SmootherResult`."""
        ll, lengths, lead = self._flat_ll(value)
        r = forward_backward(*self._logs(), ll, lengths=lengths, method=self.method, scaling=self.scaling)
        return jax.tree.map(lambda a: a.reshape(lead + a.shape[1:]), r)

    def viterbi(self, value) -> ViterbiResult:
        """Most probable state paths of the sequences ``value``: a :class:`ViterbiResult`."""
        ll, lengths, lead = self._flat_ll(value)
        r = viterbi(*self._logs(), ll, lengths=lengths, method=self.method)
        return jax.tree.map(lambda a: a.reshape(lead + a.shape[1:]), r)

    def ffbs(self, key, value, num_samples: int | None = None) -> PathSample:
        """State paths drawn from p(z | x) for the sequences ``value``: a :class:`PathSample`."""
        ll, lengths, lead = self._flat_ll(value)
        r = ffbs(key, *self._logs(), ll, lengths=lengths, num_samples=num_samples, method=self.method,
                 scaling=self.scaling)
        return jax.tree.map(lambda a: a.reshape(lead + a.shape[1:]), r)

    # ------------------------------------------------------------------ simulation
    def sample_with_states(self, key, sample_shape=()):
        """Draw ``(x, z)``: emissions ``sample_shape + batch_shape + event_shape`` and states
        ``sample_shape + batch_shape + (T,)`` (states are ``-1`` at padded steps)."""
        shape = tuple(sample_shape) + self.batch_shape
        n = math.prod(shape)
        T = self.num_timesteps
        log_pi, log_A = self._logs()

        def one(k):
            kz, kx = jax.random.split(k)
            z = sample_states(kz, log_pi, log_A, T)
            # A draw from every state's emission, then the one of the current state: K times
            # the work of drawing only what is needed, but any emission distribution works.
            xs = self.emission.sample(kx, (T,))  # (T, K, *event)
            return xs[jnp.arange(T), z], z

        x, z = jax.vmap(one)(jax.random.split(key, n))
        x = x.reshape(shape + x.shape[1:])
        z = z.reshape(shape + (T,))
        if self.lengths is not None:
            z = jnp.where(lengths_to_mask(self.lengths, T), z, -1)
        return x, z

    def sample(self, key, sample_shape=()):
        return self.sample_with_states(key, sample_shape)[0]

    def sample_with_intermediates(self, key, sample_shape=()):
        x, z = self.sample_with_states(key, sample_shape)
        return x, [z]


def sample_hmm(key, initial_probs, transition_matrix, emission: dist.Distribution, num_timesteps: int,
               *, num_sequences: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Forward-simulate sequences from given parameters.

    Parameters
    ----------
    key : jax.random key
    initial_probs : array ``(K,)``
    transition_matrix : array ``(K, K)``
    emission : Distribution with batch shape ``(K,)``
    num_timesteps : int
    num_sequences : int, optional
        B; ``None`` draws one sequence.

    Returns
    -------
    obs : array ``(T, *event)`` or ``(B, T, *event)``
    states : int32 array ``(T,)`` or ``(B, T)``
    """
    d = MarginalHMM(initial_probs, transition_matrix, emission, num_timesteps)
    return d.sample_with_states(key, () if num_sequences is None else (int(num_sequences),))


# --------------------------------------------------------------------------------------------
# programs


def _transition_priors(K: int, initial_concentration: float, transition_concentration: float,
                       stickiness: float):
    if K < 1:
        raise ModelError(f"num_states must be at least 1, got {K}")
    pi = numpyro.sample("initial_probs", dist.Dirichlet(jnp.full((K,), float(initial_concentration))))
    conc = jnp.full((K, K), float(transition_concentration)) + float(stickiness) * jnp.eye(K)
    with numpyro.plate("state", K):
        A = numpyro.sample("transition_matrix", dist.Dirichlet(conc))
    return pi, A


def _observe(emission, pi, A, obs, lengths, T, mask, method, scaling):
    d = MarginalHMM(pi, A, emission, T, lengths=lengths, mask=mask, method=method, scaling=scaling)
    if lengths is None:
        return numpyro.sample("obs", d, obs=obs)
    # One plate entry per sequence: the pointwise log-likelihood (and LOO) is per sequence.
    with numpyro.plate("sequence", d.batch_shape[0]):
        return numpyro.sample("obs", d, obs=obs)


def poisson_hmm(obs=None, *, num_states: int = 2, num_timesteps: int | None = None, lengths=None,
                mask=None, log_rate_loc: float = 2.5, log_rate_scale: float = 1.0,
                initial_concentration: float = 1.0, transition_concentration: float = 1.0,
                stickiness: float = 0.0, method: str = "sequential", scaling: str = "normalized"):
    """Poisson-emission HMM for count series.

    Parameters
    ----------
    obs : array ``(T,)``, ``(B, T)`` (with ``lengths``) or ``(sum(lengths),)``; None to simulate
        Non-negative integer counts; NaN is a missing count.
    num_states : int
        K.
    num_timesteps : int, optional
        T; needed when ``obs`` is None.
    lengths : int array ``(B,)``, optional
    mask : bool array like ``obs``, optional
        False where a count is missing.
    log_rate_loc, log_rate_scale : float
        The rates are ``exp`` of K iid Normal(log_rate_loc, log_rate_scale) draws, sorted:
        state 0 has the lowest rate.
    initial_concentration, transition_concentration, stickiness : float
        pi ~ Dirichlet(initial_concentration); row i of A ~
        Dirichlet(transition_concentration + stickiness * e_i).
    method, scaling
        Forward algorithm variant (:class:`MarginalHMM`).

    Sites: ``initial_probs`` ``(K,)``, ``transition_matrix`` ``(K, K)``, ``log_rates`` ``(K,)``,
    ``rates`` (deterministic), ``obs``.
    """
    obs, lengths, T = _prepare(obs, lengths, num_timesteps, 0)
    _check_values("obs", obs, low=0, integer=True)
    K = int(num_states)
    pi, A = _transition_priors(K, initial_concentration, transition_concentration, stickiness)
    log_rates = numpyro.sample("log_rates", OrderedIID(dist.Normal(log_rate_loc, log_rate_scale), K))
    rates = numpyro.deterministic("rates", jnp.exp(log_rates))
    return _observe(dist.Poisson(rates), pi, A, obs, lengths, T, mask, method, scaling)


def categorical_hmm(obs=None, *, num_states: int = 2, num_categories: int | None = None,
                    num_timesteps: int | None = None, lengths=None, mask=None, order_by: int = 0,
                    emission_concentration: float = 1.0, initial_concentration: float = 1.0,
                    transition_concentration: float = 1.0, stickiness: float = 0.0,
                    method: str = "sequential", scaling: str = "normalized"):
    """Categorical-emission HMM for sequences of symbols ``0..C-1``.

    Parameters
    ----------
    obs : int array ``(T,)``, ``(B, T)`` or ``(sum(lengths),)``; None to simulate
        Categories in ``0..num_categories-1``; NaN (in a float array) is missing.
    num_states : int
        K.
    num_categories : int
        C >= 2 (taken as ``max(obs) + 1`` when not given and ``obs`` is).
    order_by : int
        The category whose emission probability labels the states in increasing order.
    emission_concentration : float
        Row k of the emission matrix ~ Dirichlet(emission_concentration). Written as
        p_k(order_by) ~ Beta(a, (C-1) a), sorted over k, and the rest of the row
        (1 - p_k(order_by)) * Dirichlet(a) — the same Dirichlet, factorised, so that the
        ordering is exact.
    Other parameters as for :func:`poisson_hmm`.

    Sites: ``initial_probs``, ``transition_matrix``, ``order_logits`` ``(K,)`` (logit of the
    ordered probabilities), ``other_probs`` ``(K, C-1)`` (C > 2), ``emission_probs``
    (deterministic, ``(K, C)``), ``obs``.
    """
    obs, lengths, T = _prepare(obs, lengths, num_timesteps, 0)
    if num_categories is None:
        if not _is_concrete(obs):
            raise ModelError("categorical_hmm needs `num_categories` when obs is None or traced")
        num_categories = int(np.nanmax(np.asarray(obs, dtype=np.float64))) + 1
    C = int(num_categories)
    if C < 2:
        raise ModelError(f"num_categories must be at least 2, got {C}")
    if not 0 <= int(order_by) < C:
        raise DataError("order_by", f"a category in 0..{C - 1}", repr(order_by))
    _check_values("obs", obs, low=0, high=C, integer=True)
    K = int(num_states)
    pi, A = _transition_priors(K, initial_concentration, transition_concentration, stickiness)
    a = float(emission_concentration)
    logits = numpyro.sample("order_logits", OrderedIID(_logit_beta(a, (C - 1) * a), K))
    p_first = jax.nn.sigmoid(logits)
    if C > 2:
        with numpyro.plate("state", K):
            rest = numpyro.sample("other_probs", dist.Dirichlet(jnp.full((C - 1,), a)))
    else:
        rest = jnp.ones((K, 1))
    others = (1.0 - p_first)[:, None] * rest
    j = int(order_by)
    probs = jnp.concatenate([others[:, :j], p_first[:, None], others[:, j:]], axis=1)
    probs = numpyro.deterministic("emission_probs", probs)
    return _observe(dist.Categorical(probs=probs), pi, A, obs, lengths, T, mask, method, scaling)


def gaussian_hmm(obs=None, *, num_states: int = 2, num_timesteps: int | None = None, lengths=None,
                 mask=None, loc_loc: float = 0.0, loc_scale: float = 5.0, scale_scale: float = 2.5,
                 initial_concentration: float = 1.0, transition_concentration: float = 1.0,
                 stickiness: float = 0.0, method: str = "sequential", scaling: str = "normalized"):
    """Univariate Gaussian-emission HMM.

    Parameters
    ----------
    obs : float array ``(T,)``, ``(B, T)`` or ``(sum(lengths),)``; None to simulate
        NaN is missing.
    loc_loc, loc_scale : float
        The state means are K iid Normal(loc_loc, loc_scale) draws, sorted (state 0 lowest).
    scale_scale : float
        Each state's standard deviation ~ HalfNormal(scale_scale).
    Other parameters as for :func:`poisson_hmm`.

    Sites: ``initial_probs``, ``transition_matrix``, ``locs`` ``(K,)``, ``scales`` ``(K,)``,
    ``obs``.
    """
    obs, lengths, T = _prepare(obs, lengths, num_timesteps, 0)
    _check_values("obs", obs)
    K = int(num_states)
    pi, A = _transition_priors(K, initial_concentration, transition_concentration, stickiness)
    locs = numpyro.sample("locs", OrderedIID(dist.Normal(loc_loc, loc_scale), K))
    with numpyro.plate("state", K):
        scales = numpyro.sample("scales", dist.HalfNormal(scale_scale))
    return _observe(dist.Normal(locs, scales), pi, A, obs, lengths, T, mask, method, scaling)


def mvn_hmm(obs=None, *, num_states: int = 2, dim: int | None = None, num_timesteps: int | None = None,
            lengths=None, mask=None, loc_loc=0.0, loc_scale=5.0, scale_scale=2.5,
            lkj_concentration: float = 2.0, initial_concentration: float = 1.0,
            transition_concentration: float = 1.0, stickiness: float = 0.0,
            method: str = "sequential", scaling: str = "normalized"):
    """Multivariate Gaussian-emission HMM (full covariance per state).

    Parameters
    ----------
    obs : float array ``(T, D)``, ``(B, T, D)`` or ``(sum(lengths), D)``; None to simulate
        A time step with any NaN coordinate is missing as a whole.
    dim : int
        D (taken from ``obs`` when given).
    loc_loc, loc_scale : float or array ``(D,)``
        Mean coordinates ~ Normal(loc_loc[d], loc_scale[d]); the first coordinates of the K
        means are sorted (state 0 lowest), the others are iid.
    scale_scale : float or array ``(D,)``
        Per-coordinate standard deviations ~ HalfNormal(scale_scale).
    lkj_concentration : float
        Correlation matrices ~ LKJ(lkj_concentration).
    Other parameters as for :func:`poisson_hmm`.

    Sites: ``initial_probs``, ``transition_matrix``, ``loc_first`` ``(K,)``, ``loc_rest``
    ``(K, D-1)`` (D > 1), ``locs`` (deterministic ``(K, D)``), ``scales`` ``(K, D)``,
    ``corr_cholesky`` ``(K, D, D)``, ``obs``.
    """
    obs, lengths, T = _prepare(obs, lengths, num_timesteps, 1)
    if obs is not None:
        D_obs = int(jnp.shape(obs)[-1])
        if dim is not None and int(dim) != D_obs:
            raise DataError("dim", f"the last dimension of `obs` ({D_obs})", repr(dim))
        dim = D_obs
    if dim is None:
        raise ModelError("mvn_hmm needs `dim` when obs is None")
    D = int(dim)
    _check_values("obs", obs)
    K = int(num_states)
    pi, A = _transition_priors(K, initial_concentration, transition_concentration, stickiness)
    loc_loc = jnp.broadcast_to(jnp.asarray(loc_loc, jnp.float32), (D,))
    loc_scale = jnp.broadcast_to(jnp.asarray(loc_scale, jnp.float32), (D,))
    loc_first = numpyro.sample("loc_first", OrderedIID(dist.Normal(loc_loc[0], loc_scale[0]), K))
    if D > 1:
        with numpyro.plate("state", K):
            loc_rest = numpyro.sample("loc_rest", dist.Normal(loc_loc[1:], loc_scale[1:]).to_event(1))
        locs = jnp.concatenate([loc_first[:, None], loc_rest], axis=1)
    else:
        locs = loc_first[:, None]
    locs = numpyro.deterministic("locs", locs)
    scale_scale = jnp.broadcast_to(jnp.asarray(scale_scale, jnp.float32), (D,))
    with numpyro.plate("state", K):
        scales = numpyro.sample("scales", dist.HalfNormal(scale_scale).to_event(1))
        corr = numpyro.sample("corr_cholesky", dist.LKJCholesky(D, lkj_concentration))
    scale_tril = scales[..., :, None] * corr
    return _observe(dist.MultivariateNormal(locs, scale_tril=scale_tril), pi, A, obs, lengths, T, mask,
                    method, scaling)


# --------------------------------------------------------------------------------------------
# after a fit


def _fit_parts(fit, data):
    model = fit.model
    if model is None:
        raise ModelError("this fit has no model program; load it with load_fit(path, model=...)")
    kwargs = dict(fit.data)
    if data is not None:
        kwargs.update(as_mapping("data", data))
    return model, kwargs


def _draws(fit, num_draws: int | None) -> dict[str, np.ndarray]:
    samples = fit.get_samples()
    n = next(iter(samples.values())).shape[0]
    if num_draws is not None and num_draws < n:
        idx = np.linspace(0, n - 1, int(num_draws)).round().astype(int)
        samples = {k: v[idx] for k, v in samples.items()}
    return samples


def _hmm_site(model, kwargs, params, key, site: str | None = None):
    """The MarginalHMM of ``model`` (with ``params`` substituted) and its value."""
    tr = handlers.trace(handlers.substitute(handlers.seed(model, key), data=params)).get_trace(**kwargs)
    for name, s in tr.items():
        if s["type"] != "sample" or (site is not None and name != site):
            continue
        fn = s["fn"]
        while not isinstance(fn, MarginalHMM) and hasattr(fn, "base_dist"):
            fn = fn.base_dist  # plates may wrap it in an ExpandedDistribution
        if isinstance(fn, MarginalHMM):
            return fn, s["value"]
    raise ModelError(f"the program has no MarginalHMM sample site{'' if site is None else ' named ' + site!r}")


def _map_over_draws(fit, data, num_draws, seed, fn, site=None):
    model, kwargs = _fit_parts(fit, data)
    samples = _draws(fit, num_draws)
    n = next(iter(samples.values())).shape[0]
    keys = jax.random.split(jax.random.PRNGKey(seed), n)

    def one(params, key):
        k_model, k_fn = jax.random.split(key)
        d, value = _hmm_site(model, kwargs, params, k_model, site)
        return fn(d, value, k_fn)

    params = {k: jnp.asarray(v) for k, v in samples.items()}
    # lax.map, not vmap: one draw at a time keeps memory at O(T K) for long sequences.
    return jax.tree.map(np.asarray, jax.jit(lambda p, k: jax.lax.map(lambda a: one(*a), (p, k)))(params, keys))


def posterior_viterbi(fit, data: Mapping[str, Any] | ModelData | None = None, *, num_draws: int | None = None,
                      site: str | None = None) -> np.ndarray:
    """The Viterbi path under each posterior draw of the parameters.

    Parameters
    ----------
    fit : Fit
        A fit of an HMM program (any program with one :class:`MarginalHMM` site).
    data : mapping, optional
        Keyword arguments replacing the fit's (e.g. new sequences to decode).
    num_draws : int, optional
        Use about this many evenly spaced draws (default: all).

    Returns
    -------
    int array ``(S, T)`` or ``(S, B, T)``; ``-1`` at padded steps.
    """
    return _map_over_draws(fit, data, num_draws, 0, lambda d, x, k: d.viterbi(x).path, site)


def posterior_state_probs(fit, data: Mapping[str, Any] | ModelData | None = None, *,
                          num_draws: int | None = None, site: str | None = None) -> np.ndarray:
    """Posterior state probabilities p(z_t = k | x), averaged over the parameter draws.

    Returns
    -------
    array ``(T, K)`` or ``(B, T, K)``: E_theta[p(z_t | x, theta)] = p(z_t | x).
    """
    probs = _map_over_draws(fit, data, num_draws, 0, lambda d, x, k: d.posterior_marginals(x).smoothed_probs,
                            site)
    return probs.mean(axis=0)


def posterior_ffbs(fit, data: Mapping[str, Any] | ModelData | None = None, *, seed: int = 0,
                   num_draws: int | None = None, site: str | None = None) -> np.ndarray:
    """One state path from p(z | x, theta) per posterior draw theta: draws of p(z | x).

    Returns
    -------
    int array ``(S, T)`` or ``(S, B, T)``; ``-1`` at padded steps.
    """
    return _map_over_draws(fit, data, num_draws, seed, lambda d, x, k: d.ffbs(k, x).paths, site)


def posterior_predictive(fit, *, num_timesteps: int | None = None, seed: int = 0,
                         num_draws: int | None = None, site: str | None = None) -> dict[str, np.ndarray]:
    """Sequences (and their states) simulated from the posterior.

    With ``num_timesteps`` None the replicated sequences have the shape of the data (posterior
    predictive checks); otherwise new sequences of that length are simulated forward from
    the start (forecasting a new stretch is :func:`posterior_ffbs` + the transition matrix).

    Returns
    -------
    dict with ``"obs"`` ``(S, [B,] T, *event)`` and ``"states"`` ``(S, [B,] T)``.
    """
    model, kwargs = _fit_parts(fit, None)
    sim_kwargs = dict(kwargs)
    if num_timesteps is not None:
        sim_kwargs.update(obs=None, num_timesteps=int(num_timesteps), lengths=None, mask=None)
    # Otherwise the program runs on its data: the HMM site then has the data's length and
    # lengths, and its `sample` ignores the observed value.
    samples = _draws(fit, num_draws)
    n = next(iter(samples.values())).shape[0]
    keys = jax.random.split(jax.random.PRNGKey(seed), n)

    def one(params, key):
        k_model, k_sim = jax.random.split(key)
        d, _ = _hmm_site(model, sim_kwargs, params, k_model, site)
        return d.sample_with_states(k_sim)

    params = {k: jnp.asarray(v) for k, v in samples.items()}
    x, z = jax.jit(lambda p, k: jax.lax.map(lambda a: one(*a), (p, k)))(params, keys)
    return {"obs": np.asarray(x), "states": np.asarray(z)}


def step_log_likelihood(fit, data: Mapping[str, Any] | ModelData | None = None, *,
                        site: str | None = None) -> np.ndarray:
    """One-step-ahead log-densities log p(x_t | x_{0:t-1}, theta) for every draw.

    They sum over t to the sequence's log-likelihood. Used as pointwise terms for PSIS-LOO over
    time points, they make "leave one out" mean "leave x_t out of its own predictive term but
    not out of the conditioning of later terms" — a one-step-ahead (prequential) score, not
    exact LOO for dependent data; compare models with it, with that caveat stated.

    Returns
    -------
    array ``(chain, draw, [B,] T)``
    """
    out = _map_over_draws(fit, data, None, 0, lambda d, x, k: d.filter(x).step_log_probs, site)
    return out.reshape((fit.num_chains, fit.num_draws) + out.shape[1:])


def loo_over_time(fit, data: Mapping[str, Any] | ModelData | None = None, **loo_kwargs):
    """PSIS-LOO over time points from :func:`step_log_likelihood` (see its caveat).

    Returns the ``arviz.loo`` result (``elpd``, ``se``, ``p``, Pareto k per time point).
    """
    import arviz as az

    ll = step_log_likelihood(fit, data)
    ll = ll.reshape(ll.shape[:2] + (-1,))
    tree = az.from_dict({"posterior": {"_": np.zeros(ll.shape[:2])}, "log_likelihood": {"obs": ll}})
    return az.loo(tree, **loo_kwargs)
