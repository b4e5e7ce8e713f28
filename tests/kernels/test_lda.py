"""LDA kernels against brute force: enumeration of every token's topic, SciPy's multinomial,
NumPy re-implementations of the fold-in, perplexity and coherence, and a known permutation."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ppl_models.kernels import lda as K


def _tiny(seed=0, D=3, K_=2, V=4, max_count=2):
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.ones(K_), D)
    beta = rng.dirichlet(np.ones(V), K_)
    dense = rng.integers(0, max_count + 1, (D, V))
    dense[:, 0] += 1  # no empty document
    return theta, beta, dense


def _slots(dense):
    L = int((dense > 0).sum(1).max())
    ids = np.full((dense.shape[0], L), -1, np.int32)
    cnt = np.zeros((dense.shape[0], L), np.int32)
    for d, row in enumerate(dense):
        w = np.flatnonzero(row)
        ids[d, :w.size] = w
        cnt[d, :w.size] = row[w]
    return ids, cnt


def test_marginal_equals_enumeration_of_topics():
    theta, beta, dense = _tiny()
    ids, cnt = _slots(dense)
    with jax.enable_x64(True):
        out = K.document_log_likelihood(jnp.asarray(theta), jnp.asarray(beta), jnp.asarray(ids), jnp.asarray(cnt))
        for d in range(dense.shape[0]):
            tokens = np.repeat(np.arange(dense.shape[1]), dense[d])  # one ordering of the bag
            # sum over all K^n topic assignments of the tokens
            p_seq = 0.0
            for z in itertools.product(range(theta.shape[1]), repeat=tokens.size):
                p_seq += np.prod([theta[d, zi] * beta[zi, w] for zi, w in zip(z, tokens)])
            coef = math.factorial(tokens.size) / np.prod([math.factorial(c) for c in dense[d]])
            assert float(out.pointwise[d]) == pytest.approx(np.log(coef * p_seq), rel=1e-12)
        assert float(out.total) == pytest.approx(float(out.pointwise.sum()), rel=1e-12)


def test_marginal_equals_scipy_multinomial_and_sequence_form():
    theta, beta, dense = _tiny(seed=3, D=5, K_=3, V=7, max_count=4)
    ids, cnt = _slots(dense)
    with jax.enable_x64(True):
        out = K.document_log_likelihood(jnp.asarray(theta), jnp.asarray(beta), jnp.asarray(ids), jnp.asarray(cnt))
        seq = K.document_log_likelihood(jnp.asarray(theta), jnp.asarray(beta), jnp.asarray(ids), jnp.asarray(cnt),
                                        include_coefficient=False)
    for d in range(dense.shape[0]):
        p = theta[d] @ beta
        assert float(out.pointwise[d]) == pytest.approx(stats.multinomial.logpmf(dense[d], dense[d].sum(), p), rel=1e-10)
        assert float(seq.pointwise[d]) == pytest.approx((dense[d] * np.log(p)).sum(), rel=1e-10)
    assert np.all(np.asarray(out.slot_log_probs)[ids < 0] == 0.0)


def test_float32_large_vocabulary_stays_finite():
    rng = np.random.default_rng(0)
    V, D = 20000, 4
    with np.errstate(divide="ignore"):  # some float64 Dirichlet draws are exactly 0
        log_beta = jnp.asarray(np.log(rng.dirichlet(np.full(V, 0.01), 5)).clip(-300), jnp.float32)
    log_theta = jnp.log(jnp.asarray(rng.dirichlet(np.ones(5), D), jnp.float32))
    ids = jnp.asarray(rng.integers(0, V, (D, 50)), jnp.int32)
    lp = K.slot_log_probs(log_theta, log_beta, ids)
    assert lp.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(lp)))


def _numpy_fold_in(beta, alpha, dense, iters):
    D, Kt = dense.shape[0], beta.shape[0]
    gamma = np.tile(alpha, (D, 1)) + dense.sum(1, keepdims=True) / Kt
    from scipy.special import digamma

    for _ in range(iters):
        new = np.empty_like(gamma)
        for d in range(D):
            elog = digamma(gamma[d]) - digamma(gamma[d].sum())
            acc = alpha.copy()
            for w in np.flatnonzero(dense[d]):
                phi = np.exp(elog) * beta[:, w]
                acc += dense[d, w] * phi / phi.sum()
            new[d] = acc
        gamma = new
    return gamma


def test_estimate_theta_matches_numpy_fixed_point():
    theta, beta, dense = _tiny(seed=5, D=4, K_=3, V=6, max_count=5)
    ids, cnt = _slots(dense)
    alpha = np.array([0.3, 0.5, 0.2])
    with jax.enable_x64(True):
        est = K.estimate_theta(jnp.asarray(beta), jnp.asarray(alpha), jnp.asarray(ids), jnp.asarray(cnt),
                               num_iterations=25)
        gamma = np.asarray(est.gamma)
    ref = _numpy_fold_in(beta, alpha, dense, 25)
    np.testing.assert_allclose(gamma, ref, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(est.theta).sum(1), 1.0, rtol=1e-12)
    # gamma always holds alpha plus exactly the document's tokens
    np.testing.assert_allclose(gamma.sum(1), alpha.sum() + dense.sum(1), rtol=1e-10)


def test_completion_perplexity_matches_direct_computation():
    theta, beta, dense = _tiny(seed=7, D=4, K_=2, V=5, max_count=3)
    rng = np.random.default_rng(0)
    obs = rng.binomial(dense, 0.5)
    ho = dense - obs
    ho[:, 1] += 1  # every document has held-out tokens
    alpha = np.array([0.5, 0.5])
    oi, oc = _slots(obs)
    hi, hc = _slots(ho)
    with jax.enable_x64(True):
        out = K.document_completion_perplexity(jnp.asarray(beta), jnp.asarray(alpha), jnp.asarray(oi),
                                               jnp.asarray(oc), jnp.asarray(hi), jnp.asarray(hc), num_iterations=30)
    gamma = _numpy_fold_in(beta, alpha, obs, 30)
    th = gamma / gamma.sum(1, keepdims=True)
    ll = (ho * np.log(th @ beta)).sum()
    assert float(out.perplexity) == pytest.approx(np.exp(-ll / ho.sum()), rel=1e-10)
    assert float(out.num_tokens) == ho.sum()
    np.testing.assert_allclose(np.asarray(out.log_likelihood), (ho * np.log(th @ beta)).sum(1), rtol=1e-10)


def test_perplexity_of_uniform_model_is_vocabulary_size():
    V = 9
    ids = jnp.asarray([[0, 3, 5], [2, 8, -1]])
    cnt = jnp.asarray([[2, 1, 4], [1, 1, 0]])
    lp = jnp.where(ids >= 0, -jnp.log(V), 0.0)
    assert float(K.perplexity_from_log_probs(lp, cnt).perplexity) == pytest.approx(V, rel=1e-6)


def _brute_umass(top, pres):
    out = []
    for words in top:
        s = []
        for i in range(1, len(words)):
            for j in range(i):
                dj = pres[:, words[j]].sum()
                dij = (pres[:, words[i]] & pres[:, words[j]]).sum()
                s.append(np.log((dij + 1) / dj))
        out.append(np.mean(s))
    return np.array(out)


def _brute_npmi(top, pres):
    D = pres.shape[0]
    out = []
    for words in top:
        s = []
        for a, b in itertools.combinations(words, 2):
            pa, pb = pres[:, a].mean(), pres[:, b].mean()
            pab = (pres[:, a] & pres[:, b]).sum() / D
            if pab == 0:
                s.append(-1.0)
            elif pab == 1:
                s.append(1.0)
            else:
                s.append(np.log(pab / (pa * pb)) / -np.log(pab))
        out.append(np.mean(s))
    return np.array(out)


def test_coherence_matches_brute_force():
    rng = np.random.default_rng(2)
    pres = rng.random((30, 8)) < 0.4
    pres[:, 7] = True      # a word in every document
    pres[:, 6] = False
    pres[0, 6] = True      # a rare word that co-occurs with few others
    top = np.array([[0, 1, 2, 3], [7, 4, 5, 6], [6, 7, 0, 2]])
    with jax.enable_x64(True):
        um = K.umass_coherence(jnp.asarray(top), jnp.asarray(pres))
        nm = K.npmi_coherence(jnp.asarray(top), jnp.asarray(pres))
    np.testing.assert_allclose(np.asarray(um.per_topic), _brute_umass(top, pres), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(nm.per_topic), _brute_npmi(top, pres), rtol=1e-12)
    assert float(um.mean) == pytest.approx(_brute_umass(top, pres).mean(), rel=1e-12)
    # the words present together everywhere give NPMI 1, a never co-occurring pair -1
    both = np.ones((5, 2), bool)
    assert float(K.npmi_coherence(jnp.asarray([[0, 1]]), jnp.asarray(both)).mean) == pytest.approx(1.0)
    apart = np.array([[1, 0], [0, 1], [1, 0]], bool)
    assert float(K.npmi_coherence(jnp.asarray([[0, 1]]), jnp.asarray(apart)).mean) == pytest.approx(-1.0)


def test_match_topics_recovers_a_permutation():
    rng = np.random.default_rng(4)
    ref = rng.dirichlet(np.full(20, 0.3), 5)
    perm = np.array([3, 0, 4, 1, 2])
    est = np.empty_like(ref)
    est[perm] = ref  # est[perm[k]] == ref[k]
    noisy = est + 0.001 * rng.random(est.shape)
    noisy /= noisy.sum(1, keepdims=True)
    for metric in ("hellinger", "l1", "tv"):
        m = K.match_topics(noisy, ref, metric=metric)
        np.testing.assert_array_equal(m.permutation, perm)
        assert m.distances.max() < 0.05
    extra = np.vstack([noisy, rng.dirichlet(np.ones(20), 2)])
    np.testing.assert_array_equal(K.match_topics(extra, ref).permutation, perm)
    with pytest.raises(ValueError, match="metric"):
        K.match_topics(noisy, ref, metric="cosine")
    with pytest.raises(ValueError, match="at least as many"):
        K.match_topics(noisy[:3], ref)


def test_sample_tokens_follow_the_generative_story():
    theta = jnp.asarray([[0.5, 0.5], [0.9, 0.1], [0.0, 1.0]])
    beta = jnp.asarray([[0.7, 0.2, 0.1, 0.0], [0.0, 0.1, 0.3, 0.6]])
    lengths = jnp.asarray([4000, 3000, 10])
    tok = K.sample_tokens(jax.random.PRNGKey(0), theta, beta, lengths, 4000)
    topics, words, mask = (np.asarray(a) for a in tok)
    assert mask.sum(1).tolist() == [4000, 3000, 10]
    assert np.all(words[~mask] == -1) and np.all(topics[~mask] == -1)
    for d in range(2):
        freq = np.bincount(words[d][mask[d]], minlength=4) / mask[d].sum()
        p = np.asarray(theta[d] @ beta)
        # binomial standard error at n >= 3000 is below 0.01: 4 SE
        np.testing.assert_allclose(freq, p, atol=0.035)
    # a word no topic of the token can emit is never drawn
    assert np.all(beta[topics[mask], words[mask]] > 0)
    assert np.all(topics[2][mask[2]] == 1)


# ------------------------------------------------------------------------------------------ variational Bayes


def _numpy_vb_step(lam, alpha, dense, gamma, iters):
    """One E-step of LDA's mean-field VB by the textbook loops (Blei et al. 2003, fig. 6): explicit
    phi per document and word, the expected counts and the word term of the bound."""
    from scipy.special import digamma, logsumexp

    elog_beta = digamma(lam) - digamma(lam.sum(1, keepdims=True))
    gamma = gamma.copy()
    for _ in range(iters):
        for d in range(dense.shape[0]):
            elog_theta = digamma(gamma[d]) - digamma(gamma[d].sum())
            acc = alpha.copy()
            for w in np.flatnonzero(dense[d]):
                phi = np.exp(elog_theta + elog_beta[:, w])
                acc += dense[d, w] * phi / phi.sum()
            gamma[d] = acc
    expected = np.zeros_like(lam)
    word_bound = np.zeros(dense.shape[0])
    for d in range(dense.shape[0]):
        elog_theta = digamma(gamma[d]) - digamma(gamma[d].sum())
        for w in np.flatnonzero(dense[d]):
            log_phi = elog_theta + elog_beta[:, w]
            expected[:, w] += dense[d, w] * np.exp(log_phi - logsumexp(log_phi))
            word_bound[d] += dense[d, w] * logsumexp(log_phi)
    return gamma, expected, word_bound


def test_variational_e_step_matches_textbook_loops():
    _, _, dense = _tiny(seed=3, D=4, K_=3, V=6, max_count=4)
    ids, cnt = _slots(dense)
    rng = np.random.default_rng(1)
    lam = rng.gamma(2.0, 1.0, (3, 6)) + 0.05
    alpha = np.array([0.3, 0.5, 0.2])
    gamma0 = rng.gamma(2.0, 1.0, (4, 3)) + 0.1  # a warm start, not the default one
    with jax.enable_x64(True):
        exp_elog_beta = jnp.exp(K.dirichlet_expected_log(jnp.asarray(lam)))
        out = K.variational_e_step(exp_elog_beta, jnp.asarray(alpha), jnp.asarray(ids), jnp.asarray(cnt),
                                   jnp.asarray(gamma0), num_iterations=7)
        got = [np.asarray(x) for x in out]
    ref = _numpy_vb_step(lam, alpha, dense, gamma0, 7)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-10)
    # the expected counts hold every token once
    np.testing.assert_allclose(got[1].sum(), dense.sum(), rtol=1e-12)


def test_dirichlet_kl_matches_monte_carlo_and_is_zero_at_the_prior():
    rng = np.random.default_rng(0)
    conc = np.array([[2.0, 0.7, 5.0], [0.3, 0.4, 0.9]])
    prior = np.array([0.5, 1.5, 1.0])
    with jax.enable_x64(True):
        kl = np.asarray(K.dirichlet_kl(jnp.asarray(conc), jnp.asarray(prior)))
        np.testing.assert_allclose(np.asarray(K.dirichlet_kl(jnp.asarray(prior), jnp.asarray(prior))), 0.0, atol=1e-12)
    for row, want in zip(conc, kl):
        x = np.clip(rng.dirichlet(row, 200_000), 1e-300, None)
        x /= x.sum(1, keepdims=True)
        mc = np.mean(stats.dirichlet.logpdf(x.T, row) - stats.dirichlet.logpdf(x.T, prior))
        assert want == pytest.approx(mc, abs=0.02), (want, mc)


def test_softmax_slot_log_probs_chunked_equals_dense():
    rng = np.random.default_rng(4)
    D, Kt, V = 7, 3, 23
    theta = rng.dirichlet(np.ones(Kt), D)
    W = rng.normal(0, 2.0, (Kt, V))
    b = rng.normal(0, 1.0, V)
    dense = rng.integers(0, 3, (D, V))
    dense[:, 5] += 1
    ids, cnt = _slots(dense)
    log_p = theta @ W + b
    log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
    want = np.where(ids >= 0, np.take_along_axis(log_p, np.maximum(ids, 0), 1), 0.0)

    def loss(th, w, bb, chunk):
        return (jnp.asarray(cnt) * K.softmax_slot_log_probs(th, w, bb, jnp.asarray(ids), chunk_size=chunk)).sum()

    with jax.enable_x64(True):
        args = (jnp.asarray(theta), jnp.asarray(W), jnp.asarray(b))
        grads = {}
        for chunk in (None, V, 5, 4, 1):  # one block; the whole vocabulary; uneven and even chunks
            got = np.asarray(K.softmax_slot_log_probs(*args, jnp.asarray(ids), chunk_size=chunk))
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
            grads[chunk] = jax.grad(loss, argnums=(0, 1, 2))(*args, chunk)
        for chunk in (5, 4, 1):
            for g, r in zip(grads[chunk], grads[None]):
                np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-10, atol=1e-12)
        # the budget picks the chunking: 7 documents x 23 words > 50 logits, so chunks of 7 columns
        np.testing.assert_allclose(np.asarray(K.softmax_slot_log_probs(*args, jnp.asarray(ids), max_elements=50)),
                                   want, rtol=1e-12, atol=1e-12)


def test_variational_lower_bound_matches_monte_carlo_of_the_uncollapsed_elbo():
    """The closed-form bound against a Monte Carlo estimate of E_q[log p(c, z, theta, beta) - log q]
    with q(z) = phi fixed at its optimum: the same number within the Monte Carlo error."""
    from scipy.special import digamma, gammaln, logsumexp

    _, _, dense = _tiny(seed=11, D=3, K_=2, V=5, max_count=3)
    ids, cnt = _slots(dense)
    rng = np.random.default_rng(2)
    lam = rng.gamma(3.0, 1.0, (2, 5)) + 0.2
    gamma = rng.gamma(3.0, 1.0, (3, 2)) + 0.2
    alpha, eta = np.array([0.4, 0.7]), 0.3
    with jax.enable_x64(True):
        got = float(K.variational_lower_bound(jnp.asarray(lam), jnp.asarray(gamma), jnp.asarray(alpha), eta,
                                              jnp.asarray(ids), jnp.asarray(cnt)))
    elog_b = digamma(lam) - digamma(lam.sum(1, keepdims=True))
    elog_t = digamma(gamma) - digamma(gamma.sum(1, keepdims=True))
    log_phi = elog_t[:, :, None] + elog_b[None]  # (D, K, V)
    log_phi = log_phi - logsumexp(log_phi, axis=1, keepdims=True)
    phi = np.exp(log_phi)
    coef = gammaln(dense.sum(1) + 1).sum() - gammaln(dense + 1).sum()
    n = 40_000
    beta = np.stack([rng.dirichlet(r, n) for r in lam], 1)  # (n, K, V)
    theta = np.stack([rng.dirichlet(r, n) for r in gamma], 1)  # (n, D, K)
    beta, theta = np.clip(beta, 1e-300, None), np.clip(theta, 1e-300, None)
    # sum_dw c_dw sum_k phi_dkw (log theta_dk + log beta_kw - log phi_dkw), per draw
    words = np.einsum("dv,dkv,ndk->n", dense, phi, np.log(theta)) + np.einsum("dv,dkv,nkv->n", dense, phi, np.log(beta))
    words = words - (dense[:, None, :] * phi * log_phi).sum()
    priors = sum(stats.dirichlet.logpdf(beta[:, k].T, np.full(5, eta)) - stats.dirichlet.logpdf(beta[:, k].T, lam[k])
                 for k in range(2))
    priors = priors + sum(stats.dirichlet.logpdf(theta[:, d].T, alpha) - stats.dirichlet.logpdf(theta[:, d].T, gamma[d])
                          for d in range(3))
    draws = coef + words + priors
    mc, se = draws.mean(), draws.std() / np.sqrt(n)
    assert abs(got - mc) < 4 * se + 1e-3, (got, mc, se)
