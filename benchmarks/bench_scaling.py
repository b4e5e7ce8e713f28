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

The posterior-predictive section runs the library's own API in three ways, each in a fresh
process: all draws at once (``fit.predict()``), ``fit.predict(batch_size=...)`` (chunks filled
into one preallocated result), and ``fit.predict(batch_size=..., out="pred.npy")`` (chunks
written to disk; the result is never in memory).

Every run writes ``benchmarks/results/scaling.md`` (the tables, the command, the date, the git
revision and the load average before and after) and the raw records to ``scaling.json``
beside it (``--out-dir`` elsewhere, ``--no-write`` not at all, ``--append`` after the runs
already there).

    python benchmarks/bench_scaling.py [--sizes 100000 1000000] [--devices 1 2 4] [--no-weak]
        [--predict-draws 1000 --predict-points 1000000 --predict-chunk 100] [--only-predict]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
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
        out["rss_before_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        if cfg["mode"] == "disk":
            # the library writes each chunk to the .npy file with plain writes (not through a
            # memory map, whose touched pages would stay in the resident set)
            y = fit.predict(seed=0, batch_size=cfg["chunk"], out=cfg["tmp"])["y"]
            assert y.shape == (1, draws, n) and isinstance(y, np.memmap)
            assert os.path.getsize(cfg["tmp"]) >= 4 * draws * n
            del y
            os.unlink(cfg["tmp"])
        elif cfg["mode"] == "memory":
            y = fit.predict(seed=0, batch_size=cfg["chunk"])["y"]
            assert y.shape == (1, draws, n)
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
    res = json.loads(line[0][7:])
    res["loadavg_after"] = _loadavg()
    RECORDS.append(res)
    return res


RECORDS: list[dict] = []
REVISION: list[str] = []


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:  # not Linux
        return "n/a"


def _git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
        return rev + (" (uncommitted changes in the tree)" if dirty else "") if rev else "unknown"
    except OSError:
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--weak-rows-per-device", type=int, default=100_000)
    ap.add_argument("--predict-draws", type=int, default=1_000)
    ap.add_argument("--predict-points", type=int, default=1_000_000)
    ap.add_argument("--predict-chunk", type=int, default=100, help="draws per chunk in the chunked runs")
    ap.add_argument("--only-predict", action="store_true", help="skip the scaling runs")
    ap.add_argument("--no-weak", action="store_true", help="skip the weak-scaling runs")
    ap.add_argument("--grad-only", action="store_true", help="time the sharded gradient only (no NUTS, SVI)")
    ap.add_argument("--no-predict", action="store_true", help="skip the posterior-predictive memory runs")
    ap.add_argument("--no-unchunked", action="store_true",
                    help="skip the all-at-once prediction (it holds the whole result and more)")
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    ap.add_argument("--no-write", action="store_true", help="print only; write no results files")
    ap.add_argument("--append", action="store_true",
                    help="add this run (its own header and tables) to the existing scaling.md / .json")
    args = ap.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = _loadavg()
    REVISION.append(_git_revision())  # the code that ran: read at the start, not when writing
    sections: list[str] = []
    if not args.only_predict:
        sections += scaling(args)
    if not args.no_predict:
        sections += predict(args)
    if not args.no_write:
        write_results(args, started, load_before, sections)


def _row(r: dict, base: dict | None, label: str = "") -> str:
    speed = f"{base['grad_ms'] / r['grad_ms']:.2f}x" if base else ""
    nuts = "" if r["nuts_s"] != r["nuts_s"] else f"{r['nuts_s']:.1f}"  # NaN: not run (--grad-only)
    svi = "" if r["svi_s"] != r["svi_s"] else f"{r['svi_s']:.1f}"
    return (f"| {label}{r['n']:,} | {r['devices']} | {r['grad_ms']:.2f} | {speed} | {nuts} | "
            f"{r['nuts_grads'] or ''} | {svi} | {r['peak_rss_mb']:,.0f} | {r['loadavg_after']} |")


_HEAD = ("| N rows | devices | gradient ms | gradient speed-up | NUTS s | gradients | SVI s | peak RSS MB "
         "| load after |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def scaling(args) -> list[str]:
    lines = ["## Strong scaling (N fixed)", "", _HEAD]
    print("strong scaling (N fixed)")
    print(f"{'N':>10} {'dev':>4} {'grad ms':>9} {'NUTS s':>8} {'grads':>7} {'SVI s':>7} {'RSS MB':>8}")
    for n in args.sizes:
        base = None
        for dev in args.devices:
            r = run({"kind": "fit", "n": n, "devices": dev, "grad_only": args.grad_only})
            base = base or r
            print(f"{n:>10} {dev:>4} {r['grad_ms']:>9.2f} {r['nuts_s']:>8.1f} {r['nuts_grads']:>7} "
                  f"{r['svi_s']:>7.1f} {r['peak_rss_mb']:>8.0f}   grad speed-up {base['grad_ms'] / r['grad_ms']:.2f}x "
                  f"(load {r['loadavg_after']})", flush=True)
            lines.append(_row(r, base))
    if args.no_weak:
        return lines + [""]
    lines += ["", "## Weak scaling (N / devices fixed)", "", _HEAD]
    print("weak scaling (N / devices fixed)")
    base = None
    for dev in args.devices:
        n = args.weak_rows_per_device * dev
        r = run({"kind": "fit", "n": n, "devices": dev, "grad_only": args.grad_only})
        base = base or r
        print(f"{n:>10} {dev:>4} {r['grad_ms']:>9.2f} {r['nuts_s']:>8.1f} {r['nuts_grads']:>7} "
              f"{r['svi_s']:>7.1f} {r['peak_rss_mb']:>8.0f}   (load {r['loadavg_after']})", flush=True)
        lines.append(_row(r, None))
    return lines + [""]


def predict(args) -> list[str]:
    draws, points, size = args.predict_draws, args.predict_points, args.predict_chunk
    gib = draws * points * 4 / 2**30
    print(f"posterior predictive, {draws} draws x {points} points ({gib:.2f} GiB of float32)")
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ppl_models_pred_{os.getpid()}.npy")
    runs = []
    if not args.no_unchunked:
        runs.append(("`fit.predict()` (all draws at once)", "full", 0))
    runs.append((f"`fit.predict(batch_size={size})` (one preallocated result)", "memory", size))
    runs.append((f"`fit.predict(batch_size={size}, out=\"pred.npy\")` (chunks written to disk)", "disk", size))
    lines = [f"## Posterior predictive, {draws:,} draws x {points:,} points ({gib:.2f} GiB of float32)", "",
             "| how | seconds | peak RSS MB | load after |", "|---|---:|---:|---|"]
    for label, mode, chunk in runs:
        r = run({"kind": "predict", "n": points, "draws": draws, "chunk": chunk, "mode": mode, "devices": 1,
                 "tmp": tmp})
        print(f"  {label}: {r['seconds']:6.1f} s  peak RSS {r['peak_rss_mb']:8.0f} MB  (load {r['loadavg_after']})",
              flush=True)
        lines.append(f"| {label} | {r['seconds']:.1f} | {r['peak_rss_mb']:,.0f} | {r['loadavg_after']} |")
    return lines + [""]


def write_results(args, started, load_before: str, sections: list[str]) -> None:
    os.makedirs(args.out_dir, exist_ok=True)
    import jax  # the parent only reports the version; the children set their own devices

    command = "python benchmarks/bench_scaling.py " + " ".join(sys.argv[1:])
    meta = {"command": command.strip(), "started_utc": started.isoformat(timespec="seconds"),
            "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_revision": REVISION[0] if REVISION else _git_revision(), "loadavg_before": load_before, "loadavg_after": _loadavg(),
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "jax": jax.__version__}
    md, js = os.path.join(args.out_dir, "scaling.md"), os.path.join(args.out_dir, "scaling.json")
    runs = []
    if args.append and os.path.exists(js):
        with open(js) as fh:
            old = json.load(fh)
        runs = old["runs"] if "runs" in old else [old]
    head = ["# Scaling benchmark (`benchmarks/bench_scaling.py`)", ""] if not (args.append and os.path.exists(md)) else [
        "", f"# Run {len(runs) + 1}", ""]
    head += [f"- command: `{meta['command']}`",
            f"- run: {meta['started_utc']} to {meta['finished_utc']} (UTC)",
            f"- git revision: {meta['git_revision']}",
            f"- machine: {meta['cpus']} CPUs, {meta['platform']}, Python {meta['python']}, jax {meta['jax']}",
            f"- load average (1, 5, 15 min): {meta['loadavg_before']} before, {meta['loadavg_after']} after; "
            "each row gives the load when its process ended",
            "- devices are XLA host devices (`--xla_force_host_platform_device_count`), which share the CPUs;",
            "  gradient: median of 20 jitted value-and-gradient calls of the sharded log joint; NUTS: 1 chain,",
            "  100 warm-up + 100 draws; SVI: 300 steps; peak RSS: the child process's `ru_maxrss`.", ""]
    with open(md, "a" if args.append else "w") as fh:
        fh.write("\n".join(head + sections))
    runs.append({"meta": meta, "records": RECORDS})
    with open(js, "w") as fh:
        json.dump({"runs": runs}, fh, indent=1)
    print(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
