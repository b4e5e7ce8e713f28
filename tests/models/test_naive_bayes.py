"""Naive Bayes: Bayes' rule against scipy densities, the conjugate posterior against NUTS, the
estimator against scikit-learn's checks, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.special as sps
import scipy.stats as st
from numpyro.infer import Predictive
from sklearn.naive_bayes import GaussianNB
from sklearn.utils.estimator_checks import parametrize_with_checks

import ppl_models as pm
from ppl_models.errors import DataError
from ppl_models.models import naive_bayes as nb


def _random_params(rng, likelihood, C=3, D=4, K=3, shared=False, S=None):
    lead = () if S is None else (S,)
    p = {"class_prob": rng.dirichlet(np.ones(C), size=lead or None)}
    if likelihood == "gaussian":
        p["loc"] = rng.normal(size=lead + (C, D))
        p["precision"] = rng.gamma(2.0, 1.0, size=lead + ((D,) if shared else (C, D)))
    elif likelihood == "bernoulli":
        p["prob"] = rng.uniform(0.05, 0.95, size=lead + (C, D))
    else:
        p["probs"] = rng.dirichlet(np.ones(K), size=lead + (C, D))
    return p


def _random_X(rng, likelihood, N=7, D=4, K=3):
    if likelihood == "gaussian":
        return rng.normal(size=(N, D))
    if likelihood == "bernoulli":
        return rng.integers(0, 2, size=(N, D)).astype(float)
    return rng.integers(0, K, size=(N, D))


def _scipy_log_joint(X, p, likelihood):
    """log π_c + Σ_j log p(x_ij | c) with scipy's densities, one row and class at a time."""
    N, C = X.shape[0], p["class_prob"].shape[0]
    out = np.empty((N, C))
    for i in range(N):
        for c in range(C):
            if likelihood == "gaussian":
                prec = p["precision"] if p["precision"].ndim == 1 else p["precision"][c]
                ll = st.norm.logpdf(X[i], p["loc"][c], 1.0 / np.sqrt(prec)).sum()
            elif likelihood == "bernoulli":
                ll = st.bernoulli.logpmf(X[i], p["prob"][c]).sum()
            else:
                ll = sum(np.log(p["probs"][c, j, X[i, j]]) for j in range(X.shape[1]))
            out[i, c] = np.log(p["class_prob"][c]) + ll
    return out


CASES = [("gaussian", False), ("gaussian", True), ("bernoulli", False), ("categorical", False)]


# ------------------------------------------------------------------ Bayes' rule = closed form
@pytest.mark.parametrize("likelihood,shared", CASES)
def test_class_posterior_equals_scipy_bayes_rule(likelihood, shared):
    rng = np.random.default_rng(1)
    p = _random_params(rng, likelihood, shared=shared)
    X = _random_X(rng, likelihood)
    expected = sps.softmax(_scipy_log_joint(X, p, likelihood), axis=1)
    np.testing.assert_allclose(nb.class_posterior(X, p, likelihood), expected, rtol=1e-10)
    # The same kernel on JAX arrays, in float64, gives the same table.
    with jax.enable_x64(True):
        got = nb.class_posterior(jnp.asarray(X), {k: jnp.asarray(v) for k, v in p.items()}, likelihood)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-9)


@pytest.mark.parametrize("likelihood,shared", CASES)
def test_kernel_broadcasts_over_draws(likelihood, shared):
    rng = np.random.default_rng(2)
    p = _random_params(rng, likelihood, shared=shared, S=5)
    X = _random_X(rng, likelihood)
    batched = nb.class_log_joint(X, p, likelihood)
    assert batched.shape == (5, 7, 3)
    for s in range(5):
        one = {k: v[s] for k, v in p.items()}
        np.testing.assert_allclose(batched[s], _scipy_log_joint(X, one, likelihood), rtol=1e-10)


