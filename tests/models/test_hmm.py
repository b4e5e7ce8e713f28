"""HMM programs: the marginal distribution against enumeration, data checks, fits that recover
known parameters, the post-fit helpers, and SBC for a 2-state model."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from scipy import stats
from scipy.special import logsumexp

import ppl_models as pm
from ppl_models.errors import DataError, ModelError
from ppl_models.models import hmm

PI = np.array([0.6, 0.4])
A = np.array([[0.9, 0.1], [0.2, 0.8]])


def enumerate_log_prob(pi, A, emission_logpdf, T):
    """log p(x) by summing over all K^T paths; ``emission_logpdf(t, k)`` is log p(x_t | k)."""
    K = len(pi)
    total = []
    for z in itertools.product(range(K), repeat=T):
        v = np.log(pi[z[0]]) + emission_logpdf(0, z[0])
        for t in range(1, T):
            v += np.log(A[z[t - 1], z[t]]) + emission_logpdf(t, z[t])
        total.append(v)
    return logsumexp(total)


def test_marginal_log_prob_equals_enumeration_for_every_emission():
    with jax.enable_x64(True):
        x = np.array([3, 0, 7, 2])
        rates = np.array([1.5, 6.0])
        d = hmm.MarginalHMM(PI, A, dist.Poisson(rates), 4)
        ref = enumerate_log_prob(PI, A, lambda t, k: stats.poisson.logpmf(x[t], rates[k]), 4)
        np.testing.assert_allclose(d.log_prob(x), ref, rtol=1e-10)

        B = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
        c = np.array([0, 2, 2, 1])
        d = hmm.MarginalHMM(PI, A, dist.Categorical(probs=B), 4)
        ref = enumerate_log_prob(PI, A, lambda t, k: np.log(B[k, c[t]]), 4)
        np.testing.assert_allclose(d.log_prob(c), ref, rtol=1e-10)

        y = np.array([-0.3, 2.2, 1.9, -1.0])
        mu, sd = np.array([0.0, 2.0]), np.array([1.0, 0.5])
        d = hmm.MarginalHMM(PI, A, dist.Normal(mu, sd), 4)
        ref = enumerate_log_prob(PI, A, lambda t, k: stats.norm.logpdf(y[t], mu[k], sd[k]), 4)
        np.testing.assert_allclose(d.log_prob(y), ref, rtol=1e-10)

        Y = np.array([[0.1, 1.0], [2.0, -1.0], [1.5, -0.5], [0.0, 0.8]])
        M = np.array([[0.0, 1.0], [2.0, -1.0]])
        S = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.4, -0.1], [-0.1, 0.3]]])
        d = hmm.MarginalHMM(PI, A, dist.MultivariateNormal(M, covariance_matrix=S), 4)
        ref = enumerate_log_prob(PI, A, lambda t, k: stats.multivariate_normal.logpdf(Y[t], M[k], S[k]), 4)
        np.testing.assert_allclose(d.log_prob(Y), ref, rtol=1e-10)
        assert d.event_shape == (4, 2) and d.batch_shape == ()


def test_nan_is_missing_and_batches_match_single_sequences():
    with jax.enable_x64(True):
        rates = np.array([1.5, 6.0])
        x = np.array([3.0, np.nan, 7.0, 2.0])
        d = hmm.MarginalHMM(PI, A, dist.Poisson(rates), 4)
        ref = enumerate_log_prob(PI, A, lambda t, k: 0.0 if t == 1 else stats.poisson.logpmf(x[t], rates[k]), 4)
        np.testing.assert_allclose(d.log_prob(x), ref, rtol=1e-10)
        g = jax.grad(lambda r: hmm.MarginalHMM(PI, A, dist.Poisson(r), 4).log_prob(x))(rates)
        assert np.all(np.isfinite(g))
        # a batch of padded sequences: one log-density per sequence
        seqs = [np.array([3, 0, 7, 2, 5]), np.array([1, 9]), np.array([4, 4, 0])]
        padded, lengths = hmm.pad_sequences(seqs)
        db = hmm.MarginalHMM(PI, A, dist.Poisson(rates), 5, lengths=lengths)
        lp = db.log_prob(padded)
        assert db.batch_shape == (3,) and lp.shape == (3,)
        for b, s in enumerate(seqs):
            np.testing.assert_allclose(lp[b], hmm.MarginalHMM(PI, A, dist.Poisson(rates), len(s)).log_prob(s),
                                       rtol=1e-10)


def test_programs_accept_hmmlearn_concatenated_layout():
    seqs = [np.array([3, 0, 7, 2, 5]), np.array([1, 9]), np.array([4, 4, 0])]
    padded, lengths = hmm.pad_sequences(seqs)
    values = {"initial_probs": PI, "transition_matrix": A, "log_rates": np.log([1.5, 6.0])}
    concatenated = np.concatenate(seqs)
    lp_cat = pm.log_joint(hmm.poisson_hmm, {"obs": concatenated, "lengths": lengths}, values)
    lp_pad = pm.log_joint(hmm.poisson_hmm, {"obs": padded, "lengths": lengths}, values)
    np.testing.assert_allclose(lp_cat, lp_pad, rtol=1e-6)


def test_sampling_shapes_and_statistics():
    rates = jnp.array([2.0, 20.0])
    d = hmm.MarginalHMM(PI, A, dist.Poisson(rates), 50)
    x, z = d.sample_with_states(jax.random.key(0), (400,))
    assert x.shape == (400, 50) and z.shape == (400, 50)
    x, z = np.asarray(x), np.asarray(z)
    # the emissions follow the states
    assert abs(x[z == 0].mean() - 2.0) < 0.2 and abs(x[z == 1].mean() - 20.0) < 0.5
    # initial distribution and transition frequencies
    assert abs((z[:, 0] == 0).mean() - PI[0]) < 4 * np.sqrt(PI[0] * PI[1] / 400)
    n = np.zeros((2, 2))
    np.add.at(n, (z[:, :-1].ravel(), z[:, 1:].ravel()), 1)
    np.testing.assert_allclose(n / n.sum(1, keepdims=True), A, atol=0.02)
    # padded batches mark padded states with -1
    dp = hmm.MarginalHMM(PI, A, dist.Poisson(rates), 6, lengths=np.array([6, 2]))
    xs, zs = dp.sample_with_states(jax.random.key(1))
    assert xs.shape == (2, 6) and np.all(np.asarray(zs)[1, 2:] == -1) and np.all(np.asarray(zs)[1, :2] >= 0)


def test_ordered_iid_prior_is_normalised_and_sorted():
    d = hmm.OrderedIID(dist.Normal(0.0, 1.0), 2)
    s = np.asarray(d.sample(jax.random.key(0), (1000,)))
    assert np.all(np.diff(s, axis=-1) > 0)
    # integrate the density over the ordered half-plane on a grid: it must be a density
    g = np.linspace(-6, 6, 601)
    X, Y = np.meshgrid(g, g, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel()], -1)
    dens = np.exp(np.asarray(d.log_prob(pts))) * (pts[:, 0] < pts[:, 1])
    assert abs(dens.sum() * (g[1] - g[0]) ** 2 - 1) < 0.02


def test_categorical_prior_rows_are_dirichlet():
    # the factorised, ordered parametrisation keeps each row's Dirichlet(1) marginally
    prior = pm.sample_prior(hmm.categorical_hmm, {"obs": None, "num_states": 3, "num_categories": 4,
                                                  "num_timesteps": 5}, num_samples=3000, seed=0)
    probs = np.asarray(prior["emission_probs"])  # (S, K, C)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.diff(probs[..., 0], axis=-1) > 0)  # ordered by category 0
    pooled = probs.reshape(-1, 4)
    np.testing.assert_allclose(pooled.mean(0), 0.25, atol=0.01)
    # Dirichlet(1, 1, 1, 1) marginal variance (a0 - a) a / (a0^2 (a0 + 1)) = 3 / 80
    np.testing.assert_allclose(pooled.var(0), 3 / 80, atol=0.004)


@pytest.mark.parametrize("case", ["transition", "initial", "negative", "noninteger", "category",
                                  "ragged", "lengths", "shape", "num_timesteps"])
def test_bad_input_names_the_argument(case):
    if case == "transition":
        with pytest.raises(DataError, match="transition_matrix"):
            hmm.MarginalHMM(PI, np.array([[0.9, 0.2], [0.2, 0.8]]), dist.Poisson(jnp.ones(2)), 3)
    elif case == "initial":
        with pytest.raises(DataError, match="initial_probs"):
            hmm.sample_hmm(jax.random.key(0), np.array([0.7, 0.7]), A, dist.Poisson(jnp.ones(2)), 3)
    elif case == "negative":
        with pytest.raises(DataError, match="obs.*non-negative"):
            pm.fit(hmm.poisson_hmm, {"obs": np.array([1, -2, 3])}, num_chains=1, num_warmup=1, num_samples=1)
    elif case == "noninteger":
        with pytest.raises(DataError, match="obs.*integer"):
            handlers.seed(hmm.poisson_hmm, 0)(obs=np.array([1.0, 2.5, 3.0]))
    elif case == "category":
        with pytest.raises(DataError, match=r"obs.*categories in 0\.\.2"):
            handlers.seed(hmm.categorical_hmm, 0)(obs=np.array([0, 1, 3]), num_categories=3)
    elif case == "ragged":
        with pytest.raises(DataError, match="obs.*pad_sequences"):
            handlers.seed(hmm.gaussian_hmm, 0)(obs=[np.zeros(3), np.zeros(5)])
    elif case == "lengths":
        with pytest.raises(DataError, match="lengths"):
            handlers.seed(hmm.poisson_hmm, 0)(obs=np.arange(6), lengths=np.array([2, 3]))
    elif case == "shape":
        with pytest.raises(DataError, match="obs"):
            handlers.seed(hmm.gaussian_hmm, 0)(obs=np.zeros((2, 3, 4)))
    elif case == "num_timesteps":
        with pytest.raises(ModelError, match="num_timesteps"):
            handlers.seed(hmm.poisson_hmm, 0)(obs=None)


def test_out_of_support_values_are_minus_inf_in_the_distribution_and_errors_in_the_programs():
    """MarginalHMM.log_prob follows NumPyro's convention for values outside the support (-inf,
    with NumPyro's warning when validation is on); the programs check their data first, so the
    workflow (fit by NUTS or SVI, log_joint) raises a DataError naming `obs`."""
    probs = jnp.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    d_cat = hmm.MarginalHMM(PI, A, dist.Categorical(probs=probs), 3, validate_args=True)
    d_poi = hmm.MarginalHMM(PI, A, dist.Poisson(jnp.array([1.0, 5.0])), 3, validate_args=True)
    with pytest.warns(UserWarning, match="Out-of-support"):
        assert float(d_cat.log_prob(np.array([0, 1, 3]))) == -np.inf
    with pytest.warns(UserWarning, match="Out-of-support"):
        assert float(d_poi.log_prob(np.array([0, -1, 3]))) == -np.inf
    assert np.isfinite(float(d_cat.log_prob(np.array([0, 1, 2]))))
    with pytest.raises(DataError, match=r"obs.*categories in 0\.\.2.*category 3"):
        pm.fit(hmm.categorical_hmm, {"obs": np.array([0, 1, 3]), "num_categories": 3}, method="svi",
               num_steps=2)
    with pytest.raises(DataError, match=r"obs.*categories in 0\.\.2"):
        pm.fit(hmm.categorical_hmm, {"obs": np.array([0, 1, 3]), "num_categories": 3}, num_chains=1,
               num_warmup=1, num_samples=1)
    with pytest.raises(DataError, match="obs.*non-negative counts"):
        pm.log_joint(hmm.poisson_hmm, {"obs": np.array([1, -2, 3])}, {})


# --------------------------------------------------------------------------------------------
# fits

TRUE_RATES = np.array([3.0, 12.0])


@pytest.fixture(scope="session")
def poisson_truth():
    x, z = hmm.sample_hmm(jax.random.key(42), PI, A, dist.Poisson(jnp.asarray(TRUE_RATES)), 300)
    return np.asarray(x), np.asarray(z)


@pytest.fixture(scope="session")
def poisson_fit(poisson_truth):
    x, _ = poisson_truth
    return pm.fit(hmm.poisson_hmm, {"obs": x, "num_states": 2, "num_timesteps": 300},
                  method="nuts", num_chains=2, num_warmup=400, num_samples=400, seed=0)


def test_nuts_recovers_known_parameters(poisson_fit):
    # Within 4 posterior standard deviations of the truth (the data's own sampling noise is
    # part of the posterior spread: this sequence's transition frequencies are 0.83 and 0.85).
    s = poisson_fit.get_samples()
    for name, truth in [("rates", TRUE_RATES), ("transition_matrix", A)]:
        mean, sd = s[name].mean(0), s[name].std(0)
        assert np.all(np.abs(mean - truth) < 4 * sd), (name, mean, sd)
    # and the rates are pinned down: sd below 10% of the value
    assert np.all(s["rates"].std(0) < 0.1 * TRUE_RATES)
    assert poisson_fit.num_divergences == 0


def test_decoding_helpers(poisson_fit, poisson_truth):
    _, z = poisson_truth
    probs = hmm.posterior_state_probs(poisson_fit, num_draws=100)
    assert probs.shape == (300, 2)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # with rates 3 vs 12 the states are well separated: decoding is mostly right
    assert np.mean(probs.argmax(-1) == z) > 0.9
    paths = hmm.posterior_viterbi(poisson_fit, num_draws=100)
    assert paths.shape == (100, 300)
    assert np.mean(paths == z[None]) > 0.9
    # FFBS trajectories, one per draw, have the averaged marginals as their frequencies
    draws = hmm.posterior_ffbs(poisson_fit, seed=1)
    assert draws.shape == (800, 300)
    freq1 = (draws == 1).mean(0)
    p_all = hmm.posterior_state_probs(poisson_fit)[:, 1]
    se = np.sqrt(p_all * (1 - p_all) / 800) + 1e-3
    assert np.mean(np.abs(freq1 - p_all) < 4 * se) > 0.99


def test_predictive_and_pointwise_terms(poisson_fit):
    rep = hmm.posterior_predictive(poisson_fit, num_draws=50, seed=0)
    assert rep["obs"].shape == (50, 300) and rep["states"].shape == (50, 300)
    # the replicated series have the data's overall mean (within Monte Carlo error)
    x = np.asarray(poisson_fit.data["obs"])
    assert abs(rep["obs"].mean() - x.mean()) < 5 * x.std() / np.sqrt(300)
    new = hmm.posterior_predictive(poisson_fit, num_timesteps=20, num_draws=10)
    assert new["obs"].shape == (10, 20)
    pred = poisson_fit.predict(num_samples=20)
    assert pred["obs"].shape[-1] == 300
    # the one-step-ahead terms sum to the sequence log-likelihood, draw by draw
    steps = hmm.step_log_likelihood(poisson_fit)
    total = poisson_fit.log_likelihood()["obs"]
    assert steps.shape == (2, 400, 300)
    np.testing.assert_allclose(steps.sum(-1), total, rtol=1e-4)
    loo = hmm.loo_over_time(poisson_fit)
    assert np.isfinite(loo.elpd) and loo.elpd < 0


def test_batch_of_sequences_fit_and_svi():
    # Gaussian emissions, 3 sequences of different lengths, fitted by SVI; the per-sequence
    # log-likelihood comes out of the plate.
    locs, scales = jnp.array([-2.0, 2.0]), jnp.array([0.5, 0.7])
    x, z = hmm.sample_hmm(jax.random.key(3), PI, A, dist.Normal(locs, scales), 120, num_sequences=3)
    lengths = np.array([120, 80, 100])
    x = np.where(np.arange(120) < lengths[:, None], np.asarray(x), np.nan)
    data = {"obs": x, "lengths": lengths, "num_states": 2}
    res = pm.fit(hmm.gaussian_hmm, data, method="svi", num_steps=1500, learning_rate=0.02, seed=0,
                 num_posterior_draws=200)
    s = res.get_samples()
    np.testing.assert_allclose(s["locs"].mean(0), locs, atol=0.2)
    np.testing.assert_allclose(s["scales"].mean(0), scales, atol=0.15)
    assert res.log_likelihood()["obs"].shape[-1] == 3
    paths = hmm.posterior_viterbi(res, num_draws=20)
    assert paths.shape == (20, 3, 120)
    assert np.all(paths[:, 1, 80:] == -1)
    valid = np.arange(120) < lengths[:, None]
    assert np.mean((paths[0] == np.asarray(z))[valid]) > 0.95


def test_mvn_and_categorical_programs_run_under_nuts():
    Y, _ = hmm.sample_hmm(jax.random.key(5), PI, A,
                          dist.MultivariateNormal(jnp.array([[0.0, 0.0], [3.0, 1.0]]), jnp.eye(2) * 0.5), 80)
    res = pm.fit(hmm.mvn_hmm, {"obs": np.asarray(Y)}, num_chains=1, num_warmup=150, num_samples=100, seed=0)
    loc = res.get_samples()["locs"].mean(0)
    np.testing.assert_allclose(loc, [[0.0, 0.0], [3.0, 1.0]], atol=0.5)
    B = jnp.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7]])
    c, _ = hmm.sample_hmm(jax.random.key(6), PI, A, dist.Categorical(probs=B), 200)
    res = pm.fit(hmm.categorical_hmm, {"obs": np.asarray(c), "num_categories": 3, "order_by": 2},
                 num_chains=1, num_warmup=150, num_samples=100, seed=0)
    # ordered by the probability of category 2: state 0 is the first row of B
    np.testing.assert_allclose(res.get_samples()["emission_probs"].mean(0), B, atol=0.15)


@pytest.mark.slow
def test_sbc_two_state_poisson():
    from ppl_models.diagnostics import sbc

    result = sbc(hmm.poisson_hmm, {"obs": None, "num_states": 2, "num_timesteps": 60},
                 num_replications=100, num_warmup=200, num_samples=200, seed=0, observed=["obs"],
                 params=["initial_probs", "transition_matrix", "log_rates"])
    assert result.passed, str(result)
