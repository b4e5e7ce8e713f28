"""Bayesian networks against pgmpy, in one process: exact queries, forward sampling, learning.

Run::

    .venv/bin/python benchmarks/bench_bayesnet.py [--networks asia alarm hailfinder]
        [--pgmpy-queries 100] [--batch 1000] [--rows 100000] [--learn-rows 10000] [--nuts]
        [--repeats 5] [--skip queries sampling learning] [--memory]

For every network:

* one query (first call, which compiles, and a warm call) against one pgmpy
  ``VariableElimination.query``;
* ``--batch`` queries with different evidence (3 observed nodes a query, a random target) in
  one call of ``marginals_batch`` (the median of ``--repeats`` warm calls) against pgmpy
  answering ``--pgmpy-queries`` of them one by one (its per-query time is scaled to the batch:
  pgmpy has no batched query); the answers are compared on those queries;
* forward sampling of ``--rows`` rows against pgmpy's ``BayesianModelSampling.forward_sample``;
* learning the tables from ``--learn-rows`` sampled rows: our exact conjugate posterior (and
  NUTS with ``--nuts``, asia only) against pgmpy's maximum-likelihood and BDeu estimators, as
  time and error of the tables against the generating ones: the mean over the nodes of each
  table's mean absolute error (every node counts the same, whatever its table's size), for
  our posterior mean and for our posterior mode (the MLE with Dirichlet(1) rows: the like for
  like comparison with pgmpy's MLE);
* peak memory (``--memory``): each configuration (ours / pgmpy x batched queries / sampling)
  runs in a fresh subprocess, which reports the growth of its peak resident set size
  (``VmHWM`` reset through ``/proc/self/clear_refs`` just before the measured call, so the
  import and loading are not counted) and, in a second run of the same call, the peak of
  Python-side allocations (``tracemalloc``; NumPy buffers are counted, XLA's are not).

Timings are wall-clock seconds on whatever machine runs this; the ratios are what matter.
pgmpy is an optional peer: ``pip install pgmpy``.
"""

from __future__ import annotations

import argparse
import gzip
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def pgmpy_model(name):
    from pgmpy.readwrite import BIFReader

    from ppl_models.datasets.networks import BIF_DIR

    model = BIFReader(string=gzip.open(BIF_DIR / f"{name}.bif.gz", "rt").read()).get_model()
    for cpd in model.get_cpds():
        cpd.normalize()
    return model


def make_queries(net, n, seed):
    rng = np.random.default_rng(seed)
    rows = net.sample(n, seed=seed + 1)
    evidences, targets = [], []
    for r in range(n):
        ev_nodes = rng.choice(list(net.nodes), size=3, replace=False)
        evidences.append({v: rows.iloc[r][v] for v in ev_nodes})
        free = [v for v in net.nodes if v not in ev_nodes]
        targets.append(free[int(rng.integers(len(free)))])
    return evidences, targets


def bench_queries(name, net, model, args, out):
    from pgmpy.inference import VariableElimination

    ve = VariableElimination(model)
    evidences, targets = make_queries(net, args.batch, seed=0)
    # one query: the first call compiles; then the mean of 20 single calls on each side
    _, t_first = _timed(net.query, targets[0], evidences[0])
    n1 = min(20, len(evidences) - 1)
    t0 = time.perf_counter()
    for i in range(1, n1 + 1):
        net.query(targets[i], evidences[i])
    t_warm = (time.perf_counter() - t0) / n1
    t0 = time.perf_counter()
    for i in range(1, n1 + 1):
        ve.query([targets[i]], evidence=evidences[i], show_progress=False)
    t_pg1 = (time.perf_counter() - t0) / n1
    # batched: the first call compiles; then the median of --repeats warm calls
    frame = pd.DataFrame(evidences)
    _, t_batch_first = _timed(net.marginals_batch, frame)
    runs = [_timed(net.marginals_batch, frame) for _ in range(args.repeats)]
    margs = runs[0][0]
    t_batch = float(np.median([t for _, t in runs]))
    codes = net.encode(frame)
    net.marginals_codes(codes)
    t_codes = float(np.median([_timed(net.marginals_codes, codes)[1] for _ in range(args.repeats)]))
    k = min(args.pgmpy_queries, args.batch)
    t0 = time.perf_counter()
    worst = 0.0
    answers = []
    for ev, tgt in zip(evidences[:k], targets[:k]):
        answers.append(ve.query([tgt], evidence=ev, show_progress=False))
    t_pg = time.perf_counter() - t0
    for i, (f, tgt) in enumerate(zip(answers, targets[:k])):
        theirs = np.array([f.values[f.state_names[tgt].index(s)] for s in net.states[tgt]])
        worst = max(worst, float(np.abs(margs[tgt].iloc[i].to_numpy() - theirs).max()))
    per_pg = t_pg / k
    out.append({
        "network": name, "what": "one query", "ours_s": t_warm, "ours_first_call_s": t_first,
        "pgmpy_s": t_pg1, "ratio": t_pg1 / t_warm, "note": f"mean of {n1} single calls each",
    })
    out.append({
        "network": name, "what": f"{args.batch} queries", "ours_s": t_batch,
        "ours_first_call_s": t_batch_first, "pgmpy_s": per_pg * args.batch,
        "ratio": per_pg * args.batch / t_batch,
        "note": f"pgmpy {per_pg * 1e3:.1f} ms/query over {k}; max |diff| {worst:.1e}; "
                f"ours median of {args.repeats}",
    })
    out.append({
        "network": name, "what": f"{args.batch} queries, pre-encoded (marginals_codes)", "ours_s": t_codes,
        "ours_first_call_s": float("nan"), "pgmpy_s": per_pg * args.batch,
        "ratio": per_pg * args.batch / t_codes,
        "note": f"integer codes in, arrays out; median of {args.repeats}",
    })