def test_shared_variance_gives_linear_log_odds_and_per_class_does_not():
    rng = np.random.default_rng(3)
    x0, h = rng.normal(size=4), rng.normal(size=4)
    line = np.stack([x0 + t * h for t in (0.0, 1.0, 2.0)])
    for shared, linear in ((True, True), (False, False)):
        lj = nb.class_log_joint(line, _random_params(rng, "gaussian", shared=shared), "gaussian")
        log_odds = lj[:, 1] - lj[:, 0]
        second_difference = log_odds[2] - 2 * log_odds[1] + log_odds[0]
        assert (abs(second_difference) < 1e-9) == linear


def test_marginal_distribution_is_the_class_sum():
    rng = np.random.default_rng(4)
    p = _random_params(rng, "gaussian")
    X = _random_X(rng, "gaussian")
    params = {k: jnp.asarray(v, jnp.float32) for k, v in p.items() if k != "class_prob"}
    d = nb.NaiveBayesMarginal(jnp.asarray(p["class_prob"], jnp.float32), params, "gaussian")
    expected = sps.logsumexp(_scipy_log_joint(X, p, "gaussian"), axis=1)
    np.testing.assert_allclose(np.asarray(d.log_prob(jnp.asarray(X, jnp.float32))), expected, rtol=1e-5)
    assert d.sample(jax.random.PRNGKey(0), (6,)).shape == (6, 4)


# ------------------------------------------------------------------ the program
def test_forward_sampling_shapes_and_seed():
    def draw(seed, **kw):
        return Predictive(nb.naive_bayes, num_samples=3)(jax.random.PRNGKey(seed), num_classes=2, **kw)

    a = draw(0, num_obs=5, num_features=4, likelihood="categorical", num_categories=3)
    assert a["X"].shape == (3, 5, 4) and a["y"].shape == (3, 5) and a["probs"].shape == (3, 2, 4, 3)
    assert int(a["X"].max()) < 3
    b = draw(0, num_obs=5, num_features=4, likelihood="categorical", num_categories=3)
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))
    c = draw(1, num_obs=5, num_features=4, likelihood="categorical", num_categories=3)
    assert not np.array_equal(np.asarray(a["X"]), np.asarray(c["X"]))
    # Given labels and no features, the program generates features for those classes.
    g = draw(0, y=jnp.array([0, 1, 1]), num_features=2, shared_variance=True)
    assert g["X"].shape == (3, 3, 2) and g["precision"].shape == (3, 2)
    assert "y" not in g or np.array_equal(np.asarray(g["y"][0]), [0, 1, 1])


def test_program_classifies_by_bayes_rule_on_its_own_joint():
    rng = np.random.default_rng(5)
    draws = _random_params(rng, "bernoulli", S=4)
    X = _random_X(rng, "bernoulli")
    out = Predictive(nb.naive_bayes, posterior_samples={k: jnp.asarray(v, jnp.float32) for k, v in draws.items()},
                     return_sites=["class_posterior"])(jax.random.PRNGKey(0), X=jnp.asarray(X, jnp.float32),
                                                       num_classes=3, likelihood="bernoulli")
    np.testing.assert_allclose(np.asarray(out["class_posterior"]), nb.class_posterior(X, draws, "bernoulli"),
                               rtol=1e-4, atol=1e-6)


def test_program_log_density_matches_scipy():
    rng = np.random.default_rng(6)
    p = _random_params(rng, "gaussian", C=2, D=3)
    X = _random_X(rng, "gaussian", N=5, D=3)
    y = np.array([0, 1, 1, 0, 1])
    prior = nb.NaiveBayesPrior()
    with jax.enable_x64(True):
        got = pm.log_joint(nb.naive_bayes, {"X": X, "y": y, "num_classes": 2}, p)
    lik = sum(st.norm.logpdf(X[i], p["loc"][y[i]], 1 / np.sqrt(p["precision"][y[i]])).sum()
              + np.log(p["class_prob"][y[i]]) for i in range(5))
    lp = (st.dirichlet.logpdf(p["class_prob"], np.ones(2))
          + st.gamma.logpdf(p["precision"], prior.precision_shape, scale=1 / prior.precision_rate).sum()
          + st.norm.logpdf(p["loc"], prior.loc_mean, 1 / np.sqrt(prior.loc_strength * p["precision"])).sum())
    assert float(got) == pytest.approx(lik + lp, rel=1e-8)


