"""LDA on the KJV chapters against scikit-learn (batch and online) and gensim, same run.

Every model sees the same vocabulary and the same split: 80% of the chapters to fit on; each of
the other 20% is split token by token in half (``ppl_models.text.completion_split``). Every
model is scored by ONE measure, computed by the same code: its topic-word matrix (rows
normalised) and the same ``alpha = 1/K`` go through
``ppl_models.kernels.lda.document_completion_perplexity`` (theta fitted on the first half by
100 mean-field iterations, the second half scored). ProdLDA is not a mixture of topics, so it
is scored by the same completion protocol with its own encoder and decoder (marked).
Coherence: UMass and NPMI of the top 10 words of each topic, from document co-occurrence in the
training chapters, by ``ppl_models.models.lda.coherence`` for every model.

Threads: by default the whole process (every model, JAX included) runs on ONE core
(``os.sched_setaffinity``) with ``OMP_NUM_THREADS=1`` and XLA's Eigen threading off
(``--xla_cpu_multi_thread_eigen=false``), so no model gets more cores than another; ``--all-cores``
lifts the pinning.

Run: ``.venv/bin/python benchmarks/bench_lda.py [--topics 10 20] [--vb-steps 50] [--steps 400]
[--uniform-steps 0] [--out table.md]`` (the table ends with the start time, the threads and the load
average before and after). gensim is an optional peer, kept out of the project's environment:
``pip install --no-deps --target /tmp/peers_gensim gensim smart_open wrapt`` and run with
``PYTHONPATH=/tmp/peers_gensim``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ALL_CORES = "--all-cores" in sys.argv
if not ALL_CORES:
    # one thread for every model, timed side by side (set before NumPy, SciPy and JAX load)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ppl_models import text  # noqa: E402
from ppl_models.datasets.kjv import load_kjv  # noqa: E402
from ppl_models.models import lda  # noqa: E402


def _score(beta: np.ndarray, K: int, obs, ho, train_counts) -> dict:
    beta = np.asarray(beta, dtype=np.float64)
    beta = beta / beta.sum(1, keepdims=True)
    oi, oc = text.to_padded(obs)
    hi, hc = text.to_padded(ho)
    ppl = lda.document_completion_perplexity(jnp.asarray(beta, jnp.float32), jnp.full(K, 1.0 / K, jnp.float32),
                                             oi, oc, hi, hc, num_iterations=100)
    return {"perplexity": float(ppl.perplexity),
            "umass": float(lda.coherence(beta, train_counts, measure="umass").mean),
            "npmi": float(lda.coherence(beta, train_counts, measure="npmi").mean)}


PEERS = ("scikit-learn", "gensim")


def run(topics: list[int], steps: int, prodlda_steps: int, seed: int = 0, uniform_steps: int = 0,
        vb_steps: int = 50, online_epochs: int = 10) -> list[dict]:
    md_all = load_kjv(num_topics=topics[0])
    corpus = md_all.extra["corpus"]
    train_idx, test_idx = text.train_test_split_documents(corpus.num_docs, test_fraction=0.2, seed=seed)
    train = corpus.subset(train_idx)
    obs, ho = text.completion_split(corpus.counts[test_idx], seed=seed)
    X = train.counts
    print(f"KJV: {corpus.num_docs} chapters ({train.num_docs} train, {len(test_idx)} test), vocabulary "
          f"{corpus.vocab_size}, {train.num_tokens} training tokens, {int(ho.sum())} scored tokens", flush=True)
    freq = np.asarray(X.sum(0)).ravel() + 0.5
    unigram = float(np.exp(-(ho.multiply(np.log(freq / freq.sum())).sum()) / ho.sum()))
    rows = [{"K": "-", "model": "unigram (training word frequencies)", "seconds": 0.0, "perplexity": unigram,
             "umass": float("nan"), "npmi": float("nan")}]
    for K in topics:
        alpha, eta = 1.0 / K, 0.05
        md = lda.lda_data(train, num_topics=K, alpha=alpha, eta=eta)

        if vb_steps:
            t0 = time.perf_counter()
            fit = lda.fit_lda(md, method="vb", num_steps=vb_steps, seed=seed, num_posterior_draws=20)
            rows.append({"K": K, "model": f"ppl_models LDA, mean-field VB, full batch ({vb_steps} steps, "
                                          f"topics seeded from documents)",
                         "seconds": time.perf_counter() - t0, **_score(lda.topic_word(fit), K, obs, ho, X)})
            print(rows[-1], flush=True)
        if online_epochs:
            nb = train.num_docs // 128
            t0 = time.perf_counter()
            fit = lda.fit_lda(md, method="vb", batch_size=128, num_steps=online_epochs * nb, seed=seed,
                              num_posterior_draws=20)
            rows.append({"K": K, "model": f"ppl_models LDA, online VB (minibatches of 128, {online_epochs} epochs "
                                          f"= {online_epochs * nb} steps)",
                         "seconds": time.perf_counter() - t0, **_score(lda.topic_word(fit), K, obs, ho, X)})
            print(rows[-1], flush=True)

        t0 = time.perf_counter()
        fit = lda.fit_lda(md, num_steps=steps, learning_rate=0.1, seed=seed, num_posterior_draws=20) if steps else None
        if fit is not None:
            rows.append({"K": K, "model": f"ppl_models LDA, full-batch SVI ({steps} steps, topics seeded from "
                                          f"documents)",
                         "seconds": time.perf_counter() - t0, **_score(lda.topic_word(fit), K, obs, ho, X)})
            print(rows[-1], flush=True)

        if uniform_steps:
            t0 = time.perf_counter()
            fit = lda.fit_lda(md, num_steps=uniform_steps, learning_rate=0.1, seed=seed, num_posterior_draws=20,
                              init_topics="uniform")
            rows.append({"K": K, "model": f"ppl_models LDA, full-batch SVI ({uniform_steps} steps, uniform start)",
                         "seconds": time.perf_counter() - t0, **_score(lda.topic_word(fit), K, obs, ho, X)})
            print(rows[-1], flush=True)

        t0 = time.perf_counter()
        pfit = lda.fit_prodlda(md, num_steps=prodlda_steps, learning_rate=0.01, batch_size=128, hidden=100, seed=seed)
        sec = time.perf_counter() - t0
        own = float(lda.heldout_perplexity(pfit, obs, ho).perplexity)
        beta_p = lda.prodlda_topic_word(pfit)
        rows.append({"K": K, "model": f"ppl_models ProdLDA, minibatch SVI ({prodlda_steps} steps)*", "seconds": sec,
                     "perplexity": own, "umass": float(lda.coherence(beta_p, X, measure="umass").mean),
                     "npmi": float(lda.coherence(beta_p, X, measure="npmi").mean)})
        print(rows[-1], flush=True)

        from sklearn.decomposition import LatentDirichletAllocation

        for method, kw in (("batch", {"max_iter": 50}), ("online", {"max_iter": 20, "batch_size": 128})):
            t0 = time.perf_counter()
            sk = LatentDirichletAllocation(n_components=K, doc_topic_prior=alpha, topic_word_prior=eta,
                                           learning_method=method, random_state=seed, n_jobs=1, **kw).fit(X)
            rows.append({"K": K, "model": f"scikit-learn LDA {method} ({kw['max_iter']} iterations)",
                         "seconds": time.perf_counter() - t0, **_score(sk.components_, K, obs, ho, X)})
            print(rows[-1], flush=True)

        try:
            from gensim.matutils import Sparse2Corpus
            from gensim.models import LdaModel
        except ImportError:
            print("gensim not installed: skipped", file=sys.stderr)
            continue
        gcorpus = Sparse2Corpus(X, documents_columns=False)
        id2word = {i: w for i, w in enumerate(train.vocabulary)}
        # the settings of gensim's own LDA tutorial (run_lda, 1,740 NIPS papers): every document in
        # one chunk (its chunksize 2000 exceeds the corpus), 20 passes, up to 400 E-step
        # iterations per document, no perplexity evaluation during training; gensim's defaults
        # (chunksize 2000 > 951 too, 1 pass, 50 iterations) warn "too few updates", and the earlier
        # chunksize 256 / 10 passes / 100 iterations stayed at the unigram level (1616 vs 1613)
        t0 = time.perf_counter()
        gm = LdaModel(gcorpus, num_topics=K, id2word=id2word, alpha=np.full(K, alpha), eta=eta, passes=20,
                      chunksize=train.num_docs, iterations=400, eval_every=None, random_state=seed)
        rows.append({"K": K, "model": "gensim LdaModel (chunksize = all 951, 20 passes, 400 iterations)",
                     "seconds": time.perf_counter() - t0, **_score(gm.get_topics(), K, obs, ho, X)})
        print(rows[-1], flush=True)
    return rows


def to_markdown(rows: list[dict]) -> str:
    """The table, with each row's time as a multiple of the best peer's at the same K (the peer
    with the lowest held-out perplexity: the goal is its perplexity in no more time)."""
    best = {}
    for r in rows:
        if r["K"] != "-" and r["model"].startswith(PEERS):
            if r["K"] not in best or r["perplexity"] < best[r["K"]]["perplexity"]:
                best[r["K"]] = r
    out = ["| K | model | fit seconds | time / best peer's | held-out perplexity | UMass | NPMI |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        b = best.get(r["K"])
        ratio = "" if b is None else ("best peer" if r is b else f"{r['seconds'] / b['seconds']:.2f}")
        out.append(f"| {r['K']} | {r['model']} | {r['seconds']:.1f} | {ratio} | {r['perplexity']:.1f} | "
                   f"{r['umass']:.3f} | {r['npmi']:.3f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--topics", type=int, nargs="+", default=[10, 20])
    p.add_argument("--vb-steps", type=int, default=50, help="full-batch VB steps (0 skips the row)")
    p.add_argument("--online-epochs", type=int, default=10, help="online VB epochs (0 skips the row)")
    p.add_argument("--steps", type=int, default=400, help="full-batch SVI steps (0 skips the row)")
    p.add_argument("--uniform-steps", type=int, default=0,
                   help="also fit from the uniform start (init_topics='uniform') for this many steps; 0 skips it")
    p.add_argument("--all-cores", action="store_true", help="do not pin the process to one core")
    p.add_argument("--prodlda-steps", type=int, default=1500)
    p.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = p.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = os.getloadavg()
    rows = run(args.topics, args.steps, args.prodlda_steps, uniform_steps=args.uniform_steps,
               vb_steps=args.vb_steps, online_epochs=args.online_epochs)
    load_after = os.getloadavg()
    table = to_markdown(rows)
    threads = ("all cores" if ALL_CORES else f"one core (CPU {sorted(os.sched_getaffinity(0))}), OMP_NUM_THREADS=1, "
               f"XLA_FLAGS={os.environ.get('XLA_FLAGS')}")
    table += (f"\n\nStarted {started}, {os.cpu_count()} CPUs, {threads}; load average (1, 5, 15 min) "
              f"{', '.join(f'{x:.2f}' for x in load_before)} at the start, "
              f"{', '.join(f'{x:.2f}' for x in load_after)} at the end.")
    print(table)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
