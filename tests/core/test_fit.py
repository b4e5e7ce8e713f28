"""Fit: ArviZ conversion, summary, prediction, LOO/WAIC comparison, save and load."""

from __future__ import annotations

import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
import xarray as xr

import ppl_models as pm
from ppl_models.data import ModelData
from ppl_models.diagnostics import compare, loo, waic


def linear(x=None, y=None):
    a = numpyro.sample("a", dist.Normal(0, 2))
    b = numpyro.sample("b", dist.Normal(0, 2).expand([x.shape[1]]).to_event(1))
    s = numpyro.sample("sigma", dist.HalfNormal(1))
    with numpyro.plate("obs", x.shape[0]):
        mu = numpyro.deterministic("mu", a + x @ b)
        numpyro.sample("y", dist.Normal(mu, s), obs=y)


def intercept_only(x=None, y=None):
    a = numpyro.sample("a", dist.Normal(0, 2))
    s = numpyro.sample("sigma", dist.HalfNormal(1))
    with numpyro.plate("obs", x.shape[0]):
        numpyro.sample("y", dist.Normal(a, s), obs=y)


@pytest.fixture(scope="session")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2)).astype(np.float32)
    y = (0.5 + x @ np.array([1.0, -2.0]) + 0.3 * rng.normal(size=60)).astype(np.float32)
    df = pd.DataFrame(x, columns=["height", "weight"])
    return ModelData(kwargs={"x": x, "y": y}, observed=("y",), coords={"feature": list(df.columns)},
                     dims={"b": ["feature"]})


@pytest.fixture(scope="session")
def lin_fit(data):
    return pm.fit(linear, data, num_chains=2, num_warmup=300, num_samples=300, seed=0)


@pytest.fixture(scope="session")
def flat_fit(data):
    return pm.fit(intercept_only, data, num_chains=2, num_warmup=300, num_samples=300, seed=0)


def test_arviz_groups_and_named_dims(lin_fit):
    dt = lin_fit.to_arviz(prior=True, posterior_predictive=True)
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data", "constant_data", "prior",
            "prior_predictive", "posterior_predictive"} <= set(dt.children)
    post = dt["posterior"]
    assert post["b"].dims == ("chain", "draw", "feature")
    assert list(post["feature"].values) == ["height", "weight"]
    assert post["mu"].dims == ("chain", "draw", "obs")
    assert dt["log_likelihood"]["y"].dims == ("chain", "draw", "obs")
    assert dt["prior"].sizes["chain"] == 1 and dt["prior"].sizes["draw"] == 600
    assert dt["posterior_predictive"]["y"].shape == (2, 300, 60)
    np.testing.assert_array_equal(dt["observed_data"]["y"].values, lin_fit.data["y"])


def test_log_likelihood_equals_direct_computation(lin_fit):
    from scipy import stats

    s = lin_fit.get_samples()
    ll = lin_fit.log_likelihood()["y"].reshape(-1, 60)
    direct = stats.norm(s["mu"], s["sigma"][:, None]).logpdf(lin_fit.data["y"])
    np.testing.assert_allclose(ll, direct, rtol=1e-4, atol=1e-4)


def test_summary_is_a_dataframe_with_diagnostics(lin_fit):
    s = lin_fit.summary()
    assert isinstance(s, pd.DataFrame)
    for col in ("mean", "sd", "hdi89_lb", "hdi89_ub", "ess_bulk", "ess_tail", "r_hat", "mcse_mean", "mcse_sd"):
        assert col in s.columns, col
    assert "b[height]" in s.index
    assert s.loc["b[weight]", "mean"] == pytest.approx(-2.0, abs=0.15)


def test_predict_with_new_covariates(lin_fit):
    x_new = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]], dtype=np.float32)
    pred = lin_fit.predict({"x": x_new}, seed=1)
    assert pred["y"].shape == (2, 300, 3)
    np.testing.assert_allclose(pred["y"].mean(axis=(0, 1)), [0.5, -0.5, 2.5], atol=0.15)
    with pytest.raises(pm.DataError, match="new_data"):
        lin_fit.predict({"z": x_new})