# ------------------------------------------------------------------ exact posterior vs NUTS
def _labelled(likelihood, n=60, seed=7):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    if likelihood == "gaussian":
        X = rng.normal(size=(n, 2)) * np.array([1.0, 0.5]) + np.array([[0.0, 0.0], [1.0, -1.0]])[y]
    else:
        X = (rng.uniform(size=(n, 3)) < np.array([[0.2, 0.5, 0.7], [0.6, 0.4, 0.1]])[y]).astype(float)
    return X, y


def _analytic(post):
    """Posterior mean and sd of every site of a conjugate posterior."""
    a = np.asarray(post.class_concentration)
    a0 = a.sum()
    out = {"class_prob": (a / a0, np.sqrt(a * (a0 - a) / (a0**2 * (a0 + 1))))}
    if isinstance(post, nb.GaussianPosterior):
        shape, rate = np.asarray(post.shape), np.asarray(post.rate)
        out["precision"] = (shape / rate, np.sqrt(shape) / rate)
        # loc is Student-t with 2·shape degrees of freedom: var = rate / (κ (shape − 1)).
        full_shape = shape if shape.ndim == 2 else shape[None]
        full_rate = rate if rate.ndim == 2 else rate[None]
        out["loc"] = (np.asarray(post.loc), np.sqrt(full_rate / (np.asarray(post.loc_strength) * (full_shape - 1))))
    else:
        al, be = np.asarray(post.alpha), np.asarray(post.beta)
        out["prob"] = (al / (al + be), np.sqrt(al * be / ((al + be) ** 2 * (al + be + 1))))
    return out


@pytest.fixture(scope="session", params=[("gaussian", False), ("gaussian", True), ("bernoulli", False)],
                ids=["gaussian", "gaussian-shared", "bernoulli"])
def nuts_vs_exact(request):
    likelihood, shared = request.param
    X, y = _labelled(likelihood)
    data = {"X": X, "y": y, "num_classes": 2, "likelihood": likelihood, "shared_variance": shared}
    res = pm.fit(nb.naive_bayes, data, method="nuts", seed=0, num_chains=2, num_warmup=500, num_samples=1000,
                 chain_method="vectorized", progress_bar=False)
    post = nb.conjugate_posterior(X, y, num_classes=2, likelihood=likelihood, shared_variance=shared)
    return res, post, X, y, likelihood


@pytest.mark.slow
def test_nuts_matches_conjugate_posterior_within_4_mcse(nuts_vs_exact):
    res, post, *_ = nuts_vs_exact
    summary = res.summary()
    posterior = res.to_arviz().posterior
    truth = _analytic(post)
    for site, (mean, sd) in truth.items():
        for idx in np.ndindex(mean.shape):
            name = site + ("[" + ", ".join(_label(posterior, site, idx)) + "]" if idx else "")
            row = summary.loc[name]
            assert abs(row["mean"] - mean[idx]) < 4 * row["mcse_mean"], (name, row["mean"], mean[idx])
            assert abs(row["sd"] - sd[idx]) < 4 * row["mcse_sd"] + 0.02 * sd[idx], (name, row["sd"], sd[idx])


def _label(posterior, site, idx):
    """The coordinate labels ArviZ's summary uses for one element of a site."""
    dims = posterior[site].dims[2:]
    return [str(posterior[site].coords[d].values[i]) for d, i in zip(dims, idx)]


