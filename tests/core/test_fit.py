"""Fit: ArviZ conversion, summary, prediction, LOO/WAIC comparison, save and load."""

from __future__ import annotations

from pathlib import Path

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


def test_loo_and_waic_compute_the_log_likelihood_in_chunks(lin_fit):
    import copy

    whole = loo(lin_fit)
    fresh = copy.copy(lin_fit)
    fresh._log_lik = None                      # nothing cached: LOO computes it, 7 draws at a time
    chunked = loo(fresh, batch_size=7)
    np.testing.assert_allclose(chunked.elpd, whole.elpd, rtol=1e-6)
    assert fresh._log_lik is not None          # and keeps it for the next call
    fresh._log_lik = None
    np.testing.assert_allclose(waic(fresh, batch_size=7).elpd_waic, waic(lin_fit).elpd_waic, rtol=1e-6)


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


# --------------------------------------------------------------------------- memory: chunks and out=
def _fresh(fit):
    import copy

    f = copy.copy(fit)
    f._log_lik = None
    return f


def test_chunked_log_likelihood_and_prediction_equal_the_unchunked_ones(lin_fit, tmp_path):
    full = _fresh(lin_fit).log_likelihood()["y"]
    for bs in (1, 70, 599, 600, 10_000):
        np.testing.assert_allclose(_fresh(lin_fit).log_likelihood(batch_size=bs)["y"], full, rtol=1e-6, atol=1e-6)
    # prediction: the same chunks (so the same keys) give the same draws in memory and on disk
    mem = lin_fit.predict(seed=3, batch_size=70)["y"]
    disk = lin_fit.predict(seed=3, batch_size=70, out=tmp_path / "pred.npy")["y"]
    assert isinstance(disk, np.memmap) and not disk.flags.writeable
    np.testing.assert_array_equal(disk, mem)
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), mem)
    whole = lin_fit.predict(seed=3)["y"]
    # one chunk of every draw (vectorized) = unchunked (one draw at a time): the same keys
    np.testing.assert_allclose(lin_fit.predict(seed=3, batch_size=600)["y"], whole, rtol=1e-5, atol=1e-5)


def test_log_likelihood_into_preallocated_arrays_memmaps_and_directories(lin_fit, tmp_path):
    full = _fresh(lin_fit).log_likelihood()["y"]
    buf = np.full((2, 300, 60), np.nan, np.float32)
    f = _fresh(lin_fit)
    res = f.log_likelihood(batch_size=64, out={"y": buf})
    assert res["y"] is buf
    np.testing.assert_allclose(buf, full, rtol=1e-6, atol=1e-6)
    buf[:] = 0  # the caller's array is theirs: the fit did not keep it as its cache
    np.testing.assert_allclose(f.log_likelihood()["y"], full, rtol=1e-6, atol=1e-6)
    mm = np.lib.format.open_memmap(tmp_path / "ll.npy", mode="w+", dtype=np.float32, shape=(2, 300, 60))
    _fresh(lin_fit).log_likelihood(batch_size=64, out={"y": mm})
    mm.flush()
    np.testing.assert_allclose(np.load(tmp_path / "ll.npy"), full, rtol=1e-6, atol=1e-6)
    f = _fresh(lin_fit)
    on_disk = f.log_likelihood(batch_size=64, out=tmp_path / "lldir")
    np.testing.assert_allclose(np.load(tmp_path / "lldir" / "y.npy"), full, rtol=1e-6, atol=1e-6)
    assert f.log_likelihood() is on_disk  # cached: the memory-mapped file
    # asked again with out=, the cache is copied there (no recomputation)
    again = f.log_likelihood(out={"y": np.zeros((2, 300, 60), np.float32)})
    np.testing.assert_array_equal(again["y"], on_disk["y"])
    with pytest.raises(pm.DataError, match="shape"):
        _fresh(lin_fit).log_likelihood(out={"y": np.zeros((600, 60), np.float32)})
    with pytest.raises(pm.DataError, match="every site"):
        _fresh(lin_fit).log_likelihood(out={"z": buf})
    with pytest.raises(pm.DataError, match="batch_size"):
        _fresh(lin_fit).log_likelihood(batch_size=0)
    with pytest.raises(pm.DataError, match="out"):
        lin_fit.predict(out=[buf])


