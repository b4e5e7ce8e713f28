"""HMM kernels against hmmlearn (log and scaling C++ kernels) and dynamax; NUTS against PyMC.

Run (pinned, one thread for every library so the ratios are fair on a shared machine; dynamax
is not a dependency: install it into a separate target, e.g. ``pip install --target /tmp/peers
dynamax``, and add ``PYTHONPATH=/tmp/peers``; ``PPL_MODELS_NO_COMPILATION_CACHE=1`` makes the
compile column a cold compile):

    OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        .venv/bin/python benchmarks/bench_hmm.py [--quick] [--no-bayes]

Every figure is the median of repeats after a warm-up call (the first call's extra time is
reported as compile time); the repeats are taken in rounds over all implementations of a size,
so that load on a shared machine falls on all of them alike. All timings are float64 for hmmlearn (it has no float32 kernels) and
float32 for the JAX libraries (their default), on the same (T, K) emission log-likelihoods.
Printed as Markdown tables; the ratios are hmmlearn-or-dynamax time / ours (> 1: ours faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from ppl_models.kernels import hmm as K_

jax.config.update("jax_enable_x64", False)


def timeit(fn, repeats: int) -> tuple[float, float]:
    """(first-call seconds, median seconds of ``repeats`` further calls)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def timeit_interleaved(ops: dict, repeats: int) -> dict:
    """``{key: (first-call seconds, median seconds)}`` with the repeats taken in rounds, one call
    of every op per round: on a shared machine a burst of load then hits every implementation
    alike instead of whichever happened to be running, so the same-run ratios stay fair."""
    first = {}
    for key, fn in ops.items():
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        first[key] = time.perf_counter() - t0
    times = {key: [] for key in ops}
    for _ in range(repeats):
        for key, fn in ops.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[key].append(time.perf_counter() - t0)
    return {key: (first[key], statistics.median(times[key]), min(times[key])) for key in ops}


def problem(K: int, T: int, seed: int = 0, batch: int | None = None):
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K) + np.eye(K) * 2
    A /= A.sum(1, keepdims=True)
    shape = (T, K) if batch is None else (batch, T, K)
    ll = rng.normal(size=shape) * 2.0 - 3.0
    return pi, A, ll


def machine_flops(repeats: int = 5) -> float:
    """Measured float32 matmul rate of this process (FLOP/s), the yardstick for T K^2 work."""
    n = 1024
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    _, t = timeit(lambda: f(a), repeats)
    return 2 * n ** 3 / t


# -------------------------------------------------------------------------------------- peers


def hmmlearn_ops(pi, A, ll):
    from hmmlearn import _hmmc

    frame = np.exp(ll)

    def marg_log():
        lp, fwd = _hmmc.forward_log(pi, A, ll)
        bwd = _hmmc.backward_log(pi, A, ll)
        g = fwd + bwd
        g -= g.max(1, keepdims=True)
        g = np.exp(g)
        return g / g.sum(1, keepdims=True)

    def marg_scaling():
        lp, fwd, scale = _hmmc.forward_scaling(pi, A, frame)
        bwd = _hmmc.backward_scaling(pi, A, frame, scale)
        g = fwd * bwd
        return g / g.sum(1, keepdims=True)

    return {
        ("loglik", "hmmlearn-log"): lambda: _hmmc.forward_log(pi, A, ll)[0],
        ("loglik", "hmmlearn-scaling"): lambda: _hmmc.forward_scaling(pi, A, frame)[0],
        ("viterbi", "hmmlearn"): lambda: _hmmc.viterbi(pi, A, ll)[1],
        ("marginals", "hmmlearn-log"): marg_log,
        ("marginals", "hmmlearn-scaling"): marg_scaling,
    }