@pytest.mark.slow
def test_exact_and_nuts_give_the_same_class_probabilities(nuts_vs_exact):
    res, post, X, _, likelihood = nuts_vs_exact
    exact = nb.sample_conjugate_posterior(np.random.default_rng(0), post, 4000)
    a = nb.posterior_class_probabilities(X, res.get_samples(), likelihood).mean
    b = nb.posterior_class_probabilities(X, exact, likelihood).mean
    np.testing.assert_allclose(a, b, atol=0.02)


@pytest.mark.parametrize("likelihood,shared", CASES)
def test_exact_draws_have_the_analytic_moments(likelihood, shared):
    rng = np.random.default_rng(8)
    if likelihood == "categorical":
        X, y = rng.integers(0, 3, size=(40, 2)), rng.integers(0, 2, size=40)
        post = nb.conjugate_posterior(X, y, num_classes=2, likelihood=likelihood, num_categories=3)
        conc = np.asarray(post.concentration)
        truth = {"probs": conc / conc.sum(-1, keepdims=True)}
    else:
        X, y = _labelled(likelihood)
        post = nb.conjugate_posterior(X, y, num_classes=2, likelihood=likelihood, shared_variance=shared)
        truth = {k: m for k, (m, _) in _analytic(post).items()}
    S = 20000
    for source in (np.random.default_rng(0), jax.random.PRNGKey(0)):
        draws = nb.sample_conjugate_posterior(source, post, S)
        for site, mean in truth.items():
            d = np.asarray(draws[site], np.float64)
            se = d.std(0) / np.sqrt(S)
            assert np.all(np.abs(d.mean(0) - mean) < 4.5 * se + 1e-6), site


def test_conjugate_posterior_vmaps_over_splits():
    X, y = _labelled("gaussian", n=40)
    Xs, ys = jnp.stack([X[:20], X[20:]]), jnp.stack([y[:20], y[20:]])
    batched = jax.vmap(lambda a, b: nb.conjugate_posterior(a, b, num_classes=2))(Xs, ys)
    one = nb.conjugate_posterior(X[20:], y[20:], num_classes=2)
    np.testing.assert_allclose(np.asarray(batched.rate[1]), one.rate, rtol=1e-5)


# ------------------------------------------------------------------ estimator
@parametrize_with_checks([
    nb.BayesianNaiveBayes(num_samples=200, random_state=0),
    nb.BayesianNaiveBayes(shared_variance=True, num_samples=200, random_state=0),
    nb.BayesianNaiveBayes(likelihood="bernoulli", binarize=0.0, num_samples=200, random_state=0),
])
def test_sklearn_compatible(estimator, check):
    # method="exact" (the default) keeps each of the ~50 checks to milliseconds.
    check(estimator)


def test_agrees_with_sklearn_gaussian_nb_on_breast_cancer():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    ours = nb.BayesianNaiveBayes(random_state=0).fit(X, y)
    theirs = GaussianNB().fit(X, y)
    assert np.mean(ours.predict(X) == theirs.predict(X)) > 0.97
    assert ours.score(X, y) > 0.9


def test_intervals_narrow_with_more_data():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 2000)
    X = rng.normal(size=(2000, 2)) + y[:, None]
    probe = np.array([[0.5, 0.5], [2.0, 2.0]])
    widths = []
    for n in (20, 2000):
        r = nb.BayesianNaiveBayes(random_state=0).fit(X[:n], y[:n]).predict_proba_interval(probe)
        assert np.all(r.lower <= r.upper) and r.mean.shape == (2, 2)
        widths.append(np.mean(r.upper - r.lower))
    assert widths[1] < 0.5 * widths[0]


def test_same_random_state_same_draws():
    X, y = _labelled("gaussian")
    a = nb.BayesianNaiveBayes(random_state=3).fit(X, y).samples_
    b = nb.BayesianNaiveBayes(random_state=3).fit(X, y).samples_
    c = nb.BayesianNaiveBayes(random_state=4).fit(X, y).samples_
    np.testing.assert_array_equal(a["loc"], b["loc"])
    assert not np.array_equal(a["loc"], c["loc"])


