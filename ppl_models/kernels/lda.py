"""Pure-JAX kernels for LDA topic models: marginal document likelihood, fold-in, perplexity, coherence.

Everything that is a function of arrays is built from ``jax.numpy`` and ``jax.lax`` only (no
NumPyro), works in log space and does not ``jit`` itself: the caller composes ``jit``/``vmap``.
:func:`match_topics` is the exception: the Hungarian algorithm is SciPy's
``linear_sum_assignment`` on NumPy arrays (a combinatorial post-processing step, not traced).

Sparse documents
----------------
A corpus of ``D`` documents over a vocabulary of ``V`` words is never held as a dense
``(D, V)`` matrix. Each document is a padded row of *slots*: ``word_ids`` of shape ``(D, L)``
(the distinct words of the document, ``-1`` in unused slots) and ``counts`` of shape ``(D, L)``
(how often each slot's word occurs, ``0`` in unused slots); ``L`` is the largest number of
distinct words in one document. :func:`ppl_models.text.to_padded` builds them from a SciPy
sparse count matrix.

The marginal likelihood
-----------------------
With the per-word topic ``z`` summed out, document ``d`` is a multinomial over the vocabulary
with probabilities ``p_d = theta_d @ beta``::

    log p(c_d | theta_d, beta) = log n_d! - sum_w log c_dw! + sum_w c_dw log (sum_k theta_dk beta_kw)

Conventions: ``K`` topics, ``theta`` ``(D, K)`` document-topic proportions (rows on the
simplex), ``beta`` ``(K, V)`` topic-word distributions (rows on the simplex), ``alpha`` ``(K,)``
the Dirichlet concentration of ``theta``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import digamma, gammaln

__all__ = [
    "DocumentLogLikelihood",
    "ThetaEstimate",
    "VariationalEStep",
    "Perplexity",
    "Coherence",
    "TopicMatching",
    "SyntheticTokens",
    "multinomial_log_coefficient",
    "slot_log_probs",
    "document_log_likelihood",
    "estimate_theta",
    "dirichlet_expected_log",
    "dirichlet_kl",
    "variational_e_step",
    "variational_lower_bound",
    "softmax_slot_log_probs",
    "perplexity_from_log_probs",
    "document_completion_perplexity",
    "cooccurrence_counts",
    "umass_coherence",
    "npmi_coherence",
    "match_topics",
    "sample_tokens",
]


class DocumentLogLikelihood(NamedTuple):
    """Log-likelihood of bag-of-words documents with ``z`` marginalized.

    Attributes
    ----------
    pointwise : Array, shape (D,)
        ``log p(c_d | theta_d, beta)`` per document (with the multinomial coefficient unless it
        was turned off).
    total : Array, shape ()
        The sum over documents.
    slot_log_probs : Array, shape (D, L)
        ``log p_d[word_ids[d, l]]``, the per-word log-probability of each slot (``0`` in
        unused slots).
    """

    pointwise: jax.Array
    total: jax.Array
    slot_log_probs: jax.Array


class ThetaEstimate(NamedTuple):
    """Document-topic proportions fitted to documents for fixed topics (the "fold-in").

    Attributes
    ----------
    gamma : Array, shape (D, K)
        The variational Dirichlet parameters ``q(theta_d) = Dirichlet(gamma_d)``.
    theta : Array, shape (D, K)
        Their means ``gamma_d / sum_k gamma_dk``.
    """

    gamma: jax.Array
    theta: jax.Array


class VariationalEStep(NamedTuple):
    """The local step of mean-field variational Bayes for LDA (Blei et al. 2003; Hoffman et al. 2010).

    Attributes
    ----------
    gamma : Array, shape (D, K)
        The documents' variational Dirichlet parameters ``q(theta_d) = Dirichlet(gamma_d)``.
    expected_counts : Array, shape (K, V)
        ``sum_d sum_l c_dl phi_dlk`` at word ``w_dl``: the expected topic-word counts of these
        documents under ``q(z)`` (the sufficient statistics of the topics' update).
    word_bound : Array, shape (D,)
        ``sum_l c_dl log sum_k exp(E[log theta_dk] + E[log beta_k,w_dl])``: each document's
        word term of the evidence lower bound with ``q(z)`` at its optimum.
    """

    gamma: jax.Array
    expected_counts: jax.Array
    word_bound: jax.Array


class Perplexity(NamedTuple):
    """Held-out perplexity, ``exp(-sum log p(w) / number of tokens)``.

    Attributes
    ----------
    perplexity : Array, shape ()
    log_likelihood : Array, shape (D,)
        Held-out ``sum_w c_dw log p_d[w]`` per document (no multinomial coefficient).
    num_tokens : Array, shape ()
        The number of held-out tokens.
    """

    perplexity: jax.Array
    log_likelihood: jax.Array
    num_tokens: jax.Array


class Coherence(NamedTuple):
    """Topic coherence from document co-occurrence of each topic's top words.

    Attributes
    ----------
    per_topic : Array, shape (K,)
        The coherence of each topic: the mean over its pairs of top words.
    mean : Array, shape ()
        The mean over topics.
    """

    per_topic: jax.Array
    mean: jax.Array


class TopicMatching(NamedTuple):
    """A one-to-one matching of estimated topics to reference topics (Hungarian algorithm).

    Attributes
    ----------
    permutation : ndarray, shape (K_ref,)
        ``estimated[permutation[k]]`` is the topic matched to ``reference[k]``.
    distances : ndarray, shape (K_ref,)
        The distance of each matched pair.
    cost : ndarray, shape (K_ref, K_est)
        All pairwise distances ``cost[k, j] = distance(reference[k], estimated[j])``.
    """

    permutation: np.ndarray
    distances: np.ndarray
    cost: np.ndarray


class SyntheticTokens(NamedTuple):
    """Documents drawn token by token from the LDA generative story.

    Attributes
    ----------
    topics : Array, shape (D, L)
        The topic ``z`` of each token (``-1`` past the document's length).
    words : Array, shape (D, L)
        The word of each token (``-1`` past the document's length).
    mask : Array, shape (D, L)
        ``True`` for real tokens.
    """

    topics: jax.Array
    words: jax.Array
    mask: jax.Array


# ============================================================================================
# Likelihood
# ============================================================================================


def multinomial_log_coefficient(counts: jax.Array) -> jax.Array:
    """``log n! - sum_l log c_l!`` for each document.

    Parameters
    ----------
    counts : Array, shape (..., L)
        Slot counts (zeros in unused slots contribute ``log 0! = 0``).

    Returns
    -------
    Array, shape (...)
    """
    counts = jnp.asarray(counts, dtype=jnp.result_type(float))
    return gammaln(counts.sum(-1) + 1.0) - gammaln(counts + 1.0).sum(-1)


def slot_log_probs(log_theta: jax.Array, log_beta: jax.Array, word_ids: jax.Array) -> jax.Array:
    """``log sum_k theta_dk beta_k[w]`` for every slot word.

    Computed as a scaled sum of probabilities rather than a log-sum-exp over topics: with
    ``m_w = max_k log beta_kw`` and ``m_d = max_k log theta_dk``,
    ``log p = m_d + m_w + log sum_k exp(log theta_dk - m_d) exp(log beta_kw - m_w)``. The
    exponentials are taken once per topic-word and document-topic entry (``K V + D K``), not
    once per slot and topic (``D L K``), which halves the cost of the likelihood and its
    gradient; the shifts keep every factor in ``(0, 1]`` with a 1 for some topic, so nothing
    underflows unless the document's leading topics give the word almost no mass. In that
    case the inner sum is floored at the smallest normal float (``log p >= m_d + m_w - 87`` in
    float32, where the log-sum-exp would go lower).

    Parameters
    ----------
    log_theta : Array, shape (..., D, K)
        Log document-topic proportions.
    log_beta : Array, shape (K, V)
        Log topic-word probabilities.
    word_ids : Array, shape (D, L)
        Slot words; ``-1`` marks an unused slot.

    Returns
    -------
    Array, shape (..., D, L)
        Per-slot log-probabilities; ``0`` in unused slots.
    """
    word_ids = jnp.asarray(word_ids)
    used = word_ids >= 0
    ids = jnp.where(used, word_ids, 0)
    m_w = jnp.max(log_beta, axis=-2)  # (V,)
    m_d = jnp.max(log_theta, axis=-1, keepdims=True)  # (..., D, 1)
    # only the (D, L, K) gather of the slot words is formed, never a (D, V) matrix; gathering
    # rows of beta's transpose (contiguous K-vectors) is cheaper than gathering its columns
    b = jnp.take(jnp.swapaxes(jnp.exp(log_beta - m_w), -1, -2), ids, axis=0)  # (D, L, K)
    t = jnp.exp(log_theta - m_d)  # (..., D, K)
    s = jnp.einsum("dlk,...dk->...dl", b, t)
    lp = jnp.log(jnp.maximum(s, jnp.finfo(s.dtype).tiny)) + m_d + jnp.take(m_w, ids)
    return jnp.where(used, lp, 0.0)


def document_log_likelihood(theta: jax.Array, beta: jax.Array, word_ids: jax.Array, counts: jax.Array,
                            *, include_coefficient: bool = True) -> DocumentLogLikelihood:
    """Exact log-likelihood of each document with every word's topic summed out.

    Parameters
    ----------
    theta : Array, shape (D, K)
        Document-topic proportions.
    beta : Array, shape (K, V)
        Topic-word distributions.
    word_ids, counts : Array, shape (D, L)
        The documents in slot form (see the module docstring).
    include_coefficient : bool
        Add the multinomial coefficient ``log n_d! - sum log c_dw!`` (the likelihood of the
        count vector); without it, the log-probability of one ordered sequence of the tokens.

    Returns
    -------
    DocumentLogLikelihood
    """
    counts = jnp.asarray(counts, dtype=jnp.result_type(float))
    lp = slot_log_probs(jnp.log(theta), jnp.log(beta), word_ids)
    # c * log p with c = 0 is 0 even where p = 0 (a word no topic can emit but that is absent)
    terms = jnp.where(counts > 0, counts * lp, 0.0)
    pointwise = terms.sum(-1)
    if include_coefficient:
        pointwise = pointwise + multinomial_log_coefficient(counts)
    return DocumentLogLikelihood(pointwise=pointwise, total=pointwise.sum(), slot_log_probs=lp)


# ============================================================================================
# Fold-in and perplexity
# ============================================================================================


def estimate_theta(beta: jax.Array, alpha: jax.Array, word_ids: jax.Array, counts: jax.Array,
                   *, num_iterations: int = 100) -> ThetaEstimate:
    """Fit each document's topic proportions for fixed topics by mean-field coordinate ascent.

    The variational E-step of Blei, Ng & Jordan (2003), the same update scikit-learn and gensim
    use: ``phi_dlk ∝ exp(E[log theta_dk]) beta_k[w_dl]`` and ``gamma_dk = alpha_k + sum_l c_dl
    phi_dlk``, iterated ``num_iterations`` times from ``gamma = alpha + n_d / K``.

    Parameters
    ----------
    beta : Array, shape (K, V)
        Topic-word distributions (rows on the simplex).
    alpha : Array, shape (K,) or ()
        Dirichlet concentration of ``theta``.
    word_ids, counts : Array, shape (D, L)
        Documents in slot form. A document with no tokens gets ``gamma = alpha``.
    num_iterations : int
        Fixed-point iterations (a static number, run by ``lax.fori_loop``).

    Returns
    -------
    ThetaEstimate
    """
    counts = jnp.asarray(counts, dtype=jnp.result_type(float))
    word_ids = jnp.asarray(word_ids)
    k = beta.shape[0]
    alpha = jnp.broadcast_to(jnp.asarray(alpha, dtype=counts.dtype), (k,))
    used = word_ids >= 0
    b = jnp.where(used[..., None], jnp.take(beta.T, jnp.where(used, word_ids, 0), axis=0), 0.0)  # (D, L, K)
    n = counts.sum(-1, keepdims=True)
    tiny = jnp.finfo(counts.dtype).tiny

    def step(_, gamma):
        # phi_dlk = e_dk b_lk / sum_j e_dj b_lj with e = exp(E[log theta]) (scaled by its row
        # maximum, which cancels), so gamma_dk = alpha_k + e_dk sum_l b_lk c_dl / norm_dl: no
        # exponential per slot and topic (the form scikit-learn's E-step uses)
        e_log_theta = digamma(gamma) - digamma(gamma.sum(-1, keepdims=True))
        e = jnp.exp(e_log_theta - e_log_theta.max(-1, keepdims=True))
        norm = jnp.einsum("dlk,dk->dl", b, e)
        ratio = jnp.where(counts > 0, counts / jnp.maximum(norm, tiny), 0.0)
        return alpha + e * jnp.einsum("dl,dlk->dk", ratio, b)

    gamma0 = alpha + n / k
    gamma = lax.fori_loop(0, int(num_iterations), step, gamma0)
    return ThetaEstimate(gamma=gamma, theta=gamma / gamma.sum(-1, keepdims=True))


def dirichlet_expected_log(concentration: jax.Array) -> jax.Array:
    """``E[log x]`` for ``x ~ Dirichlet(concentration)`` (over the last axis): ``psi(c) - psi(sum c)``."""
    return digamma(concentration) - digamma(concentration.sum(-1, keepdims=True))


def dirichlet_kl(concentration: jax.Array, prior: jax.Array) -> jax.Array:
    """``KL(Dirichlet(concentration) || Dirichlet(prior))`` over the last axis, shape ``(...)``.

    ``sum_i (c_i - a_i) E[log x_i] - log B(c) + log B(a)`` with ``log B(c) = sum lgamma(c_i) -
    lgamma(sum c_i)``; ``prior`` broadcasts against ``concentration``.
    """
    prior = jnp.broadcast_to(jnp.asarray(prior, dtype=concentration.dtype), concentration.shape)
    log_b = lambda c: gammaln(c).sum(-1) - gammaln(c.sum(-1))
    return ((concentration - prior) * dirichlet_expected_log(concentration)).sum(-1) - log_b(concentration) + log_b(prior)


def variational_e_step(exp_elog_beta: jax.Array, alpha: jax.Array, word_ids: jax.Array, counts: jax.Array,
                       gamma: jax.Array, *, num_iterations: int = 5) -> VariationalEStep:
    """Mean-field coordinate ascent on the documents' ``q(theta_d)`` for fixed ``q(beta)``.

    The E-step of variational Bayes for LDA (Blei, Ng & Jordan 2003; the local step of online
    LDA, Hoffman, Blei & Bach 2010; scikit-learn's and gensim's E-step):
    ``phi_dlk ∝ exp(E[log theta_dk] + E[log beta_k,w_dl])`` and ``gamma_dk = alpha_k + sum_l c_dl
    phi_dlk``, iterated ``num_iterations`` times from the given ``gamma`` (a warm start: the
    previous step's values). :func:`estimate_theta` is the same update for a point estimate of
    the topics, started afresh. Only the ``(D, L, K)`` gather of the slot words is formed.

    Parameters
    ----------
    exp_elog_beta : Array, shape (K, V)
        ``exp(E[log beta_kw])`` under ``q(beta_k) = Dirichlet(lambda_k)``
        (``exp(dirichlet_expected_log(lambda))``).
    alpha : Array, shape (K,) or ()
    word_ids, counts : Array, shape (D, L)
        Documents in slot form.
    gamma : Array, shape (D, K)
        Where the iterations start.
    num_iterations : int
        Static.

    Returns
    -------
    VariationalEStep
        ``gamma`` after the iterations; ``expected_counts`` and ``word_bound`` for that
        ``gamma`` (``phi`` at its optimum).
    """
    counts = jnp.asarray(counts, dtype=exp_elog_beta.dtype)
    word_ids = jnp.asarray(word_ids)
    k, v = exp_elog_beta.shape
    alpha = jnp.broadcast_to(jnp.asarray(alpha, dtype=counts.dtype), (k,))
    used = word_ids >= 0
    ids = jnp.where(used, word_ids, 0)
    b = jnp.where(used[..., None], jnp.take(exp_elog_beta.T, ids, axis=0), 0.0)  # (D, L, K)
    tiny = jnp.finfo(counts.dtype).tiny

    def scaled(g):
        # exp(E[log theta]) shifted by its row maximum (which cancels in phi), and that maximum
        e_log = dirichlet_expected_log(g)
        m = e_log.max(-1, keepdims=True)
        return jnp.exp(e_log - m), m

    def ratios(e):
        norm = jnp.einsum("dlk,dk->dl", b, e)
        return norm, jnp.where(counts > 0, counts / jnp.maximum(norm, tiny), 0.0)

    def step(_, g):
        e, _ = scaled(g)
        _, ratio = ratios(e)
        return alpha + e * jnp.einsum("dl,dlk->dk", ratio, b)

    gamma = lax.fori_loop(0, int(num_iterations), step, jnp.asarray(gamma, dtype=counts.dtype))
    e, m = scaled(gamma)
    norm, ratio = ratios(e)
    # expected counts n_kw = b_kw sum_{d,l: w_dl = w} e_dk c_dl / norm_dl (a scatter-add over the slots)
    per_slot = jnp.where(used[..., None], ratio[..., None] * e[:, None, :], 0.0)  # (D, L, K)
    expected = jnp.zeros((v, k), dtype=counts.dtype).at[ids].add(per_slot).T * exp_elog_beta
    word_bound = jnp.where(counts > 0, counts * (jnp.log(jnp.maximum(norm, tiny)) + m), 0.0).sum(-1)
    return VariationalEStep(gamma=gamma, expected_counts=expected, word_bound=word_bound)


def variational_lower_bound(topic_concentration: jax.Array, doc_concentration: jax.Array, alpha: jax.Array,
                            eta: jax.Array, word_ids: jax.Array, counts: jax.Array) -> jax.Array:
    """The evidence lower bound of LDA's mean-field family with every token's ``q(z)`` at its optimum.

    For ``q(beta_k) = Dirichlet(lambda_k)`` and ``q(theta_d) = Dirichlet(gamma_d)``::

        ELBO = sum_d [log n_d! - sum_w log c_dw! + sum_w c_dw log sum_k exp(E[log theta_dk] + E[log beta_kw])
                      - KL(q(theta_d) || Dirichlet(alpha))] - sum_k KL(q(beta_k) || Dirichlet(eta))

    a lower bound on ``log p(counts)`` under :func:`ppl_models.models.lda.lda` (multinomial
    coefficients included), the objective ``fit_lda(method="vb")`` ascends.

    Parameters
    ----------
    topic_concentration : Array, shape (K, V)
        ``lambda``.
    doc_concentration : Array, shape (D, K)
        ``gamma``.
    alpha, eta : Array, shape (K,) / (V,) or ()
        The prior concentrations.
    word_ids, counts : Array, shape (D, L)

    Returns
    -------
    Array, shape ()
    """
    lam = jnp.asarray(topic_concentration)
    gamma = jnp.asarray(doc_concentration, dtype=lam.dtype)
    counts = jnp.asarray(counts, dtype=lam.dtype)
    k = lam.shape[0]
    alpha = jnp.broadcast_to(jnp.asarray(alpha, dtype=lam.dtype), (k,))
    est = variational_e_step(jnp.exp(dirichlet_expected_log(lam)), alpha, word_ids, counts, gamma, num_iterations=0)
    docs = est.word_bound.sum() + multinomial_log_coefficient(counts).sum() - dirichlet_kl(gamma, alpha).sum()
    return docs - dirichlet_kl(lam, eta).sum()


def softmax_slot_log_probs(theta: jax.Array, weight: jax.Array, bias: jax.Array, word_ids: jax.Array,
                           *, chunk_size: int | None = None, max_elements: int = 1 << 22) -> jax.Array:
    """``log softmax(theta_d @ weight + bias)[w]`` for every slot word, without a (D, V) matrix.

    ProdLDA's decoder. A slot's logit is ``theta_d . weight[:, w] + bias[w]`` (a gather of the
    ``(D, L, K)`` slot columns); the normaliser ``logsumexp_v(theta_d @ weight + bias)`` runs
    over the vocabulary in chunks of ``chunk_size`` columns (``lax.scan`` with a running maximum
    and sum, each chunk rematerialised in the gradient), so at most ``(D, chunk_size)`` logits
    exist at once. When all ``D x V`` logits fit in ``max_elements`` (a minibatch), they are
    formed in one block and gathered at the slot words (the same numbers, fewer operations).

    Parameters
    ----------
    theta : Array, shape (D, K)
    weight : Array, shape (K, V)
    bias : Array, shape (V,)
    word_ids : Array, shape (D, L)
        ``-1`` in unused slots.
    chunk_size : int, optional
        Columns per chunk (static). Default: ``max(1, max_elements // D)``, capped at ``V``
        (one chunk, the plain softmax, for a small batch).
    max_elements : int
        The logits held at once when ``chunk_size`` is not given (default 4M: 16 MB in float32).

    Returns
    -------
    Array, shape (D, L)
        ``0`` in unused slots.
    """
    word_ids = jnp.asarray(word_ids)
    used = word_ids >= 0
    ids = jnp.where(used, word_ids, 0)
    d = theta.shape[0]
    k, v = weight.shape
    if chunk_size is None:
        chunk_size = max(1, int(max_elements) // max(d, 1))
    c = int(min(max(int(chunk_size), 1), v))
    if c >= v:
        # the logits fit the budget: one (D, V) block, gathered at the slot words
        log_p = jax.nn.log_softmax(theta @ weight + bias, axis=-1)
        return jnp.where(used, jnp.take_along_axis(log_p, ids, axis=-1), 0.0)
    slot_logit = jnp.einsum("dk,dlk->dl", theta, jnp.take(weight.T, ids, axis=0)) + jnp.take(bias, ids)
    n = -(-v // c)
    pad = n * c - v
    # padded columns get a bias of -inf: exp(-inf) = 0 adds nothing to the sum
    w_chunks = jnp.pad(weight, ((0, 0), (0, pad))).reshape(k, n, c).transpose(1, 0, 2)  # (n, K, c)
    b_chunks = jnp.pad(bias, (0, pad), constant_values=-jnp.inf).reshape(n, c)

    @jax.checkpoint
    def body(carry, chunk):
        m, s = carry
        w_c, b_c = chunk
        logits = theta @ w_c + b_c  # (D, c)
        m_new = jnp.maximum(m, logits.max(-1))
        s = s * jnp.exp(m - m_new) + jnp.exp(logits - m_new[:, None]).sum(-1)
        return (m_new, s), None

    init = (jnp.full((d,), -jnp.inf, dtype=theta.dtype), jnp.zeros((d,), dtype=theta.dtype))
    (m, s), _ = lax.scan(body, init, (w_chunks, b_chunks))
    log_norm = m + jnp.log(s)
    return jnp.where(used, slot_logit - log_norm[:, None], 0.0)


def perplexity_from_log_probs(slot_log_prob: jax.Array, counts: jax.Array) -> Perplexity:
    """Perplexity of held-out tokens from their per-slot log-probabilities.

    Parameters
    ----------
    slot_log_prob : Array, shape (D, L)
        ``log p_d[w]`` of each held-out slot word.
    counts : Array, shape (D, L)
        Held-out counts (``0`` in unused slots).

    Returns
    -------
    Perplexity
    """
    counts = jnp.asarray(counts, dtype=jnp.result_type(float))
    ll = jnp.where(counts > 0, counts * slot_log_prob, 0.0).sum(-1)
    n = counts.sum()
    return Perplexity(perplexity=jnp.exp(-ll.sum() / n), log_likelihood=ll, num_tokens=n)


def document_completion_perplexity(beta: jax.Array, alpha: jax.Array, observed_word_ids: jax.Array,
                                   observed_counts: jax.Array, heldout_word_ids: jax.Array,
                                   heldout_counts: jax.Array, *, num_iterations: int = 100) -> Perplexity:
    """Document-completion perplexity: fit ``theta`` on one part of each document, score the rest.

    For every held-out document, ``theta_d`` is estimated from its observed part by
    :func:`estimate_theta` (for the fixed topics ``beta``), and the other part's tokens are
    scored by ``log sum_k theta_dk beta_k[w]`` (Wallach et al. 2009, "estimated theta"). The
    same function serves every model that has a topic-word matrix, so models are compared by
    one measure computed the same way.

    Parameters
    ----------
    beta : Array, shape (K, V)
    alpha : Array, shape (K,) or ()
    observed_word_ids, observed_counts : Array, shape (D, L1)
        The part of each document ``theta`` is fitted on.
    heldout_word_ids, heldout_counts : Array, shape (D, L2)
        The part that is scored.
    num_iterations : int

    Returns
    -------
    Perplexity
    """
    est = estimate_theta(beta, alpha, observed_word_ids, observed_counts, num_iterations=num_iterations)
    lp = slot_log_probs(jnp.log(est.theta), jnp.log(beta), heldout_word_ids)
    return perplexity_from_log_probs(lp, heldout_counts)


# ============================================================================================
# Coherence
# ============================================================================================


def cooccurrence_counts(presence: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Document frequencies and pairwise co-document frequencies of ``T`` candidate words.

    Parameters
    ----------
    presence : Array, shape (D, T)
        ``True`` (or 1) where word ``t`` occurs in document ``d``. Only the topics' top words
        are columns, so this is small even for a large vocabulary.

    Returns
    -------
    doc_freq : Array, shape (T,)
        The number of documents containing each word.
    co_freq : Array, shape (T, T)
        The number of documents containing both words.
    """
    p = jnp.asarray(presence, dtype=jnp.result_type(float))
    return p.sum(0), p.T @ p


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)`` with ``j < i``: word ``j`` ranks above word ``i``."""
    i, j = np.tril_indices(n, k=-1)
    return i, j


def umass_coherence(top_words: jax.Array, presence: jax.Array) -> Coherence:
    """UMass coherence (Mimno et al. 2011) of each topic's ranked top words.

    For ranked words ``v_1, ..., v_N`` of a topic, the mean over pairs ``j < i`` of
    ``log((D(v_i, v_j) + 1) / D(v_j))``, with ``D(.)`` document frequencies and ``D(., .)``
    co-document frequencies in the reference corpus. Higher (closer to 0) is more coherent.
    (Mimno et al. write the sum; the mean over pairs is gensim's aggregation.)

    Parameters
    ----------
    top_words : Array, shape (K, N)
        Each topic's top words, best first, as column indices of ``presence``.
    presence : Array, shape (D, T)
        Word occurrence in the reference documents (see :func:`cooccurrence_counts`). Every top
        word must occur in at least one document.

    Returns
    -------
    Coherence
    """
    df, co = cooccurrence_counts(presence)
    i, j = _pairs(top_words.shape[-1])
    wi, wj = top_words[:, i], top_words[:, j]
    scores = jnp.log((co[wi, wj] + 1.0) / df[wj])
    per = scores.mean(-1)
    return Coherence(per_topic=per, mean=per.mean())


def npmi_coherence(top_words: jax.Array, presence: jax.Array) -> Coherence:
    """NPMI coherence (Bouma 2009; Aletras & Stevenson 2013) from document co-occurrence.

    For each pair of a topic's top words, ``NPMI = log(p_ij / (p_i p_j)) / (-log p_ij)`` with
    document probabilities ``p_i = D(v_i) / D`` and ``p_ij = D(v_i, v_j) / D``; a pair that never
    co-occurs scores ``-1`` (the limit) and a pair found in every document ``1``. The topic's
    score is the mean over its pairs, in ``[-1, 1]``; higher is more coherent.

    Parameters
    ----------
    top_words : Array, shape (K, N)
        Column indices of ``presence``.
    presence : Array, shape (D, T)

    Returns
    -------
    Coherence
    """
    df, co = cooccurrence_counts(presence)
    n_docs = presence.shape[0]
    i, j = _pairs(top_words.shape[-1])
    wi, wj = top_words[:, i], top_words[:, j]
    p_ij = co[wi, wj] / n_docs
    p_i, p_j = df[wi] / n_docs, df[wj] / n_docs
    safe = jnp.where(p_ij > 0, p_ij, 1.0)
    pmi = jnp.log(safe) - jnp.log(p_i) - jnp.log(p_j)
    denom = -jnp.log(safe)
    npmi = jnp.where(p_ij <= 0, -1.0, jnp.where(denom > 0, pmi / jnp.where(denom > 0, denom, 1.0), 1.0))
    per = npmi.mean(-1)
    return Coherence(per_topic=per, mean=per.mean())


# ============================================================================================
# Topic matching and forward sampling
# ============================================================================================


def match_topics(estimated, reference, *, metric: str = "hellinger") -> TopicMatching:
    """Match estimated topics to reference topics one to one, minimising the total distance.

    Topics are exchangeable in LDA, so fitted topics come out in an arbitrary order; the
    Hungarian algorithm (SciPy ``linear_sum_assignment``) finds the permutation with the least
    total distance. NumPy in, NumPy out (not traced).

    Parameters
    ----------
    estimated : array, shape (K_est, V)
        Fitted topic-word distributions.
    reference : array, shape (K_ref, V)
        The reference (true) topics, ``K_ref <= K_est``.
    metric : {"hellinger", "l1", "tv"}
        Hellinger distance ``sqrt(1/2 sum (sqrt p - sqrt q)^2)`` (in [0, 1]), L1 distance, or
        total variation (half the L1 distance, in [0, 1]).

    Returns
    -------
    TopicMatching
    """
    from scipy.optimize import linear_sum_assignment

    est = np.asarray(estimated, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if est.ndim != 2 or ref.ndim != 2 or est.shape[1] != ref.shape[1]:
        raise ValueError(f"estimated and reference must be (K, V) arrays over the same vocabulary, "
                         f"got shapes {est.shape} and {ref.shape}")
    if ref.shape[0] > est.shape[0]:
        raise ValueError(f"need at least as many estimated topics ({est.shape[0]}) as reference topics "
                         f"({ref.shape[0]})")
    if metric == "hellinger":
        diff = np.sqrt(ref)[:, None, :] - np.sqrt(est)[None, :, :]
        cost = np.sqrt(0.5 * (diff ** 2).sum(-1))
    elif metric in ("l1", "tv"):
        cost = np.abs(ref[:, None, :] - est[None, :, :]).sum(-1)
        if metric == "tv":
            cost = 0.5 * cost
    else:
        raise ValueError(f"metric must be 'hellinger', 'l1' or 'tv', got {metric!r}")
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(ref.shape[0], dtype=np.int64)
    perm[rows] = cols
    return TopicMatching(permutation=perm, distances=cost[np.arange(ref.shape[0]), perm], cost=cost)


def sample_tokens(key: jax.Array, theta: jax.Array, beta: jax.Array, lengths: jax.Array,
                  max_length: int) -> SyntheticTokens:
    """Draw documents token by token: ``z ~ Categorical(theta_d)``, ``w ~ Categorical(beta_z)``.

    Parameters
    ----------
    key : PRNGKey
    theta : Array, shape (D, K)
    beta : Array, shape (K, V)
    lengths : Array, shape (D,)
        The number of tokens of each document (at most ``max_length``).
    max_length : int
        The padded length ``L`` (static).

    Returns
    -------
    SyntheticTokens
    """
    k_z, k_w = jax.random.split(key)
    d = theta.shape[0]
    z = jax.random.categorical(k_z, jnp.log(theta)[:, None, :], axis=-1, shape=(d, max_length))
    # inverse-CDF draws per topic: (K, D, L) integers, never a (D, L, V) array of logits
    cdf = jnp.cumsum(beta, axis=-1)
    u = jax.random.uniform(k_w, (d, max_length))
    # scale by each topic's own total so float rounding of the cumulative sum cannot overrun it
    per_topic = jax.vmap(lambda c: jnp.searchsorted(c, u * c[-1], side="right"))(cdf)
    w = jnp.take_along_axis(per_topic, z[None], axis=0)[0]
    w = jnp.minimum(w, beta.shape[-1] - 1)
    mask = jnp.arange(max_length)[None, :] < jnp.asarray(lengths)[:, None]
    return SyntheticTokens(topics=jnp.where(mask, z, -1), words=jnp.where(mask, w, -1), mask=mask)