def dynamax_ops(pi, A, ll, batched: bool, parallel: bool = True):
    from dynamax.hidden_markov_model import inference as I
    from dynamax.hidden_markov_model import parallel_inference as P

    pi32, A32, ll32 = (jnp.asarray(x, jnp.float32) for x in (pi, A, ll))
    wrap = (lambda f: jax.jit(jax.vmap(f, in_axes=(None, None, 0)))) if batched else jax.jit
    f_filter = wrap(lambda p, a, e: I.hmm_filter(p, a, e).marginal_loglik)
    f_mode = wrap(lambda p, a, e: I.hmm_posterior_mode(p, a, e))
    f_smooth = wrap(lambda p, a, e: I.hmm_smoother(p, a, e).smoothed_probs)
    f_pfilter = wrap(lambda p, a, e: P.hmm_filter(p, a, e).marginal_loglik)
    return {
        ("loglik", "dynamax"): lambda: f_filter(pi32, A32, ll32),
        **({("loglik", "dynamax-parallel"): lambda: f_pfilter(pi32, A32, ll32)} if parallel else {}),
        ("viterbi", "dynamax"): lambda: f_mode(pi32, A32, ll32),
        ("marginals", "dynamax"): lambda: f_smooth(pi32, A32, ll32),
    }


def our_ops(pi, A, ll, associative: bool = True):
    lp, la, e = (jnp.asarray(np.log(x) if i < 2 else x, jnp.float32) for i, x in enumerate((pi, A, ll)))
    out = {}
    for method in ("sequential", "associative") if associative else ("sequential",):
        for scaling in ("log", "normalized"):
            tag = f"ours-{method[:3]}-{scaling[:4]}"
            f = jax.jit(lambda a, b, c, m=method, s=scaling: K_.forward_log_prob(a, b, c, method=m, scaling=s))
            out[("loglik", tag)] = (lambda f=f: f(lp, la, e))
            g = jax.jit(jax.grad(lambda a, b, c, m=method, s=scaling:
                                 K_.forward_log_prob(a, b, c, method=m, scaling=s).sum(), argnums=(1, 2)))
            out[("grad", tag)] = (lambda g=g: g(lp, la, e))
            fb = jax.jit(lambda a, b, c, m=method, s=scaling:
                         K_.forward_backward(a, b, c, method=m, scaling=s).smoothed_probs)
            out[("marginals", tag)] = (lambda fb=fb: fb(lp, la, e))
        v = jax.jit(lambda a, b, c, m=method: K_.viterbi(a, b, c, method=m).path)
        out[("viterbi", f"ours-{method[:3]}")] = (lambda v=v: v(lp, la, e))
    # The public functions called directly (no outer jit): their own jitted core plus the
    # Python checks (shapes, and the sums of exp(log_initial) and of exp(log_transition) rows).
    # Reported, not counted in the "fastest ours" comparison.
    out[("loglik", "direct-seq-norm")] = lambda: K_.forward_log_prob(lp, la, e, scaling="normalized")
    out[("viterbi", "direct-seq")] = lambda: K_.viterbi(lp, la, e).path
    return out


# -------------------------------------------------------------------------------------- kernels