def test_dataframe_columns_become_coords():
    X, y = _labelled("gaussian")
    df = pd.DataFrame(X, columns=["height", "weight"])
    est = nb.BayesianNaiveBayes(random_state=0).fit(df, np.where(y == 1, "b", "a"))
    post = est.fit_.to_arviz().posterior
    assert list(post["loc"].coords["feature"].values) == ["height", "weight"]
    assert list(post["loc"].coords["class"].values) == ["a", "b"]
    assert set(est.predict(df)) <= {"a", "b"}


def test_categorical_estimator():
    rng = np.random.default_rng(10)
    y = rng.integers(0, 2, 300)
    X = np.where(rng.uniform(size=(300, 3)) < 0.7, y[:, None] * 2, rng.integers(0, 3, (300, 3)))
    est = nb.BayesianNaiveBayes(likelihood="categorical", random_state=0).fit(X, y)
    assert est.num_categories_ == 3 and est.score(X, y) > 0.8
    with pytest.raises(DataError, match="`X`"):
        est.predict(X + 1)  # category 3 was never seen


@pytest.mark.slow
def test_estimator_with_nuts():
    X, y = _labelled("gaussian")
    est = nb.BayesianNaiveBayes(method="nuts", num_chains=1, num_warmup=300, num_samples=300, random_state=0)
    est.fit(X, y)
    exact = nb.BayesianNaiveBayes(random_state=0, num_samples=2000).fit(X, y)
    np.testing.assert_allclose(est.predict_proba(X), exact.predict_proba(X), atol=0.03)
    assert est.fit_.method == "nuts"


# ------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def fitted_df():
    X, y = _labelled("gaussian")
    df = pd.DataFrame(X, columns=["a", "b"])
    return nb.BayesianNaiveBayes(random_state=0).fit(df, y), df, y


def test_missing_dataframe_column(fitted_df):
    est, df, _ = fitted_df
    with pytest.raises(DataError, match=r"argument `X`.*missing column\(s\) \['b'\]") as e:
        est.predict(df[["a"]])
    assert e.value.argument == "X"


def test_wrong_number_of_features(fitted_df):
    est, df, _ = fitted_df
    with pytest.raises(DataError, match="argument `X`: expected 2 feature column"):
        est.predict(np.zeros((3, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features(bad):
    X, y = _labelled("gaussian")
    X[3, 1] = bad
    with pytest.raises(DataError, match=r"argument `X`: expected finite values.*index \(3, 1\)"):
        nb.BayesianNaiveBayes().fit(X, y)


def test_labels_outside_classes_and_wrong_length(fitted_df):
    est, df, y = fitted_df
    bad = y.copy()
    bad[0] = 7
    with pytest.raises(DataError, match=r"argument `y`: expected labels among the classes \[0, 1\], got the label 7"):
        est.score(df, bad)
    with pytest.raises(DataError, match="argument `y`"):
        nb.BayesianNaiveBayes().fit(df, y[:-1])


def test_bernoulli_needs_binary_features():
    X, y = _labelled("gaussian")
    with pytest.raises(DataError, match="argument `X`: expected binary features"):
        nb.BayesianNaiveBayes(likelihood="bernoulli").fit(X, y)


def test_non_finite_labels_and_continuous_target():
    X, y = _labelled("gaussian")
    yf = y.astype(float)
    yf[2] = np.nan
    with pytest.raises(DataError, match="argument `y`: expected finite labels"):
        nb.BayesianNaiveBayes().fit(X, yf)
    with pytest.raises(DataError, match="argument `y`: expected class labels"):
        nb.BayesianNaiveBayes().fit(X, np.linspace(0, 1, len(y)))
