"""Logistic regression: recovery of known coefficients, the program's density against scipy, the
Laplace approximation against NUTS and scikit-learn, the estimator contract, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

import ppl_models as pm
from ppl_models.errors import DataError
from ppl_models.models import logistic as lr

TRUE_COEF = np.array([1.0, -2.0, 0.5])
TRUE_INTERCEPT = -0.5


def _simulate(n=1500, seed=0, num_classes=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    if num_classes == 2:
        p = 1.0 / (1.0 + np.exp(-(X @ TRUE_COEF + TRUE_INTERCEPT)))
        return X, (rng.uniform(size=n) < p).astype(int), None
    coef = np.array([[1.0, -1.0], [-1.5, 0.5], [0.0, 2.0]])  # (D, C-1): classes 1 and 2 vs 0
    logits = np.hstack([np.zeros((n, 1)), X @ coef + np.array([0.3, -0.3])])
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > np.cumsum(prob, 1)).sum(1)
    return X, y, coef


@pytest.fixture(scope="session")
def binary_nuts():
    X, y, _ = _simulate()
    res = pm.fit(lr.logistic_regression, {"X": X, "y": y}, method="nuts", seed=0, num_chains=2,
                 num_warmup=400, num_samples=600, chain_method="vectorized", progress_bar=False)
    return res, X, y


@pytest.mark.slow
def test_recovers_known_coefficients(binary_nuts):
    res, _, _ = binary_nuts
    s = res.get_samples()
    for draws, truth in ((s["coef"], TRUE_COEF), (s["intercept"], TRUE_INTERCEPT)):
        lo, hi = np.quantile(draws, [0.005, 0.995], axis=0)
        assert np.all((lo < truth) & (truth < hi)), (lo, hi, truth)
    # and the posterior is informative (the check could fail): 99% intervals narrower than 0.6
    assert np.all(np.quantile(s["coef"], 0.995, 0) - np.quantile(s["coef"], 0.005, 0) < 0.6)


@pytest.mark.slow
def test_laplace_matches_nuts_on_well_determined_data(binary_nuts):
    res, X, y = binary_nuts
    lap = lr.laplace_posterior_numpy(X, y)
    summary = res.summary()
    names = [i for i in summary.index if i.startswith("coef")]
    nuts_mean = np.r_[summary.loc[names, "mean"].to_numpy(), summary.loc["intercept", "mean"]]
    nuts_sd = np.r_[summary.loc[names, "sd"].to_numpy(), summary.loc["intercept", "sd"]]
    # With N = 1500 and D = 3 the posterior is close to Gaussian: the Laplace mean and sd agree
    # with NUTS to a small fraction of a posterior sd (a bound far looser than the 4 MCSE of an
    # exact comparison, because Laplace is an approximation).
    np.testing.assert_array_less(np.abs(lap.mode - nuts_mean), 0.15 * nuts_sd)
    np.testing.assert_allclose(np.sqrt(np.diag(lap.cov)), nuts_sd, rtol=0.15)


def test_recovers_multiclass_coefficients_laplace():
    X, y, coef = _simulate(n=3000, seed=1, num_classes=3)
    lap = lr.laplace_posterior_numpy(X, y, num_classes=3)
    draws = lr.sample_laplace(np.random.default_rng(0), lap, 4000, num_features=3, num_classes=3)
    assert draws["coef"].shape == (4000, 3, 2) and draws["intercept"].shape == (4000, 2)
    lo, hi = np.quantile(draws["coef"], [0.005, 0.995], axis=0)
    assert np.all((lo < coef) & (coef < hi))


def test_program_density_matches_scipy():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(6, 2)), np.array([0, 1, 1, 0, 1, 0])
    values = {"coef": np.array([0.7, -1.2]), "intercept": np.array(0.3)}
    for prior in ("normal", "student_t"):
        with jax.enable_x64(True):
            got = float(pm.log_joint(lr.logistic_regression,
                                     {"X": X, "y": y, "prior": prior, "prior_scale": 2.0, "prior_df": 4.0}, values))
        eta = X @ values["coef"] + values["intercept"]
        lik = st.bernoulli.logpmf(y, 1 / (1 + np.exp(-eta))).sum()
        coef_lp = (st.norm.logpdf(values["coef"], 0, 2.0) if prior == "normal"
                   else st.t.logpdf(values["coef"], 4.0, 0, 2.0)).sum()
        assert got == pytest.approx(lik + coef_lp + st.norm.logpdf(0.3, 0, 2.5), rel=1e-9)


def test_multiclass_density_and_reference_class():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(5, 2)), np.array([0, 1, 2, 2, 1])
    coef, b0 = rng.normal(size=(2, 2)), rng.normal(size=2)
    with jax.enable_x64(True):
        got = float(pm.log_joint(lr.logistic_regression, {"X": X, "y": y, "num_classes": 3},
                                 {"coef": coef, "intercept": b0}))
    logits = np.hstack([np.zeros((5, 1)), X @ coef + b0])
    lik = np.sum(logits[np.arange(5), y] - np.log(np.exp(logits).sum(1)))
    lp = st.norm.logpdf(coef, 0, 2.5).sum() + st.norm.logpdf(b0, 0, 2.5).sum()
    assert got == pytest.approx(lik + lp, rel=1e-9)
    # The kernel puts the reference class at logit 0, and binary = the C = 2 case.
    np.testing.assert_allclose(lr.class_logits(X, coef, b0), logits, rtol=1e-6)
    p2 = np.asarray(lr.class_probabilities(X, coef[:, 0], b0[0]))
    np.testing.assert_allclose(p2[:, 1], 1 / (1 + np.exp(-(X @ coef[:, 0] + b0[0]))), rtol=1e-6)


@pytest.mark.parametrize("prior", ["normal", "student_t"])
@pytest.mark.parametrize("num_classes", [2, 3])
def test_numpy_objective_matches_jax_autodiff(prior, num_classes):
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, num_classes, 20)
    K = num_classes - 1
    theta = rng.normal(size=(3 + 1) * K) * 3.0  # large values reach the t prior's non-convex part
    Xa = np.hstack([X, np.ones((20, 1))])
    Y = (y[:, None] == np.arange(1, num_classes)).astype(float)
    args = (prior, 2.5, 3.0, True, 2.5)
    value, grad, hess = lr._np_objective(theta, Xa, Y, *args)
    with jax.enable_x64(True):
        f = lambda t: lr._neg_log_posterior(t, jnp.asarray(X), jnp.asarray(y), num_classes, *args)  # noqa: E731
        t = jnp.asarray(theta)
        # Normal log densities include the constant −½ log 2π s²; the NumPy objective drops it.
        np.testing.assert_allclose(np.asarray(jax.grad(f)(t)), grad, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(np.asarray(jax.hessian(f)(t)), hess, rtol=1e-8, atol=1e-9)
        assert np.isfinite(value)


def test_numpy_and_jax_laplace_agree_and_vmap():
    X, y, _ = _simulate(n=400, seed=5)
    with jax.enable_x64(True):
        # One compile for a batch of two equally sized data sets (the learning-curve use).
        batch = jax.vmap(lambda Xs, ys: lr.laplace_posterior(Xs, ys))(
            jnp.asarray(X).reshape(2, 200, 3), jnp.asarray(y).reshape(2, 200))
    for i, rows in enumerate((slice(0, 200), slice(200, 400))):
        ref = lr.laplace_posterior_numpy(X[rows], y[rows])
        np.testing.assert_allclose(np.asarray(batch.mode[i]), ref.mode, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(batch.cov[i]), ref.cov, rtol=1e-4, atol=1e-7)
    assert np.all(np.asarray(batch.converged))


@pytest.mark.parametrize("num_classes", [2, 3])
def test_jax_laplace_finds_the_mode_on_separable_data(num_classes):
    # Small separable training sets put the mode far out (where BFGS used to stop early); Newton
    # with a line search must reach SciPy's trust-region optimum and say it converged.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(9, 4))
    y = np.arange(9) % num_classes
    X[:, 0] += 3.0 * y                                  # class moves feature 0: separable
    with jax.enable_x64(True):
        post = lr.laplace_posterior(jnp.asarray(X), jnp.asarray(y), num_classes=num_classes)
    ref = lr.laplace_posterior_numpy(X, y, num_classes=num_classes)
    assert bool(post.converged)
    np.testing.assert_allclose(np.asarray(post.mode), ref.mode, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(post.cov), ref.cov, rtol=1e-5, atol=1e-8)


def test_flat_prior_mode_is_sklearn_mle():
    X, y, _ = _simulate(n=500, seed=6)
    lap = lr.laplace_posterior_numpy(X, y, prior_scale=1e4, intercept_scale=1e4)
    sk = LogisticRegression(C=1e8, tol=1e-10, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(lap.mode[:3], sk.coef_[0], rtol=1e-4)
    np.testing.assert_allclose(lap.mode[3], sk.intercept_[0], rtol=1e-4)


# ------------------------------------------------------------------ estimator
@parametrize_with_checks([
    lr.BayesianLogisticRegression(method="laplace", num_samples=200, random_state=0),
    lr.BayesianLogisticRegression(method="laplace", prior="student_t", fit_intercept=False, standardize=False,
                                  num_samples=200, random_state=0),
])
def test_sklearn_compatible(estimator, check):
    # method="laplace" (NumPy/SciPy, no compilation) keeps each check to milliseconds; NUTS gives
    # the same interface (test_estimator_with_nuts).
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks([
    lr.BayesianLogisticRegression(method="nuts", num_chains=1, num_warmup=20, num_samples=20, random_state=0),
])
def test_sklearn_compatible_with_nuts(estimator, check):
    # every check also passes with the NumPyro program sampled by NUTS (short chains: the checks
    # are about the interface, not the posterior)
    check(estimator)


def test_coef_in_input_units():
    X, y, _ = _simulate(n=500, seed=7)
    X = X * np.array([10.0, 0.1, 1.0]) + 5.0
    est = lr.BayesianLogisticRegression(method="laplace", random_state=0).fit(X, y)
    Z = (X - est.mean_) / est.scale_
    logits_std = Z @ est.samples_["coef"].mean(0) + est.samples_["intercept"].mean()
    np.testing.assert_allclose(X @ est.coef_[0] + est.intercept_[0], logits_std, rtol=1e-8, atol=1e-8)
    assert est.coef_.shape == (1, 3) and est.intercept_.shape == (1,)


def test_multiclass_estimator_and_dataframe_coords():
    X, y, _ = _simulate(n=600, seed=8, num_classes=3)
    df = pd.DataFrame(X, columns=["age", "dose", "weight"])
    labels = np.array(["low", "mid", "high"])[y]
    est = lr.BayesianLogisticRegression(method="laplace", random_state=0).fit(df, labels)
    assert list(est.classes_) == ["high", "low", "mid"] and est.coef_.shape == (3, 3)
    np.testing.assert_array_equal(est.coef_[0], 0.0)  # the reference class
    r = est.predict_proba_interval(df.iloc[:5])
    assert r.mean.shape == (5, 3) and np.all(r.lower <= r.upper)
    np.testing.assert_allclose(r.mean.sum(1), 1.0)
    post = est.fit_.to_arviz().posterior
    assert list(post["coef"].coords["feature"].values) == ["age", "dose", "weight"]
    assert list(post["coef"].coords["class"].values) == ["low", "mid"]
    assert est.score(df, labels) > 0.6


@pytest.mark.slow
def test_estimator_with_nuts():
    X, y, _ = _simulate(n=300, seed=9)
    est = lr.BayesianLogisticRegression(num_chains=1, num_warmup=300, num_samples=400, random_state=0).fit(X, y)
    lap = lr.BayesianLogisticRegression(method="laplace", num_samples=4000, random_state=0).fit(X, y)
    np.testing.assert_allclose(est.predict_proba(X), lap.predict_proba(X), atol=0.03)
    assert est.fit_.method == "nuts" and est.fit_.num_divergences == 0


@pytest.mark.slow
def test_sbc_detects_a_prior_mismatch_and_passes_without_it():
    # data simulated with N(0, 5^2) priors, fitted with the model's N(0, 2.5^2): the truth falls in
    # the posterior's tails too often, and SBC must fail; the same settings pass with the right
    # prior, so the failure is the mismatch's
    import functools

    from ppl_models.datasets.sklearn_sets import load_breast_cancer
    from ppl_models.diagnostics import sbc

    md = load_breast_cancer(num_rows=40)
    data = {"X": md.kwargs["X"][:, :4], "y": md.kwargs["y"]}
    settings = dict(num_replications=60, num_warmup=150, num_samples=150, seed=0)
    right = sbc(lr.logistic_regression, data, **settings)
    assert right.passed, str(right)
    wide = functools.partial(lr.logistic_regression, prior_scale=5.0, intercept_scale=5.0)
    wrong = sbc(lr.logistic_regression, data, simulator=wide, **settings)
    assert not wrong.passed, str(wrong)
    assert not wrong.table["passed"].any(), str(wrong)


def test_same_random_state_same_draws():
    X, y, _ = _simulate(n=200)
    a = lr.BayesianLogisticRegression(method="laplace", random_state=1).fit(X, y).samples_["coef"]
    b = lr.BayesianLogisticRegression(method="laplace", random_state=1).fit(X, y).samples_["coef"]
    c = lr.BayesianLogisticRegression(method="laplace", random_state=2).fit(X, y).samples_["coef"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def fitted():
    X, y, _ = _simulate(n=200)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    return lr.BayesianLogisticRegression(method="laplace", random_state=0).fit(df, y), df, y


def test_missing_column(fitted):
    est, df, _ = fitted
    with pytest.raises(DataError, match=r"argument `X`.*missing column\(s\) \['c'\]"):
        est.predict_proba(df[["a", "b"]])


def test_wrong_shapes(fitted):
    est, df, y = fitted
    with pytest.raises(DataError, match="argument `X`: expected 3 feature column"):
        est.predict(np.zeros((2, 4)))
    with pytest.raises(DataError, match="argument `X`: expected a 2-dimensional array"):
        est.predict(np.zeros(3))
    with pytest.raises(DataError, match="argument `y`: expected 200 labels"):
        lr.BayesianLogisticRegression(method="laplace").fit(df, y[:150])


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_non_finite(fitted, bad):
    est, df, y = fitted
    X = df.to_numpy().copy()
    X[5, 2] = bad
    with pytest.raises(DataError, match=r"argument `X`: expected finite values.*\(5, 2\)"):
        lr.BayesianLogisticRegression(method="laplace").fit(X, y)
    with pytest.raises(DataError, match="argument `X`: expected finite values"):
        est.predict(pd.DataFrame(X, columns=["a", "b", "c"]))


def test_labels_outside_classes_and_one_class(fitted):
    est, df, y = fitted
    with pytest.raises(DataError, match=r"argument `y`: expected labels among the classes \[0, 1\], got the label 2"):
        est.score(df, np.where(y == 1, 2, y))
    with pytest.raises(DataError, match="argument `y`: expected labels of at least two classes"):
        lr.BayesianLogisticRegression(method="laplace").fit(df, np.zeros(200))
    with pytest.raises(DataError, match="argument `method`"):
        lr.BayesianLogisticRegression(method="gibbs").fit(df, y)


# ------------------------------------------------------------------ loaders (shared with naive Bayes)
def test_loaders_shapes_coords_and_subsets():
    from ppl_models.datasets import sklearn_sets as ds

    bc = ds.load_breast_cancer()
    assert bc.kwargs["X"].shape == (569, 30) and bc.observed == ("y",)
    np.testing.assert_allclose(bc.kwargs["X"].mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(bc.kwargs["X"].std(0), 1.0)
    assert bc.coords["feature"][0] == "mean radius"
    wine = ds.load_wine(num_rows=45, seed=1)
    assert wine.kwargs["X"].shape == (45, 13) and wine.kwargs["num_classes"] == 3
    assert set(np.unique(wine.kwargs["y"])) == {0, 1, 2} and wine.coords["class"] == ["class_1", "class_2"]
    dig = ds.load_digits(digits=[3, 8], num_rows=40)
    assert dig.observed == ("X", "y") and dig.kwargs["num_features"] == 64
    assert set(np.unique(dig.kwargs["X"])) <= {0.0, 1.0} and dig.coords["class"] == ["3", "8"]
    # The same program runs on what each loader gives (forward simulation included).
    from ppl_models.models.naive_bayes import naive_bayes

    prior = pm.sample_prior(naive_bayes, {**dig.without_observed(), "likelihood": "bernoulli"}, num_samples=2, seed=0)
    assert np.asarray(prior["X"]).shape[-2:] == (40, 64)
    with pytest.raises(DataError, match="argument `num_rows`"):
        ds.load_wine(num_rows=1)
    with pytest.raises(DataError, match="argument `model`"):
        ds.load_breast_cancer(model="svm")
    with pytest.raises(DataError, match="argument `digits`"):
        ds.load_digits(digits=[3])


def test_float32_laplace_mode_is_accurate_in_posterior_sd_at_large_n():
    # a gradient tolerance growing with N stopped 0.5 sd from the mode at N = 200,000 in float32;
    # the Newton decrement measures the distance in posterior sds whatever N is
    rng = np.random.default_rng(0)
    N, D = 200_000, 5
    X = rng.normal(size=(N, D))
    y = (rng.random(N) < 1 / (1 + np.exp(-(X @ rng.normal(size=D) + 0.3)))).astype(np.int32)
    with jax.enable_x64(True):
        ref = lr.laplace_posterior(jnp.asarray(X, jnp.float64), jnp.asarray(y))
        m64, sd64 = np.asarray(ref.mode), np.sqrt(np.diag(np.asarray(ref.cov)))
    post = lr.laplace_posterior(jnp.asarray(X, jnp.float32), jnp.asarray(y))
    assert bool(ref.converged) and bool(post.converged)
    assert np.max(np.abs(np.asarray(post.mode, np.float64) - m64) / sd64) < 0.01
