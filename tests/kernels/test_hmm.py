"""HMM kernels against brute-force enumeration, hmmlearn, each other, and in float32 at T=1e5."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp as np_logsumexp

from ppl_models.errors import DataError
from ppl_models.kernels import hmm as H

VARIANTS = [("sequential", "log"), ("sequential", "normalized"),
            ("associative", "log"), ("associative", "normalized")]
METHODS = ["sequential", "associative"]

# Jitted once per shape: run op by op, the associative scan compiles each of its many small
# operations separately and the suite takes minutes.
fwd = jax.jit(H.forward_log_prob, static_argnames=("method", "scaling"))
fb = jax.jit(H.forward_backward, static_argnames=("method", "scaling"))
filt = jax.jit(H.forward_filter, static_argnames=("method", "scaling"))
vit = jax.jit(H.viterbi, static_argnames=("method",))
ffbs = jax.jit(H.ffbs, static_argnames=("method", "scaling", "num_samples"))


def random_hmm(rng, K, T, spread=2.0):
    pi = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K)
    ll = rng.normal(size=(T, K)) * spread
    return np.log(pi), np.log(A), ll


def brute_force(log_pi, log_A, ll):
    """log p(x), marginals p(z_t | x) and the best joint log-prob, over all K^T paths."""
    T, K = ll.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    lp = log_pi[paths[:, 0]] + ll[0, paths[:, 0]]
    for t in range(1, T):
        lp = lp + log_A[paths[:, t - 1], paths[:, t]] + ll[t, paths[:, t]]
    total = np_logsumexp(lp)
    w = np.exp(lp - total)
    marg = np.zeros((T, K))
    for t in range(T):
        np.add.at(marg[t], paths[:, t], w)
    return total, marg, lp.max(), paths, lp


def path_log_prob(log_pi, log_A, ll, path):
    path = np.asarray(path)
    v = log_pi[path[0]] + ll[0, path[0]]
    for t in range(1, len(path)):
        v += log_A[path[t - 1], path[t]] + ll[t, path[t]]
    return v


T_MAX = 5


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), K=st.integers(1, 3), T=st.integers(1, T_MAX))
def test_brute_force_enumeration(seed, K, T):
    rng = np.random.default_rng(seed)
    log_pi, log_A, ll = random_hmm(rng, K, T)
    total, marg, best, _, _ = brute_force(log_pi, log_A, ll)
    # Padded to T_MAX with junk and cut by `lengths`: one compile per K, and padding is tested.
    padded = np.concatenate([ll, rng.normal(size=(T_MAX - T, K)) * 50])
    with jax.enable_x64(True):
        for method, scaling in VARIANTS:
            lp = fwd(log_pi, log_A, padded, lengths=T, method=method, scaling=scaling)
            np.testing.assert_allclose(lp, total, rtol=1e-10, atol=1e-10)
            sm = fb(log_pi, log_A, padded, lengths=T, method=method, scaling=scaling)
            np.testing.assert_allclose(sm.log_prob, total, rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(sm.smoothed_probs[:T], marg, atol=1e-10)
            # the last filtered distribution is the last smoothed one
            np.testing.assert_allclose(sm.filtered_probs[T - 1], marg[-1], atol=1e-10)
        for method in METHODS:
            v = vit(log_pi, log_A, padded, lengths=T, method=method)
            np.testing.assert_allclose(v.log_prob, best, rtol=1e-10, atol=1e-10)
            # ties aside, the returned path must attain the maximum
            path = np.asarray(v.path)
            assert np.all(path[T:] == -1)
            np.testing.assert_allclose(path_log_prob(log_pi, log_A, ll, path[:T]), best, rtol=1e-10, atol=1e-10)


def test_filtered_matches_brute_force_prefix():
    rng = np.random.default_rng(3)
    log_pi, log_A, ll = random_hmm(rng, 3, 5)
    with jax.enable_x64(True):
        for method, scaling in VARIANTS:
            f = filt(log_pi, log_A, ll, method=method, scaling=scaling)
            previous = 0.0
            for t in range(1, 6):
                # filtering at t is smoothing on the prefix x_{0:t}
                total, marg, _, _, _ = brute_force(log_pi, log_A, ll[:t])
                np.testing.assert_allclose(f.filtered_probs[t - 1], marg[-1], atol=1e-10)
                # the one-step-ahead terms are differences of prefix log-likelihoods
                np.testing.assert_allclose(f.step_log_probs[t - 1], total - previous, atol=1e-10)
                previous = total
            np.testing.assert_allclose(f.log_prob, previous, atol=1e-10)


def test_missing_observations_are_marginalised():
    rng = np.random.default_rng(1)
    log_pi, log_A, ll = random_hmm(rng, 3, 5)
    mask = np.array([True, False, True, False, True])
    ll_nan = ll.copy()
    ll_nan[~mask] = np.nan  # a NaN at a missing step must not leak
    ref_ll = np.where(mask[:, None], ll, 0.0)
    total, marg, best, _, _ = brute_force(log_pi, log_A, ref_ll)
    with jax.enable_x64(True):
        for method, scaling in VARIANTS:
            sm = fb(log_pi, log_A, ll_nan, mask=mask, method=method, scaling=scaling)
            np.testing.assert_allclose(sm.log_prob, total, rtol=1e-10)
            np.testing.assert_allclose(sm.smoothed_probs, marg, atol=1e-10)
        for method in METHODS:
            np.testing.assert_allclose(vit(log_pi, log_A, ll_nan, mask=mask, method=method).log_prob,
                                       best, rtol=1e-10)
            g = jax.grad(lambda a: fwd(log_pi, a, ll_nan, mask=mask, method=method))(log_A)
            assert np.all(np.isfinite(g))


def test_batch_with_lengths_equals_separate_sequences():
    rng = np.random.default_rng(2)
    K, T = 3, 7
    log_pi, log_A, _ = random_hmm(rng, K, 1)
    lengths = np.array([7, 3, 1, 5])
    lls = rng.normal(size=(4, T, K)) * 2
    with jax.enable_x64(True):
        for method, scaling in VARIANTS:
            batch = fb(log_pi, log_A, lls, lengths=lengths, method=method, scaling=scaling)
            lp_batch = fwd(log_pi, log_A, lls, lengths=lengths, method=method, scaling=scaling)
            decoded = vit(log_pi, log_A, lls, lengths=lengths, method=method)
            for b, L in enumerate(lengths):
                total, marg, best, _, _ = brute_force(log_pi, log_A, lls[b, :L])
                np.testing.assert_allclose(batch.log_prob[b], total, rtol=1e-10)
                np.testing.assert_allclose(lp_batch[b], total, rtol=1e-10)
                np.testing.assert_allclose(batch.smoothed_probs[b, :L], marg, atol=1e-10)
                assert np.all(np.asarray(batch.smoothed_probs[b, L:]) == 0)
                np.testing.assert_allclose(decoded.log_prob[b], best, rtol=1e-10)
                assert np.all(np.asarray(decoded.path[b, L:]) == -1)
                assert np.all(np.asarray(decoded.path[b, :L]) >= 0)


def test_ffbs_draws_follow_the_posterior():
    rng = np.random.default_rng(4)
    log_pi, log_A, ll = random_hmm(rng, 3, 4)
    total, marg, _, paths, lp = brute_force(log_pi, log_A, ll)
    S = 20000
    with jax.enable_x64(True):
        for method in METHODS:
            draw = ffbs(jax.random.key(7), log_pi, log_A, ll, num_samples=S, method=method)
            np.testing.assert_allclose(draw.log_prob, total, rtol=1e-10)
            d = np.asarray(draw.paths)
            assert d.shape == (S, 4)
            # joint path frequencies against exact path probabilities (a chi-square-like bound:
            # every path within 5 standard errors)
            codes = (d * 3 ** np.arange(3, -1, -1)).sum(1)
            freq = np.bincount(codes, minlength=81) / S
            p = np.exp(lp - total)
            assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / S) + 1e-3)


def test_ffbs_padding_and_batch():
    rng = np.random.default_rng(5)
    log_pi, log_A, _ = random_hmm(rng, 2, 1)
    lls = rng.normal(size=(3, 6, 2))
    lengths = np.array([6, 2, 4])
    for method in METHODS:
        d = ffbs(jax.random.key(0), log_pi, log_A, lls, lengths=lengths, num_samples=5, method=method)
        assert d.paths.shape == (3, 5, 6)
        for b, L in enumerate(lengths):
            assert np.all(np.asarray(d.paths[b, :, L:]) == -1)
            assert np.all(np.asarray(d.paths[b, :, :L]) >= 0)


@pytest.mark.parametrize("implementation", ["log", "scaling"])
def test_equals_hmmlearn(implementation):
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    pi = np.array([0.6, 0.3, 0.1])
    A = np.array([[0.8, 0.15, 0.05], [0.1, 0.7, 0.2], [0.25, 0.25, 0.5]])
    B = np.array([[0.5, 0.3, 0.1, 0.1], [0.1, 0.2, 0.6, 0.1], [0.25, 0.05, 0.1, 0.6]])
    model = hmmlearn.CategoricalHMM(n_components=3, implementation=implementation, init_params="", params="")
    model.startprob_, model.transmat_, model.emissionprob_ = pi, A, B
    rng = np.random.default_rng(0)
    lengths = np.array([60, 25, 40])
    X = rng.integers(0, 4, size=(lengths.sum(), 1))
    ref_score = model.score(X, lengths)
    ref_post = model.predict_proba(X, lengths)
    # Viterbi per sequence (hmmlearn's decode with lengths sums the log-probs)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ref_vit = [model.decode(X[s:s + L], algorithm="viterbi") for s, L in zip(starts, lengths)]

    T = lengths.max()
    padded = np.zeros((3, T), int)
    for b, (s, L) in enumerate(zip(starts, lengths)):
        padded[b, :L] = X[s:s + L, 0]
    with jax.enable_x64(True):
        ll = jnp.log(B).T[padded]  # (B, T, K)
        for method, scaling in VARIANTS:
            sm = fb(np.log(pi), np.log(A), ll, lengths=lengths, method=method, scaling=scaling)
            np.testing.assert_allclose(float(sm.log_prob.sum()), ref_score, rtol=1e-6)
            ours = np.concatenate([np.asarray(sm.smoothed_probs[b, :L]) for b, L in enumerate(lengths)])
            np.testing.assert_allclose(ours, ref_post, rtol=1e-6, atol=1e-12)
        for method in METHODS:
            v = vit(np.log(pi), np.log(A), ll, lengths=lengths, method=method)
            for b, L in enumerate(lengths):
                np.testing.assert_allclose(float(v.log_prob[b]), ref_vit[b][0], rtol=1e-6)
                np.testing.assert_array_equal(np.asarray(v.path[b, :L]), ref_vit[b][1])


def test_sequential_and_associative_agree_float32_and_64():
    rng = np.random.default_rng(6)
    log_pi, log_A, ll = random_hmm(rng, 4, 128, spread=3.0)
    with jax.enable_x64(True):
        ref = fb(log_pi, log_A, ll)
        ref_v = vit(log_pi, log_A, ll)
        for method, scaling in VARIANTS[1:]:
            r = fb(log_pi, log_A, ll, method=method, scaling=scaling)
            np.testing.assert_allclose(r.log_prob, ref.log_prob, rtol=1e-12)
            np.testing.assert_allclose(r.smoothed_probs, ref.smoothed_probs, atol=1e-10)
            np.testing.assert_allclose(r.filtered_probs, ref.filtered_probs, atol=1e-10)
        v = vit(log_pi, log_A, ll, method="associative")
        np.testing.assert_array_equal(v.path, ref_v.path)
        np.testing.assert_allclose(v.log_prob, ref_v.log_prob, rtol=1e-12)
    f32 = [np.float32(a) for a in (log_pi, log_A, ll)]
    for method, scaling in VARIANTS:
        r = fb(*f32, method=method, scaling=scaling)
        assert r.log_prob.dtype == jnp.float32
        np.testing.assert_allclose(r.log_prob, ref.log_prob, rtol=1e-5)
        np.testing.assert_allclose(r.smoothed_probs, ref.smoothed_probs, atol=1e-4)


@pytest.fixture(scope="module")
def long_float32():
    """T = 100,000 in float32 with a total log-likelihood near -5e5, and its float64 answer."""
    rng = np.random.default_rng(8)
    K, T = 3, 100_000
    log_pi, log_A, _ = random_hmm(rng, K, 1)
    ll = rng.normal(size=(T, K)).astype(np.float32) * 3 - 5
    with jax.enable_x64(True):
        ref = float(fwd(log_pi, log_A, ll.astype(np.float64)))
    return (np.float32(log_pi), np.float32(log_A), ll), ref


def test_float32_long_sequence_forward(long_float32):
    args, ref = long_float32
    for method, scaling in VARIANTS:
        lp = float(fwd(*args, method=method, scaling=scaling))
        assert np.isfinite(lp)
        assert abs(lp - ref) / abs(ref) < 1e-5, (method, scaling, lp, ref)
    sm = fb(*args)
    assert np.all(np.isfinite(sm.smoothed_probs))
    np.testing.assert_allclose(np.asarray(sm.smoothed_probs).sum(1), 1.0, atol=1e-4)
    v = vit(*args)
    assert np.isfinite(float(v.log_prob))
    assert np.all((np.asarray(v.path) >= 0) & (np.asarray(v.path) < 3))
    g = jax.jit(jax.grad(lambda a: H.forward_log_prob(args[0], a, args[2])))(args[1])
    assert np.all(np.isfinite(g))


@pytest.mark.slow
def test_float32_long_sequence_associative_decoding(long_float32):
    # Compiling the associative smoother and Viterbi at T = 1e5 takes ~30 s on a CPU.
    args, _ = long_float32
    ref_sm, ref_v = fb(*args), vit(*args)
    sm = fb(*args, method="associative")
    assert np.all(np.isfinite(sm.smoothed_probs))
    np.testing.assert_allclose(sm.smoothed_probs, ref_sm.smoothed_probs, atol=1e-3)
    v = vit(*args, method="associative")
    np.testing.assert_allclose(float(v.log_prob), float(ref_v.log_prob), rtol=1e-5)
    # float32 ties can flip a few steps; the decoded paths must agree almost everywhere
    assert np.mean(np.asarray(v.path) == np.asarray(ref_v.path)) > 0.999


def test_gradients():
    rng = np.random.default_rng(9)
    log_pi, log_A, ll = random_hmm(rng, 3, 12)
    with jax.enable_x64(True):
        for method, scaling in VARIANTS:
            def f(p, a, e):
                return fwd(p, a, e, method=method, scaling=scaling)

            gp, ga, ge = jax.grad(f, argnums=(0, 1, 2))(log_pi, log_A, ll)
            # d log p(x) / d log p(x_t | z_t = k) is the posterior marginal
            marg = fb(log_pi, log_A, ll).smoothed_probs
            np.testing.assert_allclose(ge, marg, atol=1e-10)
            np.testing.assert_allclose(gp, marg[0], atol=1e-10)
            # central finite differences on the transition logits
            eps = 1e-6
            for i, j in [(0, 0), (1, 2), (2, 1)]:
                d = np.zeros_like(log_A)
                d[i, j] = eps
                fd = (f(log_pi, log_A + d, ll) - f(log_pi, log_A - d, ll)) / (2 * eps)
                np.testing.assert_allclose(ga[i, j], fd, rtol=1e-6, atol=1e-8)


def test_forward_backward_gradient_rule_equals_reverse_mode_through_the_scan():
    """The sequential log-likelihood is differentiated by the forward-backward identities (a
    custom JVP); it must equal plain autodiff of the recursion, with padding, in a batch, and
    to second order (jax.hessian, as a Laplace approximation would use)."""
    from ppl_models.kernels.hmm import _seq_forward

    rng = np.random.default_rng(4)
    T, K = 30, 4
    lengths = np.array([30, 11, 1])
    log_pi, log_A, _ = random_hmm(rng, K, T)
    ll = rng.normal(size=(3, T, K)) * 2
    valid = np.arange(T)[None, :] < lengths[:, None]
    with jax.enable_x64(True):
        for scaling in ("log", "normalized"):
            def f(p, a, e):
                return fwd(p, a, e, lengths=lengths, scaling=scaling).sum()

            def plain(p, a, e):
                return jax.vmap(lambda e_b, v_b: _seq_forward(p, a, e_b, v_b, scaling, store=False)[1])(e, valid).sum()

            for g1, g2 in zip(jax.grad(f, argnums=(0, 1, 2))(log_pi, log_A, ll),
                              jax.grad(plain, argnums=(0, 1, 2))(log_pi, log_A, ll)):
                np.testing.assert_allclose(g1, g2, rtol=1e-8, atol=1e-11)
            np.testing.assert_allclose(jax.hessian(f, argnums=1)(log_pi, log_A, ll),
                                       jax.hessian(plain, argnums=1)(log_pi, log_A, ll), rtol=1e-7, atol=1e-10)


def test_sample_states_transition_frequencies():
    pi = np.array([1.0, 0.0])
    A = np.array([[0.9, 0.1], [0.3, 0.7]])
    z = np.asarray(H.sample_states(jax.random.key(0), np.log(pi), np.log(A), 20000))
    assert z[0] == 0 and z.shape == (20000,)
    n = np.zeros((2, 2))
    np.add.at(n, (z[:-1], z[1:]), 1)
    freq = n / n.sum(1, keepdims=True)
    se = np.sqrt(A * (1 - A) / n.sum(1, keepdims=True))
    assert np.all(np.abs(freq - A) < 5 * se)


PUBLIC_CALLS = {
    "forward_log_prob": lambda k, p, a, e: H.forward_log_prob(p, a, e, scaling="normalized"),
    "forward_filter": lambda k, p, a, e: H.forward_filter(p, a, e),
    "forward_backward": lambda k, p, a, e: H.forward_backward(p, a, e, method="associative"),
    "viterbi": lambda k, p, a, e: H.viterbi(p, a, e, lengths=np.array([6, 3])),
    "ffbs": lambda k, p, a, e: H.ffbs(k, p, a, e, num_samples=3),
    "sample_states": lambda k, p, a, e: H.sample_states(k, p, a, 6),
    "lengths_to_mask": lambda k, p, a, e: H.lengths_to_mask(np.array([6, 3]), 6),
}


@pytest.mark.parametrize("name", sorted(PUBLIC_CALLS))
def test_public_entry_points_are_jit_compiled(name):
    """A direct call of every public kernel stages out as one compiled (``jit``) computation,
    gives what the same call inside an outer ``jit`` gives, and composes with vmap."""
    rng = np.random.default_rng(11)
    log_pi, log_A, _ = random_hmm(rng, 3, 1)
    ll = rng.normal(size=(2, 6, 3))
    key = jax.random.key(3)
    call = PUBLIC_CALLS[name]
    jaxpr = jax.make_jaxpr(call)(key, log_pi, log_A, ll)
    assert [e.primitive.name for e in jaxpr.eqns] == ["jit"], jaxpr
    direct = call(key, log_pi, log_A, ll)
    outer = jax.jit(call)(key, log_pi, log_A, ll)
    for a, b in zip(jax.tree.leaves(direct), jax.tree.leaves(outer)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    # composable under vmap (a batch axis on the emission log-likelihoods)
    if name in ("forward_log_prob", "forward_filter", "forward_backward"):
        mapped = jax.vmap(lambda e: call(key, log_pi, log_A, e))(ll)
        for a, b in zip(jax.tree.leaves(mapped), jax.tree.leaves(direct)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_direct_calls_compile_once_per_shape_and_differentiate():
    rng = np.random.default_rng(12)
    log_pi, log_A, ll = random_hmm(rng, 3, 9)
    with jax.enable_x64(True):
        before = H._forward_log_prob._cache_size()
        a = H.forward_log_prob(log_pi, log_A, ll)
        b = H.forward_log_prob(log_pi, log_A, ll + 1.0)  # new values, same shapes: no retrace
        assert H._forward_log_prob._cache_size() == before + 1
        np.testing.assert_allclose(b, a + 9.0, rtol=1e-12)
        total, _, _, _, _ = brute_force(log_pi, log_A, ll)
        np.testing.assert_allclose(a, total, rtol=1e-12)
        g = jax.grad(lambda e: H.forward_log_prob(log_pi, log_A, e))(ll)
        np.testing.assert_allclose(g, fb(log_pi, log_A, ll).smoothed_probs, atol=1e-10)


def test_bad_arguments_name_the_argument():
    log_pi, log_A, ll = np.log(np.ones(2) / 2), np.log(np.ones((2, 2)) / 2), np.zeros((4, 2))
    # ragged Python lists, here and under every public function
    ragged = [[[0.0, 0.0]] * 3, [[0.0, 0.0]] * 2]
    for f in (H.forward_log_prob, H.forward_filter, H.forward_backward, H.viterbi):
        with pytest.raises(DataError, match="log_likelihoods.*ragged"):
            f(log_pi, log_A, ragged)
    with pytest.raises(DataError, match="log_likelihoods.*ragged"):
        H.ffbs(jax.random.key(0), log_pi, log_A, ragged)
    with pytest.raises(DataError, match="mask.*ragged"):
        H.forward_log_prob(log_pi, log_A, np.zeros((2, 3, 2)), mask=[[True] * 3, [True] * 2])
    with pytest.raises(DataError, match="log_transition.*ragged"):
        H.viterbi(log_pi, [[0.0, 0.0], [0.0]], ll)
    # the same data padded, with lengths, is accepted
    padded = H.forward_log_prob(log_pi, log_A, [[[0.0, 0.0]] * 3, [[0.0, 0.0]] * 2 + [[9.0, 9.0]]],
                                lengths=[3, 2])
    np.testing.assert_allclose(padded, [0.0, 0.0], atol=1e-6)
    # rows of exp(log_transition) and exp(log_initial) must sum to one (checked on concrete values)
    bad_A = np.log(np.array([[0.5, 0.5], [0.7, 0.7]]))
    for call in (lambda: H.forward_log_prob(log_pi, bad_A, ll), lambda: H.viterbi(log_pi, bad_A, ll),
                 lambda: H.forward_backward(log_pi, bad_A, ll), lambda: H.forward_filter(log_pi, bad_A, ll),
                 lambda: H.ffbs(jax.random.key(0), log_pi, bad_A, ll),
                 lambda: H.sample_states(jax.random.key(0), log_pi, bad_A, 5)):
        with pytest.raises(DataError, match=r"log_transition.*row 1 exp\(\) summing to 1.4"):
            call()
    with pytest.raises(DataError, match="log_transition"):
        H.forward_log_prob(log_pi, np.array([[0.0, np.nan], [0.0, -np.inf]]), ll)
    with pytest.raises(DataError, match="log_initial.*summing to 2"):
        H.forward_log_prob(np.zeros(2), log_A, ll)
    # structural zeros (-inf) are fine
    with np.errstate(divide="ignore"):
        H.forward_log_prob(np.log([1.0, 0.0]), np.log(np.array([[0.5, 0.5], [0.0, 1.0]])), ll)
    # traced values cannot be checked: under jit the caller is responsible (documented)
    assert np.isfinite(fwd(log_pi, bad_A, ll))
    with pytest.raises(DataError, match="num_samples"):
        H.ffbs(jax.random.key(0), log_pi, log_A, ll, num_samples=0)
    with pytest.raises(DataError, match="num_timesteps"):
        H.sample_states(jax.random.key(0), log_pi, log_A, 0)
    with pytest.raises(DataError, match="lengths.*integers"):
        H.forward_log_prob(log_pi, log_A, np.zeros((2, 4, 2)), lengths=np.array([4.0, 2.5]))
    with pytest.raises(DataError, match="log_transition"):
        fwd(log_pi, np.zeros((2, 3)), ll)
    with pytest.raises(DataError, match="log_likelihoods"):
        fwd(log_pi, log_A, np.zeros((4, 3)))
    with pytest.raises(DataError, match="method"):
        vit(log_pi, log_A, ll, method="parallel")
    with pytest.raises(DataError, match="scaling"):
        fwd(log_pi, log_A, ll, scaling="scaled")
    with pytest.raises(DataError, match="lengths"):
        fwd(log_pi, log_A, np.zeros((3, 4, 2)), lengths=np.array([4, 4]))
    with pytest.raises(DataError, match="mask"):
        fwd(log_pi, log_A, ll, mask=np.ones(5, bool))
