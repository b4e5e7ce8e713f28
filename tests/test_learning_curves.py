"""Learning curves (Ng & Jordan): splits, metrics, vectorized Bayesian fits, summaries, bad input."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.naive_bayes import GaussianNB

from ppl_models.datasets.ng_jordan import NG_JORDAN_SETS, load_set, quantile_bins
from ppl_models.errors import DataError
from ppl_models.learning_curves import (
    batched_laplace_posterior,
    batched_naive_bayes_posterior,
    batched_naive_bayes_proba,
    crossover_m,
    expected_calibration_error,
    learning_curves,
    log_sizes,
    plateau_m,
    plot_learning_curves,
    stratified_allocation,
    stratified_train_masks,
    summarize_curves,
    weighted_laplace_posterior,
)
from ppl_models.models.logistic import BayesianLogisticRegression, _np_objective, laplace_posterior_numpy
from ppl_models.models.naive_bayes import BayesianNaiveBayes


@pytest.fixture(scope="module")
def cancer():
    ds = load_set("breast_cancer")
    return ds.X, ds.y


@pytest.fixture(scope="module")
def curves(cancer):
    X, y = cancer
    models = {"bnb": BayesianNaiveBayes(num_samples=50),
              "blr": BayesianLogisticRegression(method="laplace", num_samples=50),
              "gnb": GaussianNB()}
    return learning_curves(models, X, y, [6, 40], n_splits=4, seed=3, dataset="bc")


# -- splits and grid ---------------------------------------------------------------------------


def test_log_sizes_span_and_spacing():
    s = log_sizes(569, 14)
    assert s[0] == 4 and s[-1] == 398 and len(s) == 14
    ratios = s[1:] / s[:-1]
    assert np.all(ratios > 1.2) and np.all(ratios < 1.7)  # log-spaced: ratio (398/4)^(1/13) ≈ 1.42


def test_stratified_masks_keep_every_class_in_both_parts():
    y = np.array([0] * 90 + [1] * 10)
    masks = stratified_train_masks(y, 20, 50, np.random.default_rng(0))
    assert masks.shape == (50, 100) and np.all(masks.sum(1) == 20)
    assert np.all(masks[:, y == 1].sum(1) == 2)  # proportional: 20 · 10 % = 2
    assert np.all((~masks)[:, y == 1].sum(1) >= 1)
    assert len({tuple(np.flatnonzero(m)) for m in masks}) > 40  # random, not one repeated split
    alloc, _ = stratified_allocation(np.array([3, 97]), 99)  # one test row per class must remain
    assert alloc is None
    alloc, _ = stratified_allocation(np.array([3, 97]), 10)
    assert alloc.tolist() == [1, 9]


# -- metrics -----------------------------------------------------------------------------------


def test_ece_known_values():
    # Every row predicted with confidence 0.8; half of them right: ECE = |0.5 - 0.8| = 0.3.
    proba = np.tile([[0.8, 0.2]], (10, 1))
    y = np.array([0] * 5 + [1] * 5)
    assert expected_calibration_error(y, proba) == pytest.approx(0.3)
    # Perfectly calibrated bins: confidence 0.6 in one bin with 60 % right, 1.0 with 100 % right.
    proba = np.array([[0.6, 0.4]] * 10 + [[0.0, 1.0]] * 5)
    y = np.array([0] * 6 + [1] * 4 + [1] * 5)
    assert expected_calibration_error(y, proba) == pytest.approx(0.0, abs=1e-12)


def test_tidy_frame(curves):
    df = curves
    assert list(df.columns) == ["dataset", "model", "m", "split", "metric", "value"]
    assert len(df) == 3 * 2 * 4 * 3
    assert set(df["metric"]) == {"error", "log_loss", "ece"}
    assert df.groupby(["model", "m", "metric"]).size().eq(4).all()
    assert np.all(np.isfinite(df["value"]))
    err = df[df["metric"] == "error"]
    assert err["value"].between(0, 1).all()
    # More data helps every model here (569 rows, 6 -> 40 training rows).
    means = err.groupby(["model", "m"])["value"].mean().unstack()
    assert np.all(means[40] < means[6] + 0.02)
    assert df.attrs["kinds"] == {"bnb": "generative", "blr": "discriminative", "gnb": "generative"}
    assert df.attrs["skipped"] == []


def test_same_seed_same_splits(cancer):
    X, y = cancer
    a = learning_curves({"gnb": GaussianNB()}, X, y, [10, 30], n_splits=3, seed=1)
    b = learning_curves({"gnb": GaussianNB()}, X, y, [10, 30], n_splits=3, seed=1)
    c = learning_curves({"gnb": GaussianNB()}, X, y, [10, 30], n_splits=3, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["value"], c["value"])


# -- vectorized fits equal one-by-one fits ------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True])
def test_batched_naive_bayes_posterior_equals_single_fits(cancer, shared):
    X, y = cancer
    rng = np.random.default_rng(0)
    # Training sets of three different sizes in one batch: one compiled shape serves them all.
    masks = np.concatenate([stratified_train_masks(y, m, 2, rng) for m in (5, 30, 200)])
    est = BayesianNaiveBayes(shared_variance=shared)
    batch = batched_naive_bayes_posterior(est, X, y, masks, num_classes=2)
    for i, mask in enumerate(masks):
        one = BayesianNaiveBayes(shared_variance=shared).fit(X[mask], y[mask]).posterior_
        for field, got in zip(one._fields, batch):
            np.testing.assert_allclose(got[i], getattr(one, field), rtol=1e-8, atol=1e-10, err_msg=field)


def test_batched_categorical_and_bernoulli_posteriors_equal_single_fits():
    ds = load_set("breast_cancer_binned")
    rng = np.random.default_rng(1)
    masks = np.concatenate([stratified_train_masks(ds.y, m, 2, rng) for m in (6, 25, 150)])
    est = BayesianNaiveBayes(likelihood="categorical", num_categories=4)
    batch = batched_naive_bayes_posterior(est, ds.X, ds.y, masks, num_classes=2)
    for i, mask in enumerate(masks):
        one = BayesianNaiveBayes(likelihood="categorical", num_categories=4).fit(ds.X[mask], ds.y[mask]).posterior_
        assert type(one).__name__ == "CategoricalPosterior"
        for field, got in zip(one._fields, batch):
            np.testing.assert_allclose(got[i], getattr(one, field), rtol=1e-12, err_msg=field)
    # Bernoulli: binarized pixels, and the estimator's own ``binarize`` on raw counts (the batched
    # route must threshold exactly as the estimator does).
    bits = load_set("digits_2v3_binary")
    raw = load_set("digits_2v3")
    masks = np.concatenate([stratified_train_masks(bits.y, m, 2, rng) for m in (5, 40)])
    for X, kw in ((bits.X, {}), (raw.X, {"binarize": 8.0})):
        batch = batched_naive_bayes_posterior(BayesianNaiveBayes(likelihood="bernoulli", **kw), X, bits.y, masks,
                                              num_classes=2)
        for i, mask in enumerate(masks):
            one = BayesianNaiveBayes(likelihood="bernoulli", **kw).fit(X[mask], bits.y[mask]).posterior_
            assert type(one).__name__ == "BernoulliPosterior"
            for field, got in zip(one._fields, batch):
                np.testing.assert_allclose(got[i], getattr(one, field), rtol=1e-12, err_msg=field)
    # The posterior counts differ between splits (the comparison is not vacuous).
    assert not np.allclose(batch.alpha[0], batch.alpha[1])


def test_batched_naive_bayes_proba_matches_estimator(cancer):
    X, y = cancer
    # 8 fits of 50 draws, as in the ``curves`` fixture: the same compiled function is reused.
    masks = stratified_train_masks(y, 30, 8, np.random.default_rng(2))
    est = BayesianNaiveBayes(num_samples=50)
    batch = batched_naive_bayes_proba(est, X, y, masks, num_classes=2, seed=0)
    for i, mask in enumerate(masks[:3]):
        one = BayesianNaiveBayes(num_samples=2000, random_state=0).fit(X[mask], y[mask]).predict_proba(X)
        # 50 exact draws against 2000: Monte Carlo error only, and the same decisions almost
        # everywhere.
        assert np.mean(np.abs(batch[i] - one)) < 0.02
        assert np.mean(batch[i].argmax(1) == one.argmax(1)) > 0.97


def _std_train(X, mask):
    Xt = X[mask]
    sd = Xt.std(0)
    return (Xt - Xt.mean(0)) / np.where(sd > 0, sd, 1.0)


def _neg_log_post(mode, Z, y, **prior):
    """The Laplace objective (up to a constant) in NumPy, from the estimator's closed form."""
    Xa = np.hstack([Z, np.ones((len(Z), 1))])
    args = (prior.get("prior", "normal"), prior.get("prior_scale", 2.5), 3.0, True, 2.5)
    return _np_objective(mode, Xa, y[:, None].astype(float), *args)[0]