def bench_sampling(name, net, model, args, out):
    from pgmpy.sampling import BayesianModelSampling

    _, t_first = _timed(net.sample, args.rows, 0)
    _, t_ours = _timed(net.sample, args.rows, 1)
    sampler = BayesianModelSampling(model)
    _, t_pg = _timed(sampler.forward_sample, size=args.rows, show_progress=False, seed=0)
    out.append({"network": name, "what": f"sample {args.rows} rows", "ours_s": t_ours,
                "ours_first_call_s": t_first, "pgmpy_s": t_pg, "ratio": t_pg / t_ours, "note": ""})


def _table_error(net, tables):
    """The mean over the nodes of each table's mean absolute error (not over all entries)."""
    return float(np.mean([np.abs(tables[v] - net.cpt_array(v, normalized=True)).mean() for v in net.nodes]))


def _entry_error(net, tables):
    """The mean absolute error over all entries of all tables together."""
    diffs = np.concatenate([np.abs(tables[v] - net.cpt_array(v, normalized=True)).ravel() for v in net.nodes])
    return float(diffs.mean())


def _mode_tables(net, frame, concentration=1.0):
    """The posterior mode of Dirichlet(concentration) rows: (counts + c - 1) normalized.

    With c = 1 it is the maximum-likelihood estimate; a parent configuration never seen in
    the data (a row of zeros) gets the uniform row, as pgmpy's MLE gives it.
    """
    from ppl_models.models.bayesnet import count_table

    codes = net.encode(frame)
    out = {}
    for v in net.nodes:
        a = count_table(net, codes, v) + concentration - 1.0
        tot = a.sum(axis=-1, keepdims=True)
        out[v] = np.where(tot > 0, a / np.where(tot > 0, tot, 1.0), 1.0 / a.shape[-1])
    return out


