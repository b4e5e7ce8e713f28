"""Streamed SVI reaches the in-memory optimum, and resumes exactly from its checkpoint."""

from __future__ import annotations

import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import ppl_models as pm
from ppl_models.errors import DataError
from ppl_models.streaming import RowSource, fit_streaming


def regression(X, y=None):
    beta = numpyro.sample("beta", dist.Normal(0, 5).expand([X.shape[1]]).to_event(1))
    with numpyro.plate("obs", X.shape[0]):
        numpyro.sample("y", dist.Normal(X @ beta, 1.0), obs=y)


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory):
    d = tmp_path_factory.mktemp("rows")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 3)).astype(np.float32)
    y = (X @ np.array([1.0, -0.5, 2.0]) + rng.normal(size=20_000)).astype(np.float32)
    np.save(d / "X.npy", X)
    np.save(d / "y.npy", y)
    return d, X, y


def test_streamed_svi_matches_in_memory_svi(on_disk):
    d, X, y = on_disk
    src = RowSource({"X": d / "X.npy", "y": d / "y.npy"})
    assert isinstance(src._cols["X"], np.memmap)
    streamed = fit_streaming(regression, src, batch_size=500, num_steps=2500, learning_rate=0.02, seed=0)
    memory = pm.fit(regression, {"X": X, "y": y}, method="svi", num_steps=2500, learning_rate=0.02, seed=0)
    exact = np.linalg.solve(X.T @ X + np.eye(3) / 25, X.T @ y)  # the posterior mean, in closed form
    for res in (streamed, memory):
        np.testing.assert_allclose(res.get_samples()["beta"].mean(axis=0), exact, atol=0.02)
    assert streamed.info["num_rows"] == 20_000


def test_likelihood_is_scaled_by_rows_over_batch():
    from numpyro.infer.util import log_density
    from scipy import stats

    from ppl_models.streaming import scale_likelihood

    rng = np.random.default_rng(2)
    X, y, beta = rng.normal(size=(10, 3)), rng.normal(size=10), np.array([0.1, 0.2, 0.3])
    lp, _ = log_density(scale_likelihood(regression, factor=7.0), (), {"X": X, "y": y}, {"beta": beta})
    expected = stats.norm(0, 5).logpdf(beta).sum() + 7.0 * stats.norm(X @ beta, 1).logpdf(y).sum()
    assert float(lp) == pytest.approx(expected, rel=1e-5)


def test_streamed_posterior_width_is_the_full_data_width():
    # unscaled minibatches would give a posterior sqrt(N / batch) = 3.2 times too wide
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3)).astype(np.float32)
    y = (X @ np.array([1.0, -0.5, 2.0]) + rng.normal(size=2000)).astype(np.float32)
    res = fit_streaming(regression, {"X": X, "y": y}, batch_size=200, num_steps=3000, learning_rate=0.02)
    sd_full = np.sqrt(np.diag(np.linalg.inv(X.T @ X + np.eye(3) / 25)))
    ratio = res.get_samples()["beta"].std(axis=0) / sd_full
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio


def test_interrupted_run_resumes_to_the_same_state(on_disk, tmp_path):
    d, _, _ = on_disk
    src = RowSource({"X": d / "X.npy", "y": d / "y.npy"})
    whole = fit_streaming(regression, src, batch_size=256, num_steps=600, seed=3)
    ckpt = tmp_path / "svi.npz"
    part = fit_streaming(regression, src, batch_size=256, num_steps=600, seed=3, checkpoint=ckpt,
                         checkpoint_every=100, stop_after=250)
    assert part.info["steps_done"] == 250 and ckpt.exists()
    rest = fit_streaming(regression, src, batch_size=256, num_steps=600, seed=3, checkpoint=ckpt,
                         checkpoint_every=100)
    assert rest.info["steps_done"] == 600 and rest.svi_losses.shape == (600,)
    for k in whole.svi_params:
        np.testing.assert_allclose(rest.svi_params[k], whole.svi_params[k], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rest.svi_losses, whole.svi_losses, rtol=1e-5)


def test_parquet_source(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(4000, 3)).astype(np.float32), columns=["a", "b", "c"])
    df["y"] = (df[["a", "b", "c"]].to_numpy() @ np.array([0.5, 0.0, -1.0]) + rng.normal(size=4000)).astype(np.float32)
    df.to_parquet(tmp_path / "rows.parquet", row_group_size=1000)
    src = RowSource.from_parquet(tmp_path / "rows.parquet", {"X": ["a", "b", "c"], "y": "y"})
    assert src.num_rows == 4000
    res = fit_streaming(regression, src, batch_size=250, num_steps=2000, learning_rate=0.02, seed=0)
    np.testing.assert_allclose(res.get_samples()["beta"].mean(axis=0), [0.5, 0.0, -1.0], atol=0.1)


def test_bad_sources():
    with pytest.raises(DataError, match="same number of rows"):
        RowSource({"X": np.zeros((5, 2)), "y": np.zeros(4)})
    with pytest.raises(DataError, match="batch_size"):
        fit_streaming(regression, {"X": np.zeros((5, 2)), "y": np.zeros(5)}, batch_size=10)