def _study_masks(y, sizes, seed=0, n_splits=100):
    seqs = np.random.SeedSequence(seed).spawn(len(sizes))
    return [stratified_train_masks(y, m, n_splits, np.random.default_rng(s)) for m, s in zip(sizes, seqs)]


def test_batched_laplace_equals_single_fits(cancer):
    X, y = cancer
    rng = np.random.default_rng(3)
    # Sizes in both size groups (m ≤ N/8, larger; N = 569), interleaved: every fit must come
    # back in its own place.
    masks = np.concatenate([stratified_train_masks(y, m, 2, rng) for m in (150, 12, 60, 13)])
    est = BayesianLogisticRegression(method="laplace")
    batch = batched_laplace_posterior(est, X, y, masks, num_classes=2)
    assert batch.converged.all()
    for i, mask in enumerate(masks):
        one = laplace_posterior_numpy(_std_train(X, mask), y[mask])
        np.testing.assert_allclose(batch.mode[i], one.mode, atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(batch.cov[i], one.cov, atol=1e-6, rtol=1e-5)


def test_batched_laplace_mode_is_scipys_optimum_on_separable_and_hard_splits(cancer):
    """The batched Newton optimizer reaches SciPy's optimum (trust-region Newton, gtol 1e-8) on
    every split, including separable small-m training sets (the MAP under a Normal prior exists
    but lies far out) and the splits of the study where the former BFGS stopped early (one of
    them at objective 56.5 against an optimum of 23.1)."""
    X, y = cancer
    sizes = log_sizes(len(y), 14)
    study = _study_masks(y, sizes)
    by_m = dict(zip(sizes.tolist(), study))
    # Splits 4 and 8 of the study at m = 6 and m = 398 (BFGS stopped far from the mode there),
    # every m = 4 split that is linearly separable (4 rows in 30 dimensions: all of them), and
    # a near-separable m = 23 split.
    masks = np.concatenate([by_m[6][[4]], by_m[398][[8]], by_m[4][:4], by_m[23][:2]])
    est = BayesianLogisticRegression(method="laplace")
    batch = batched_laplace_posterior(est, X, y, masks, num_classes=2)
    assert batch.converged.all()
    for i, mask in enumerate(masks):
        Z = _std_train(X, mask)
        one = laplace_posterior_numpy(Z, y[mask])
        assert one.converged
        f_batch, f_scipy = _neg_log_post(batch.mode[i], Z, y[mask]), _neg_log_post(one.mode, Z, y[mask])
        assert f_batch <= f_scipy + 1e-9 * max(1.0, abs(f_scipy)), (i, f_batch, f_scipy)
        np.testing.assert_allclose(batch.mode[i], one.mode, atol=1e-6, rtol=1e-6)
    # Separable: the logits of the m = 4 training rows at the mode have the sign of their class.
    for mask, mode in zip(masks[2:6], batch.mode[2:6]):
        logit = _std_train(X, mask) @ mode[:-1] + mode[-1]
        assert np.all((logit > 0) == (y[mask] == 1))


def test_batched_laplace_student_t_prior_matches_scipy(cancer):
    """A Student-t prior makes the objective non-convex: the modified Newton step still descends
    and reaches the optimum SciPy's trust-region method finds."""
    X, y = cancer
    masks = stratified_train_masks(y, 20, 3, np.random.default_rng(4))
    est = BayesianLogisticRegression(method="laplace", prior="student_t", prior_scale=1.0)
    batch = batched_laplace_posterior(est, X, y, masks, num_classes=2)
    assert batch.converged.all()
    for i, mask in enumerate(masks):
        one = laplace_posterior_numpy(_std_train(X, mask), y[mask], prior="student_t", prior_scale=1.0)
        np.testing.assert_allclose(batch.mode[i], one.mode, atol=1e-5, rtol=1e-5)


def test_laplace_non_convergence_is_flagged():
    X = np.random.default_rng(0).standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    w = np.ones(40)
    post = weighted_laplace_posterior(X, y, w, max_iter=1)  # one Newton step from zero: not there yet
    assert not bool(post.converged)
    assert bool(weighted_laplace_posterior(X, y, w).converged)


def test_non_converged_laplace_fits_are_left_out_of_the_curves(cancer, monkeypatch):
    import ppl_models.learning_curves as lc

    real = lc.batched_laplace_proba

    def first_fails(*a, **k):
        proba, conv = real(*a, **k)
        conv = conv.copy()
        conv[0] = False
        return proba, conv

    monkeypatch.setattr(lc, "batched_laplace_proba", first_fails)
    X, y = cancer
    with pytest.warns(UserWarning, match="did not converge"):
        df = learning_curves({"blr": BayesianLogisticRegression(method="laplace", num_samples=20)}, X, y, [10, 30],
                             n_splits=2, seed=0)
    assert df.attrs["laplace_not_converged"] == {"blr": 1}
    assert df.attrs["laplace_not_converged_fits"] == [{"model": "blr", "m": 10, "split": 0}]
    bad = df[(df["m"] == 10) & (df["split"] == 0)]
    assert len(bad) == 3 and bad["value"].isna().all()
    assert df.drop(bad.index)["value"].notna().all()


# -- the property that matters: NB on naive-Bayes data reaches the Bayes error -----------------


@pytest.mark.slow
def test_naive_bayes_reaches_bayes_error_on_its_own_model():
    rng = np.random.default_rng(5)
    n, delta = 3000, 2.0
    y = rng.integers(0, 2, n)
    # Two independent unit-variance features, class means 0 and (√2, √2): Mahalanobis
    # distance 2, Bayes error Φ(−Δ/2) with equal class priors.
    mu = np.array([[0.0, 0.0], [delta / np.sqrt(2), delta / np.sqrt(2)]])
    X = mu[y] + rng.standard_normal((n, 2))
    bayes_error = norm.cdf(-delta / 2)
    df = learning_curves({"bnb": BayesianNaiveBayes(num_samples=100, shared_variance=True)}, X, y, [8, 1500],
                         n_splits=6, seed=0)
    err = df[df["metric"] == "error"].groupby("m")["value"].mean()
    # SE of the mean over 6 × 1500 test rows ≈ 0.004.
    assert abs(err[1500] - bayes_error) < 0.015
    assert err[8] > err[1500]


# -- summaries on constructed curves ----------------------------------------------------------


def _frame(curves: dict[str, list[float]], sizes, n_splits=5, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for model, vals in curves.items():
        for m, v in zip(sizes, vals):
            # Noise centred per curve point: the mean curves are exactly ``curves``, and only
            # the bootstrap sees the spread between splits.
            e = rng.standard_normal(n_splits)
            e = e - e.mean()
            for s in range(n_splits):
                rows.append({"dataset": "toy", "model": model, "m": m, "split": s, "metric": "error",
                             "value": v + noise * e[s]})
    return pd.DataFrame(rows)


SIZES = [4, 8, 16, 32, 64]


def test_plateau_and_crossover_known_answers():
    gen = [0.30, 0.20, 0.155, 0.15, 0.15]
    dis = [0.40, 0.25, 0.12, 0.095, 0.09]
    assert plateau_m(np.array(gen), SIZES) == 16
    assert plateau_m(np.array(dis), SIZES) == 32
    m, status = crossover_m(np.array(gen), np.array(dis), SIZES)
    assert m == 16 and status == 0
    # Better at 8, worse at 16, better from 32 on: the crossover is where it *stays* better.
    m, status = crossover_m(np.array(gen), np.array([0.40, 0.19, 0.16, 0.10, 0.09]), SIZES)
    assert m == 32 and status == 0
    m, status = crossover_m(np.array(gen), np.array(gen) + 0.01, SIZES)
    assert np.isnan(m) and status == 2
    m, status = crossover_m(np.array(gen), np.array(gen) - 0.01, SIZES)
    assert m == 4 and status == 1
    # A curve that dips and comes back up: plateau m is where it stays within tolerance.
    assert plateau_m(np.array([0.3, 0.1, 0.3, 0.105, 0.1]), SIZES) == 32


def test_summarize_curves_on_constructed_frame():
    gen = [0.30, 0.20, 0.155, 0.15, 0.15]
    dis = [0.40, 0.25, 0.12, 0.095, 0.09]
    df = _frame({"nb": gen, "lr": dis}, SIZES)
    s = summarize_curves(df, pairs=[("nb", "lr")], n_boot=200)
    rows = s.models.set_index("model")
    assert rows.loc["nb", "asymptotic_error"] == pytest.approx(0.15)
    assert rows.loc["lr", "asymptotic_error"] == pytest.approx(0.09)
    assert rows.loc["nb", "plateau_m"] == 16 and rows.loc["lr", "plateau_m"] == 32
    c = s.crossovers.iloc[0]
    # Identical splits: no spread, so the bootstrap interval is the point itself.
    assert c["crossover_m"] == 16 and c["crossover_m_lo"] == 16 and c["crossover_m_hi"] == 16
    assert c["p_crossover"] == 1.0 and c["status"] == "crossover"


def test_crossover_uncertainty_grows_with_split_noise():
    gen = [0.30, 0.20, 0.15, 0.15, 0.15]
    dis = [0.40, 0.25, 0.145, 0.12, 0.09]  # 0.005 better at 16
    quiet = summarize_curves(_frame({"nb": gen, "lr": dis}, SIZES, n_splits=20, noise=0.001), pairs=[("nb", "lr")],
                             n_boot=300).crossovers.iloc[0]
    assert quiet["crossover_m_lo"] == quiet["crossover_m_hi"] == 16
    # Tied in expectation at 16, clearly worse at 8 and better from 32: with split noise (SE of
    # a mean ≈ 0.0045) the bootstrap puts the crossover at 16 or 32, never elsewhere.
    dis = [0.40, 0.25, 0.15, 0.12, 0.09]
    loud = summarize_curves(_frame({"nb": gen, "lr": dis}, SIZES, n_splits=20, noise=0.02), pairs=[("nb", "lr")],
                            n_boot=300).crossovers.iloc[0]
    assert loud["crossover_m"] == 32  # a tie is not "better"
    assert (loud["crossover_m_lo"], loud["crossover_m_hi"]) == (16, 32)
    assert loud["p_crossover"] == 1.0


def test_summary_pairs_from_kinds(curves):
    s = summarize_curves(curves, n_boot=50)
    assert set(map(tuple, s.crossovers[["generative", "discriminative"]].to_numpy())) == {("bnb", "blr"),
                                                                                       ("gnb", "blr")}
    assert set(s.models["model"]) == {"bnb", "blr", "gnb"}
    assert s.models["m_max"].eq(40).all()


def test_plot_has_a_band_per_model(curves):
    import matplotlib

    matplotlib.use("Agg")
    fig = plot_learning_curves(curves)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert len(ax.lines) == 3 and len(ax.collections) == 3


# -- bad input ---------------------------------------------------------------------------------


def test_non_finite_features_raise(cancer):
    X, y = cancer
    Xb = X.copy()
    Xb[3, 2] = np.nan
    with pytest.raises(DataError, match="finite features"):
        learning_curves({"gnb": GaussianNB()}, Xb, y, [10], n_splits=2)


def test_one_class_raises(cancer):
    X, _ = cancer
    with pytest.raises(DataError, match="at least two classes"):
        learning_curves({"gnb": GaussianNB()}, X, np.zeros(len(X)), [10], n_splits=2)


def test_a_class_with_one_row_raises(cancer):
    X, y = cancer
    y1 = np.zeros(len(X), int)
    y1[7] = 1  # one row of class 1: it cannot be in both a training and a test set
    with pytest.raises(DataError, match="at least 2 rows of every class") as info:
        learning_curves({"gnb": GaussianNB()}, X, y1, [10], n_splits=2)
    assert "[1]" in str(info.value)
    alloc, reason = stratified_allocation(np.array([1, 50]), 10)
    assert alloc is None and "fewer than 2 rows" in reason
    with pytest.raises(DataError):
        stratified_train_masks(y1, 10, 2, np.random.default_rng(0))
    # Two rows are enough: one for training, one for testing.
    y2 = y1.copy()
    y2[8] = 1
    df = learning_curves({"gnb": GaussianNB()}, X, y2, [10], n_splits=3)
    assert len(df) == 9


def test_impossible_sizes_are_skipped_with_a_reason(cancer):
    X, y = cancer
    with pytest.warns(UserWarning, match="skipped"):
        df = learning_curves({"gnb": GaussianNB()}, X, y, [1, 10, 600], n_splits=2)
    reasons = {s["m"]: s["reason"] for s in df.attrs["skipped"]}
    assert set(reasons) == {1, 600}
    assert "below the number of classes" in reasons[1] and "test row" in reasons[600]
    assert set(df["m"]) == {10}
    with pytest.raises(DataError, match="at least one size"), pytest.warns(UserWarning):
        learning_curves({"gnb": GaussianNB()}, X, y, [5000], n_splits=2)


def test_bad_arguments_raise(cancer):
    X, y = cancer
    with pytest.raises(DataError, match="sizes"):
        learning_curves({"gnb": GaussianNB()}, X, y, [10.5], n_splits=2)
    with pytest.raises(DataError, match="n_splits"):
        learning_curves({"gnb": GaussianNB()}, X, y, [10], n_splits=0)
    with pytest.raises(DataError, match="models"):
        learning_curves({}, X, y, [10])
    with pytest.raises(DataError, match="binary features"):
        learning_curves({"b": BayesianNaiveBayes(likelihood="bernoulli")}, X, y, [10], n_splits=2)


# -- loaders -----------------------------------------------------------------------------------


def test_loaders():
    expect = {"breast_cancer": (569, 30, "continuous"), "breast_cancer_binned": (569, 30, "categorical"),
              "digits_0v1": (360, 64, "continuous"), "digits_2v3_binary": (360, 64, "binary"),
              "pima": (532, 7, "continuous"), "biopsy": (683, 9, "categorical")}
    assert set(expect) <= set(NG_JORDAN_SETS)
    for name, (n, d, kind) in expect.items():
        ds = load_set(name)
        assert ds.X.shape == (n, d) and ds.features == kind, name
        assert set(np.unique(ds.y)) == {0, 1} and np.all(np.isfinite(ds.X))
    assert load_set("pima").y.sum() == 68 + 109  # diabetic: 68 in Pima.tr, 109 in Pima.te
    b = load_set("biopsy")
    assert b.X.min() == 0 and b.X.max() == 9 and b.y.sum() == 239
    with pytest.raises(DataError):
        load_set("iris")


def test_quantile_bins_are_balanced():
    x = np.random.default_rng(0).standard_normal((1000, 2))
    codes = quantile_bins(x, 4)
    assert codes.min() == 0 and codes.max() == 3
    assert np.all(np.abs(np.bincount(codes[:, 0]) - 250) <= 1)


# -- NUTS route (slow) -------------------------------------------------------------------------


@pytest.mark.slow
def test_nuts_route_runs_and_agrees_with_laplace(cancer):
    X, y = cancer
    cols = X[:, :3]  # three features keep the sampler cheap
    models = {"nuts": BayesianLogisticRegression(method="nuts", num_warmup=100, num_samples=100),
              "laplace": BayesianLogisticRegression(method="laplace", num_samples=100)}
    df = learning_curves(models, cols, y, [60], n_splits=3, seed=0)
    err = df[df["metric"] == "error"].pivot_table(index="split", columns="model", values="value")
    # Same splits, same prior; 60 rows of 3 features: the posterior is near-Gaussian, so the two
    # agree to a few test rows.
    assert np.all(np.abs(err["nuts"] - err["laplace"]) < 0.02)
    assert err["nuts"].mean() < 0.2


@pytest.mark.slow
def test_reproduces_ng_jordan_on_breast_cancer(cancer):
    """The finding itself, on real data at a reduced grid (the full grid is
    benchmarks/ng_jordan_study.py): logistic regression ends lower, naive Bayes plateaus sooner."""
    X, y = cancer
    sizes = [8, 16, 32, 64, 128, 256, 400]
    models = {"nb": BayesianNaiveBayes(num_samples=50),
              "lr": BayesianLogisticRegression(method="laplace", num_samples=50)}
    df = learning_curves(models, X, y, sizes, n_splits=30, seed=11, dataset="bc")
    err = (df[df.metric == "error"].groupby(["model", "m"])["value"].mean().unstack("m")[sizes])
    nb, lr = err.loc["nb"].to_numpy(), err.loc["lr"].to_numpy()
    assert lr[-1] < nb[-1]
    assert plateau_m(nb, sizes) < plateau_m(lr, sizes)


# -- the exact Laplace predictive ----------------------------------------------------------------


def test_expected_sigmoid_matches_adaptive_quadrature():
    from scipy.integrate import quad
    from scipy.special import expit

    from ppl_models.learning_curves import expected_sigmoid

    for sd in (0.0, 0.3, 1.0, 1.5, 10.0, 200.0):
        for mean in (-30.0, -4.0, 0.0, 0.7, 12.0):
            if sd == 0:
                ref = expit(mean)
            else:
                f = lambda z: norm.pdf(z) * expit(mean + sd * z)  # noqa: E731
                c = float(np.clip(-mean / sd, -12, 12))
                ref = quad(f, -12, c, epsabs=0, epsrel=1e-13, limit=200)[0] + \
                    quad(f, c, 12, epsabs=0, epsrel=1e-13, limit=200)[0]
            with jax.enable_x64(True):  # as in batched_laplace_proba
                got = float(expected_sigmoid(np.array(mean), np.array(sd)))
            assert abs(got - ref) <= 1e-12 + 1e-8 * ref, (mean, sd, got, ref)


def test_batched_laplace_proba_is_the_exact_laplace_predictive(cancer):
    """Two classes: the batched probabilities equal the average of p(y | x, β) over very many
    draws from each fit's Laplace Gaussian (to Monte Carlo error), and their decisions are the
    mode's (a symmetric Gaussian keeps the logit's sign on average)."""
    from ppl_models.learning_curves import batched_laplace_proba

    X, y = cancer
    rng = np.random.default_rng(5)
    masks = np.concatenate([stratified_train_masks(y, m, 1, rng) for m in (8, 200, 9, 60)])
    est = BayesianLogisticRegression(method="laplace")
    proba, conv = batched_laplace_proba(est, X, y, masks, num_classes=2)
    post = batched_laplace_posterior(est, X, y, masks, num_classes=2)
    assert conv.all()
    rng = np.random.default_rng(0)
    for i, mask in enumerate(masks):
        sd = X[mask].std(0)
        Z = (X - X[mask].mean(0)) / np.where(sd > 0, sd, 1.0)
        A = np.hstack([Z, np.ones((len(Z), 1))])
        theta = rng.multivariate_normal(post.mode[i], post.cov[i], 40_000)
        mc = (1.0 / (1.0 + np.exp(-(A @ theta.T)))).mean(1)
        assert np.max(np.abs(proba[i, :, 1] - mc)) < 0.01  # MC sd ≤ 0.5 / √40000 = 0.0025
        np.testing.assert_allclose(proba[i].sum(1), 1.0, atol=1e-12)
        np.testing.assert_array_equal(proba[i].argmax(1), (A @ post.mode[i] > 0).astype(int))
