"""Strong and weak scaling of logistic regression over 1, 2 and 4 host devices, and the peak
memory of chunked versus unchunked posterior prediction.

Each configuration runs in a fresh process (XLA fixes the device count when JAX starts) and
reports wall time and its own peak resident set size (``ru_maxrss``):

* ``grad``: one jitted value-and-gradient of the log joint with the rows sharded across the
  devices (median of 20 after compilation) — the NUTS inner loop;
* ``nuts``: a short NUTS run (1 chain, 100 warm-up, 100 draws) on the sharded data;
* ``svi``: 300 SVI steps on the sharded data.

Strong scaling keeps N fixed as devices grow; weak scaling keeps N / devices fixed. On a
machine with fewer cores than devices, the "devices" share cores, so the ratios here show the
overhead and the SPMD partitioning working, not a speed-up; on real accelerators the same
script gives absolute figures.

    python benchmarks/bench_scaling.py [--sizes 100000 1000000] [--devices 1 2 4] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent('''
    import json, os, resource, statistics, sys, time
    cfg = json.loads(sys.argv[1])
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={cfg['devices']}"
    os.environ["PPL_MODELS_HOST_DEVICES"] = "0"
    import jax, jax.numpy as jnp, numpy as np, numpyro, numpyro.distributions as dist
    import ppl_models as pm
    from ppl_models.scale import shard_rows

    def logistic(X, y=None):
        beta = numpyro.sample("beta", dist.Normal(0, 2.5).expand([X.shape[1]]).to_event(1))
        with numpyro.plate("obs", X.shape[0]):
            numpyro.sample("y", dist.Bernoulli(logits=X @ beta), obs=y)

    out = dict(cfg)
    if cfg["kind"] == "predict":
        rng = np.random.default_rng(0)
        n, draws = cfg["n"], cfg["draws"]
        X = rng.normal(size=(n, 4)).astype(np.float32)
        samples = {"beta": rng.normal(size=(1, draws, 4)).astype(np.float32)}
        fit = pm.Fit.from_samples(logistic, {"X": X, "y": None}, samples, method="exact", observed=("y",))
        t0 = time.perf_counter()
        if cfg["chunk"]:
            # stream chunks to a file on disk: only one chunk is ever in memory (plain writes,
            # not a memory map, whose touched pages would count in the resident set)
            path = cfg["tmp"]
            with open(path, "wb") as fh:
                for start in range(0, draws, cfg["chunk"]):
                    part = pm.Fit.from_samples(logistic, {"X": X, "y": None},
                                               {"beta": samples["beta"][:, start:start + cfg["chunk"]]},
                                               method="exact", observed=("y",))
                    np.asarray(part.predict(seed=start)["y"][0], np.float32).tofile(fh)
            assert os.path.getsize(path) == 4 * draws * n
            os.unlink(path)
        else:
            y = fit.predict(seed=0)["y"]
            assert y.shape == (1, draws, n)
        out["seconds"] = time.perf_counter() - t0
    else:
        assert jax.device_count() == cfg["devices"]
        rng = np.random.default_rng(0)
        n, d = cfg["n"], 10
        X = rng.normal(size=(n, d)).astype(np.float32)
        beta = rng.normal(size=d).astype(np.float32) / 3
        y = (rng.random(n) < 1 / (1 + np.exp(-X @ beta))).astype(np.float32)
        data = shard_rows({"X": X, "y": y}, ["X", "y"])
        # the sharded arrays are arguments of the jitted function (a closed-over array would be
        # compiled in as a replicated constant)
        lj = pm.log_joint_fn(logistic, data)
        vg = jax.jit(jax.value_and_grad(lj))
        b0 = {"beta": jnp.zeros(d)}
        jax.block_until_ready(vg(b0, lj.arrays))
        times = []
        for _ in range(20):
            t0 = time.perf_counter(); jax.block_until_ready(vg(b0, lj.arrays)); times.append(time.perf_counter() - t0)
        out["grad_ms"] = 1e3 * statistics.median(times)
        if cfg.get("grad_only"):
            out.update(nuts_s=float("nan"), nuts_grads=0, svi_s=float("nan"))
            out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print("RESULT " + json.dumps(out))
            sys.exit(0)
        t0 = time.perf_counter()
        f = pm.fit(logistic, {"X": X, "y": y}, num_chains=1, num_warmup=100, num_samples=100, seed=0,
                   shard=["X", "y"], progress_bar=False)
        out["nuts_s"] = time.perf_counter() - t0
        out["nuts_grads"] = int(f.sample_stats["n_steps"].sum())
        t0 = time.perf_counter()
        pm.fit(logistic, {"X": X, "y": y}, method="svi", num_steps=300, num_posterior_draws=10, seed=0,
               shard=["X", "y"], progress_bar=False)
        out["svi_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))
''')


def run(cfg: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True, env=env)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode != 0 or not line:
        raise SystemExit(f"config {cfg} failed:\n{r.stderr[-3000:]}")
    return json.loads(line[0][7:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--weak-rows-per-device", type=int, default=100_000)
    ap.add_argument("--predict-draws", type=int, default=10_000)
    ap.add_argument("--predict-points", type=int, default=20_000)
    ap.add_argument("--predict-chunk", type=int, default=500, help="draws per chunk in the chunked run")
    ap.add_argument("--only-predict", action="store_true", help="skip the scaling runs")
    ap.add_argument("--no-weak", action="store_true", help="skip the weak-scaling runs")
    ap.add_argument("--grad-only", action="store_true", help="time the sharded gradient only (no NUTS, SVI)")
    ap.add_argument("--no-predict", action="store_true", help="skip the posterior-predictive memory runs")
    args = ap.parse_args()
    if not args.only_predict:
        scaling(args)
    if not args.no_predict:
        predict(args)


def scaling(args) -> None:

    print("strong scaling (N fixed)")
    print(f"{'N':>10} {'dev':>4} {'grad ms':>9} {'NUTS s':>8} {'grads':>7} {'SVI s':>7} {'RSS MB':>8}")
    for n in args.sizes:
        base = None
        for dev in args.devices:
            r = run({"kind": "fit", "n": n, "devices": dev, "grad_only": args.grad_only})
            base = base or r
            print(f"{n:>10} {dev:>4} {r['grad_ms']:>9.2f} {r['nuts_s']:>8.1f} {r['nuts_grads']:>7} "
                  f"{r['svi_s']:>7.1f} {r['peak_rss_mb']:>8.0f}   grad speed-up {base['grad_ms'] / r['grad_ms']:.2f}x")
    if args.no_weak:
        return
    print("weak scaling (N / devices fixed)")
    for dev in args.devices:
        n = args.weak_rows_per_device * dev
        r = run({"kind": "fit", "n": n, "devices": dev})
        print(f"{n:>10} {dev:>4} {r['grad_ms']:>9.2f} {r['nuts_s']:>8.1f} {r['nuts_grads']:>7} "
              f"{r['svi_s']:>7.1f} {r['peak_rss_mb']:>8.0f}")


def predict(args) -> None:
    draws, points, size = args.predict_draws, args.predict_points, args.predict_chunk
    print(f"posterior predictive, {draws} draws x {points} points ({draws * points * 4 / 2**30:.2f} GiB of float32)")
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "ppl_models_pred.npy")
    full = run({"kind": "predict", "n": points, "draws": draws, "chunk": 0, "devices": 1})
    chunk = run({"kind": "predict", "n": points, "draws": draws, "chunk": size, "devices": 1, "tmp": tmp})
    print(f"  unchunked: {full['seconds']:6.1f} s  peak RSS {full['peak_rss_mb']:8.0f} MB")
    print(f"  chunked ({size} draws at a time, written to disk): {chunk['seconds']:6.1f} s  peak RSS "
          f"{chunk['peak_rss_mb']:8.0f} MB  ({full['peak_rss_mb'] / chunk['peak_rss_mb']:.1f}x less)")


if __name__ == "__main__":
    main()
