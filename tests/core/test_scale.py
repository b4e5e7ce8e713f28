"""Sharded data, parallel chains and the single-host path of multi-host start-up.

Run in a subprocess with four simulated host devices (XLA reads the device count only once,
when JAX starts)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ppl_models.errors import DataError
from ppl_models.scale import DISTRIBUTED_ENV, initialize_distributed

SCRIPT = textwrap.dedent('''
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    import numpyro, numpyro.distributions as dist
    import ppl_models as pm
    from ppl_models.scale import shard_rows

    assert jax.device_count() == 4, jax.devices()

    def logistic(X, y=None):
        beta = numpyro.sample("beta", dist.Normal(0, 1).expand([X.shape[1]]).to_event(1))
        with numpyro.plate("obs", X.shape[0]):
            numpyro.sample("y", dist.Bernoulli(logits=X @ beta), obs=y)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 5))
    y = (rng.random(4000) < 1 / (1 + np.exp(-X @ np.arange(5.0) / 3))).astype(np.float64)
    data = {"X": X, "y": y}
    sharded = shard_rows(data, ["X", "y"])
    assert len(sharded["X"].sharding.device_set) == 4
    f_plain = jax.jit(jax.value_and_grad(pm.log_joint_fn(logistic, data)))
    # the data's arrays go in as arguments: a closed-over array would be a (replicated) constant
    lj_shard = pm.log_joint_fn(logistic, sharded)
    f_shard = jax.jit(jax.value_and_grad(lj_shard))
    hlo = f_shard.lower({"beta": jnp.zeros(5)}, lj_shard.arrays).compile().as_text()
    assert "f64[1000,5]" in hlo and "all-reduce" in hlo  # each device holds a quarter of the rows
    for b in rng.normal(size=(3, 5)):
        v1, g1 = f_plain({"beta": jnp.asarray(b)})
        v2, g2 = f_shard({"beta": jnp.asarray(b)}, lj_shard.arrays)
        np.testing.assert_allclose(v1, v2, rtol=1e-6)
        np.testing.assert_allclose(g1["beta"], g2["beta"], rtol=1e-6)

    # a family program: the Gaussian mixture's marginal likelihood, rows sharded
    from ppl_models.models.mixture import gaussian_mixture
    x = np.concatenate([rng.normal(-2, 0.5, 2000), rng.normal(1.5, 1.0, 2000)])
    mix = {"x": x, "num_components": 2}
    mix_sharded = shard_rows(mix, ["x"])
    g_plain = jax.jit(jax.value_and_grad(pm.log_joint_fn(gaussian_mixture, mix)))
    lj_mix = pm.log_joint_fn(gaussian_mixture, mix_sharded)
    g_shard = jax.jit(jax.value_and_grad(lj_mix))
    point = {"weights": jnp.array([0.4, 0.6]), "loc": jnp.array([-1.0, 1.0]), "scale": jnp.array([0.7, 1.2])}
    assert "all-reduce" in g_shard.lower(point, lj_mix.arrays).compile().as_text()
    (v1, g1), (v2, g2) = g_plain(point), g_shard(point, lj_mix.arrays)
    np.testing.assert_allclose(v1, v2, rtol=1e-6)
    for k in point:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-6, atol=1e-9)

    # a family program over many sequences: the Poisson HMM's forward pass, sequences sharded
    from numpyro import handlers
    from ppl_models.models.hmm import poisson_hmm
    counts = rng.poisson(np.where(rng.random((8, 60)) < 0.5, 3.0, 12.0)).astype(np.float64)
    lengths = np.array([60, 41, 60, 17, 55, 60, 33, 60], dtype=np.int32)
    counts[np.arange(60)[None, :] >= lengths[:, None]] = 0.0
    seqs = {"obs": counts, "lengths": lengths, "num_states": 2}
    seqs_sharded = shard_rows(seqs, ["obs", "lengths"])
    tr = handlers.trace(handlers.seed(poisson_hmm, 0)).get_trace(**seqs_sharded)
    assert len(tr["obs"]["value"].sharding.device_set) == 4  # the program kept the sharding
    h_plain = jax.jit(jax.value_and_grad(pm.log_joint_fn(poisson_hmm, seqs)))
    lj_hmm = pm.log_joint_fn(poisson_hmm, seqs_sharded)
    h_shard = jax.jit(jax.value_and_grad(lj_hmm))
    point = {"initial_probs": jnp.array([0.3, 0.7]), "transition_matrix": jnp.array([[0.9, 0.1], [0.2, 0.8]]),
             "log_rates": jnp.array([1.0, 2.4])}
    assert "f64[2,60]" in h_shard.lower(point, lj_hmm.arrays).compile().as_text()  # 2 sequences a device
    (v1, g1), (v2, g2) = h_plain(point), h_shard(point, lj_hmm.arrays)
    np.testing.assert_allclose(v1, v2, rtol=1e-6)
    for k in point:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-6, atol=1e-9)

    # a sharded NUTS fit reaches the same posterior as an unsharded one
    a = pm.fit(logistic, data, num_chains=2, num_warmup=200, num_samples=300, seed=0)
    b = pm.fit(logistic, data, num_chains=2, num_warmup=200, num_samples=300, seed=0, shard=["X", "y"])
    ma, mb = a.samples["beta"].mean(axis=(0, 1)), b.samples["beta"].mean(axis=(0, 1))
    sd = a.samples["beta"].std(axis=(0, 1))
    assert np.all(np.abs(ma - mb) < 0.5 * sd), (ma, mb, sd)
    assert b.info["sharded"] == "X,y"

    # sharded SVI (the data are arguments of the jitted loop) follows the same path
    sa = pm.fit(logistic, data, method="svi", num_steps=300, seed=0, progress_bar=False)
    sb = pm.fit(logistic, data, method="svi", num_steps=300, seed=0, shard=["X", "y"], progress_bar=False)
    np.testing.assert_allclose(sa.svi_losses, sb.svi_losses, rtol=1e-6)
    np.testing.assert_allclose(sa.samples["beta"].mean(axis=(0, 1)), sb.samples["beta"].mean(axis=(0, 1)), rtol=1e-5)

    # the per-process path (each process passes its own rows; here the one process has them all)
    # builds the same global array, and already-sharded arrays pass through unchanged
    local = shard_rows(data, ["X", "y"], process_local=True)
    assert local["X"].sharding.is_equivalent_to(sharded["X"].sharding, 2)
    np.testing.assert_array_equal(np.asarray(local["X"]), X)
    np.testing.assert_array_equal(np.asarray(local["y"]), y)
    again = shard_rows(local, ["X", "y"])
    assert again["X"] is local["X"] and again["y"] is local["y"]
    lj_local = pm.log_joint_fn(logistic, local)
    v3, g3 = f_shard({"beta": jnp.ones(5)}, lj_local.arrays)
    v4, g4 = f_shard({"beta": jnp.ones(5)}, lj_shard.arrays)
    np.testing.assert_array_equal(v3, v4)
    np.testing.assert_array_equal(g3["beta"], g4["beta"])
    sc = pm.fit(logistic, local, method="svi", num_steps=300, seed=0, shard=["X", "y"], progress_bar=False)
    np.testing.assert_allclose(sc.svi_losses, sb.svi_losses, rtol=1e-6)

    # parallel chains (one per device) give the same draws as sequential chains, same seed
    p = pm.fit(logistic, data, num_chains=4, num_warmup=100, num_samples=100, seed=3, chain_method="parallel")
    s = pm.fit(logistic, data, num_chains=4, num_warmup=100, num_samples=100, seed=3, chain_method="sequential")
    np.testing.assert_allclose(p.samples["beta"], s.samples["beta"], rtol=1e-9, atol=1e-12)
    print("SCALE-OK")
''')


@pytest.mark.slow
def test_sharded_equals_unsharded_and_parallel_equals_sequential(tmp_path):
    script = tmp_path / "scale_check.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0 and "SCALE-OK" in r.stdout, r.stderr[-4000:]


def test_shard_rows_needs_even_splits():
    import numpy as np

    from ppl_models.scale import data_mesh, shard_rows

    mesh = data_mesh()
    n = mesh.devices.size
    if n == 1:
        pytest.skip("one device")
    with pytest.raises(DataError, match="divisible"):
        shard_rows({"X": np.zeros((n + 1, 2))}, ["X"], mesh)
    with pytest.raises(DataError, match="shard"):
        shard_rows({"X": np.zeros((n, 2))}, ["Z"], mesh)
    with pytest.raises(DataError, match="local rows divisible"):
        shard_rows({"X": np.zeros((n + 1, 2))}, ["X"], mesh, process_local=True)
    local = shard_rows({"X": np.arange(2 * n * 2.0).reshape(2 * n, 2)}, ["X"], mesh, process_local=True)
    np.testing.assert_array_equal(np.asarray(local["X"]), np.arange(2 * n * 2.0).reshape(2 * n, 2))
    assert len(local["X"].sharding.device_set) == n


def test_single_host_path_is_a_no_op():
    assert initialize_distributed({}) is False


def test_partial_multi_host_environment_is_an_error():
    with pytest.raises(DataError, match=DISTRIBUTED_ENV["num_processes"]):
        initialize_distributed({DISTRIBUTED_ENV["coordinator_address"]: "10.0.0.1:1234"})


# --------------------------------------------------------------------------- chain method default
def test_default_chain_method_uses_a_device_per_chain_when_there_are_enough(monkeypatch):
    import jax

    from ppl_models.inference import default_chain_method

    monkeypatch.setattr(jax, "local_device_count", lambda *a, **k: 4)
    assert default_chain_method(1) == "sequential"  # one chain: nothing to spread
    assert default_chain_method(2) == "parallel"
    assert default_chain_method(4) == "parallel"
    assert default_chain_method(5) == "sequential"  # fewer devices than chains
    monkeypatch.setattr(jax, "local_device_count", lambda *a, **k: 1)
    assert default_chain_method(4) == "sequential"


# --------------------------------------------------------------------------- precision switch
PRECISION_SCRIPT = textwrap.dedent('''
    import jax, jax.numpy as jnp, numpy as np, numpyro, numpyro.distributions as dist
    import ppl_models as pm

    def model(y=None):
        mu = numpyro.sample("mu", dist.Normal(0, 10))
        with numpyro.plate("obs", 50):
            numpyro.sample("y", dist.Normal(mu, 1), obs=y)

    y = np.random.default_rng(0).normal(3.0, 1.0, 50)
    assert jnp.asarray(1.0).dtype == jnp.float32  # float32 by default
    f32 = pm.fit(model, {"y": y}, method="map", num_steps=200, learning_rate=0.1, seed=0, progress_bar=False)
    assert f32.samples["mu"].dtype == np.float32, f32.samples["mu"].dtype
    pm.set_precision(True)
    assert jnp.asarray(1.0).dtype == jnp.float64
    assert float(jnp.asarray(1.0) + 1e-12) != 1.0  # a difference float32 cannot hold
    f64 = pm.fit(model, {"y": y}, method="svi", num_steps=300, learning_rate=0.2, seed=0, progress_bar=False)
    assert f64.samples["mu"].dtype == np.float64, f64.samples["mu"].dtype
    assert f64.log_likelihood()["y"].dtype == np.float64
    assert abs(f64.samples["mu"].mean() - y.mean()) < 0.3
    pm.set_precision(False)
    assert jnp.asarray(1.0).dtype == jnp.float32
    print("PRECISION-OK")
''')


def test_set_precision_switches_jax_between_float32_and_float64(tmp_path):
    script = tmp_path / "precision_check.py"
    script.write_text(PRECISION_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_ENABLE_X64",)}
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and "PRECISION-OK" in r.stdout, r.stderr[-4000:]


# --------------------------------------------------------------------------- one HMM per series
@pytest.mark.slow  # ~10 s on an idle 2-core machine, most of it NUTS over three series in lock-step
def test_fit_many_fits_one_hmm_per_series_in_one_compiled_call(monkeypatch):
    import jax
    import numpy as np

    from ppl_models import batched
    from ppl_models.models.hmm import poisson_hmm

    class CountingJax:
        """``jax`` as seen by ppl_models.batched, with its jit calls recorded."""

        def __init__(self):
            self.jitted = []
            self.calls = 0

        def __getattr__(self, name):
            return getattr(jax, name)

        def jit(self, fn, **kwargs):
            compiled = jax.jit(fn, **kwargs)
            self.jitted.append(compiled)

            def call(*args, **kw):
                self.calls += 1
                return compiled(*args, **kw)
            return call

    spy = CountingJax()
    monkeypatch.setattr(batched, "jax", spy)
    rng = np.random.default_rng(0)
    rates = np.array([[2.0, 8.0], [3.0, 12.0], [5.0, 18.0]])  # per series: the low and the high state
    T = 100
    series = []
    for low, high in rates:
        state, obs = 0, []
        for _ in range(T):  # sticky two-state chain
            state = state if rng.random() < 0.9 else 1 - state
            obs.append(rng.poisson((low, high)[state]))
        series.append(obs)
    obs = np.asarray(series, dtype=np.float32)  # (3 series, T)
    draws = batched.fit_many(poisson_hmm, {"obs": obs}, {"num_states": 2}, num_warmup=100, num_samples=100,
                             max_tree_depth=5, seed=0)
    assert len(spy.jitted) == 1 and spy.calls == 1  # three fits, one compiled call
    assert spy.jitted[0]._cache_size() == 1
    assert draws["rates"].shape == (3, 100, 2)
    est = draws["rates"].mean(axis=1)  # (3, 2): state 0 has the lower rate (ordered)
    np.testing.assert_allclose(est, rates, rtol=0.2)
    assert draws["diverging"].mean() < 0.05