def bench_learning(name, net, model, args, out):
    from pgmpy.parameter_estimator import DiscreteBayesianEstimator, DiscreteMLE

    from ppl_models.models.bayesnet import fit_cpts

    frame = net.sample(args.learn_rows, seed=5)
    post, t_exact = _timed(fit_cpts, net, frame, "exact", num_draws=1000)
    mean_tables = {v: post.tables[v].mean(axis=0) for v in net.nodes}
    err_ours = _table_error(net, mean_tables)
    mode_tables = _mode_tables(net, frame)
    err_mode = _table_error(net, mode_tables)

    state_names = {v: [str(s) for s in net.states[v]] for v in net.nodes}

    def pg_tables(estimator_cls, **kw):
        m = model.copy()
        df = frame.astype(str)
        m.fit(df, estimator=estimator_cls(state_names=state_names, **kw))
        tables = {}
        for v in net.nodes:
            cpd = m.get_cpds(v)
            # pgmpy: values (card, *evidence cards) in cpd.variables order; ours (*parents, card)
            vals = cpd.values
            order = [cpd.variables[1:].index(p) + 1 for p in net.parents[v]] + [0]
            vals = np.transpose(vals, order)
            # reorder states to ours
            for ax, u in enumerate(list(net.parents[v]) + [v]):
                idx = [cpd.state_names[u].index(s) if s in cpd.state_names[u] else None for s in net.states[u]]
                if None in idx:  # a state never seen in the data: pgmpy leaves it out
                    return None
                vals = np.take(vals, idx, axis=ax)
            tables[v] = vals
        return tables

    tabs, t_mle = _timed(pg_tables, DiscreteMLE)
    err_mle = _table_error(net, tabs) if tabs is not None else float("nan")
    # the same estimate from both sides: the largest difference between our mode and pgmpy's MLE
    same = max(float(np.abs(tabs[v] - mode_tables[v]).max()) for v in net.nodes) if tabs is not None else float("nan")
    tabs, t_bdeu = _timed(pg_tables, DiscreteBayesianEstimator, prior_type="BDeu", equivalent_sample_size=5)
    err_bdeu = _table_error(net, tabs) if tabs is not None else float("nan")
    out.append({"network": name, "what": f"learn tables, {args.learn_rows} rows (exact Dirichlet posterior)",
                "ours_s": t_exact, "ours_first_call_s": float("nan"), "pgmpy_s": t_mle, "ratio": t_mle / t_exact,
                "note": f"mean over nodes of each table's MAE: ours {err_ours:.4f} (posterior mean, 1000 draws), "
                        f"ours {err_mode:.4f} (posterior mode = MLE; max |ours - pgmpy MLE| {same:.1e}), "
                        f"pgmpy MLE {err_mle:.4f}, pgmpy BDeu {err_bdeu:.4f} ({t_bdeu:.2f} s); over all entries: "
                        f"ours mean {_entry_error(net, mean_tables):.4f}, mode {_entry_error(net, mode_tables):.4f}"})
    if args.nuts and name == "asia":
        post, t_nuts = _timed(fit_cpts, net, frame, "nuts", num_chains=4, num_warmup=500, num_samples=500)
        err_nuts = _table_error(net, {v: post.tables[v].mean(axis=0) for v in net.nodes})
        out.append({"network": name, "what": f"learn tables, {args.learn_rows} rows (NUTS, 4x500 draws)",
                    "ours_s": t_nuts, "ours_first_call_s": float("nan"), "pgmpy_s": t_mle,
                    "ratio": t_mle / t_nuts, "note": f"mean over nodes of each table's MAE: ours {err_nuts:.4f} "
                                                    f"(posterior mean), pgmpy MLE {err_mle:.4f}"})


# --------------------------------------------------------------------------------------------
# peak memory, one fresh subprocess per configuration
# --------------------------------------------------------------------------------------------

_BIF_DIR = __import__("pathlib").Path(__file__).resolve().parents[1] / "ppl_models" / "datasets" / "data" / "bif"