def test_prediction_to_disk_never_holds_the_whole_result():
    import tracemalloc

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 2)).astype(np.float32)
    samples = {"a": rng.normal(size=(1, 2000)), "b": rng.normal(size=(1, 2000, 2)), "sigma": np.ones((1, 2000))}
    f = pm.Fit.from_samples(linear, {"x": X, "y": None}, samples, method="exact", observed=("y",))
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f.predict(seed=0, batch_size=50, out=Path(d) / "warm.npy", return_sites=["y"])  # compile first
        tracemalloc.start()
        res = f.predict(seed=0, batch_size=50, out=Path(d) / "y.npy", return_sites=["y"])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        full_bytes = 2000 * 5000 * 4
        assert res["y"].shape == (1, 2000, 5000)
        assert peak < full_bytes / 8, (peak, full_bytes)
        assert np.isfinite(res["y"][0, ::97]).all()
        del res


def test_to_arviz_after_a_chunked_log_likelihood_does_not_run_the_program_again(data):
    calls = []

    def counted(x=None, y=None):
        calls.append(1)
        linear(x, y)

    f = pm.fit(counted, data, num_chains=1, num_warmup=100, num_samples=100, seed=0, progress_bar=False)
    ll = f.log_likelihood(batch_size=30)["y"]
    assert calls
    calls.clear()
    dt = f.to_arviz()
    dt2 = f.to_arviz(batch_size=7)
    assert not calls, f"the program ran {len(calls)} more times"
    np.testing.assert_array_equal(dt["log_likelihood"]["y"].values, ll)
    np.testing.assert_array_equal(dt2["log_likelihood"]["y"].values, ll)


def with_param(x=None, y=None):
    # a learned point estimate (numpyro.param) next to a latent variable: predictions need both
    w = numpyro.param("w", np.zeros(2, np.float32))
    s = numpyro.sample("sigma", dist.HalfNormal(1))
    with numpyro.plate("obs", x.shape[0]):
        numpyro.sample("y", dist.Normal(x @ w, s), obs=y)


def test_svi_fit_saves_and_loads_its_params_and_losses(data, tmp_path):
    res = pm.fit(with_param, data, method="svi", num_steps=400, learning_rate=0.05, seed=0, progress_bar=False)
    assert "w" in res.svi_params and res.svi_losses.shape == (400,)
    np.testing.assert_allclose(res.svi_params["w"], [1.0, -2.0], atol=0.2)
    before = res.predict({"x": np.eye(2, dtype=np.float32)}, seed=4)["y"]
    path = res.save(tmp_path / "svi.nc")
    with xr.open_datatree(path) as tree:
        assert "ppl_models_svi" in tree.children
    back = pm.load_fit(path)
    assert set(back.svi_params) == set(res.svi_params)
    for k, v in res.svi_params.items():
        np.testing.assert_array_equal(back.svi_params[k], v)
        assert back.svi_params[k].dtype == np.asarray(v).dtype
    np.testing.assert_array_equal(back.svi_losses, res.svi_losses)
    np.testing.assert_array_equal(back.predict({"x": np.eye(2, dtype=np.float32)}, seed=4)["y"], before)
    assert back.info["final_loss"] == pytest.approx(float(res.svi_losses[-1]))


def branchy(x=None, y=None):
    # Python control flow on a data value: cannot be traced with the data as jit arguments
    scale = 2.0 if float(np.asarray(x).max()) > 100 else 1.0
    a = numpyro.sample("a", dist.Normal(0, 2))
    with numpyro.plate("obs", x.shape[0]):
        numpyro.sample("y", dist.Normal(a + 0 * x[:, 0], scale), obs=y)


def test_chunks_of_a_program_that_needs_concrete_data_run_eagerly(data):
    f = pm.Fit.from_samples(branchy, data.kwargs, {"a": np.linspace(-1, 1, 40)[None]}, method="exact")
    full = f.log_likelihood()["y"]
    np.testing.assert_allclose(_fresh(f).log_likelihood(batch_size=15)["y"], full, rtol=1e-6, atol=1e-6)
    pred = f.predict(seed=0, batch_size=15)["y"]
    assert pred.shape == (1, 40, 60) and np.isfinite(pred).all()
    np.testing.assert_allclose(pred.mean(axis=2)[0], np.linspace(-1, 1, 40), atol=0.6)
