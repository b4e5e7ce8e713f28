"""Mixture kernels against brute force: enumeration of z, Bayes' rule, scipy densities."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp as np_logsumexp

from ppl_models.kernels import mixture as km


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_kernel_module_does_not_import_numpyro():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(km))
    names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any("numpyro" in m for m in names | mods)


def test_marginal_equals_enumeration_of_all_assignments():
    """log p(x_1..N) summed over all K^N joint assignments equals the log-sum-exp kernel."""
    with jax.enable_x64(True):
        rng = _rng(1)
        N, K = 5, 3
        x = rng.normal(size=N)
        loc = np.array([-1.0, 0.3, 2.0])
        scale = np.array([0.5, 1.0, 0.8])
        w = np.array([0.2, 0.5, 0.3])
        comp = np.array([[stats.norm.logpdf(xi, loc[k], scale[k]) for k in range(K)] for xi in x])
        brute = np_logsumexp([
            sum(np.log(w[z[i]]) + comp[i, z[i]] for i in range(N))
            for z in itertools.product(range(K), repeat=N)
        ])
        got = km.mixture_log_likelihood(km.normal_component_log_prob(x, loc, scale), jnp.log(w))
        np.testing.assert_allclose(got.total, brute, rtol=1e-12)
        np.testing.assert_allclose(got.pointwise, np_logsumexp(comp + np.log(w), axis=1), rtol=1e-12)


def test_marginal_float32_far_tails_is_finite():
    """Log space keeps points 40 sd away from every component finite in float32."""
    x = jnp.array([40.0, -45.0], jnp.float32)
    ll = km.mixture_log_likelihood(km.normal_component_log_prob(x, jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0])),
                                   jnp.log(jnp.array([0.5, 0.5])))
    assert np.all(np.isfinite(ll.pointwise))
    np.testing.assert_allclose(ll.pointwise[0], stats.norm.logpdf(40, 1, 1) + np.log(0.5)
                               + np.log1p(np.exp(stats.norm.logpdf(40, 0, 1) - stats.norm.logpdf(40, 1, 1))),
                               rtol=1e-5)


def test_zero_weight_component_gives_no_nan():
    ll = km.mixture_log_likelihood(jnp.array([[-1.0, -jnp.inf]]), jnp.log(jnp.array([1.0, 0.0])))
    assert np.isfinite(ll.total) and float(ll.total) == pytest.approx(-1.0)
    r = km.responsibilities(jnp.array([[-1.0, -jnp.inf]]), jnp.log(jnp.array([1.0, 0.0])))
    np.testing.assert_allclose(r.resp, [[1.0, 0.0]])


def test_responsibilities_bayes_rule_and_normalised():
    with jax.enable_x64(True):
        rng = _rng(2)
        X = rng.normal(size=(30, 2))
        loc = rng.normal(size=(3, 2))
        A = rng.normal(size=(3, 2, 2)) * 0.3
        cov = A @ np.swapaxes(A, 1, 2) + 0.5 * np.eye(2)
        L = np.linalg.cholesky(cov)
        w = np.array([0.1, 0.6, 0.3])
        comp = km.mvn_component_log_prob(X, loc, L)
        dens = np.stack([w[k] * stats.multivariate_normal.pdf(X, loc[k], cov[k]) for k in range(3)], axis=1)
        expected = dens / dens.sum(1, keepdims=True)
        r = km.responsibilities(comp, jnp.log(w))
        np.testing.assert_allclose(r.resp, expected, rtol=1e-10)
        np.testing.assert_allclose(r.resp.sum(-1), 1.0, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(km.hard_assignments(r.resp)), expected.argmax(1))


def test_component_densities_match_scipy():
    with jax.enable_x64(True):
        rng = _rng(3)
        X = rng.normal(size=(7, 3))
        loc = rng.normal(size=(2, 3))
        sd = rng.uniform(0.5, 2.0, size=(2, 3))
        diag = km.diag_normal_component_log_prob(X, loc, sd)
        ref = np.stack([stats.norm.logpdf(X, loc[k], sd[k]).sum(1) for k in range(2)], 1)
        np.testing.assert_allclose(diag, ref, rtol=1e-10)
        # full covariance with a diagonal Cholesky factor equals the diagonal case
        L = np.stack([np.diag(s) for s in sd])
        np.testing.assert_allclose(km.mvn_component_log_prob(X, loc, L), ref, rtol=1e-10)

        y = np.array([0, 1, 4, 17])
        rate = np.array([0.5, 3.0, 15.0])
        np.testing.assert_allclose(km.poisson_component_log_prob(y, rate),
                                   stats.poisson.logpmf(y[:, None], rate[None, :]), rtol=1e-10)

        Xc = rng.integers(0, 3, size=(6, 4))
        probs = rng.dirichlet(np.ones(3), size=(2, 4))  # (K, J, C)
        expected = np.stack([np.log(probs[k, np.arange(4), Xc]).sum(1) for k in range(2)], 1)
        np.testing.assert_allclose(km.categorical_component_log_prob(Xc, probs), expected, rtol=1e-10)

        Xb = rng.integers(0, 2, size=(6, 4))
        pb = rng.uniform(0.1, 0.9, size=(2, 4))
        expected = np.stack([stats.bernoulli.logpmf(Xb, pb[k]).sum(1) for k in range(2)], 1)
        np.testing.assert_allclose(km.bernoulli_component_log_prob(Xb, pb), expected, rtol=1e-10)
        # Bernoulli is the two-category case of the categorical kernel
        p2 = np.stack([1 - pb, pb], axis=-1)
        np.testing.assert_allclose(km.categorical_component_log_prob(Xb, p2), expected, rtol=1e-10)


def test_bernoulli_and_categorical_at_probability_zero_and_one():
    """xlogy semantics: 0 log 0 = 0, so an item with p in {0, 1} gives 0 or -inf, never NaN."""
    with jax.enable_x64(True):
        X = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1], [1, 1, 1]])
        pb = np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 0.0], [0.2, 0.7, 1.0]])  # (K, J), boundaries included
        expected = np.stack([stats.bernoulli.logpmf(X, pb[k]).sum(1) for k in range(3)], 1)
        assert np.isneginf(expected).any() and np.isfinite(expected).any()  # both kinds of boundary cell
        got = np.asarray(km.bernoulli_component_log_prob(X, pb))
        assert not np.isnan(got).any()
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
        np.testing.assert_allclose(got[np.isfinite(expected)], expected[np.isfinite(expected)], rtol=1e-12)
        # batched draws (S, K, J) broadcast the same way
        batched = np.asarray(km.bernoulli_component_log_prob(X, np.stack([pb, pb[::-1]])))
        np.testing.assert_array_equal(batched[0], got)
        np.testing.assert_array_equal(batched[1], got[:, ::-1])
        # the categorical kernel agrees, including the exact -inf
        p2 = np.stack([1 - pb, pb], axis=-1)
        cat = np.asarray(km.categorical_component_log_prob(X, p2))
        np.testing.assert_array_equal(np.isneginf(cat), np.isneginf(expected))
        np.testing.assert_allclose(cat[np.isfinite(expected)], expected[np.isfinite(expected)], rtol=1e-12)
        # the mixture over such components: finite where some component can explain the point
        ll = km.mixture_log_likelihood(jnp.asarray(got), jnp.log(jnp.array([0.3, 0.3, 0.4])))
        ref = np_logsumexp(expected + np.log([0.3, 0.3, 0.4]), axis=1)
        np.testing.assert_allclose(ll.pointwise, ref, rtol=1e-12)
        # gradients with respect to the probabilities stay finite where the value is finite
        mask = np.isfinite(expected)
        g = jax.grad(lambda p: jnp.sum(jnp.where(mask, km.bernoulli_component_log_prob(X, p), 0.0)))(jnp.asarray(pb))
        assert np.all(np.isfinite(np.asarray(g)))
        inner = jnp.array([[0.2, 0.5, 0.3]])
        g_inner = jax.grad(lambda p: jnp.sum(km.bernoulli_component_log_prob(X, p)))(inner)
        ref_g = (X / np.asarray(inner) - (1 - X) / (1 - np.asarray(inner))).sum(0)
        np.testing.assert_allclose(g_inner[0], ref_g, rtol=1e-12)


def test_batched_draws_broadcast():
    rng = _rng(4)
    x = rng.normal(size=11)
    loc = rng.normal(size=(5, 3))
    scale = rng.uniform(0.5, 1.5, size=(5, 3))
    logw = np.log(rng.dirichlet(np.ones(3), size=5))
    comp = km.normal_component_log_prob(x, loc, scale)
    assert comp.shape == (5, 11, 3)
    batched = km.mixture_log_likelihood(comp, logw).total
    single = [km.mixture_log_likelihood(km.normal_component_log_prob(x, loc[s], scale[s]), logw[s]).total
              for s in range(5)]
    np.testing.assert_allclose(batched, single, rtol=1e-5)


def test_predictive_density_is_mean_of_draw_densities_and_integrates_to_one():
    with jax.enable_x64(True):
        rng = _rng(5)
        S = 4
        loc = np.sort(rng.normal(size=(S, 2)) * 2, axis=1)
        scale = rng.uniform(0.5, 1.0, size=(S, 2))
        w = rng.dirichlet(np.ones(2), size=S)
        grid = np.linspace(-12, 12, 4001)
        pd_ = km.predictive_density(km.normal_component_log_prob(grid, loc, scale), np.log(w))
        direct = np.mean([(w[s] * stats.norm.pdf(grid[:, None], loc[s], scale[s])).sum(1) for s in range(S)], 0)
        np.testing.assert_allclose(pd_.density, direct, rtol=1e-10)
        assert np.trapezoid(np.asarray(pd_.density), grid) == pytest.approx(1.0, abs=1e-6)
        assert pd_.draws.shape == (S, grid.size)


def test_stick_breaking_weights():
    v = jnp.array([0.5, 0.5, 0.5])
    np.testing.assert_allclose(km.stick_breaking_weights(v), [0.5, 0.25, 0.125, 0.125])
    v = jax.random.uniform(jax.random.key(0), (6, 9))
    w = km.stick_breaking_weights(v)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
    assert np.all(w >= 0)


def test_match_to_reference_equals_hungarian():
    rng = _rng(6)
    cost = rng.normal(size=(20, 4, 4))
    perm, total = km.match_to_reference(jnp.asarray(cost))
    for s in range(20):
        rows, cols = linear_sum_assignment(cost[s])
        assert total[s] == pytest.approx(cost[s][rows, cols].sum(), rel=1e-5)
        # new label k takes old label perm[s, k]
        assert total[s] == pytest.approx(sum(cost[s, perm[s, k], k] for k in range(4)), rel=1e-5)


def test_relabel_by_sorting_and_apply_permutation():
    loc = jnp.array([[2.0, -1.0, 0.5], [0.0, 1.0, -3.0]])
    r = km.relabel_by_sorting(loc)
    np.testing.assert_allclose(km.apply_permutation(loc, r.permutation), [[-1.0, 0.5, 2.0], [-3.0, 0.0, 1.0]])
    # a (S, N, K) array permuted on its last axis
    resp = jnp.arange(2 * 2 * 3, dtype=jnp.float32).reshape(2, 2, 3)
    out = km.apply_permutation(resp, r.permutation, axis=-1)
    np.testing.assert_allclose(out[0, 1], resp[0, 1][np.asarray(r.permutation[0])])


def test_stephens_undoes_random_label_switching():
    """Scramble the labels of noisy copies of one responsibility matrix; Stephens recovers them."""
    rng = _rng(7)
    S, N, K = 60, 40, 3
    truth = rng.dirichlet(np.ones(K) * 0.3, size=N)
    draws = np.stack([rng.dirichlet(truth[i] * 50 + 0.05) for _ in range(S) for i in range(N)]).reshape(S, N, K)
    perms = np.stack([rng.permutation(K) for _ in range(S)])
    scrambled = np.take_along_axis(draws, perms[:, None, :], axis=2)
    out = km.stephens_relabel(jnp.log(jnp.asarray(scrambled)), num_iters=10)
    fixed = np.asarray(km.apply_permutation(jnp.asarray(scrambled), out.permutation, axis=2))
    # all draws end up with one common labelling: fixed[s] == draws[s][:, sigma] for one sigma
    sigma = np.asarray(out.permutation[0])
    inv0 = perms[0][sigma]
    for s in range(S):
        np.testing.assert_allclose(fixed[s], draws[s][:, inv0], rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(out.cost) >= -1e-4)
    np.testing.assert_allclose(out.reference.sum(-1), 1.0, rtol=1e-5)


def test_kmeans_separated_clusters():
    rng = _rng(8)
    centers = np.array([[-5.0, 0.0], [0.0, 5.0], [5.0, 0.0]])
    X = np.concatenate([c + 0.3 * rng.normal(size=(50, 2)) for c in centers])
    res = km.kmeans(jax.random.key(0), jnp.asarray(X), 3)
    np.testing.assert_allclose(res.centers, centers, atol=0.15)
    assert np.all(np.asarray(res.labels) == np.repeat([0, 1, 2], 50))


def test_all_permutations_limits():
    assert km.all_permutations(3).shape == (6, 3)
    with pytest.raises(ValueError):
        km.all_permutations(9)
    with pytest.raises(ValueError):
        km.all_permutations(0)