def _status_kib():
    """``VmRSS`` and ``VmHWM`` (peak resident set) of this process, in KiB."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1])
    return out


def _measure(call):
    """Peak RSS growth of ``call()`` (KiB; VmHWM reset first), then its tracemalloc peak (bytes)."""
    import gc
    import tracemalloc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM to the current RSS
        fh.write("5")
    before = _status_kib()
    call()
    after = _status_kib()
    gc.collect()
    tracemalloc.start()
    call()
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"rss_before_mib": before["VmRSS"] / 1024, "peak_rss_mib": after["VmHWM"] / 1024,
            "peak_growth_mib": (after["VmHWM"] - before["VmRSS"]) / 1024, "tracemalloc_peak_mib": py_peak / 2**20}


def memory_child(name, side, what, evidence_path, rows, k):
    """One configuration in this (fresh) process; prints one JSON line."""
    import json

    if side == "ours":
        from ppl_models._config import enable_compilation_cache
        from ppl_models.models.bayesnet import read_bif

        enable_compilation_cache()
        net = read_bif(_BIF_DIR / f"{name}.bif.gz")
        if what == "queries":
            frame = pd.DataFrame(json.load(open(evidence_path)))
            net.marginals_batch(frame)  # compiles (or loads the compiled program)
            res = _measure(lambda: net.marginals_batch(frame))
            res["n"] = len(frame)
        else:
            net.sample(rows, seed=0)
            res = _measure(lambda: net.sample(rows, seed=1))
            res["n"] = rows
    else:
        from pgmpy.inference import VariableElimination
        from pgmpy.readwrite import BIFReader
        from pgmpy.sampling import BayesianModelSampling

        model = BIFReader(string=gzip.open(_BIF_DIR / f"{name}.bif.gz", "rt").read()).get_model()
        for cpd in model.get_cpds():
            cpd.normalize()
        if what == "queries":
            items = json.load(open(evidence_path + ".targets"))[:k]
            ve = VariableElimination(model)
            ve.query([items[0][1]], evidence=items[0][0], show_progress=False)

            def run():
                for ev, tgt in items:
                    ve.query([tgt], evidence=ev, show_progress=False)

            res = _measure(run)
            res["n"] = len(items)
        else:
            sampler = BayesianModelSampling(model)
            sampler.forward_sample(size=10, show_progress=False, seed=0)
            res = _measure(lambda: sampler.forward_sample(size=rows, show_progress=False, seed=1))
            res["n"] = rows
    print("MEMORY " + json.dumps(res), flush=True)


def bench_memory(name, net, args, out):
    import json
    import subprocess
    import sys
    import tempfile

    evidences, targets = make_queries(net, args.batch, seed=0)
    evidences = [{k: str(v) for k, v in ev.items()} for ev in evidences]
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/evidence.json"
        json.dump(evidences, open(path, "w"))
        json.dump([[ev, t] for ev, t in zip(evidences, targets)], open(path + ".targets", "w"))
        found = {}
        for what in ("queries", "sampling"):
            for side in ("ours", "pgmpy"):
                cmd = [sys.executable, __file__, "--memory-child", name, side, what, path,
                       str(args.rows), str(args.pgmpy_queries)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("MEMORY ")]
                if proc.returncode != 0 or not lines:
                    raise RuntimeError(f"memory child {cmd} failed: {proc.stderr[-2000:]}")
                found[side, what] = json.loads(lines[-1][len("MEMORY "):])
        for what, label in (("queries", f"{args.batch} queries (marginals_batch) vs pgmpy one by one"),
                            ("sampling", f"sample {args.rows} rows")):
            o, g = found["ours", what], found["pgmpy", what]
            out.append({"network": name, "what": f"peak memory: {label}",
                        "ours_mib": o["peak_growth_mib"], "pgmpy_mib": g["peak_growth_mib"],
                        "ratio": g["peak_growth_mib"] / max(o["peak_growth_mib"], 1e-9),
                        "ours_tracemalloc_mib": o["tracemalloc_peak_mib"],
                        "pgmpy_tracemalloc_mib": g["tracemalloc_peak_mib"],
                        "ours_peak_rss_mib": o["peak_rss_mib"], "pgmpy_peak_rss_mib": g["peak_rss_mib"],
                        "note": f"peak RSS growth (MiB) over the RSS before the call (ours {o['rss_before_mib']:.0f}, "
                                f"pgmpy {g['rss_before_mib']:.0f} MiB before)"
                                + (f"; pgmpy ran {g['n']} of the queries" if what == "queries" else "")})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", nargs="+", default=["asia", "alarm", "hailfinder"])
    p.add_argument("--pgmpy-queries", type=int, default=100)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--learn-rows", type=int, default=10_000)
    p.add_argument("--nuts", action="store_true")
    p.add_argument("--repeats", type=int, default=5,
                   help="warm calls of the batched queries timed (the median is reported)")
    p.add_argument("--skip", nargs="*", default=[], choices=["queries", "sampling", "learning"])
    p.add_argument("--memory", action="store_true",
                   help="also measure peak memory, each configuration in a fresh subprocess")
    p.add_argument("--memory-only", action="store_true", help="measure only the peak memory")
    p.add_argument("--memory-child", nargs=6, metavar=("NETWORK", "SIDE", "WHAT", "EVIDENCE", "ROWS", "K"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        name, side, what, path, rows, k = args.memory_child
        return memory_child(name, side, what, path, int(rows), int(k))
    if args.memory_only:
        args.memory = True
        args.skip = ["queries", "sampling", "learning"]

    import jax

    import pgmpy

    from ppl_models._config import enable_compilation_cache
    from ppl_models.datasets.networks import load_network

    enable_compilation_cache()
    print(f"jax {jax.__version__}, pgmpy {pgmpy.__version__}, float32")
    out: list[dict] = []
    for name in args.networks:
        first = len(out)
        net = load_network(name)
        model = pgmpy_model(name)
        if "queries" not in args.skip:
            bench_queries(name, net, model, args, out)
        if "sampling" not in args.skip:
            bench_sampling(name, net, model, args, out)
        if "learning" not in args.skip:
            bench_learning(name, net, model, args, out)
        if args.memory:
            bench_memory(name, net, args, out)
        for row in out[first:]:
            print(row, flush=True)
    table = pd.DataFrame(out)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 120)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return table


if __name__ == "__main__":
    main()
