"""The convergence gate and simulation-based calibration can pass and can fail."""

from __future__ import annotations

import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import ppl_models as pm
from ppl_models.diagnostics import (check_convergence, ecdf_band, ecdf_pvalue, rank_uniformity, sbc,
                                    sbc_ranks)


def normal_mean(y=None, n=5, prior_sd=1.0):
    mu = numpyro.sample("mu", dist.Normal(0.0, prior_sd))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    with numpyro.plate("obs", n):
        numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


def simulate_wide_prior(y=None, n=5, prior_sd=1.0):
    # the data come from a prior three times wider than the one the model assumes
    return normal_mean(y=y, n=n, prior_sd=3.0)


DATA = {"y": np.zeros(5, np.float32), "n": 5}


@pytest.fixture(scope="session")
def sbc_correct():
    return sbc(normal_mean, DATA, num_replications=120, num_warmup=200, num_samples=200, seed=0)


def test_sbc_passes_for_correct_inference(sbc_correct):
    assert sbc_correct.passed, str(sbc_correct)
    assert set(sbc_correct.table.index) == {"mu", "sigma"}
    assert sbc_correct.ranks["mu"].shape == (120,)
    assert sbc_correct.ranks["mu"].max() <= sbc_correct.num_draws


def test_sbc_fails_for_a_prior_mismatch():
    res = sbc(normal_mean, DATA, simulator=simulate_wide_prior, num_replications=120, num_warmup=200,
              num_samples=200, seed=0)
    assert not res.passed, str(res)
    assert not res.table.loc["mu", "passed"]


def test_rank_uniformity_detects_skew():
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 101, size=200)
    skewed = np.minimum(100, (rng.beta(2, 1, size=200) * 101).astype(int))
    assert min(rank_uniformity(uniform, 100)) > 0.01
    assert max(rank_uniformity(skewed, 100)) < 0.01


def test_ecdf_pvalue_is_exact():
    # R = 4 ranks on 0..3: enumerate all 256 rank sets, the statistic being the smallest
    # pointwise two-sided binomial tail probability of the ECDF over 0..L-1
    import itertools

    from scipy.stats import binom

    R, L = 4, 3

    def stat(r):
        c = np.cumsum(np.bincount(r, minlength=L + 1))[:L]
        z = (np.arange(L) + 1) / (L + 1)
        return np.minimum(1, 2 * np.minimum(binom.cdf(c, R, z), binom.sf(c - 1, R, z))).min()

    every = np.array(list(itertools.product(range(L + 1), repeat=R)))
    stats = np.array([stat(r) for r in every])
    for r in every[::17]:
        exact = np.mean(stats <= stat(r) * (1 + 1e-9))
        assert ecdf_pvalue(r, L) == pytest.approx(exact, rel=1e-9, abs=1e-12)


def test_ecdf_pvalue_is_valid_and_not_trivially_conservative():
    rng = np.random.default_rng(3)
    n = 400
    p = np.array([ecdf_pvalue(rng.integers(0, 50, size=50), 49) for _ in range(n)])
    for a in (0.01, 0.05, 0.2):
        assert np.mean(p <= a) <= a + 3 * np.sqrt(a * (1 - a) / n), (a, np.mean(p <= a))
    assert np.mean(p <= 0.2) > 0.12


def test_the_ecdf_test_alone_can_reject_at_the_level_of_many_components():
    # 31 components and two tests each: every single test is held to 0.01 / 62 = 1.6e-4. A
    # simulated ECDF p-value with 2000 draws could never go below 1/2001 = 5e-4; the exact one
    # can. The ranks never fall in the lowest tenth (the truth is never in the posterior's lower
    # tail) but are otherwise even, which the 20-bin chi-square does not see.
    level = 0.01 / 62
    R, L = 200, 99
    u = (np.arange(R) + 0.5) / R
    ranks = np.floor(10 + (L + 1 - 10) * u).astype(int)
    p_chi, p_ecdf = rank_uniformity(ranks, L)
    assert p_chi > level
    assert p_ecdf < level
    # and the ECDF leaves the simultaneous band drawn at that level
    lower, upper = ecdf_band(R, L, 1 - level)
    ecdf = np.cumsum(np.bincount(ranks, minlength=L + 1))[:L] / R
    assert np.any((ecdf < lower) | (ecdf > upper))


def test_ecdf_band_and_pvalue_agree():
    rng = np.random.default_rng(5)
    R, L, prob = 60, 30, 0.9
    lower, upper = ecdf_band(R, L, prob)
    outside_seen = inside_seen = 0
    for _ in range(200):
        ranks = np.minimum(L, (rng.beta(1.3, 1.0, size=R) * (L + 1)).astype(int))
        ecdf = np.cumsum(np.bincount(ranks, minlength=L + 1))[:L] / R
        outside = bool(np.any((ecdf < lower) | (ecdf > upper)))
        assert outside == (ecdf_pvalue(ranks, L) <= 1 - prob)
        outside_seen += outside
        inside_seen += not outside
    assert outside_seen and inside_seen


def test_sbc_ranks_counts_draws_below_truth():
    draws = np.array([[0.1, 0.5, 0.9], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(sbc_ranks(draws, np.array([0.6, 0.0])), [2, 0])


def test_sbc_plot_writes_a_png(sbc_correct, tmp_path):
    sbc_correct.plot(str(tmp_path / "sbc.png"))
    assert (tmp_path / "sbc.png").stat().st_size > 1000


def test_sbc_bad_input():
    with pytest.raises(pm.DataError, match="num_replications"):
        sbc(normal_mean, DATA, num_replications=3)
    with pytest.raises(pm.DataError, match="params"):
        sbc(normal_mean, DATA, params=["tau"], num_replications=20)


def bimodal(y=None):
    # two well-separated modes that chains started at random cannot cross: r-hat must flag it
    z = numpyro.sample("z", dist.Normal(0, 1))
    numpyro.factor("modes", jax_logaddexp(-0.5 * ((z - 6) / 0.3) ** 2, -0.5 * ((z + 6) / 0.3) ** 2))


def jax_logaddexp(a, b):
    import jax.numpy as jnp

    return jnp.logaddexp(a, b)


def test_gate_fails_when_chains_disagree():
    from numpyro.infer.initialization import init_to_value

    res_a = pm.fit(bimodal, {}, num_chains=1, num_warmup=200, num_samples=300, seed=0,
                   init_strategy=init_to_value(values={"z": 6.0}))
    res_b = pm.fit(bimodal, {}, num_chains=1, num_warmup=200, num_samples=300, seed=1,
                   init_strategy=init_to_value(values={"z": -6.0}))
    merged = pm.Fit(model=bimodal, data={}, method="nuts",
                    samples={"z": np.concatenate([res_a.samples["z"], res_b.samples["z"]])},
                    sample_stats={"diverging": np.zeros((2, 300), bool)})
    report = check_convergence(merged)
    assert not report.passed
    assert any("r-hat" in f for f in report.failures)
    assert "FAILED" in str(report)


def test_gate_on_svi_is_not_applicable():
    res = pm.fit(normal_mean, {"y": np.ones(5, np.float32)}, method="svi", num_steps=200)
    report = check_convergence(res)
    assert not report.applicable and "not applicable" in str(report)