def run_kernels(quick: bool, associative: bool = True):
    sizes = [(4, 1000), (16, 1000), (4, 10_000), (16, 10_000), (4, 100_000), (16, 100_000)]
    if quick:
        sizes = [(4, 1000), (16, 10_000)]
    sizes = [(K, T, None) for K, T in sizes] + [(4, 1000, 64), (16, 1000, 64)]
    flops = machine_flops()
    print(f"\nmachine float32 matmul rate (1024^2 @ 1024^2, one thread): {flops / 1e9:.2f} GFLOP/s\n")
    rows = []
    for K, T, B in sizes:
        pi, A, ll = problem(K, T, batch=B)
        repeats = 5 if T * (B or 1) >= 100_000 else 15
        # The associative scan does O(T K^3) work (it is the parallel form, for accelerators);
        # on a CPU it only costs time at the large sizes, so it is timed up to T K^3 = 5e6.
        small = associative and T * K ** 3 * (B or 1) <= 5_000_000
        ops = our_ops(pi, A, ll, associative=small)
        ops.update(dynamax_ops(pi, A, ll, batched=B is not None, parallel=small))
        if B is None:
            ops.update(hmmlearn_ops(pi, A, ll))
        else:
            # hmmlearn has no batch call: one call per sequence, as its `lengths` loop does
            per = [hmmlearn_ops(pi, A, ll[b]) for b in range(B)]
            for key in per[0]:
                ops[key] = (lambda key=key: [p[key]() for p in per])
        res = timeit_interleaved(ops, repeats)
        rows.append(((K, T, B), res))
        label = f"K={K}, T={T}" + (f", batch {B}" if B else "") + f" (load average {os.getloadavg()[0]:.1f})"
        print(f"### {label}\n")
        print("| op | implementation | median ms | min ms | compile+first ms | GFLOP/s (2TK² per pass, median) "
              "| % of matmul rate |")
        print("|---|---|---:|---:|---:|---:|---:|")
        work = 2.0 * T * K * K * (B or 1)
        for (op, impl), (first, med, low) in sorted(res.items()):
            rate = work / med
            print(f"| {op} | {impl} | {med * 1e3:.3f} | {low * 1e3:.3f} | {(first - med) * 1e3:.1f} "
                  f"| {rate / 1e9:.3f} | {100 * rate / flops:.2f} |")
        print()
        best = {}
        # The median is the measure; the minimum is the least disturbed repeat, the better
        # estimate of the uncontended cost when the machine is loaded.
        for stat, col in (("median", 1), ("min", 2)):
            for op in ("loglik", "viterbi", "marginals"):
                peers = {i: t[col] for (o, i), t in res.items()
                         if o == op and not i.startswith(("ours", "direct"))}
                ours = {i: t[col] for (o, i), t in res.items() if o == op and i.startswith("ours")}
                bi, bt = min(ours.items(), key=lambda kv: kv[1])
                pi_, pt = min(peers.items(), key=lambda kv: kv[1])
                best[(stat, op)] = (bi, bt, pi_, pt)
                print(f"- {op} ({stat}): fastest ours {bi} {bt * 1e3:.3f} ms vs fastest peer {pi_} {pt * 1e3:.3f} ms "
                      f"-> ratio peer/ours {pt / bt:.2f}")
            for tag in ("ours-seq-log", "ours-seq-norm"):
                print(f"- gradient / forward ({tag}, {stat}): "
                      f"{res[('grad', tag)][col] / res[('loglik', tag)][col]:.2f}")
        print()
    return rows


# -------------------------------------------------------------------------------------- Bayesian


