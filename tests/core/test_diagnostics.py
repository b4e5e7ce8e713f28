"""The convergence gate and simulation-based calibration can pass and can fail."""

from __future__ import annotations

import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import ppl_models as pm
from ppl_models.diagnostics import check_convergence, rank_uniformity, sbc, sbc_ranks


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
