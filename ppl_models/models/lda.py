"""LDA topic models with every word's topic marginalized: classic LDA and amortized ProdLDA.

Classic LDA (Blei, Ng & Jordan 2003): topic ``k`` is a distribution ``beta_k ~ Dirichlet(eta)``
over the vocabulary; document ``d`` draws ``theta_d ~ Dirichlet(alpha)``; each token draws a
topic ``z ~ theta_d`` and then a word from ``beta_z``. Summing ``z`` out, the document's counts
are multinomial with probabilities ``theta_d @ beta`` (the "histogram" form). The program
:func:`lda` observes them through :class:`LDADocuments`, whose ``log_prob`` is that exact
marginal computed by the pure-JAX kernel :func:`ppl_models.kernels.lda.document_log_likelihood`
on sparse slot-form documents, so SVI and NUTS only see the continuous ``theta`` and ``beta``,
and the ``log_likelihood`` group is exact per document.

Fitting
-------
* :func:`fit_lda` — SVI with a mean-field guide (``AutoNormal``: independent logistic-normal
  factors for every ``theta_d`` and ``beta_k``), minibatches of documents
  (``plate("doc", D, subsample_size=B)``), Adam on a geometrically decaying learning rate, and
  optional checkpoints from which an interrupted run resumes exactly (:class:`Checkpoint`).
  The topics start from k-means of the documents' word distributions (:func:`seed_topics`,
  ``init_topics="documents"``), which needs about half the steps of a start near the uniform
  distribution (``init_topics="uniform"``) on the KJV. Guide set-up, the optimisation chunks
  and the posterior draws are each one compiled program. ``method="vb"`` fits the conjugate
  mean-field family (Dirichlet ``q(beta_k)`` and ``q(theta_d)``) by closed-form updates
  instead: coordinate ascent on every document (full batch) or online LDA's natural-gradient
  steps on minibatches (Hoffman, Blei & Bach 2010), the E-step
  :func:`~ppl_models.kernels.lda.variational_e_step` warm-started from each document's last
  ``gamma``; on the KJV it reaches the held-out perplexity of 400 SVI steps in 30-50 steps
  (or 5-10 epochs of minibatches), seconds in all. ``method="nuts"`` runs NUTS instead (a
  reference on small corpora). The result is the core
  :class:`~ppl_models.fit.Fit`. ``ppl_models.fit(lda, data, method="svi")`` works too, with
  every document in every step (the catalog card does that), or with ``subsample_size=``
  minibatches (``fit`` rebuilds a full-size autoguide to draw the posterior of every
  document afterwards); :func:`fit_lda` adds checkpoints and the seeded topics. The
  program's ``default_init_strategy`` makes ``fit`` start near the uniform point, as
  ``fit_lda(init_topics="uniform")`` does (the generic start, the median of prior draws, is far from the data
  for small ``eta``).
* :func:`fit_prodlda` — ProdLDA (Srivastava & Sutton 2017): a product-of-experts decoder
  ``softmax(theta_d @ W + b)`` with a per-word offset ``b``, and an encoder network from a
  document's counts to the Dirichlet parameters of ``q(theta_d)`` (amortized: a new document's
  topics come from one encoder pass, :func:`prodlda_doc_topics`).

Post-fit
--------
:func:`topic_word` (posterior-mean ``beta``), :func:`top_words` (a DataFrame),
:func:`doc_topics`, :func:`transform` (topics of new documents by fold-in),
:func:`heldout_perplexity` (document completion), :func:`coherence` (UMass / NPMI),
:func:`sample_documents` (synthetic documents from the fitted model), and the kernels
re-exported (``lda.match_topics`` works from here).

Topic labels are exchangeable: nothing orders them; compare with a reference through
:func:`~ppl_models.kernels.lda.match_topics` (Hungarian matching).
"""

from __future__ import annotations

import os
import pickle
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import scipy.sparse as sp
from numpyro.distributions import constraints
from numpyro.infer import SVI, Predictive, Trace_ELBO, TraceMeanField_ELBO
from numpyro.infer.autoguide import AutoNormal

from .._trace import inspect_model, observed_kwargs
from ..data import ModelData, describe
from ..errors import DataError
from ..fit import Fit
from ..fit import device_kwargs as _device_arrays
from ..kernels.lda import (  # re-exported: ``lda.match_topics`` works from here too
    Coherence,
    DocumentLogLikelihood,
    Perplexity,
    SyntheticTokens,
    ThetaEstimate,
    TopicMatching,
    VariationalEStep,
    cooccurrence_counts,
    dirichlet_expected_log,
    dirichlet_kl,
    document_completion_perplexity,
    document_log_likelihood,
    estimate_theta,
    match_topics,
    multinomial_log_coefficient,
    npmi_coherence,
    perplexity_from_log_probs,
    sample_tokens,
    slot_log_probs,
    softmax_slot_log_probs,
    umass_coherence,
    variational_e_step,
    variational_lower_bound,
)
from ..text import Corpus, PaddedCounts, as_count_matrix, check_num_topics, to_padded

__all__ = [
    # distribution and programs
    "LDADocuments",
    "ProdLDADocuments",
    "LogDirichlet",
    "lda",
    "prodlda",
    "prodlda_guide",
    # data and fitting
    "lda_data",
    "fit_lda",
    "fit_prodlda",
    "seed_topics",
    "Checkpoint",
    # post-fit
    "topic_word",
    "top_words",
    "doc_topics",
    "transform",
    "heldout_perplexity",
    "coherence",
    "sample_documents",
    "prodlda_doc_topics",
    "prodlda_topic_word",
    "SyntheticCorpus",
    "catalog_report",
    # kernels, re-exported
    "Coherence",
    "DocumentLogLikelihood",
    "Perplexity",
    "SyntheticTokens",
    "ThetaEstimate",
    "TopicMatching",
    "VariationalEStep",
    "cooccurrence_counts",
    "dirichlet_expected_log",
    "dirichlet_kl",
    "document_completion_perplexity",
    "document_log_likelihood",
    "estimate_theta",
    "match_topics",
    "multinomial_log_coefficient",
    "npmi_coherence",
    "perplexity_from_log_probs",
    "sample_tokens",
    "slot_log_probs",
    "softmax_slot_log_probs",
    "umass_coherence",
    "variational_e_step",
    "variational_lower_bound",
]


class _LogSimplex(constraints.Constraint):
    """Vectors ``l`` with ``logsumexp(l) == 0``: logarithms of points of the simplex."""

    event_dim = 1

    def __call__(self, x):
        return jnp.abs(jax.scipy.special.logsumexp(x, axis=-1)) < 1e-3

    def feasible_like(self, prototype):
        return jnp.full_like(prototype, -jnp.log(prototype.shape[-1]))


log_simplex = _LogSimplex()


class _LogStickBreaking(dist.transforms.Transform):
    """Stick-breaking from ``R^(V-1)`` to log-simplex vectors, computed in log space.

    NumPyro's ``StickBreakingTransform`` returns the simplex point itself; in float32 its small
    coordinates underflow to 0, ``log 0`` then makes the Dirichlet density (concentration < 1)
    and the guide's log-Jacobian infinite, and SVI on a 4,000-word vocabulary started at an ELBO
    of ``-inf``. Here every quantity is a log: ``log z = -softplus(-x)`` and
    ``log(1 - z) = -softplus(x)`` never underflow. Same offsets as NumPyro, so ``x = 0`` maps
    to the uniform point.
    """

    domain = constraints.real_vector
    codomain = log_simplex

    @staticmethod
    def _offset(n: int):
        return jnp.log(n - jnp.arange(n))

    def __call__(self, x):
        xs = x - self._offset(x.shape[-1])
        log_z = -jax.nn.softplus(-xs)
        log_1mz = -jax.nn.softplus(xs)
        before = jnp.cumsum(log_1mz, axis=-1) - log_1mz  # log of the stick left before piece i
        return jnp.concatenate([log_z + before, jnp.sum(log_1mz, axis=-1, keepdims=True)], axis=-1)

    def _inverse(self, y):
        # log of the stick left at piece i: logsumexp of the pieces from i on (a reverse cumsum)
        rest = jax.lax.cumlogsumexp(y, axis=y.ndim - 1, reverse=True)
        xs = y[..., :-1] - rest[..., 1:]
        return xs + self._offset(y.shape[-1] - 1)

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        # d(log y_i)/dx over the V-1 free coordinates: triangular, diagonal log(1 - z_i)
        xs = x - self._offset(x.shape[-1])
        return -jnp.sum(jax.nn.softplus(xs), axis=-1)

    def forward_shape(self, shape):
        return shape[:-1] + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        return shape[:-1] + (shape[-1] - 1,)

    def tree_flatten(self):
        return (), ((), {})

    def __eq__(self, other):
        return isinstance(other, _LogStickBreaking)


@dist.transforms.biject_to.register(_LogSimplex)
def _biject_log_simplex(constraint):
    return _LogStickBreaking()