def test_loo_waic_and_compare_prefer_the_true_model(lin_fit, flat_fit):
    lo = loo(lin_fit)
    w = waic(lin_fit)
    assert abs(lo.elpd - w.elpd_waic) < 2.0
    assert w.n_data_points == 60
    cmp = compare({"linear": lin_fit, "intercept": flat_fit})
    assert cmp.index[0] == "linear"
    assert w.elpd_waic > waic(flat_fit).elpd_waic


def test_save_and_load_loses_nothing(lin_fit, tmp_path):
    path = lin_fit.save(tmp_path / "fit.nc")
    assert path.exists() and not list(tmp_path.glob(".*tmp*"))
    back = pm.load_fit(path)
    assert back.model is linear and back.method == "nuts"
    a, b = lin_fit.to_arviz(), back.to_arviz()
    assert set(a.children) == set(b.children)
    for g in a.children:
        xr.testing.assert_identical(a[g].to_dataset(), b[g].to_dataset())
    assert back.info["seed"] == 0 and back.info["num_warmup"] == 300
    pred = back.predict({"x": np.zeros((2, 2), np.float32)})
    assert pred["y"].shape == (2, 300, 2)


def test_load_without_importable_model_still_summarises(lin_fit, tmp_path):
    import json

    path = lin_fit.save(tmp_path / "fit.nc")
    tree = xr.open_datatree(path)
    tree.attrs["ppl_models_model"] = "not_a_module:nothing"
    tree.to_netcdf(tmp_path / "orphan.nc", engine="h5netcdf")
    back = pm.load_fit(tmp_path / "orphan.nc")
    assert back.model is None
    assert np.isfinite(loo(back).elpd)
    assert "b[weight]" in back.summary().index
    with pytest.raises(pm.PPLModelsError, match="load_fit"):
        back.predict()
    assert json.loads(tree.attrs["ppl_models_observed"]) == ["y"]


def test_from_samples_fills_deterministic_sites(data):
    rng = np.random.default_rng(1)
    samples = {"a": rng.normal(size=(1, 50)), "b": rng.normal(size=(1, 50, 2)), "sigma": np.ones((1, 50))}
    f = pm.Fit.from_samples(linear, data.kwargs, samples, method="exact")
    np.testing.assert_allclose(f.samples["mu"][0, 3], samples["a"][0, 3] + data.kwargs["x"] @ samples["b"][0, 3],
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(pm.DataError, match="samples"):
        pm.Fit.from_samples(linear, data.kwargs, {"a": samples["a"]}, method="exact")


def test_predict_and_log_likelihood_in_chunks(lin_fit):
    import copy

    full = lin_fit.log_likelihood()["y"]
    chunked = copy.copy(lin_fit)
    chunked._log_lik = None
    np.testing.assert_allclose(chunked.log_likelihood(batch_size=70)["y"], full, rtol=1e-6)
    pred = lin_fit.predict(seed=0, batch_size=100)["y"]
    assert pred.shape == (2, 300, 60)
    # chunks use different keys but the same predictive distribution
    np.testing.assert_allclose(pred.mean(axis=(0, 1)), lin_fit.get_samples()["mu"].mean(axis=0), atol=0.1)


def vector_obs(X=None):
    loc = numpyro.sample("loc", dist.Normal(0, 1).expand([3]).to_event(1))
    with numpyro.plate("obs", 20):
        numpyro.sample("X", dist.Normal(loc, 1).to_event(1), obs=X)


def test_observed_site_with_an_event_axis_gets_leading_dims_for_its_log_likelihood():
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    res = pm.fit(vector_obs, {"X": X}, num_chains=1, num_warmup=50, num_samples=50,
                 dims={"X": ["obs", "feature"], "loc": ["feature"]}, coords={"feature": ["a", "b", "c"]})
    dt = res.to_arviz(posterior_predictive=20)
    assert dt["observed_data"]["X"].dims == ("obs", "feature")
    assert dt["log_likelihood"]["X"].dims == ("chain", "draw", "obs")
    pp = dt["posterior_predictive"]["X"]
    assert pp.shape[0] == 1 and 10 <= pp.shape[1] <= 20 and pp.shape[2:] == (20, 3)