def run_bayes(num_chains: int = 4, num_warmup: int = 1000, num_samples: int = 1000):
    import arviz as az

    import ppl_models as pm
    from ppl_models.datasets.earthquakes import load_earthquakes
    from ppl_models.models import hmm

    data = load_earthquakes()
    counts = data.kwargs["obs"]
    args = {**data.kwargs, "num_states": 2, "log_rate_loc": 3.0}
    print("\n### NUTS on the earthquake 2-state Poisson HMM "
          f"({num_chains} chains x {num_warmup} warm-up + {num_samples} draws)\n")
    print("| sampler | run | wall s (sampling incl. warm-up) | min bulk ESS | min tail ESS | ESS/s (min bulk) | rates |")
    print("|---|---|---:|---:|---:|---:|---|")
    results = {}
    for run in ("first", "second"):
        fit = pm.fit(hmm.poisson_hmm, args, method="nuts", num_chains=num_chains, num_warmup=num_warmup,
                     num_samples=num_samples, seed=1 if run == "first" else 2, chain_method="sequential")
        s = az.summary(fit.to_arviz(log_likelihood=False), var_names=["log_rates", "transition_matrix"],
                       kind="diagnostics", round_to="none")
        secs = fit.info["sampling_seconds"]
        ess_b, ess_t = float(s["ess_bulk"].min()), float(s["ess_tail"].min())
        rates = fit.get_samples()["rates"].mean(0).round(2)
        print(f"| ppl_models (NumPyro NUTS, sequential chains) | {run} | {secs:.1f} | {ess_b:.0f} | {ess_t:.0f} | {ess_b / secs:.0f} | {rates} |")
        results[("ours", run)] = ess_b / secs

    import pymc as pmc
    import pytensor
    import pytensor.tensor as pt

    def build():
        with pmc.Model() as model:
            K = 2
            pi = pmc.Dirichlet("initial_probs", a=np.ones(K))
            A = pmc.Dirichlet("transition_matrix", a=np.ones((K, K)), shape=(K, K))
            # the same prior as OrderedIID(Normal(3, 1), 2): iid normals restricted to increasing
            log_rates = pmc.Normal("log_rates", 3.0, 1.0, shape=K,
                                   transform=pmc.distributions.transforms.ordered,
                                   initval=np.array([2.7, 3.2]))
            rates = pt.exp(log_rates)
            x = pt.as_tensor_variable(counts.astype("float64"))
            ll = x[:, None] * pt.log(rates)[None, :] - rates[None, :] - pt.gammaln(x + 1)[:, None]
            log_A = pt.log(A)

            def step(ll_t, log_alpha, log_A):
                return pt.logsumexp(log_alpha[:, None] + log_A, axis=0) + ll_t

            alpha0 = pt.log(pi) + ll[0]
            alphas, _ = pytensor.scan(step, sequences=[ll[1:]], outputs_info=[alpha0], non_sequences=[log_A])
            pmc.Potential("obs", pt.logsumexp(alphas[-1]))
        return model

    for sampler in ("pymc", "nutpie"):
        for run in ("first", "second"):
            model = build()
            t0 = time.perf_counter()
            with model:
                idata = pmc.sample(draws=num_samples, tune=num_warmup, chains=num_chains, cores=1,
                                   random_seed=1 if run == "first" else 2, progressbar=False,
                                   nuts_sampler=sampler, compute_convergence_checks=False)
            secs = time.perf_counter() - t0
            s = az.summary(idata, var_names=["log_rates", "transition_matrix"], kind="diagnostics",
                           round_to="none")
            ess_b, ess_t = float(s["ess_bulk"].min()), float(s["ess_tail"].min())
            rates = np.exp(np.asarray(idata.posterior["log_rates"]).reshape(-1, 2)).mean(0).round(2)
            print(f"| PyMC {pmc.__version__} ({sampler} NUTS, cores=1) | {run} | {secs:.1f} | {ess_b:.0f} | {ess_t:.0f} | {ess_b / secs:.0f} | {rates} |")
            results[(sampler, run)] = ess_b / secs
    print()
    for sampler in ("pymc", "nutpie"):
        print(f"- ESS/s ratio ours / {sampler} (second runs): {results[('ours', 'second')] / results[(sampler, 'second')]:.2f}")
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="two sizes only")
    ap.add_argument("--no-bayes", action="store_true", help="skip the NUTS comparison")
    ap.add_argument("--no-kernels", action="store_true", help="skip the kernel comparison")
    ap.add_argument("--no-associative", action="store_true",
                    help="skip the parallel-in-time variants (ours and dynamax's; slow to compile on a CPU)")
    a = ap.parse_args()
    print(f"jax {jax.__version__}, devices {jax.devices()}, load average {os.getloadavg()}, "
          f"compilation cache {'off' if os.environ.get('PPL_MODELS_NO_COMPILATION_CACHE') else 'on'}")
    if not a.no_kernels:
        run_kernels(a.quick, associative=not a.no_associative)
    if not a.no_bayes:
        run_bayes()


if __name__ == "__main__":
    main()