class LogDirichlet(dist.Distribution):
    """The logarithm of a Dirichlet vector: ``log x`` for ``x ~ Dirichlet(concentration)``.

    The density, over the first ``V - 1`` coordinates of ``l = log x``, is the Dirichlet
    density times the Jacobian ``prod_{i<V} x_i``::

        log p(l) = sum_i (c_i - 1) l_i + sum_{i<V} l_i - log B(c)

    Working with ``log x`` keeps the tiny topic-word probabilities of a large vocabulary
    representable in float32 (see :class:`_LogStickBreaking`). Draws use
    ``log Gamma(c) = log Gamma(c + 1) + log(U) / c``, exact and free of underflow for small ``c``.

    Parameters
    ----------
    concentration : Array, shape (..., V)
    """

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = log_simplex
    reparametrized_params = ["concentration"]
    pytree_data_fields = ("concentration",)

    def __init__(self, concentration, *, validate_args=None):
        self.concentration = jnp.asarray(concentration)
        super().__init__(batch_shape=jnp.shape(concentration)[:-1], event_shape=jnp.shape(concentration)[-1:],
                         validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        shape = sample_shape + self.batch_shape + self.event_shape
        c = jnp.broadcast_to(self.concentration, shape)
        log_g = _log_gamma(key, c)
        return log_g - jax.scipy.special.logsumexp(log_g, axis=-1, keepdims=True)

    def log_prob(self, value):
        c = self.concentration
        log_norm = jax.scipy.special.gammaln(c).sum(-1) - jax.scipy.special.gammaln(c.sum(-1))
        return ((c - 1.0) * value).sum(-1) + value[..., :-1].sum(-1) - log_norm

    @property
    def mean(self):
        return jnp.log(self.concentration / self.concentration.sum(-1, keepdims=True))


def _log_gamma(key: jax.Array, c: jax.Array) -> jax.Array:
    """``log g`` for ``g ~ Gamma(c, 1)``, elementwise, as ``log Gamma(c + 1) + log(U) / c``:
    exact, and free of underflow for small ``c``."""
    k_g, k_u = jax.random.split(key)
    return jnp.log(jax.random.gamma(k_g, c + 1.0)) + jnp.log(jax.random.uniform(k_u, c.shape, minval=1e-38)) / c


def _log_dirichlet_draws(rng: np.random.Generator, concentration: np.ndarray, n: int) -> np.ndarray:
    """``n`` LogDirichlet draws (rows over the last axis) by NumPy, float32, shape (n, ...).

    The same construction as :class:`LogDirichlet` (``log Gamma(c + 1) + log(U) / c``, then each
    row normalised in log space), one draw at a time to bound the temporaries.
    """
    from scipy.special import logsumexp

    out = np.empty((int(n),) + concentration.shape, dtype=np.float32)
    for i in range(int(n)):
        log_g = np.log(rng.standard_gamma(concentration + 1.0)) + np.log(rng.uniform(1e-300, 1.0, concentration.shape)) / concentration
        out[i] = log_g - logsumexp(log_g, axis=-1, keepdims=True)
    return out


# ============================================================================================
# The marginalized distribution
# ============================================================================================


class LDADocuments(dist.Distribution):
    """Bag-of-words documents, each multinomial over the vocabulary with probabilities ``theta_d @ beta``.

    The value is the count of each document's *slot* words ``word_ids`` (see
    :mod:`ppl_models.kernels.lda`). The distribution is the multinomial over the categories
    "slot word 1", ..., "slot word L", "any other word", with ``total_count`` tokens; the count
    of "other" is ``total_count - sum(value)``. For observed documents the slots hold every
    word, the "other" count is zero, and ``log_prob`` is exactly the LDA marginal likelihood
    of the document (multinomial coefficient included). Forward draws are draws of the slot
    counts of a replicated document of the same length (tokens falling on other words are
    not stored), so posterior predictive checks of the observed words are exact.

    Parameters
    ----------
    log_theta : Array, shape (D, K)
        Log document-topic proportions.
    log_beta : Array, shape (K, V)
        Log topic-word distributions.
    word_ids : Array of int, shape (D, L)
        Slot words, ``-1`` in unused slots; distinct within a document.
    total_count : Array of int, shape (D,)
        Tokens per document.

    Batch shape ``(D,)``, event shape ``(L,)``.
    """

    arg_constraints = {"log_theta": log_simplex, "log_beta": log_simplex}
    support = constraints.independent(constraints.nonnegative_integer, 1)
    pytree_data_fields = ("log_theta", "log_beta", "word_ids", "total_count")

    def __init__(self, log_theta, log_beta, word_ids, total_count, *, validate_args=None):
        self.log_theta = log_theta
        self.log_beta = log_beta
        self.word_ids = jnp.asarray(word_ids)
        self.total_count = jnp.asarray(total_count)
        batch_shape = jax.lax.broadcast_shapes(jnp.shape(log_theta)[:-1], self.word_ids.shape[:-1])
        super().__init__(batch_shape=batch_shape, event_shape=self.word_ids.shape[-1:],
                         validate_args=validate_args)

    def _slot_log_probs(self) -> jax.Array:
        return slot_log_probs(self.log_theta, self.log_beta, self.word_ids)

    def log_prob(self, value):
        return _slot_multinomial_log_prob(self._slot_log_probs(), self.word_ids, self.total_count, value)

    def sample(self, key, sample_shape=()):
        return _slot_multinomial_sample(key, self._slot_log_probs(), self.word_ids, self.total_count, sample_shape)


def _slot_multinomial_log_prob(lp, word_ids, total_count, value):
    """Multinomial log pmf over (slot words, "any other word"), from per-slot log-probabilities."""
    value = jnp.asarray(value, dtype=jnp.result_type(float))
    used = word_ids >= 0
    terms = jnp.where(value > 0, value * lp, 0.0).sum(-1)
    other = total_count - value.sum(-1)
    # only a forward-drawn (replicated) document has tokens on words outside its slots
    p_other = jnp.clip(1.0 - jnp.where(used, jnp.exp(lp), 0.0).sum(-1), 1e-30, 1.0)
    terms = terms + jnp.where(other > 0, other * jnp.log(p_other), 0.0)
    gl = jax.scipy.special.gammaln
    coef = gl(total_count + 1.0) - gl(value + 1.0).sum(-1) - gl(jnp.maximum(other, 0.0) + 1.0)
    return coef + terms


def _slot_multinomial_sample(key, lp, word_ids, total_count, sample_shape):
    """Slot counts of a multinomial draw over (slot words, "any other word").

    Drawn as a chain of conditional binomials, ``c_l ~ Binomial(n - sum_{j<l} c_j, p_l / (1 -
    sum_{j<l} p_j))`` (``lax.scan`` over the slots), so the document lengths may be traced:
    NumPyro's ``Multinomial`` needs a static ``total_count_max``, which a jitted posterior
    predictive cannot give.
    """
    used = word_ids >= 0
    p = jnp.where(used, jnp.exp(lp), 0.0)
    shape = tuple(sample_shape) + jnp.shape(p)
    p = jnp.broadcast_to(p, shape)
    n = jnp.broadcast_to(jnp.asarray(total_count, dtype=p.dtype), shape[:-1])
    remaining = jnp.clip(1.0 - (jnp.cumsum(p, axis=-1) - p), 1e-30, 1.0)  # mass left before slot l
    q = jnp.clip(p / remaining, 0.0, 1.0)
    keys = jax.random.split(key, shape[-1])

    def step(n_left, inputs):
        k, q_l = inputs
        c = jax.random.binomial(k, n_left, q_l).astype(p.dtype)
        c = jnp.minimum(jnp.where(q_l > 0, c, 0.0), n_left)
        return n_left - c, c

    _, counts = jax.lax.scan(step, n, (keys, jnp.moveaxis(q, -1, 0)))
    return jnp.moveaxis(counts, 0, -1)


class ProdLDADocuments(dist.Distribution):
    """Bag-of-words documents with per-slot word log-probabilities given (ProdLDA's decoder).

    The same multinomial over (slot words, "any other word") as :class:`LDADocuments`, with
    ``slot_log_prob[d, l] = log softmax(theta_d @ W + b)[word_ids[d, l]]`` computed by the
    program. Batch shape ``(D,)``, event shape ``(L,)``.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.nonnegative_integer, 1)
    pytree_data_fields = ("slot_log_prob", "word_ids", "total_count")

    def __init__(self, slot_log_prob, word_ids, total_count, *, validate_args=None):
        self.slot_log_prob = slot_log_prob
        self.word_ids = jnp.asarray(word_ids)
        self.total_count = jnp.asarray(total_count)
        super().__init__(batch_shape=jnp.shape(slot_log_prob)[:-1], event_shape=jnp.shape(slot_log_prob)[-1:],
                         validate_args=validate_args)

    def log_prob(self, value):
        return _slot_multinomial_log_prob(self.slot_log_prob, self.word_ids, self.total_count, value)

    def sample(self, key, sample_shape=()):
        return _slot_multinomial_sample(key, self.slot_log_prob, self.word_ids, self.total_count, sample_shape)


# ============================================================================================
# Data checks
# ============================================================================================


def _concrete(x: Any) -> bool:
    return x is not None and not isinstance(x, jax.core.Tracer)


def _check_slots(word_ids: Any, counts: Any, vocab_size: int) -> None:
    """Shape and value checks of slot-form data (only on concrete arrays, not under tracing)."""
    w = np.asarray(word_ids)
    if w.ndim != 2:
        raise DataError("word_ids", "a (D, L) integer array of slot words", describe(word_ids))
    if not np.issubdtype(w.dtype, np.integer):
        raise DataError("word_ids", "integer word indices", f"dtype {w.dtype}")
    if w.size and (w.max() >= vocab_size or w.min() < -1):
        raise DataError("word_ids", f"indices in [0, {vocab_size}) or -1 for an unused slot",
                        f"range [{w.min()}, {w.max()}]")
    if counts is None:
        return
    c = np.asarray(counts)
    if c.shape != w.shape:
        raise DataError("counts", f"the shape of word_ids {w.shape}", f"shape {c.shape}")
    if np.issubdtype(c.dtype, np.floating) and not np.all(c == np.round(c)):
        raise DataError("counts", "integer word counts", "non-integer values")
    if c.size and c.min() < 0:
        raise DataError("counts", "non-negative word counts", f"minimum {c.min()}")
    empty = np.flatnonzero(c.sum(-1) == 0)
    if empty.size:
        raise DataError("counts", "documents with at least one token",
                        f"{empty.size} empty document(s), the first at index {empty[0]}")


# ============================================================================================
# Programs
# ============================================================================================


def _documents(word_ids, counts, doc_length):
    """Slot word ids as a JAX array, the number of documents, and the tokens per document
    (from the counts unless given; required when simulating, ``counts=None``)."""
    word_ids = jnp.asarray(word_ids)
    if doc_length is None:
        if counts is None:
            raise DataError("doc_length", "the tokens per document when counts is None (forward simulation)", "None")
        doc_length = jnp.asarray(counts).sum(-1)
    return word_ids, word_ids.shape[0], jnp.asarray(doc_length)


def lda(word_ids=None, counts=None, *, num_topics: int = 10, vocab_size: int | None = None,
        doc_length=None, alpha: float = 0.1, eta: float = 0.05, subsample_size: int | None = None):
    """Classic LDA over bag-of-words counts, every token's topic summed out.

    ::

        beta_k  ~ Dirichlet(eta * 1_V)            k = 1..K   (plate "topic")
        theta_d ~ Dirichlet(alpha * 1_K)          d = 1..D   (plate "doc")
        counts_d | theta_d, beta ~ Multinomial(n_d, theta_d @ beta)

    Parameters
    ----------
    word_ids : array of int, shape (D, L)
        Each document's distinct words (slot form, :func:`ppl_models.text.to_padded`), ``-1``
        in unused slots.
    counts : array of int, shape (D, L), optional
        Their counts; ``None`` samples them (forward simulation, given ``doc_length``).
    num_topics : int
        ``K >= 2``.
    vocab_size : int
        ``V``.
    doc_length : array of int, shape (D,), optional
        Tokens per document; by default the row sums of ``counts``.
    alpha, eta : float
        Symmetric Dirichlet concentrations of ``theta_d`` and ``beta_k``.
    subsample_size : int, optional
        Documents per SVI minibatch (the ``doc`` plate subsamples; the likelihood is scaled).

    Sites
    -----
    ``log_beta`` (K, V) and ``log_theta`` (D, K), the logarithms of ``beta`` and ``theta``
    (:class:`LogDirichlet`; ``beta = exp(log_beta)``), and the observed ``counts`` (D, L).
    """
    K = check_num_topics(num_topics)
    if word_ids is None:
        raise DataError("word_ids", "a (D, L) array of slot words (ppl_models.text.to_padded)", "None")
    if vocab_size is None:
        raise DataError("vocab_size", "the vocabulary size V (an integer)", "None")
    V = int(vocab_size)
    if _concrete(word_ids) and not isinstance(word_ids, jax.Array):
        _check_slots(word_ids, counts, V)
    word_ids, D, doc_length = _documents(word_ids, counts, doc_length)
    # The Dirichlet sites are sampled as logarithms (LogDirichlet): in float32 the small
    # probabilities of a large vocabulary underflow to 0 and make the density infinite.
    with numpyro.plate("topic", K):
        log_beta = numpyro.sample("log_beta", LogDirichlet(jnp.full((V,), float(eta))))
    with numpyro.plate("doc", D, subsample_size=subsample_size) as idx:
        log_theta = numpyro.sample("log_theta", LogDirichlet(jnp.full((K,), float(alpha))))
        obs = None if counts is None else jnp.asarray(counts)[idx]
        numpyro.sample("counts", LDADocuments(log_theta, log_beta, word_ids[idx], doc_length[idx]), obs=obs)


def _lda_init_strategy(data: Any = None, seed: int = 0, radius: float = 0.5):
    """Where SVI and NUTS on :func:`lda` start: uniformly in ``(-radius, radius)`` on the
    unconstrained stick-breaking coordinates, i.e. near the uniform topic and document
    distributions (``seed`` and ``data`` are accepted for the ``default_init_strategy`` protocol).

    :func:`ppl_models.fit`'s generic start, the median of prior draws, puts topics drawn with a
    small ``eta`` tens of log-units from any data: the ``kjv_lda`` card's 400 full-batch SVI
    steps reached topics of NPMI 0.05 from there, 0.15 from this start.
    """
    from numpyro.infer.initialization import init_to_uniform

    del data, seed
    return init_to_uniform(radius=float(radius))


# ppl_models.fit(lda, ...) asks the program where to start when no init_strategy is given
lda.default_init_strategy = _lda_init_strategy


# ============================================================================================
# Data from a corpus
# ============================================================================================


def lda_data(corpus: Corpus | Any, *, num_topics: int = 10, vocabulary: Any = None,
             alpha: float | None = None, eta: float = 0.05, drop_empty: bool = False, name: str = "",
             description: str = "", extra: Mapping[str, Any] | None = None) -> ModelData:
    """The keyword arguments of :func:`lda` (and :func:`prodlda`) for a corpus.

    Parameters
    ----------
    corpus : Corpus, or a (D, V) count matrix (SciPy sparse or dense)
    num_topics : int
    vocabulary : sequence of str, optional
        Column names (taken from a :class:`~ppl_models.text.Corpus`).
    alpha : float, optional
        Document-topic concentration (default ``1 / K``).
    eta : float
        Topic-word concentration.
    drop_empty : bool
        Drop documents with no tokens (their row indices are then missing from
        ``extra["kept_docs"]``); by default they raise :class:`DataError`.

    Returns
    -------
    ModelData
        kwargs ``word_ids``, ``counts``, ``doc_length``, ``num_topics``, ``vocab_size``,
        ``alpha``, ``eta``; observed ``counts``; ``extra["corpus"]`` holds the corpus (without
        the dropped documents) and ``extra["kept_docs"]`` the row indices of its documents in
        the input.
    """
    K = check_num_topics(num_topics)
    hint = "pass drop_empty=True (to lda_data or fit_lda) to drop them"
    given = corpus.counts if isinstance(corpus, Corpus) else corpus
    X = as_count_matrix(given, allow_empty_docs=bool(drop_empty), empty_hint=hint)
    kept = np.arange(X.shape[0])
    if drop_empty:
        kept = np.flatnonzero(X.getnnz(axis=1) > 0)
        if kept.size == 0:
            raise DataError("corpus", "at least one document with a token", "only empty documents")
    if isinstance(corpus, Corpus):
        vocab = corpus.vocabulary
        corpus = corpus.subset(kept) if kept.size < X.shape[0] else corpus
    else:
        vocab = np.asarray(vocabulary if vocabulary is not None else [f"w{j}" for j in range(X.shape[1])])
        corpus = Corpus(counts=X[kept] if kept.size < X.shape[0] else X, vocabulary=vocab)
    X = X[kept] if kept.size < X.shape[0] else X
    pad = to_padded(X)
    a = float(alpha) if alpha is not None else 1.0 / K
    kwargs = {"word_ids": pad.word_ids, "counts": pad.counts, "doc_length": np.asarray(X.sum(1)).ravel().astype(np.int32),
              "num_topics": K, "vocab_size": int(X.shape[1]), "alpha": a, "eta": float(eta)}
    return ModelData(kwargs=kwargs, observed=("counts",),
                     coords={"topic": [f"topic{k}" for k in range(K)], "word": [str(v) for v in vocab]},
                     dims={"log_beta": ["topic", "word"], "log_theta": ["doc", "topic"]},
                     name=name, description=description,
                     extra=dict(extra or {}, corpus=corpus, kept_docs=kept))


def _as_lda_data(data: Any, num_topics: int | None, drop_empty: bool = False) -> ModelData:
    if isinstance(data, ModelData):
        md = data
        if num_topics is not None and int(num_topics) != md.kwargs.get("num_topics"):
            md = ModelData(kwargs=dict(md.kwargs, num_topics=check_num_topics(num_topics)), observed=md.observed,
                           coords=dict(md.coords, topic=[f"topic{k}" for k in range(int(num_topics))]),
                           dims=md.dims, name=md.name, description=md.description, extra=md.extra)
        return md
    if isinstance(data, Mapping):
        return ModelData(kwargs=dict(data), observed=("counts",))
    return lda_data(data, num_topics=10 if num_topics is None else num_topics, drop_empty=drop_empty)


# ============================================================================================
# Fitting: SVI with checkpoints, NUTS for reference
# ============================================================================================


@dataclass
class Checkpoint:
    """Where and how often :func:`fit_lda` saves the SVI state.

    Attributes
    ----------
    path : str or Path
        The checkpoint file. If it exists when the fit starts, the fit resumes from it (the
        settings saved in it must match); it is rewritten atomically (a temporary file, then
        ``os.replace``), so an interruption never leaves a half-written checkpoint.
    every : int
        Save after every ``every`` optimisation steps (and at the end).
    """

    path: str | Path
    every: int = 200


def _save_checkpoint(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _load_checkpoint(path: Path, settings: dict) -> dict | None:
    if not path.exists():
        return None
    with open(path, "rb") as fh:
        payload = pickle.load(fh)
    saved = payload.get("settings", {})
    diff = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
    if diff:
        raise DataError("checkpoint", "a checkpoint written by a fit with the same settings and data",
                        f"different settings {diff} (saved, now) in {str(path)!r}",
                        "delete the file to start afresh")
    return payload


def _run_svi(svi: SVI, key: jax.Array, num_steps: int, run_kwargs: dict, checkpoint: Checkpoint | None,
             settings: dict, progress: Callable[[int, float], None] | None) -> tuple[Any, np.ndarray, dict]:
    """Run SVI in chunks of ``checkpoint.every`` steps (``lax.scan`` inside), saving between chunks."""
    every = int(checkpoint.every) if checkpoint is not None else num_steps
    if every < 1:
        raise DataError("checkpoint.every", "an integer >= 1", every)
    path = Path(checkpoint.path) if checkpoint is not None else None
    payload = _load_checkpoint(path, settings) if path is not None else None
    # The data arrays are arguments of the compiled functions (not constants folded into them)
    # and the static settings (sizes, priors) are closed over. init runs compiled too: eager,
    # an autoguide's set-up dispatches some 300 small operations, each compiled on first use
    # (10-40 s on a loaded two-core machine, against a few seconds for one compiled program).
    arrays = {k: v for k, v in run_kwargs.items() if isinstance(v, jax.Array)}
    static = {k: v for k, v in run_kwargs.items() if k not in arrays}
    # init also sets up the SVI object's transforms, so it runs on a resumed fit too
    state = jax.jit(lambda k, a: svi.init(k, **a, **static))(key, arrays)
    if payload is not None:
        leaves = jax.tree_util.tree_leaves(payload["state"])
        state = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(state), [jnp.asarray(v) for v in leaves])
        losses = list(payload["losses"])
        step = int(payload["step"])
        resumed_from = step
    else:
        losses, step, resumed_from = [], 0, None

    def run_chunk(s, a, n):
        return jax.lax.scan(lambda s_, _: svi.update(s_, **a, **static), s, None, length=n)

    # one compilation per chunk length (the chunk boundaries are the same on a resumed run)
    run = jax.jit(run_chunk, static_argnums=2)
    state, losses = _chunks(lambda s, n: run(s, arrays, n), state, losses, step, num_steps, every, path, settings,
                            progress, "lower learning_rate")
    return state, losses, {"resumed_from_step": resumed_from}


def _chunks(run: Callable, state: Any, losses: list, step: int, num_steps: int, every: int, path: Path | None,
            settings: dict, progress: Callable[[int, float], None] | None, advice: str) -> tuple[Any, np.ndarray]:
    """Run ``run(state, n) -> (state, losses)`` in chunks of ``every`` steps up to ``num_steps``,
    saving a checkpoint after each chunk."""
    while step < num_steps:
        n = min(every, num_steps - step)
        state, chunk_losses = run(state, n)
        chunk_losses = np.asarray(chunk_losses)
        losses.extend(chunk_losses.tolist())
        step += n
        if not np.isfinite(chunk_losses[-1]):
            raise FloatingPointError(f"the fit diverged: the loss is {chunk_losses[-1]} at step {step}; {advice}")
        if path is not None:
            _save_checkpoint(path, {"state": jax.device_get(state), "losses": np.asarray(losses),
                                    "step": step, "settings": settings})
        if progress is not None:
            progress(step, float(chunk_losses[-1]))
    return state, np.asarray(losses)


def _settings_fingerprint(kwargs: Mapping[str, Any]) -> str:
    """A short digest of the data, so a checkpoint is not resumed on other documents."""
    import hashlib

    h = hashlib.sha256()
    for k in sorted(kwargs):
        v = kwargs[k]
        if isinstance(v, np.ndarray):
            h.update(k.encode())
            h.update(np.ascontiguousarray(v).tobytes())
        elif isinstance(v, (int, float, str)) or v is None:
            h.update(f"{k}={v!r}".encode())
    return h.hexdigest()[:16]


def _slot_matrix(word_ids: Any, counts: Any, vocab_size: int) -> sp.csr_matrix:
    """The (D, V) sparse count matrix of slot-form documents."""
    w, c = np.asarray(word_ids), np.asarray(counts)
    used = w >= 0
    rows = np.repeat(np.arange(w.shape[0]), used.sum(1))
    return sp.csr_matrix((c[used].astype(np.float64), (rows, w[used])), shape=(w.shape[0], int(vocab_size)))


def seed_topics(counts: Any, num_topics: int, *, seed: int = 0, mix: float = 0.8,
                num_iterations: int = 10) -> np.ndarray:
    """Starting topics from the documents: k-means on their word distributions, Hellinger distance.

    k-means++ seeding (Arthur & Vassilvitskii 2007): the first centre is a document drawn
    uniformly, each next one a document drawn with probability proportional to its squared
    Hellinger distance to the nearest centre so far, so the centres tend to come from different
    themes; then ``num_iterations`` Lloyd steps (each document to its nearest centre, each
    centre to the mean word distribution of its documents). Topic ``k`` starts at
    ``(1 - mix) * centre_k + mix * p_corpus``, the centre mixed with the corpus's word
    frequencies (add-1/2 smoothed), so every word has mass and SVI can still move topics far.
    Sparse throughout: ``D x K`` affinities from one sparse-dense product per step.

    Parameters
    ----------
    counts : (D, V) count matrix (SciPy sparse or dense) or Corpus
    num_topics : int
    seed : int
    mix : float
        Weight of the corpus frequencies, in ``(0, 1]``.
    num_iterations : int
        Lloyd steps after the seeding (0: the seed documents themselves).

    Returns
    -------
    ndarray, shape (K, V)
        ``log beta`` rows (each a log of a point of the simplex).
    """
    K = check_num_topics(num_topics)
    X = sp.csr_matrix(as_count_matrix(counts.counts if isinstance(counts, Corpus) else counts), dtype=np.float64)
    if not 0.0 < float(mix) <= 1.0:
        raise DataError("mix", "a number in (0, 1]", mix)
    n = np.asarray(X.sum(1)).ravel()
    P = sp.csr_matrix(sp.diags(1.0 / n) @ X)
    R = P.sqrt()
    rng = np.random.default_rng(int(seed))
    D = X.shape[0]
    chosen = [int(rng.integers(D))]
    d2 = np.maximum(1.0 - (R @ R[chosen[0]].T).toarray().ravel(), 0.0)
    for _ in range(1, K):
        total = d2.sum()
        nxt = int(rng.choice(D, p=d2 / total)) if total > 0 else int(rng.integers(D))
        chosen.append(nxt)
        d2 = np.minimum(d2, np.maximum(1.0 - (R @ R[nxt].T).toarray().ravel(), 0.0))
    centers = P[chosen].toarray()
    for _ in range(int(num_iterations)):
        # Lloyd steps: each document to the centre of highest affinity sum_w sqrt(p_w c_w)
        # (least Hellinger distance), each centre to the mean word distribution of its documents
        z = np.asarray(R @ np.sqrt(centers).T).argmax(1)
        onehot = sp.csr_matrix((np.ones(D), (z, np.arange(D))), shape=(K, D))
        sizes = np.asarray(onehot.sum(1)).ravel()
        new = np.asarray((onehot @ P).todense()) / np.maximum(sizes, 1.0)[:, None]
        centers = np.where(sizes[:, None] > 0, new, centers)  # an emptied centre keeps its place
    freq = np.asarray(X.sum(0)).ravel() + 0.5
    freq /= freq.sum()
    B = (1.0 - float(mix)) * centers + float(mix) * freq
    return np.log(B / B.sum(1, keepdims=True))


def _init_lda(site=None, log_beta=None, radius: float = 0.5):
    """An init strategy: ``log_beta`` at the given value, everything else uniform in (-r, r)."""
    from numpyro.infer.initialization import init_to_uniform

    if log_beta is not None and site["type"] == "sample" and not site["is_observed"] and site["name"] == "log_beta":
        # under the compiled init the value is a constant: the barrier keeps XLA from
        # constant-folding the guide's inverse stick-breaking of it (a cumulative log-sum-exp
        # over V that took 2-3 s to fold at V = 5,000)
        return jax.lax.optimization_barrier(jnp.asarray(log_beta))
    return init_to_uniform(site, radius=radius)


def fit_lda(data: ModelData | Corpus | Any, num_topics: int | None = None, *, method: str = "svi",
            num_steps: int | None = None, learning_rate: float | None = None, batch_size: int | None = None,
            init_radius: float = 0.5, init_topics: str = "documents", seed: int = 0,
            num_posterior_draws: int = 100,
            checkpoint: Checkpoint | str | Path | None = None,
            progress: Callable[[int, float], None] | None = None, drop_empty: bool = False,
            local_iterations: int = 5, learning_offset: float = 10.0, learning_decay: float = 0.7,
            **mcmc_kwargs: Any) -> Fit:
    """Fit classic LDA (:func:`lda`) by SVI with a mean-field guide, by mean-field variational
    Bayes with closed-form updates, or by NUTS.

    Parameters
    ----------
    data : ModelData (from :func:`lda_data`), Corpus, or a (D, V) count matrix
    num_topics : int, optional
        ``K >= 2`` (default: the data's, else 10).
    method : {"svi", "vb", "nuts"}
        ``"svi"``: ``AutoNormal`` (a mean-field Gaussian on the unconstrained, log-space
        stick-breaking coordinates of every ``theta_d`` and ``beta_k``), ``Trace_ELBO``, Adam
        whose step decays geometrically from ``learning_rate`` to 1% of it by the last step.
        ``"vb"``: the conjugate mean-field family ``q(beta_k) = Dirichlet(lambda_k)``,
        ``q(theta_d) = Dirichlet(gamma_d)`` with every token's ``q(z)`` at its optimum, fitted
        by closed-form updates (Blei, Ng & Jordan 2003): each step runs ``local_iterations``
        coordinate-ascent updates of the documents' ``gamma`` (warm-started from their previous
        values, :func:`~ppl_models.kernels.lda.variational_e_step`), then moves ``lambda``.
        Full batch, ``lambda = eta + expected counts`` (coordinate ascent: the ELBO never
        decreases); with ``batch_size``, stochastic variational inference with natural
        gradients (online LDA, Hoffman, Blei & Bach 2010, scikit-learn's ``online``):
        ``lambda <- (1 - rho_t) lambda + rho_t (eta + D / B * expected counts of the
        minibatch)``, ``rho_t = (learning_offset + t)^-learning_decay``, minibatches drawn
        epoch by epoch without replacement. Far fewer, cheaper steps than ``"svi"`` (no
        gradients): on the KJV, 50 full-batch steps reach the held-out perplexity of 400 SVI
        steps (benchmarks/results/lda.md). ``Fit.method`` is ``"vb"``; the draws come from
        the fitted Dirichlets; the loss trace is the negative ELBO (the multinomial
        coefficients included, so it bounds ``-log p(counts)`` as the SVI loss does).
        ``"nuts"``: :func:`ppl_models.fit` with NUTS (``mcmc_kwargs`` go there); for small
        corpora, as a reference.
    num_steps : int, optional
        Updates of the topics. Default: 2000 for ``"svi"``; for ``"vb"`` 100 full-batch steps,
        or 20 epochs (``20 * (D // batch_size)`` steps) with minibatches. An epoch is
        ``D // batch_size`` batches of a fresh permutation of the documents, so each document's
        local factors move at most once per epoch (the ``D % batch_size`` documents left over sit
        that epoch out; different ones each epoch): plan on many epochs.
    learning_rate : float, optional
        ``"svi"`` only: Adam's initial step size (default 0.1: log-space coordinates tolerate
        it; lower it if the loss diverges).
    batch_size : int, optional
        Documents per minibatch (the ``doc`` plate subsamples); ``None`` uses every document
        in every step.
    init_radius : float
        The guide's means of the document proportions (and, with ``init_topics="uniform"``, of
        the topics) start uniformly in ``(-r, r)`` (near the uniform simplex point); for
        ``"vb"`` with ``init_topics="uniform"``, ``lambda`` starts at equal pseudo-counts
        times ``exp(u)``, ``u`` uniform in ``(-r, r)``.
    init_topics : {"documents", "uniform"}
        Where the topics start. ``"documents"``: :func:`seed_topics` (k-means of the documents'
        word distributions, mixed with the corpus's word frequencies; drawn with ``seed``;
        ``"vb"`` starts ``lambda`` at ``eta`` plus the corpus's tokens spread over the K seeded
        topics). ``"uniform"``: near the uniform distribution, like the documents' proportions.
        On the KJV, 300-400 SVI steps from ``"documents"`` scored the held-out perplexity that
        600 from ``"uniform"`` did (benchmarks/results/lda.md). Either start can end in a local
        optimum (two topics sharing one theme): compare fits from several seeds by
        ``final_loss``.
    seed : int
    num_posterior_draws : int
        Draws from the fitted guide kept in the ``Fit``.
    checkpoint : Checkpoint, str or Path, optional
        Save the fit's state every ``checkpoint.every`` steps; a run that finds the file resumes
        from it and ends exactly where the uninterrupted run would have.
    progress : callable, optional
        ``progress(step, loss)`` after every chunk.
    drop_empty : bool
        With a Corpus or count matrix: drop documents without tokens (:func:`lda_data`)
        instead of raising.
    local_iterations : int
        ``"vb"``: coordinate-ascent updates of the documents' ``gamma`` per step.
    learning_offset, learning_decay : float
        ``"vb"`` with minibatches: ``rho_t = (learning_offset + t)^-learning_decay``
        (scikit-learn's defaults; ``learning_decay`` in ``(0.5, 1]`` for convergence).

    Returns
    -------
    Fit
        The core result (``method`` ``"svi"``, ``"vb"`` or ``"nuts"``); ``info["model"] == "lda"``.
    """
    from functools import partial

    from ..inference import fit as core_fit

    md = _as_lda_data(data, num_topics, drop_empty=drop_empty)
    kwargs = dict(md.kwargs)
    method_l = str(method).lower()
    if method_l == "nuts":
        res = core_fit(lda, md, method="nuts", seed=seed, **mcmc_kwargs)
        res.info["model"] = "lda"
        return res
    if method_l not in ("svi", "vb"):
        raise DataError("method", "'svi', 'vb' or 'nuts'", repr(method))
    if method_l == "vb":
        if mcmc_kwargs:
            raise DataError("keyword arguments", "none besides the VB settings for method='vb'", sorted(mcmc_kwargs))
        if learning_rate is not None:
            raise DataError("learning_rate", "None for method='vb' (its step size is "
                            "(learning_offset + t)^-learning_decay)", learning_rate)
        return _fit_lda_vb(md, num_steps=num_steps, batch_size=batch_size, init_radius=init_radius,
                           init_topics=init_topics, seed=seed, num_posterior_draws=num_posterior_draws,
                           checkpoint=checkpoint, progress=progress, local_iterations=local_iterations,
                           learning_offset=learning_offset, learning_decay=learning_decay)
    num_steps = 2000 if num_steps is None else num_steps
    learning_rate = 0.1 if learning_rate is None else float(learning_rate)
    if mcmc_kwargs:
        raise DataError("keyword arguments", "none besides the SVI settings for method='svi'", sorted(mcmc_kwargs))
    num_steps = int(num_steps)
    if num_steps < 1:
        raise DataError("num_steps", "an integer >= 1", num_steps)
    n_docs = int(np.shape(kwargs["word_ids"])[0])
    if batch_size is not None and (int(batch_size) < 1 or int(batch_size) > n_docs):
        raise DataError("batch_size", f"an integer in [1, {n_docs}] (the number of documents) or None", batch_size)
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(path=checkpoint)
    if init_topics not in ("documents", "uniform"):
        raise DataError("init_topics", "'documents' or 'uniform'", repr(init_topics))
    start = None
    if init_topics == "documents":
        X = _slot_matrix(kwargs["word_ids"], kwargs["counts"], int(kwargs["vocab_size"]))
        start = jnp.asarray(seed_topics(X, int(kwargs["num_topics"]), seed=int(seed)), dtype=jnp.float32)
    # a partial: NumPyro's initialize_model inspects the strategy's .func
    init = partial(_init_lda, log_beta=start, radius=float(init_radius))
    guide = AutoNormal(lda, init_loc_fn=init)
    decay = 0.01 ** (1.0 / num_steps)
    optim = numpyro.optim.Adam(step_size=lambda i: learning_rate * decay ** i)
    # TraceMeanField_ELBO is Trace_ELBO's estimator here (no analytic KL exists between the
    # guide's transformed Normals and LogDirichlet, so it takes log p - log q by sampling too:
    # the same losses, checked to the last bit), but it walks the sites in program order where
    # Trace_ELBO iterates a Python set of their names: the order of the traced operations then
    # followed the process's string-hash seed, every process lowered a different program, and
    # the persistent compilation cache never hit (3-4 s recompiled per fit at K = 10)
    svi = SVI(lda, guide, optim, loss=TraceMeanField_ELBO())
    dev = _device_arrays(kwargs)
    run_kwargs = dict(dev, subsample_size=None if batch_size is None else int(batch_size))
    settings = {"model": "lda", "num_steps": num_steps, "learning_rate": float(learning_rate),
                "batch_size": batch_size, "seed": int(seed), "init_radius": float(init_radius),
                "init_topics": init_topics,
                "data": _settings_fingerprint(kwargs)}
    k_run, k_draw = jax.random.split(jax.random.PRNGKey(int(seed)))
    t0 = time.perf_counter()
    state, losses, run_info = _run_svi(svi, k_run, num_steps, run_kwargs, checkpoint, settings, progress)
    fit_seconds = time.perf_counter() - t0
    params = svi.get_params(state)
    res = _fit_from_guide(lda, md, params, k_draw, num_posterior_draws,
                          guide_factory=lambda: AutoNormal(lda, init_loc_fn=init))
    res.info.update(method="svi", seed=int(seed), model="lda", num_steps=num_steps, learning_rate=float(learning_rate),
                    batch_size=batch_size, final_loss=float(losses[-1]), fit_seconds=fit_seconds,
                    num_posterior_draws=int(num_posterior_draws), guide="AutoNormal", init_topics=init_topics,
                    **run_info)
    res.svi_losses = losses
    return res


def _inspect_sites(model: Callable, kwargs: Mapping[str, Any]):
    """The program's sites, as :func:`ppl_models._trace.inspect_model` classifies them, from an
    abstract run (``jax.eval_shape``: shapes only, nothing computed or compiled) in which every
    latent site takes a fixed feasible value instead of a draw.

    The concrete run of ``inspect_model`` drew every ``theta_d`` and ``beta_k`` eagerly and
    compiled each small operation of the program on first use: 17 s of a cold K = 10 KJV fit
    on a loaded two-core machine (4 s without the draws). The observed values are the
    keyword arguments of the same name (the convention of ``observed_kwargs``).
    """
    from numpyro import handlers

    from .._trace import classify_sites

    def fixed(msg):
        if msg["type"] != "sample" or msg.get("is_observed") or msg.get("value") is not None:
            return None
        fn = msg["fn"]
        shape = tuple(msg.get("kwargs", {}).get("sample_shape", ())) + tuple(fn.batch_shape) + tuple(fn.event_shape)
        return fn.support.feasible_like(jnp.zeros(shape))

    captured: dict[str, Any] = {}

    def run():
        captured["trace"] = handlers.trace(handlers.seed(handlers.substitute(model, substitute_fn=fixed), 0)).get_trace(
            **kwargs)

    jax.eval_shape(run)
    return classify_sites(captured["trace"], observed_values=kwargs)


def _fit_lda_vb(md: ModelData, *, num_steps: int | None, batch_size: int | None, init_radius: float,
                init_topics: str, seed: int, num_posterior_draws: int, checkpoint: Checkpoint | str | Path | None,
                progress: Callable[[int, float], None] | None, local_iterations: int, learning_offset: float,
                learning_decay: float) -> Fit:
    """``fit_lda(method="vb")``: mean-field variational Bayes with closed-form updates (see there)."""
    import inspect

    kwargs = dict(md.kwargs)
    K, V = check_num_topics(kwargs["num_topics"]), int(kwargs["vocab_size"])
    word_ids = np.asarray(kwargs["word_ids"])
    counts = np.asarray(kwargs["counts"])
    _check_slots(word_ids, counts, V)
    D = int(word_ids.shape[0])
    if batch_size is not None and (int(batch_size) < 1 or int(batch_size) > D):
        raise DataError("batch_size", f"an integer in [1, {D}] (the number of documents) or None", batch_size)
    B = None if batch_size is None or int(batch_size) == D else int(batch_size)
    n_batches = 1 if B is None else D // B
    if num_steps is None:
        num_steps = 100 if B is None else 20 * n_batches  # 20 epochs
    num_steps = int(num_steps)
    if num_steps < 1:
        raise DataError("num_steps", "an integer >= 1", num_steps)
    if int(local_iterations) < 1:
        raise DataError("local_iterations", "an integer >= 1", local_iterations)
    if B is not None and not (0.5 < float(learning_decay) <= 1.0):
        raise DataError("learning_decay", "a number in (0.5, 1] (so the step sizes sum to infinity and their "
                        "squares do not)", learning_decay)
    if B is not None and float(learning_offset) < 0:
        raise DataError("learning_offset", "a number >= 0", learning_offset)
    if init_topics not in ("documents", "uniform"):
        raise DataError("init_topics", "'documents' or 'uniform'", repr(init_topics))
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(path=checkpoint)
    defaults = inspect.signature(lda).parameters
    alpha = float(kwargs.get("alpha", defaults["alpha"].default))
    eta = float(kwargs.get("eta", defaults["eta"].default))
    tokens = float(counts.sum())
    if init_topics == "documents":
        log_b = seed_topics(_slot_matrix(word_ids, counts, V), K, seed=int(seed))
        lam0 = eta + np.exp(log_b) * (tokens / K)
    else:
        u = np.random.default_rng(int(seed)).uniform(-float(init_radius), float(init_radius), (K, V))
        lam0 = eta + tokens / (K * V) * np.exp(u)
    gamma0 = alpha + counts.sum(-1, keepdims=True) / K * np.ones((1, K))
    state = (jnp.asarray(lam0, dtype=jnp.float32), jnp.asarray(gamma0, dtype=jnp.float32), jnp.asarray(0, jnp.int32))
    settings = {"model": "lda", "method": "vb", "num_steps": num_steps, "batch_size": B, "seed": int(seed),
                "init_radius": float(init_radius), "init_topics": init_topics, "local_iterations": int(local_iterations),
                "learning_offset": float(learning_offset), "learning_decay": float(learning_decay),
                "data": _settings_fingerprint(kwargs)}
    every = int(checkpoint.every) if checkpoint is not None else num_steps
    if every < 1:
        raise DataError("checkpoint.every", "an integer >= 1", every)
    path = Path(checkpoint.path) if checkpoint is not None else None
    payload = _load_checkpoint(path, settings) if path is not None else None
    losses: list = []
    step, resumed_from = 0, None
    if payload is not None:
        state = tuple(jnp.asarray(v) for v in payload["state"])
        losses, step = list(payload["losses"]), int(payload["step"])
        resumed_from = step
    # set-up on the host (NumPy, SciPy): an eager JAX operation is compiled on its first use,
    # a fixed cost of a fit in a fresh process; only the chunk program below is compiled
    from scipy.special import gammaln

    c64 = counts.astype(np.float64)
    coef = gammaln(c64.sum(-1) + 1.0) - gammaln(c64 + 1.0).sum(-1)  # multinomial_log_coefficient
    arrays = {"word_ids": jnp.asarray(word_ids.astype(np.int32)), "counts": jnp.asarray(counts.astype(np.float32)),
              "coef": jnp.asarray(coef.astype(np.float32))}
    run_seed = int(seed)
    alpha_v = np.full((K,), alpha, dtype=np.float32)
    n_local, offset, decay = int(local_iterations), float(learning_offset), float(learning_decay)
    scale = 1.0 if B is None else D / B

    def one_step(a, state):
        lam, gamma, t = state
        exp_elog_beta = jnp.exp(dirichlet_expected_log(lam))
        if B is None:
            w, c, g0, coef = a["word_ids"], a["counts"], gamma, a["coef"]
        else:
            # minibatches epoch by epoch: a fresh permutation of the documents every epoch
            key = jax.random.fold_in(jax.random.PRNGKey(run_seed), 1)  # derived inside the program
            perm = jax.random.permutation(jax.random.fold_in(key, t // n_batches), D)
            idx = jax.lax.dynamic_slice(perm, ((t % n_batches) * B,), (B,))
            w, c, g0, coef = a["word_ids"][idx], a["counts"][idx], gamma[idx], a["coef"][idx]
        est = variational_e_step(exp_elog_beta, alpha_v, w, c, g0, num_iterations=n_local)
        elbo = (scale * (est.word_bound.sum() + coef.sum() - dirichlet_kl(est.gamma, alpha_v).sum())
                - dirichlet_kl(lam, eta).sum())
        target = eta + scale * est.expected_counts
        if B is None:
            lam, gamma = target, est.gamma
        else:
            rho = (offset + t.astype(lam.dtype) + 1.0) ** (-decay)
            lam, gamma = (1.0 - rho) * lam + rho * target, gamma.at[idx].set(est.gamma)
        return (lam, gamma, t + 1), -elbo

    def run_chunk(state, a, n):
        return jax.lax.scan(lambda s_, _: one_step(a, s_), state, None, length=n)

    run = jax.jit(run_chunk, static_argnums=2)
    t0 = time.perf_counter()
    state, losses = _chunks(lambda st, n: run(st, arrays, n), state, losses, step, num_steps, every, path, settings,
                            progress, "check the data")
    lam, gamma = state[0], state[1]
    n_draws = int(num_posterior_draws)

    # draws on the host: NumPy's Gamma sampler is compiled C (1M variates in tens of ms), where
    # JAX's rejection sampler took seconds to compile and ~10 s to run for 20 draws at K = 10
    rng = np.random.default_rng([int(seed), 1])
    samples = {"log_beta": _log_dirichlet_draws(rng, np.asarray(lam, dtype=np.float64), n_draws)[None],
               "log_theta": _log_dirichlet_draws(rng, np.asarray(gamma, dtype=np.float64), n_draws)[None]}
    fit_seconds = time.perf_counter() - t0
    sites = _inspect_sites(lda, kwargs)
    res = Fit(model=lda, data=kwargs, method="vb", samples=samples, sample_stats={}, sites=sites,
              observed=tuple(observed_kwargs(sites, kwargs, md.observed or None)), coords=md.coords, dims=md.dims,
              info={})
    res.svi_params = {"topic_concentration": np.asarray(lam, dtype=np.float64),
                      "doc_concentration": np.asarray(gamma, dtype=np.float64)}
    res.svi_losses = np.asarray(losses)
    res.info.update(method="vb", seed=int(seed), model="lda", num_steps=num_steps, batch_size=B,
                    final_loss=float(losses[-1]), fit_seconds=fit_seconds, num_posterior_draws=n_draws,
                    guide="Dirichlet mean field (closed-form updates)", init_topics=init_topics,
                    local_iterations=n_local, learning_offset=offset, learning_decay=decay,
                    resumed_from_step=resumed_from)
    return res


def _fit_from_guide(model: Callable, md: ModelData, params: Mapping[str, Any], key: jax.Array, num_draws: int,
                    guide_factory: Callable[[], Any]) -> Fit:
    """Draws from a fitted guide over *all* documents, as a core :class:`Fit`.

    The guide is rebuilt without subsampling: an autoguide set up under a subsampled plate
    keeps that plate's minibatch size and would return local factors for one minibatch only.
    """
    kwargs = dict(md.kwargs)
    sites = _inspect_sites(model, kwargs)
    return_sites = sites.latent + sites.deterministic
    pred = Predictive(model, guide=guide_factory(), params=params, num_samples=int(num_draws),
                      return_sites=return_sites)
    dev = _device_arrays(kwargs)
    arrays = {k: v for k, v in dev.items() if isinstance(v, jax.Array)}
    static = {k: v for k, v in dev.items() if k not in arrays}
    # compiled, like init in _run_svi (the guide used here is set up under the trace and not
    # kept; the Fit gets a fresh one)
    draws = jax.jit(lambda k, a: pred(k, **a, **static))(key, arrays)
    guide = guide_factory()
    samples = {k: np.asarray(v)[None] for k, v in draws.items() if k in return_sites}
    res = Fit(model=model, data=kwargs, method="svi", samples=samples, sample_stats={}, sites=sites,
              observed=tuple(observed_kwargs(sites, kwargs, md.observed or None)), coords=md.coords, dims=md.dims,
              info={})
    res.svi_params = {k: np.asarray(v) for k, v in params.items()}
    res._guide = guide
    return res


# ============================================================================================
# Post-fit helpers
# ============================================================================================


def _model_kind(fit: Fit) -> str:
    if "model" in fit.info:
        return str(fit.info["model"])
    # a Fit from the generic ppl_models.fit (e.g. a catalog card) names no model: look at it
    base = getattr(fit.model, "func", fit.model)
    return "prodlda" if base is prodlda else "lda"


def topic_word(fit: Fit) -> np.ndarray:
    """Posterior-mean topic-word distributions ``beta``, shape (K, V) (rows sum to one).

    For a ProdLDA fit: each topic's word distribution ``softmax(W_k + b)``
    (:func:`prodlda_topic_word`).
    """
    if _model_kind(fit) == "prodlda":
        return prodlda_topic_word(fit)
    if fit.svi_params and "topic_concentration" in fit.svi_params:
        # a "vb" fit: the exact mean of q(beta_k) = Dirichlet(lambda_k)
        lam = np.asarray(fit.svi_params["topic_concentration"], dtype=np.float64)
        return lam / lam.sum(-1, keepdims=True)
    b = np.exp(np.asarray(fit.get_samples()["log_beta"], dtype=np.float64)).mean(0)
    return b / b.sum(-1, keepdims=True)


def doc_topics(fit: Fit) -> np.ndarray:
    """Posterior-mean document-topic proportions of the fitted documents, shape (D, K)."""
    if _model_kind(fit) == "prodlda":
        return prodlda_doc_topics(fit, fit.data["word_ids"], fit.data["counts"])
    if fit.svi_params and "doc_concentration" in fit.svi_params:
        g = np.asarray(fit.svi_params["doc_concentration"], dtype=np.float64)
        return g / g.sum(-1, keepdims=True)
    t = np.exp(np.asarray(fit.get_samples()["log_theta"], dtype=np.float64)).mean(0)
    return t / t.sum(-1, keepdims=True)


def _vocabulary(fit: Fit, vocabulary: Any) -> np.ndarray:
    if vocabulary is not None:
        return np.asarray(vocabulary)
    if "word" in fit.coords:
        return np.asarray(fit.coords["word"])
    return np.asarray([f"w{j}" for j in range(int(fit.data["vocab_size"]))])


def top_words(fit: Fit, num_words: int = 10, *, vocabulary: Any = None, long: bool = False):
    """The most probable words of every topic, as a pandas DataFrame.

    Parameters
    ----------
    fit : Fit
    num_words : int
    vocabulary : sequence of str, optional
        Default: the fit's ``word`` coordinate.
    long : bool
        ``False``: one row per topic, columns ``word_1..word_N`` (best first). ``True``: one
        row per (topic, rank) with the word and its probability.
    """
    import pandas as pd

    beta = topic_word(fit)
    vocab = _vocabulary(fit, vocabulary)
    order = np.argsort(-beta, axis=1)[:, :int(num_words)]
    if long:
        rows = [{"topic": k, "rank": r + 1, "word": str(vocab[w]), "probability": float(beta[k, w])}
                for k in range(beta.shape[0]) for r, w in enumerate(order[k])]
        return pd.DataFrame(rows)
    return pd.DataFrame([[str(vocab[w]) for w in order[k]] for k in range(beta.shape[0])],
                        index=pd.Index([f"topic{k}" for k in range(beta.shape[0])], name="topic"),
                        columns=[f"word_{r + 1}" for r in range(order.shape[1])])


def _padded_input(counts: Any, vocab_size: int) -> PaddedCounts:
    if isinstance(counts, PaddedCounts):
        return counts
    X = as_count_matrix(counts, allow_empty_docs=True)
    if X.shape[1] != vocab_size:
        raise DataError("counts", f"{vocab_size} columns (the fitted vocabulary)", f"{X.shape[1]}")
    return to_padded(X)


def _alpha(fit: Fit) -> np.ndarray:
    k = int(fit.data["num_topics"])
    return np.full(k, float(fit.data.get("alpha", 1.0 / k)))


def transform(fit: Fit, counts: Any, *, num_iterations: int = 100) -> np.ndarray:
    """Topic proportions of new documents, shape (D_new, K).

    Classic LDA: the mean-field fold-in (:func:`~ppl_models.kernels.lda.estimate_theta`) for the
    posterior-mean topics. ProdLDA: one encoder pass (:func:`prodlda_doc_topics`).

    Parameters
    ----------
    counts : Corpus, (D_new, V) count matrix, or PaddedCounts
        Over the fitted vocabulary (:meth:`ppl_models.text.Corpus.transform`).
    """
    V = int(fit.data["vocab_size"])
    pad = _padded_input(counts, V)
    if _model_kind(fit) == "prodlda":
        return prodlda_doc_topics(fit, pad.word_ids, pad.counts)
    est = jax.jit(estimate_theta, static_argnames="num_iterations")(
        jnp.asarray(topic_word(fit), dtype=jnp.float32), jnp.asarray(_alpha(fit), dtype=jnp.float32),
        jnp.asarray(pad.word_ids), jnp.asarray(pad.counts), num_iterations=int(num_iterations))
    return np.asarray(est.theta, dtype=np.float64)


def heldout_perplexity(fit: Fit, observed: Any, heldout: Any, *, num_iterations: int = 100) -> Perplexity:
    """Document-completion perplexity: ``theta`` from ``observed``, ``heldout`` tokens scored.

    ``observed`` and ``heldout`` are the two parts of the same held-out documents
    (:func:`ppl_models.text.completion_split`). Classic LDA uses
    :func:`~ppl_models.kernels.lda.document_completion_perplexity` with the posterior-mean
    topics, the measure the benchmark applies to every peer; ProdLDA takes ``theta`` from its
    encoder on the observed part and scores with its own decoder.
    """
    V = int(fit.data["vocab_size"])
    obs, ho = _padded_input(observed, V), _padded_input(heldout, V)
    if obs.word_ids.shape[0] != ho.word_ids.shape[0]:
        raise DataError("heldout", f"the same {obs.word_ids.shape[0]} documents as observed", ho.word_ids.shape[0])
    if _model_kind(fit) == "prodlda":
        theta = prodlda_doc_topics(fit, obs.word_ids, obs.counts)
        lp = _prodlda_slot_log_probs(fit, theta, ho.word_ids)
        return jax.tree_util.tree_map(np.asarray, perplexity_from_log_probs(jnp.asarray(lp), jnp.asarray(ho.counts)))
    out = jax.jit(document_completion_perplexity, static_argnames="num_iterations")(
        jnp.asarray(topic_word(fit), dtype=jnp.float32), jnp.asarray(_alpha(fit), dtype=jnp.float32),
        jnp.asarray(obs.word_ids), jnp.asarray(obs.counts), jnp.asarray(ho.word_ids), jnp.asarray(ho.counts),
        num_iterations=int(num_iterations))
    return jax.tree_util.tree_map(np.asarray, out)


def coherence(fit_or_topics: Fit | Any, counts: Any, *, num_words: int = 10, measure: str = "umass") -> Coherence:
    """UMass or NPMI coherence of each topic's top words, from document co-occurrence in ``counts``.

    Parameters
    ----------
    fit_or_topics : Fit, or a (K, V) topic-word matrix (any model's, e.g. a peer's)
    counts : Corpus or (D, V) count matrix
        The reference documents (usually the training corpus).
    num_words : int
        Top words per topic.
    measure : {"umass", "npmi"}
    """
    beta = topic_word(fit_or_topics) if isinstance(fit_or_topics, Fit) else np.asarray(fit_or_topics)
    X = as_count_matrix(counts, allow_empty_docs=True)
    if X.shape[1] != beta.shape[1]:
        raise DataError("counts", f"{beta.shape[1]} columns (the topics' vocabulary)", f"{X.shape[1]}")
    top = np.argsort(-beta, axis=1)[:, :int(num_words)]
    words, local = np.unique(top, return_inverse=True)
    # only the columns of the top words become dense: (D, <= K * num_words)
    presence = (X[:, words] > 0).toarray()
    fn = {"umass": umass_coherence, "npmi": npmi_coherence}.get(measure)
    if fn is None:
        raise DataError("measure", "'umass' or 'npmi'", repr(measure))
    out = fn(jnp.asarray(local.reshape(top.shape)), jnp.asarray(presence))
    return jax.tree_util.tree_map(np.asarray, out)


class SyntheticCorpus(NamedTuple):
    """Documents forward-sampled from a fitted topic model.

    Attributes
    ----------
    counts : scipy.sparse.csr_matrix, shape (D, V)
    theta : ndarray, shape (D, K)
        The topic proportions each document was drawn with.
    tokens : SyntheticTokens
        Every token's topic and word (``(D, L)``, padded with ``-1``).
    """

    counts: sp.csr_matrix
    theta: np.ndarray
    tokens: SyntheticTokens


def sample_documents(fit: Fit, num_docs: int, doc_length: int | Any, *, seed: int = 0) -> SyntheticCorpus:
    """Synthetic documents from the fitted LDA: ``theta_d ~ Dirichlet(alpha)``, then tokens.

    Uses the posterior-mean topics; ``doc_length`` is one length or one per document.
    """
    if _model_kind(fit) == "prodlda":
        raise DataError("fit", "a classic LDA fit (ProdLDA is not a mixture of topics token by token)", "a ProdLDA fit")
    n = int(num_docs)
    if n < 1:
        raise DataError("num_docs", "an integer >= 1", num_docs)
    lengths = np.broadcast_to(np.asarray(doc_length, dtype=np.int64), (n,))
    if lengths.min() < 1:
        raise DataError("doc_length", "lengths >= 1", int(lengths.min()))
    beta = jnp.asarray(topic_word(fit), dtype=jnp.float32)
    k_theta, k_tok = jax.random.split(jax.random.PRNGKey(int(seed)))
    theta = jax.random.dirichlet(k_theta, jnp.asarray(_alpha(fit), dtype=jnp.float32), (n,))
    theta = jnp.clip(theta, 1e-30, None)
    tok = sample_tokens(k_tok, theta, beta, jnp.asarray(lengths), int(lengths.max()))
    words, mask = np.asarray(tok.words), np.asarray(tok.mask)
    rows = np.repeat(np.arange(n), mask.sum(1))
    X = sp.coo_matrix((np.ones(rows.size, dtype=np.int64), (rows, words[mask])),
                      shape=(n, beta.shape[1])).tocsr()
    X.sum_duplicates()
    return SyntheticCorpus(counts=X, theta=np.asarray(theta, dtype=np.float64), tokens=tok)


# ============================================================================================
# ProdLDA: amortized inference with a product-of-experts decoder
# ============================================================================================


def _encode(params: Mapping[str, jax.Array], word_ids: jax.Array, counts: jax.Array) -> jax.Array:
    """The encoder: a document's counts to the Dirichlet concentration of ``q(theta_d)``, (D, K).

    The first layer is an embedding bag over the slots (``sum_l log1p(c_l) W1[w_l]``), so no
    dense (D, V) input is formed; two softplus layers follow. The concentration is bounded
    below by 0.5: Gamma draws with a smaller shape underflow to 0 in float32 and make
    ``log q`` infinite.
    """
    used = word_ids >= 0
    x = jnp.where(used, jnp.log1p(jnp.asarray(counts, dtype=jnp.float32)), 0.0)
    emb = jnp.take(params["encoder_w1"], jnp.where(used, word_ids, 0), axis=0)  # (D, L, H)
    h = jax.nn.softplus(jnp.einsum("dl,dlh->dh", x, emb) + params["encoder_b1"])
    h = jax.nn.softplus(h @ params["encoder_w2"] + params["encoder_b2"])
    return 0.5 + jax.nn.softplus(h @ params["encoder_w3"] + params["encoder_b3"])


def _encoder_params(V: int, H: int, K: int) -> dict[str, jax.Array]:
    def glorot(shape):
        return lambda key: jax.random.normal(key, shape) * jnp.sqrt(2.0 / sum(shape))

    return {
        "encoder_w1": numpyro.param("encoder_w1", glorot((V, H))),
        "encoder_b1": numpyro.param("encoder_b1", jnp.zeros(H)),
        "encoder_w2": numpyro.param("encoder_w2", glorot((H, H))),
        "encoder_b2": numpyro.param("encoder_b2", jnp.zeros(H)),
        "encoder_w3": numpyro.param("encoder_w3", glorot((H, K))),
        "encoder_b3": numpyro.param("encoder_b3", jnp.zeros(K)),
    }


def _check_prodlda_args(word_ids, counts, num_topics, vocab_size):
    K = check_num_topics(num_topics)
    if word_ids is None:
        raise DataError("word_ids", "a (D, L) array of slot words (ppl_models.text.to_padded)", "None")
    if vocab_size is None:
        raise DataError("vocab_size", "the vocabulary size V (an integer)", "None")
    if _concrete(word_ids) and not isinstance(word_ids, jax.Array):
        _check_slots(word_ids, counts, int(vocab_size))
    return K, int(vocab_size)


def prodlda(word_ids=None, counts=None, *, num_topics: int = 10, vocab_size: int | None = None,
            doc_length=None, alpha: float = 1.0, eta: float | None = None, hidden: int = 100,
            background=None, subsample_size: int | None = None):
    """ProdLDA (Srivastava & Sutton 2017) with a per-word offset.

    ::

        theta_d ~ Dirichlet(alpha * 1_K)
        counts_d ~ Multinomial(n_d, softmax(theta_d @ W + b))

    ``W`` (K, V) (``decoder_weight``) and the per-word offset ``b`` (V,) (``decoder_bias``,
    started at the log word frequencies ``background``) are point estimates
    (``numpyro.param``); the offset carries the corpus's word frequencies so the topics need
    not (without it, ProdLDA scored worse than a unigram model here, STACK.md). Fit it with
    :func:`prodlda_guide` (:func:`fit_prodlda`).

    Parameters
    ----------
    word_ids, counts : arrays, shape (D, L)
        Slot-form documents (as :func:`lda`).
    num_topics, vocab_size, doc_length
        As :func:`lda`.
    alpha : float
        Dirichlet concentration of ``theta_d`` (1: uniform on the simplex).
    eta : float, optional
        Accepted (and ignored) so :func:`lda_data` output works unchanged.
    hidden : int
        Encoder width (used by the guide; accepted here so model and guide share arguments).
    background : array, shape (V,), optional
        Initial offset (default: log smoothed word frequencies of ``counts``).
    subsample_size : int, optional

    Sites
    -----
    ``theta`` (D, K); params ``decoder_weight``, ``decoder_bias``; observed ``counts``.
    """
    del eta, hidden
    K, V = _check_prodlda_args(word_ids, counts, num_topics, vocab_size)
    word_ids, D, doc_length = _documents(word_ids, counts, doc_length)
    if background is None:
        if counts is not None:
            freq = jnp.zeros(V).at[jnp.where(word_ids >= 0, word_ids, 0)].add(
                jnp.where(word_ids >= 0, jnp.asarray(counts, dtype=jnp.float32), 0.0).astype(jnp.float32))
            background = jnp.log(freq + 1.0) - jnp.log((freq + 1.0).sum())
        else:
            background = jnp.full(V, -jnp.log(V))
    W = numpyro.param("decoder_weight", lambda key: 0.01 * jax.random.normal(key, (K, V)))
    b = numpyro.param("decoder_bias", jnp.asarray(background, dtype=jnp.float32))
    with numpyro.plate("doc", D, subsample_size=subsample_size) as idx:
        theta = numpyro.sample("theta", dist.Dirichlet(jnp.full((K,), float(alpha))))
        ids = word_ids[idx]
        # the slot words' log-probabilities; the softmax normaliser runs over the vocabulary in
        # chunks when a (B, V) block of logits would exceed 4M entries (e.g. every chapter at once)
        lp = softmax_slot_log_probs(theta, W, b, ids)
        obs = None if counts is None else jnp.asarray(counts)[idx]
        numpyro.sample("counts", ProdLDADocuments(lp, ids, doc_length[idx]), obs=obs)


def prodlda_guide(word_ids=None, counts=None, *, num_topics: int = 10, vocab_size: int | None = None,
                  doc_length=None, alpha: float = 1.0, eta: float | None = None, hidden: int = 100,
                  background=None, subsample_size: int | None = None):
    """The amortized guide of :func:`prodlda`: ``q(theta_d) = Dirichlet(encoder(counts_d))``.

    The encoder (:func:`_encode`, plain JAX parameters through ``numpyro.param``) maps a
    document's counts to its Dirichlet concentration, so a new document's topics need one
    encoder pass and no optimisation.
    """
    del doc_length, alpha, eta, background
    K, V = _check_prodlda_args(word_ids, counts, num_topics, vocab_size)
    if counts is None:
        raise DataError("counts", "the documents' counts (the guide encodes them)", "None")
    word_ids = jnp.asarray(word_ids)
    params = _encoder_params(V, int(hidden), K)
    with numpyro.plate("doc", word_ids.shape[0], subsample_size=subsample_size) as idx:
        conc = _encode(params, word_ids[idx], jnp.asarray(counts)[idx])
        numpyro.sample("theta", dist.Dirichlet(conc))


def fit_prodlda(data: ModelData | Corpus | Any, num_topics: int | None = None, *, hidden: int = 100,
                alpha: float = 1.0, num_steps: int = 2000, learning_rate: float = 0.01, batch_size: int | None = 128,
                seed: int = 0, num_posterior_draws: int = 20, checkpoint: Checkpoint | str | Path | None = None,
                progress: Callable[[int, float], None] | None = None) -> Fit:
    """Fit ProdLDA (:func:`prodlda` with :func:`prodlda_guide`) by minibatch SVI.

    Parameters as :func:`fit_lda`; ``hidden`` is the encoder width, ``alpha`` the prior
    concentration of ``theta``. Returns a core :class:`~ppl_models.fit.Fit` with
    ``info["model"] == "prodlda"``; its ``svi_params`` hold the decoder and encoder.
    """
    md = _as_lda_data(data, num_topics)
    kwargs = dict(md.kwargs, alpha=float(alpha), hidden=int(hidden))
    md = ModelData(kwargs=kwargs, observed=("counts",), coords=md.coords, dims={"theta": ["doc", "topic"]},
                   name=md.name, description=md.description, extra=md.extra)
    n_docs = int(np.shape(kwargs["word_ids"])[0])
    if batch_size is not None and (int(batch_size) < 1 or int(batch_size) > n_docs):
        raise DataError("batch_size", f"an integer in [1, {n_docs}] (the number of documents) or None", batch_size)
    num_steps = int(num_steps)
    if num_steps < 1:
        raise DataError("num_steps", "an integer >= 1", num_steps)
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(path=checkpoint)
    decay = 0.01 ** (1.0 / num_steps)
    optim = numpyro.optim.Adam(step_size=lambda i: learning_rate * decay ** i)
    svi = SVI(prodlda, prodlda_guide, optim, loss=Trace_ELBO())
    run_kwargs = dict(_device_arrays(kwargs), subsample_size=None if batch_size is None else int(batch_size))
    settings = {"model": "prodlda", "num_steps": num_steps, "learning_rate": float(learning_rate),
                "batch_size": batch_size, "seed": int(seed), "hidden": int(hidden),
                "data": _settings_fingerprint(kwargs)}
    k_run, k_draw = jax.random.split(jax.random.PRNGKey(int(seed)))
    t0 = time.perf_counter()
    state, losses, run_info = _run_svi(svi, k_run, num_steps, run_kwargs, checkpoint, settings, progress)
    fit_seconds = time.perf_counter() - t0
    res = _fit_from_guide(prodlda, md, svi.get_params(state), k_draw, num_posterior_draws,
                          guide_factory=lambda: prodlda_guide)
    res.info.update(method="svi", seed=int(seed), model="prodlda", num_steps=num_steps,
                    learning_rate=float(learning_rate), batch_size=batch_size, final_loss=float(losses[-1]),
                    fit_seconds=fit_seconds, num_posterior_draws=int(num_posterior_draws), guide="prodlda_guide",
                    hidden=int(hidden), **run_info)
    res.svi_losses = losses
    return res


def prodlda_doc_topics(fit: Fit, word_ids: Any, counts: Any) -> np.ndarray:
    """Topic proportions from one encoder pass: the mean of ``q(theta_d)``, shape (D, K)."""
    params = {k: jnp.asarray(v) for k, v in fit.svi_params.items() if k.startswith("encoder_")}
    word_ids, counts = np.asarray(word_ids), np.asarray(counts)
    # documents in blocks: the encoder's embedding bag gathers (rows, L, hidden) values
    width = word_ids.shape[1] * int(params["encoder_w1"].shape[1])
    rows = max(1, min(word_ids.shape[0], (1 << 22) // max(width, 1)))
    enc = jax.jit(_encode)
    conc = np.concatenate([np.asarray(enc(params, jnp.asarray(word_ids[i:i + rows]), jnp.asarray(counts[i:i + rows])))
                           for i in range(0, word_ids.shape[0], rows)], axis=0).astype(np.float64)
    return conc / conc.sum(-1, keepdims=True)


def prodlda_topic_word(fit: Fit, *, include_offset: bool = False) -> np.ndarray:
    """ProdLDA topics as word distributions, shape (K, V).

    ``softmax(W_k)``: the topic's expert alone, which ranks its distinctive words (the
    convention for ProdLDA's top words); ``include_offset=True`` gives ``softmax(W_k + b)``,
    the word distribution of a document made of topic ``k`` only.
    """
    W = np.asarray(fit.svi_params["decoder_weight"], dtype=np.float64)
    if include_offset:
        W = W + np.asarray(fit.svi_params["decoder_bias"], dtype=np.float64)
    W = W - W.max(-1, keepdims=True)
    p = np.exp(W)
    return p / p.sum(-1, keepdims=True)


def _prodlda_slot_log_probs(fit: Fit, theta: Any, word_ids: Any, *, max_elements: int = 1 << 22) -> np.ndarray:
    """ProdLDA's per-slot log-probabilities, (D, L): documents in blocks, the vocabulary in
    chunks (:func:`~ppl_models.kernels.lda.softmax_slot_log_probs`), never a (D, V) matrix."""
    W = jnp.asarray(fit.svi_params["decoder_weight"])
    b = jnp.asarray(fit.svi_params["decoder_bias"])
    theta, word_ids = np.asarray(theta, dtype=np.float32), np.asarray(word_ids)
    V = int(W.shape[1])
    rows = max(1, min(theta.shape[0], int(max_elements) // max(word_ids.shape[1] * W.shape[0], 1), 4096))
    fn = jax.jit(softmax_slot_log_probs, static_argnames=("chunk_size",))
    chunk = max(1, min(V, int(max_elements) // rows))
    out = [np.asarray(fn(jnp.asarray(theta[i:i + rows]), W, b, jnp.asarray(word_ids[i:i + rows]), chunk_size=chunk))
           for i in range(0, theta.shape[0], rows)]
    return np.concatenate(out, axis=0)


def catalog_report(fit: Fit, model_data: ModelData, num_words: int = 8) -> dict[str, Any]:
    """What ``ppl-models run`` prints for an LDA card: top words and coherence of every topic.

    Returns a dict: ``topic{k}`` -> its top words (a string), ``umass_coherence`` and
    ``npmi_coherence`` (means over topics, from document co-occurrence in the fitted corpus).
    """
    X = model_data.extra["corpus"].counts if "corpus" in model_data.extra else None
    table = top_words(fit, num_words)
    out: dict[str, Any] = {idx: " ".join(row) for idx, row in zip(table.index, table.to_numpy())}
    if X is not None:
        out["umass_coherence"] = round(float(coherence(fit, X, measure="umass").mean), 4)
        out["npmi_coherence"] = round(float(coherence(fit, X, measure="npmi").mean), 4)
    return out
