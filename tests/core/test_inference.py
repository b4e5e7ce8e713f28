"""fit() against analytic posteriors, seeds, methods, and bad input."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import stats

import ppl_models as pm
from ppl_models.errors import DataError

A, B = 2.0, 3.0
Y = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1], dtype=np.float32)


def beta_bernoulli(y=None, n=20):
    p = numpyro.sample("p", dist.Beta(A, B))
    with numpyro.plate("obs", n if y is None else y.shape[0]):
        numpyro.sample("y", dist.Bernoulli(p), obs=y)


def normal_known_sd(y=None, n=30, prior_sd=2.0):
    mu = numpyro.sample("mu", dist.Normal(0.0, prior_sd))
    with numpyro.plate("obs", n if y is None else y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def normal_minibatch(y=None, subsample_size=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    with numpyro.plate("obs", y.shape[0], subsample_size=subsample_size) as idx:
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y[idx])


@pytest.fixture(scope="session")
def bb_fit():
    return pm.fit(beta_bernoulli, {"y": Y}, num_chains=4, num_warmup=400, num_samples=1000, seed=1)


def _within_mcse(fit, name, mean, sd, k=4.0):
    s = fit.summary(var_names=[name]).loc[name]
    assert abs(s["mean"] - mean) <= k * s["mcse_mean"], (s["mean"], mean, s["mcse_mean"])
    assert abs(s["sd"] - sd) <= k * s["mcse_sd"], (s["sd"], sd, s["mcse_sd"])


def test_nuts_matches_beta_posterior(bb_fit):
    k, n = Y.sum(), Y.size
    post = stats.beta(A + k, B + n - k)
    _within_mcse(bb_fit, "p", post.mean(), post.std())
    assert pm.diagnostics.check_convergence(bb_fit).passed


def test_nuts_matches_normal_posterior():
    rng = np.random.default_rng(3)
    y = rng.normal(1.5, 1.0, size=30).astype(np.float32)
    res = pm.fit(normal_known_sd, {"y": y}, num_chains=4, num_warmup=300, num_samples=1000, seed=2)
    prec = 1 / 2.0**2 + y.size
    _within_mcse(res, "mu", y.sum() / prec, np.sqrt(1 / prec))


def test_hmc_matches_beta_posterior():
    res = pm.fit(beta_bernoulli, {"y": Y}, method="hmc", num_chains=2, num_warmup=400, num_samples=1000, seed=4)
    k, n = Y.sum(), Y.size
    post = stats.beta(A + k, B + n - k)
    _within_mcse(res, "p", post.mean(), post.std())
    assert res.method == "hmc"


def test_same_seed_same_draws(bb_fit):
    again = pm.fit(beta_bernoulli, {"y": Y}, num_chains=4, num_warmup=400, num_samples=1000, seed=1)
    np.testing.assert_array_equal(again.samples["p"], bb_fit.samples["p"])
    other = pm.fit(beta_bernoulli, {"y": Y}, num_chains=4, num_warmup=400, num_samples=1000, seed=2)
    assert not np.array_equal(other.samples["p"], bb_fit.samples["p"])


def test_sample_stats_and_shapes(bb_fit):
    assert bb_fit.samples["p"].shape == (4, 1000)
    for k in ("diverging", "lp", "tree_depth", "acceptance_rate", "step_size", "energy"):
        assert bb_fit.sample_stats[k].shape == (4, 1000), k
    assert bb_fit.get_samples()["p"].shape == (4000,)


def test_svi_autonormal_matches_gaussian_posterior():
    rng = np.random.default_rng(5)
    y = rng.normal(-0.7, 1.0, size=40).astype(np.float32)
    res = pm.fit(normal_known_sd, {"y": y}, method="svi", num_steps=3000, learning_rate=0.05,
                 num_posterior_draws=4000, seed=0)
    prec = 1 / 4.0 + y.size
    draws = res.get_samples()["mu"]
    assert abs(draws.mean() - y.sum() / prec) < 0.03
    assert abs(draws.std() / np.sqrt(1 / prec) - 1) < 0.1
    assert res.svi_losses.shape == (3000,)


def test_svi_accepts_any_guide():
    from numpyro.infer.autoguide import AutoDiagonalNormal

    y = np.linspace(-1, 1, 20).astype(np.float32) + 0.5
    res = pm.fit(normal_known_sd, {"y": y}, method="svi", guide=AutoDiagonalNormal(normal_known_sd),
                 num_steps=2000, learning_rate=0.05, num_posterior_draws=500)
    assert res.info["guide"] == "AutoDiagonalNormal"
    assert abs(res.get_samples()["mu"].mean() - y.sum() / (0.25 + 20)) < 0.05


def test_svi_minibatch_converges_to_full_data_posterior():
    rng = np.random.default_rng(6)
    y = rng.normal(3.0, 1.0, size=20_000).astype(np.float32)
    res = pm.fit(normal_minibatch, {"y": y}, method="svi", subsample_size=200, num_steps=3000,
                 learning_rate=0.02, num_posterior_draws=200, seed=1)
    draws = res.get_samples()["mu"]
    assert abs(draws.mean() - y.mean()) < 0.02
    # the log-likelihood afterwards is over all 20,000 points, not a minibatch
    assert res.log_likelihood()["y"].shape == (1, 200, 20_000)


def test_map_is_the_posterior_mode():
    res = pm.fit(beta_bernoulli, {"y": Y}, method="map", num_steps=4000, learning_rate=0.01)
    k, n = Y.sum(), Y.size
    mode = (A + k - 1) / (A + B + n - 2)
    assert res.samples["p"].shape == (1, 1)
    assert abs(float(res.samples["p"][0, 0]) - mode) < 2e-3


def test_log_joint_matches_scipy():
    p = 0.37
    expected = stats.beta(A, B).logpdf(p) + stats.bernoulli(p).logpmf(Y).sum()
    assert pm.log_joint(beta_bernoulli, {"y": Y}, {"p": p}) == pytest.approx(expected, rel=1e-5)


def test_sample_prior_forward_samples_new_data():
    draws = pm.sample_prior(beta_bernoulli, {"y": Y}, num_samples=4000, seed=0)
    assert draws["y"].shape == (4000, 20)
    assert set(np.unique(draws["y"])) <= {0.0, 1.0}
    # prior predictive mean of y equals the prior mean of p, A / (A + B)
    se = np.sqrt(stats.beta(A, B).var() / 4000 + 0.24 / (4000 * 20))
    assert abs(draws["y"].mean() - A / (A + B)) < 4 * se + 0.01
    kept = pm.sample_prior(beta_bernoulli, {"y": Y}, num_samples=10, seed=0, keep_observed=True)
    assert "y" not in kept


@pytest.mark.parametrize("kwargs, argument", [
    ({"method": "gibbs"}, "method"),
    ({"num_chains": 0}, "num_chains"),
    ({"num_samples": 2.5}, "num_samples"),
    ({"num_warmup": -1}, "num_warmup"),
])
def test_bad_settings_name_the_argument(kwargs, argument):
    with pytest.raises(DataError, match=f"argument `{argument}`"):
        pm.fit(beta_bernoulli, {"y": Y}, **kwargs)


def test_bad_data_is_reported():
    with pytest.raises(DataError, match="argument `data`"):
        pm.fit(beta_bernoulli, [1, 2, 3])
    with pytest.raises(DataError, match="argument `data`"):
        pm.fit(beta_bernoulli, {"y": Y, "not_an_argument": 1})


def test_resume_continues_the_chains_exactly(tmp_path):
    whole = pm.fit(beta_bernoulli, {"y": Y}, num_chains=2, num_warmup=200, num_samples=400, seed=9)
    first = pm.fit(beta_bernoulli, {"y": Y}, num_chains=2, num_warmup=200, num_samples=200, seed=9)
    # through the file, as after an interrupted session
    path = first.save(tmp_path / "first.nc")
    more = pm.fit(beta_bernoulli, {"y": Y}, num_chains=2, num_warmup=200, num_samples=200, seed=9,
                  resume=pm.load_fit(path))
    assert more.samples["p"].shape == (2, 400)
    np.testing.assert_array_equal(more.samples["p"], whole.samples["p"])
    assert more.info["resumed_from_draws"] == 200
    with pytest.raises(DataError, match="num_chains"):
        pm.fit(beta_bernoulli, {"y": Y}, num_chains=3, num_samples=10, resume=first)
    with pytest.raises(DataError, match="resume"):
        pm.fit(beta_bernoulli, {"y": Y}, method="hmc", num_chains=2, num_samples=10, resume=first)


def local_latents(y=None, subsample_size=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    with numpyro.plate("obs", y.shape[0], subsample_size=subsample_size) as idx:
        z = numpyro.sample("z", dist.Normal(mu, 1.0))
        numpyro.sample("y", dist.Normal(z, 0.5), obs=y[idx])


def test_svi_minibatch_with_local_latents_draws_full_plates():
    y = np.random.default_rng(7).normal(2.0, 1.2, size=300).astype(np.float32)
    res = pm.fit(local_latents, {"y": y}, method="svi", subsample_size=50, num_steps=500,
                 num_posterior_draws=20, init_strategy="uniform")
    assert res.samples["z"].shape == (1, 20, 300)
    with pytest.raises(DataError, match="init_strategy"):
        pm.fit(local_latents, {"y": y}, method="svi", num_steps=10, init_strategy="clever")


def test_compilation_cache_is_pruned_oldest_first(tmp_path):
    import os
    import time

    from ppl_models._config import prune_cache

    now = time.time()
    for i in range(10):
        p = tmp_path / f"key{i}-cache"
        p.write_bytes(b"x" * 100)
        os.utime(p, (now - 1000 + i, now - 1000 + i))  # key0 is the oldest
    assert prune_cache(tmp_path, max_bytes=2000) == 0  # under the limit: nothing goes
    assert prune_cache(tmp_path, max_bytes=500) == 0  # ran less than an hour ago: skipped
    assert prune_cache(tmp_path, max_bytes=500, force=True) == 6  # down to 80% of the limit
    left = sorted(p.name for p in tmp_path.glob("*-cache"))
    assert left == [f"key{i}-cache" for i in range(6, 10)]


# ------------------------------------------------------------------ bad data on a user's program
def regression(X, y=None):
    b = numpyro.sample("b", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    with numpyro.plate("obs", X.shape[0]):
        numpyro.sample("y", dist.Normal(X @ b, 1.0), obs=y)


X_REG = np.random.default_rng(0).normal(size=(30, 2))
Y_REG = X_REG @ np.array([1.0, -1.0]) + np.random.default_rng(1).normal(size=30)
QUICK = dict(num_chains=1, num_warmup=20, num_samples=20)


@pytest.mark.parametrize("method", ["nuts", "svi"])
def test_non_finite_data_names_the_argument_and_index(method):
    y = Y_REG.copy()
    y[4] = np.nan
    with pytest.raises(DataError, match=r"argument `y`: expected finite values.*nan at index \(4,\)"):
        pm.fit(regression, {"X": X_REG, "y": y}, method=method, num_steps=10, **QUICK)
    X = X_REG.copy()
    X[7, 1] = np.inf
    with pytest.raises(DataError, match=r"argument `X`: expected finite values.*inf at index \(7, 1\)"):
        pm.fit(regression, {"X": X, "y": Y_REG}, method=method, num_steps=10, **QUICK)


def test_wrong_shape_names_the_argument_and_the_site_shape():
    with pytest.raises(DataError, match=r"argument `y`: expected an array whose shape broadcasts with \(30,\)"
                                        r".*got shape \(29,\)"):
        pm.fit(regression, {"X": X_REG, "y": Y_REG[:29]}, **QUICK)


@pytest.mark.parametrize("labels, num_classes, fragment", [
    ([0, 1, 2], 2, r"BernoulliLogits: 0 or 1\), got 10 value\(s\) outside it, the first 2 at index \(2,\)"),
    ([0, -1, 1], 2, r"BernoulliLogits: 0 or 1\), got 10 value\(s\) outside it, the first -1 at index \(1,\)"),
    ([0, 1, 5], 3, r"CategoricalLogits: integers 0..2\), got 10 value\(s\) outside it, the first 5"),
])
def test_labels_outside_the_support(labels, num_classes, fragment):
    from ppl_models.models.logistic import logistic_regression

    y = np.array(labels * 10)
    with pytest.raises(DataError, match=r"argument `y`: expected values in the support of the observed site `y` "
                                        r"\(" + fragment):
        pm.fit(logistic_regression, {"X": X_REG, "y": y, "num_classes": num_classes}, **QUICK)


def uniform_scale(y):
    # the support of y depends on a latent: whether a value lies in it at one prior draw says
    # nothing about the data
    theta = numpyro.sample("theta", dist.Exponential(0.1))
    with numpyro.plate("obs", y.shape[0]):
        numpyro.sample("y", dist.Uniform(0.0, theta), obs=y)


def test_a_support_that_depends_on_a_latent_is_not_held_against_the_data():
    from numpyro.infer import init_to_value

    y = np.random.default_rng(0).uniform(0, 30, 20)
    for seed in range(3):  # prior draws of theta below 30 are likely: each must still fit
        res = pm.fit(uniform_scale, {"y": y}, method="nuts", num_chains=1, num_warmup=200, num_samples=200,
                     seed=seed, progress_bar=False, init_strategy=init_to_value(values={"theta": 40.0}))
        assert float(res.get_samples()["theta"].min()) >= y.max()
    # a fixed support is still checked: a negative value for a Uniform(0, 40)
    def fixed(y):
        numpyro.sample("m", dist.Normal())
        with numpyro.plate("obs", y.shape[0]):
            numpyro.sample("y", dist.Uniform(0.0, 40.0), obs=y)
    with pytest.raises(DataError, match=r"argument `y`: expected values in the support"):
        pm.fit(fixed, {"y": np.r_[y, -1.0]}, **QUICK)


def buggy_but_nan_safe(x, y=None):
    # handles NaN in x itself, but has a bug of its own: x has 3 columns, w 2
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    mean = jnp.nan_to_num(x) @ w
    with numpyro.plate("obs", x.shape[0]):
        numpyro.sample("y", dist.Normal(mean, 1.0), obs=y)


def test_a_bug_in_the_program_is_not_blamed_on_missing_values():
    x = np.ones((10, 3))
    x[2, 1] = np.nan
    with pytest.raises(pm.ModelError, match="the program failed when run on its data") as info:
        pm.fit(buggy_but_nan_safe, {"x": x, "y": np.zeros(10)}, **QUICK)
    assert isinstance(info.value.__cause__, TypeError)  # the program's own error, kept
    with pytest.raises(DataError, match=r"argument `data`: expected keyword arguments the model accepts"):
        pm.fit(buggy_but_nan_safe, {"x": x, "y": np.zeros(10), "z": 1}, **QUICK)


def test_sample_prior_and_sbc_check_the_inputs_they_simulate_from():
    X = X_REG.copy()
    X[3, 0] = np.nan
    with pytest.raises(DataError, match=r"argument `X`: expected finite values.*\(3, 0\)"):
        pm.sample_prior(regression, {"X": X, "y": None}, num_samples=5)
    with pytest.raises(DataError, match=r"argument `X`: expected finite values.*\(3, 0\)"):
        pm.diagnostics.sbc(regression, {"X": X, "y": Y_REG}, num_replications=10, num_warmup=10, num_samples=10)
    # the observed values are not used for forward sampling: NaN there is no error
    y = Y_REG.copy()
    y[0] = np.nan
    assert pm.sample_prior(regression, {"X": X_REG, "y": y}, num_samples=5)["y"].shape == (5, 30)


def masked_normal(y):
    # a program that handles missing values itself: NaN marks them and they are masked out
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    present = ~np.isnan(y)
    with numpyro.plate("obs", y.shape[0]), numpyro.handlers.mask(mask=present):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=np.where(present, y, 0.0))


def test_a_program_that_handles_missing_values_takes_nan():
    y = np.array([1.0, np.nan, 2.0, 3.0, np.nan, 2.5])
    res = pm.fit(masked_normal, {"y": y}, num_chains=1, num_warmup=200, num_samples=400, seed=0)
    prec = 1 / 25 + 4
    _within_mcse(res, "mu", np.nansum(y) / prec, np.sqrt(1 / prec))


def declares_missing(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


declares_missing.accepts_missing = ("y",)


def test_declared_missing_values_are_left_to_the_program_and_a_failed_init_is_explained():
    # the declaration turns the data check off; the density is then NaN everywhere, and NumPyro's
    # "Cannot find valid initial parameters" becomes a ModelError that names the site
    with pytest.raises(pm.ModelError, match=r"no valid initial values.*log density of \['y'\] is not finite"):
        pm.fit(declares_missing, {"y": np.array([0.5, np.nan])}, **QUICK)


def raises_its_own_error(y, k=0):
    if k < 1:
        raise pm.DataError("k", "an integer >= 1", k)
    numpyro.sample("y", dist.Normal(numpyro.sample("mu", dist.Normal(0, 1)), 1.0), obs=y)


def test_a_programs_own_error_is_not_replaced():
    with pytest.raises(pm.DataError, match=r"argument `k`: expected an integer >= 1, got 0"):
        pm.fit(raises_its_own_error, {"y": np.zeros(3)}, **QUICK)
    with pytest.raises(pm.DataError, match=r"argument `k`"):
        pm.sample_prior(raises_its_own_error, {"y": None}, num_samples=3)
