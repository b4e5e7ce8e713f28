"""Reproduce Ng & Jordan (2001), generative vs discriminative, with the Bayesian models.

Runs the full grid — 14 log-spaced training sizes (4 .. 70 % of the rows), 100 stratified
random splits per size — on every set of :mod:`ppl_models.datasets.ng_jordan`, for the
Bayesian naive Bayes variant(s) that suit the features, Bayesian logistic regression
(Laplace), and scikit-learn's point-estimate versions in the same process, then writes
``benchmarks/results/ng_jordan.md`` (tables), ``ng_jordan_error.png`` / ``ng_jordan_log_loss.png``
(curves) and ``ng_jordan_curves.csv`` (mean and SE per data set, model, m and metric).

Run (pin BLAS and scikit-learn to one thread on a shared machine)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/ng_jordan_study.py
    python benchmarks/ng_jordan_study.py --sizes 6 --splits 10 --sets breast_cancer   # quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.naive_bayes import BernoulliNB, CategoricalNB, GaussianNB  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from ppl_models.datasets.ng_jordan import NG_JORDAN_SETS, load_set  # noqa: E402
from ppl_models.learning_curves import learning_curves, log_sizes, plot_learning_curves, summarize_curves  # noqa: E402
from ppl_models.models.logistic import BayesianLogisticRegression  # noqa: E402
from ppl_models.models.naive_bayes import BayesianNaiveBayes  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# Posterior draws per Bayesian fit (the Monte Carlo average of p(y | x, θ)); the default keeps
# the full grid within about half an hour on a shared 2-core machine (--draws to change it).
DRAWS = 64


def models_for(ds) -> tuple[dict, list[tuple[str, str]]]:
    """The models run on a set, and the (generative, discriminative) pairs compared."""
    blr = BayesianLogisticRegression(method="laplace", num_samples=DRAWS)
    # scikit-learn's default L2 penalty (C = 1) on standardized features: the point-estimate
    # partner of the Bayesian model's Normal(0, 2.5) prior on standardized features.
    sk_lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    if ds.features == "continuous":
        models = {"bayes_nb": BayesianNaiveBayes(num_samples=DRAWS),
                  "bayes_nb_shared": BayesianNaiveBayes(shared_variance=True, num_samples=DRAWS),
                  "bayes_lr": blr, "sk_gnb": GaussianNB(), "sk_lr": sk_lr}
        pairs = [("bayes_nb", "bayes_lr"), ("bayes_nb_shared", "bayes_lr"), ("sk_gnb", "sk_lr")]
    elif ds.features == "binary":
        models = {"bayes_nb": BayesianNaiveBayes(likelihood="bernoulli", num_samples=DRAWS),
                  "bayes_lr": blr, "sk_bnb": BernoulliNB(alpha=1.0), "sk_lr": sk_lr}
        pairs = [("bayes_nb", "bayes_lr"), ("sk_bnb", "sk_lr")]
    else:
        K = ds.num_categories
        models = {"bayes_nb": BayesianNaiveBayes(likelihood="categorical", num_categories=K, num_samples=DRAWS),
                  "bayes_lr": blr, "sk_cnb": CategoricalNB(alpha=1.0, min_categories=K), "sk_lr": sk_lr}
        pairs = [("bayes_nb", "bayes_lr"), ("sk_cnb", "sk_lr")]
    return models, pairs


def save_figures(agg: pd.DataFrame, out: Path) -> None:
    """The error and log-loss curves (mean ± 2 SE) from the per-m aggregate."""
    for metric in ("error", "log_loss"):
        fig = plot_learning_curves(agg, metric=metric, ncols=4)
        if metric == "log_loss":
            for ax in fig.axes:
                ax.set_yscale("log")
        fig.savefig(out / f"ng_jordan_{metric}.png", dpi=90)


def fmt_ci(lo, hi) -> str:
    return "–" if not np.isfinite(lo) else f"[{lo:.0f}, {hi:.0f}]"


def main() -> None:
    global DRAWS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, default=14)
    ap.add_argument("--splits", type=int, default=100)
    ap.add_argument("--sets", nargs="*", default=list(NG_JORDAN_SETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--draws", type=int, default=DRAWS)
    ap.add_argument("--replot", action="store_true",
                    help="only redraw the figures from the saved ng_jordan_curves.csv (no fitting)")
    args = ap.parse_args()
    DRAWS = args.draws
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        save_figures(pd.read_csv(args.out / "ng_jordan_curves.csv"), args.out)
        return

    frames, summaries, crosses, timing, sizes_used = [], [], [], [], {}
    t_all = time.perf_counter()
    for name in args.sets:
        ds = load_set(name)
        sizes = log_sizes(len(ds.y), args.sizes)
        sizes_used[name] = sizes
        models, pairs = models_for(ds)
        print(f"{name}: {ds.X.shape}, sizes {sizes.tolist()}", flush=True)
        t0 = time.perf_counter()
        with threadpool_limits(1):  # one BLAS/OpenMP thread: the timings compare like with like
            df = learning_curves(models, ds.X, ds.y, sizes, n_splits=args.splits, seed=args.seed, dataset=name,
                                 progress=True)
        timing.append({"dataset": name, "seconds": time.perf_counter() - t0, **{f"s_{k}": v for k, v in
                                                                               df.attrs["seconds"].items()},
                       "laplace_not_converged": df.attrs["laplace_not_converged"].get("bayes_lr", 0),
                       "fits_per_model": len(sizes) * args.splits})
        s = summarize_curves(df, pairs=pairs, n_boot=1000, seed=args.seed)
        frames.append(df)
        summaries.append(s.models)
        crosses.append(s.crossovers)
    total = time.perf_counter() - t_all
    df = pd.concat(frames, ignore_index=True)
    models_tab = pd.concat(summaries, ignore_index=True)
    cross_tab = pd.concat(crosses, ignore_index=True)

    agg = (df.groupby(["dataset", "model", "m", "metric"], sort=False)["value"]
           .agg(mean="mean", se=lambda v: v.std(ddof=1) / np.sqrt(len(v)), n="count").reset_index())
    agg.to_csv(args.out / "ng_jordan_curves.csv", index=False, float_format="%.6g")
    save_figures(agg, args.out)

    lines = [f"# Generative vs discriminative (Ng & Jordan 2001), Bayesian and point-estimate models",
             "",
             f"Command: `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/ng_jordan_study.py"
             f"{'' if args.sizes == 14 else f' --sizes {args.sizes}'}{'' if args.splits == 100 else f' --splits {args.splits}'}"
             f"{'' if args.draws == 64 else f' --draws {args.draws}'}`"
             f" — {args.splits} stratified random splits per m, {args.sizes} log-spaced m from 4 to 70 % of the rows "
             f"(test set: all other rows), seed {args.seed}. Machine: {platform.machine()}, {os.cpu_count()} "
             f"logical CPUs (shared), Python {platform.python_version()}. Total run time {total / 60:.1f} min.",
             "",
             "Models: `bayes_nb` — BayesianNaiveBayes, exact conjugate posterior (Gaussian with per-class "
             "variances on continuous sets, Bernoulli on binary pixels, categorical on binned/scored sets), "
             "standardized features, default priors; `bayes_nb_shared` — Gaussian with a variance shared by "
             "the classes; `bayes_lr` — BayesianLogisticRegression, Laplace approximation, Normal(0, 2.5) "
             "prior on standardized coefficients; predictions are posterior means of p(y | x) over "
             f"{DRAWS} draws. Point estimates (scikit-learn, same splits): `sk_gnb` GaussianNB (ML "
             "estimates, var_smoothing 1e-9), `sk_bnb` BernoulliNB(alpha=1), `sk_cnb` CategoricalNB(alpha=1), "
             "`sk_lr` StandardScaler + LogisticRegression(C=1, L2).",
             "",
             "Figures: `ng_jordan_error.png` (mean test error ± 2 SE over splits against log m), "
             "`ng_jordan_log_loss.png`; per-m means in `ng_jordan_curves.csv`.",
             "",
             "## Asymptotic error (largest m), plateau m (first m from which the mean error stays within "
             "0.01 of its value at the largest m; 90 % paired-bootstrap interval over splits)",
             "",
             "| data set | model | m max | error ± SE | log loss | ECE | plateau m | 90 % interval |",
             "|---|---|---|---|---|---|---|---|"]
    for r in models_tab.itertuples():
        lines.append(f"| {r.dataset} | {r.model} | {r.m_max} | {r.asymptotic_error:.4f} ± {r.asymptotic_se:.4f} | "
                     f"{r.log_loss:.3f} | {r.ece:.3f} | {r.plateau_m} | {fmt_ci(r.plateau_m_lo, r.plateau_m_hi)} |")
    lines += ["", "## Crossover m (first m after which the discriminative mean error stays below the "
              "generative one; 90 % paired-bootstrap interval; p = share of bootstrap replicates with the "
              "discriminative model better at the largest m)", "",
              "| data set | generative | discriminative | crossover m | status | bootstrap median | 90 % interval | p |",
              "|---|---|---|---|---|---|---|---|"]
    for r in cross_tab.itertuples():
        cm = "–" if not np.isfinite(r.crossover_m) else f"{r.crossover_m:.0f}"
        med = "–" if not np.isfinite(r.crossover_m_median) else f"{r.crossover_m_median:.0f}"
        lines.append(f"| {r.dataset} | {r.generative} | {r.discriminative} | {cm} | {r.status} | {med} | "
                     f"{fmt_ci(r.crossover_m_lo, r.crossover_m_hi)} | {r.p_crossover:.2f} |")

    # The two claims of the paper, counted over data sets (Bayesian pair and point-estimate pair).
    lines += ["", "## The two regimes, counted over data sets", ""]
    for label, g_pref, d_name in (("Bayesian", "bayes_nb", "bayes_lr"), ("scikit-learn", "sk_", "sk_lr")):
        lower, faster, n = 0, 0, 0
        for ds_name, sub in models_tab.groupby("dataset", sort=False):
            sub = sub.set_index("model")
            gens = [m for m in sub.index if m.startswith(g_pref) and m != d_name and sub.loc[m, "kind"] == "generative"]
            if not gens or d_name not in sub.index:
                continue
            g = gens[0]  # the per-class-variance / main NB variant
            n += 1
            lower += sub.loc[d_name, "asymptotic_error"] < sub.loc[g, "asymptotic_error"]
            faster += sub.loc[g, "plateau_m"] < sub.loc[d_name, "plateau_m"]
        lines.append(f"- {label}: logistic regression's error at the largest m is lower than naive Bayes' on "
                     f"{lower} of {n} data sets; naive Bayes reaches its plateau at a smaller m on {faster} of {n}.")

    # Bayesian versus point estimates at small and large m.
    lines += ["", "## Bayesian versus point estimates (same splits)", "",
              "Mean test error and log loss at the smallest m, at the m nearest 25 and at the largest m.", "",
              "| data set | model | m | error | log loss | ECE |", "|---|---|---|---|---|---|"]
    for ds_name, sizes in sizes_used.items():
        pick = sorted({int(sizes[0]), int(sizes[np.argmin(np.abs(sizes - 25))]), int(sizes[-1])})
        sub = agg[(agg["dataset"] == ds_name) & (agg["m"].isin(pick))]
        wide = sub.pivot_table(index=["model", "m"], columns="metric", values="mean", sort=False)
        for (model, m), r in wide.iterrows():
            lines.append(f"| {ds_name} | {model} | {m} | {r['error']:.4f} | {r['log_loss']:.3f} | {r['ece']:.3f} |")

    lines += ["", "## Run time", "",
              "Wall seconds per data set and per model (all sizes × splits; the Bayesian fits include "
              "their one XLA compilation per data set and model).", "",
              "| data set | fits per model | total s | per model s | Laplace fits not flagged converged |",
              "|---|---|---|---|---|"]
    for t in timing:
        per = ", ".join(f"{k[2:]} {v:.1f}" for k, v in t.items() if k.startswith("s_"))
        lines.append(f"| {t['dataset']} | {t['fits_per_model']} | {t['seconds']:.1f} | {per} | "
                     f"{t['laplace_not_converged']} |")
    (args.out / "ng_jordan.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
