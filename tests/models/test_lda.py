"""LDA programs: recovery of known topics, the marginalized distribution, checkpoints, the text
pipeline and its errors, ProdLDA, NUTS, and the bundled corpus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import jax
import jax.numpy as jnp
import pytest
import scipy.sparse as sp
from scipy import stats

from ppl_models import text
from ppl_models.errors import DataError
from ppl_models.models import lda

K_TRUE, V_TRUE = 3, 30


def _true_topics():
    # each topic puts 98% of its mass on its own block of 10 words
    beta = np.full((K_TRUE, V_TRUE), 0.02 / (V_TRUE - 10))
    for k in range(K_TRUE):
        beta[k, 10 * k:10 * k + 10] = 0.098
    return beta / beta.sum(1, keepdims=True)


def _simulate(num_docs, seed, length=60, alpha=0.3):
    rng = np.random.default_rng(seed)
    beta = _true_topics()
    theta = rng.dirichlet(np.full(K_TRUE, alpha), num_docs)
    X = np.stack([rng.multinomial(length, theta[d] @ beta) for d in range(num_docs)])
    return X, theta, beta


@pytest.fixture(scope="module")
def sim():
    X, theta, beta = _simulate(200, seed=1)
    return {"X": X, "theta": theta, "beta": beta, "md": lda.lda_data(X, num_topics=K_TRUE, alpha=0.3)}


@pytest.fixture(scope="module")
def sim_fit(sim):
    return lda.fit_lda(sim["md"], num_steps=800, learning_rate=0.1, seed=0, num_posterior_draws=50)


# ------------------------------------------------------------------------------------------ recovery


def test_svi_recovers_known_topics(sim, sim_fit):
    beta_hat = lda.topic_word(sim_fit)
    m = lda.match_topics(beta_hat, sim["beta"])
    # Hellinger distance (in [0, 1]) of every matched topic; measured 0.03-0.06 at seed 0
    assert m.distances.max() < 0.12, m.distances
    theta_hat = lda.doc_topics(sim_fit)[:, m.permutation]
    # 60 tokens a document bound how well theta_d can be known; measured MAE 0.033
    assert np.abs(theta_hat - sim["theta"]).mean() < 0.06
    assert sim_fit.info["model"] == "lda" and np.isfinite(sim_fit.info["final_loss"])
    assert sim_fit.get_samples()["log_beta"].shape == (50, K_TRUE, V_TRUE)


def test_top_words_lie_in_each_topics_block(sim, sim_fit):
    m = lda.match_topics(lda.topic_word(sim_fit), sim["beta"])
    table = lda.top_words(sim_fit, 5)
    assert table.shape == (K_TRUE, 5) and list(table.columns) == [f"word_{i}" for i in range(1, 6)]
    for k in range(K_TRUE):
        words = table.iloc[m.permutation[k]].tolist()
        assert all(10 * k <= int(w[1:]) < 10 * k + 10 for w in words), (k, words)
    long = lda.top_words(sim_fit, 4, long=True)
    assert len(long) == K_TRUE * 4 and long.groupby("topic")["probability"].is_monotonic_decreasing.all()


def test_heldout_perplexity_between_oracle_and_unigram(sim, sim_fit):
    X_test, _, beta = _simulate(80, seed=2)
    obs, ho = text.completion_split(X_test, seed=0)
    got = float(lda.heldout_perplexity(sim_fit, obs, ho).perplexity)
    # the true topics scored by the same measure, and the unigram model of the training corpus
    oi, oc = text.to_padded(obs)
    hi, hc = text.to_padded(ho)
    oracle = float(lda.document_completion_perplexity(jnp.asarray(beta, jnp.float32), jnp.full(K_TRUE, 0.3),
                                                      oi, oc, hi, hc).perplexity)
    freq = sim["X"].sum(0) / sim["X"].sum()
    unigram = float(np.exp(-(ho.toarray() * np.log(freq)).sum() / ho.sum()))
    assert got < 0.8 * unigram
    assert got < 1.05 * oracle, (got, oracle)


def test_topics_of_new_documents(sim, sim_fit):
    m = lda.match_topics(lda.topic_word(sim_fit), sim["beta"])
    new = np.zeros((3, V_TRUE), int)
    for k in range(K_TRUE):
        new[k, 10 * k:10 * k + 10] = 3  # a document made of topic k's words only
    theta = lda.transform(sim_fit, new)
    assert theta.shape == (3, K_TRUE)
    np.testing.assert_allclose(theta.sum(1), 1.0, rtol=1e-6)
    assert [int(np.argmax(theta[k])) for k in range(K_TRUE)] == list(m.permutation)
    assert theta.max(1).min() > 0.9


def test_coherence_prefers_fitted_topics_to_shuffled_ones(sim, sim_fit):
    good = lda.coherence(sim_fit, sim["X"], num_words=5, measure="npmi")
    rng = np.random.default_rng(0)
    shuffled = lda.topic_word(sim_fit)[:, rng.permutation(V_TRUE)]
    bad = lda.coherence(shuffled, sim["X"], num_words=5, measure="npmi")
    assert good.per_topic.shape == (K_TRUE,)
    assert float(good.mean) > float(bad.mean) + 0.1
    um = lda.coherence(sim_fit, sim["X"], num_words=5, measure="umass")
    assert np.all(np.isfinite(um.per_topic)) and float(um.mean) <= 0.0
    with pytest.raises(DataError, match="measure"):
        lda.coherence(sim_fit, sim["X"], measure="cv")


def test_forward_sampled_documents(sim_fit):
    out = lda.sample_documents(sim_fit, 400, 50, seed=3)
    assert out.counts.shape == (400, V_TRUE) and out.theta.shape == (400, K_TRUE)
    assert np.all(np.asarray(out.counts.sum(1)).ravel() == 50)
    # word frequencies over many documents approach E[theta] @ beta = mean(theta) @ beta
    freq = np.asarray(out.counts.sum(0)).ravel() / out.counts.sum()
    np.testing.assert_allclose(freq, out.theta.mean(0) @ lda.topic_word(sim_fit), atol=0.01)


# ------------------------------------------------------------------------------------------ distribution


def test_lda_documents_log_prob_is_the_exact_marginal():
    rng = np.random.default_rng(0)
    theta = rng.dirichlet(np.ones(3), 4)
    beta = rng.dirichlet(np.ones(6), 3)
    dense = rng.integers(0, 4, (4, 6))
    dense[:, 2] += 1
    pad = text.to_padded(dense)
    with jax.enable_x64(True):
        d = lda.LDADocuments(jnp.log(jnp.asarray(theta)), jnp.log(jnp.asarray(beta)), pad.word_ids, dense.sum(1))
        lp = np.asarray(d.log_prob(jnp.asarray(pad.counts)))
        ref = lda.document_log_likelihood(jnp.asarray(theta), jnp.asarray(beta), pad.word_ids, pad.counts).pointwise
        np.testing.assert_allclose(lp, np.asarray(ref), rtol=1e-12)
        for i in range(4):
            assert lp[i] == pytest.approx(stats.multinomial.logpmf(dense[i], dense[i].sum(), theta[i] @ beta[:]), rel=1e-10)
        # slots covering part of the vocabulary: the rest is one "other" category
        ids = jnp.asarray([[0, 1, -1]] * 4)
        part = lda.LDADocuments(jnp.log(jnp.asarray(theta)), jnp.log(jnp.asarray(beta)), ids, jnp.full(4, 5))
        val = jnp.asarray([[2, 1, 0]] * 4)
        p = theta @ beta
        for i in range(4):
            ref_i = stats.multinomial.logpmf([2, 1, 2], 5, [p[i, 0], p[i, 1], 1 - p[i, 0] - p[i, 1]])
            assert float(part.log_prob(val)[i]) == pytest.approx(ref_i, rel=1e-10)
        draws = np.asarray(part.sample(jax.random.PRNGKey(0), (2000,)))
        assert draws.shape == (2000, 4, 3) and np.all(draws[..., 2] == 0) and np.all(draws.sum(-1) <= 5)
        # the slot counts are binomial(5, p_w) marginally
        np.testing.assert_allclose(draws[..., 0].mean(0), 5 * p[:, 0], atol=0.15)


def test_log_dirichlet_density_and_transform():
    with jax.enable_x64(True):
        c = jnp.asarray([0.3, 1.5, 0.7, 2.0])
        d = lda.LogDirichlet(c)
        x = np.asarray([0.1, 0.5, 0.15, 0.25])
        l = jnp.log(jnp.asarray(x))
        ref = stats.dirichlet.logpdf(x, np.asarray(c)) + np.log(x[:-1]).sum()
        assert float(d.log_prob(l)) == pytest.approx(ref, rel=1e-10)
        t = lda._LogStickBreaking()
        u = jnp.asarray([0.3, -1.2, 2.0])
        y = t(u)
        assert float(jax.scipy.special.logsumexp(y)) == pytest.approx(0.0, abs=1e-12)
        np.testing.assert_allclose(np.asarray(t._inverse(y)), np.asarray(u), rtol=1e-10)
        jac = jax.jacfwd(lambda v: t(v)[:-1])(u)
        assert float(t.log_abs_det_jacobian(u, y)) == pytest.approx(float(jnp.linalg.slogdet(jac)[1]), rel=1e-10)
        draws = d.sample(jax.random.PRNGKey(0), (20000,))
        np.testing.assert_allclose(np.asarray(jnp.exp(draws).mean(0)), np.asarray(c / c.sum()), atol=0.01)
        # tiny concentrations still give finite logs in float32
    small = lda.LogDirichlet(jnp.full(5000, 0.01, jnp.float32)).sample(jax.random.PRNGKey(1), (3,))
    assert bool(jnp.all(jnp.isfinite(small)))


# ------------------------------------------------------------------------------------------ variational Bayes


def test_vb_recovers_known_topics_and_its_elbo_never_falls(sim, tmp_path):
    fit = lda.fit_lda(sim["md"], method="vb", num_steps=60, seed=0, num_posterior_draws=30)
    assert fit.method == "vb" and fit.info["model"] == "lda"
    m = lda.match_topics(lda.topic_word(fit), sim["beta"])
    # measured 0.082-0.087 at seed 0 (VB's posterior mean gives the off-block words less mass
    # than the truth's 0.1%, which the Hellinger distance weighs; SVI: 0.03-0.06)
    assert m.distances.max() < 0.15, m.distances
    theta_hat = lda.doc_topics(fit)[:, m.permutation]
    assert np.abs(theta_hat - sim["theta"]).mean() < 0.06  # measured 0.033
    # full-batch coordinate ascent: the ELBO rises step by step (float32 rounding aside)
    losses = fit.svi_losses
    assert losses.shape == (60,) and np.all(np.diff(losses) <= 1e-5 * abs(losses[-1]))
    # the recorded loss is minus the closed-form bound, which at the end agrees with the kernel's
    # bound at the fitted lambda and gamma (the last step moved them very little)
    kw = sim["md"].kwargs
    with jax.enable_x64(True):
        bound = float(lda.variational_lower_bound(
            jnp.asarray(fit.svi_params["topic_concentration"]), jnp.asarray(fit.svi_params["doc_concentration"]),
            kw["alpha"], kw["eta"], jnp.asarray(kw["word_ids"]), jnp.asarray(kw["counts"])))
    assert bound >= -losses[-1] - 1e-4 * abs(bound) and bound + losses[-1] < 1e-3 * abs(bound)
    # draws from the fitted Dirichlets: the mean of the draws is near the exact mean
    draws = np.exp(fit.get_samples()["log_beta"])
    assert draws.shape == (30, K_TRUE, V_TRUE)
    np.testing.assert_allclose(draws.mean(0), lda.topic_word(fit), atol=0.01)
    assert np.all(np.isfinite(fit.log_likelihood()["counts"]))
    # saved and loaded, the fitted Dirichlets come back (the topics are their exact means)
    from ppl_models.fit import load_fit

    back = load_fit(fit.save(tmp_path / "vb.nc"))
    assert back.method == "vb" and lda._model_kind(back) == "lda"
    np.testing.assert_allclose(lda.topic_word(back), lda.topic_word(fit), rtol=1e-6)


def test_online_vb_with_minibatches_recovers_known_topics(sim):
    fit = lda.fit_lda(sim["md"], method="vb", batch_size=50, seed=0, num_posterior_draws=10)
    assert fit.info["num_steps"] == 20 * 4 and fit.info["batch_size"] == 50  # 20 epochs by default
    m = lda.match_topics(lda.topic_word(fit), sim["beta"])
    assert m.distances.max() < 0.15, m.distances  # measured 0.088-0.107 at seed 0
    theta_hat = lda.doc_topics(fit)[:, m.permutation]
    assert np.abs(theta_hat - sim["theta"]).mean() < 0.06  # measured 0.036
    with pytest.raises(DataError, match="learning_rate"):
        lda.fit_lda(sim["md"], method="vb", learning_rate=0.1)
    with pytest.raises(DataError, match="learning_decay"):
        lda.fit_lda(sim["md"], method="vb", batch_size=50, learning_decay=0.4)


# ------------------------------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("settings, every, stop, changed, atol", [
    # SVI: Adam steps; a checkpoint of another learning rate is refused
    (dict(num_steps=60, learning_rate=0.1, batch_size=20), 20, 40, dict(learning_rate=0.05), 1e-6),
    # VB: online natural-gradient steps; a checkpoint of other local iterations is refused
    (dict(method="vb", num_steps=30, batch_size=20), 10, 20, dict(local_iterations=3), 0.0),
], ids=["svi", "vb"])
def test_checkpoint_resume_equals_uninterrupted_run(sim, tmp_path, settings, every, stop, changed, atol):
    md = lda.lda_data(sim["X"][:60], num_topics=K_TRUE, alpha=0.3)
    settings = dict(settings, seed=4, num_posterior_draws=5)
    full = lda.fit_lda(md, **settings)
    path = tmp_path / "lda.ckpt"

    class Stop(Exception):
        pass

    def interrupt(step, loss):
        if step >= stop:
            raise Stop

    with pytest.raises(Stop):
        lda.fit_lda(md, checkpoint=lda.Checkpoint(path, every=every), progress=interrupt, **settings)
    assert path.exists() and not list(tmp_path.glob(".*tmp"))  # written atomically, no leftovers
    resumed = lda.fit_lda(md, checkpoint=lda.Checkpoint(path, every=every), **settings)
    assert resumed.info["resumed_from_step"] == stop
    np.testing.assert_allclose(resumed.svi_losses, full.svi_losses, rtol=1e-6)
    for k in full.svi_params:
        np.testing.assert_allclose(resumed.svi_params[k], full.svi_params[k], rtol=1e-5, atol=atol)
    with pytest.raises(DataError, match="checkpoint"):
        lda.fit_lda(md, checkpoint=lda.Checkpoint(path, every=every), **dict(settings, **changed))


# ------------------------------------------------------------------------------------------ text and errors


DOCS = ["The cat sat on the mat with another cat.", "Dogs and cats are friends; the dog barks.",
        "A mat for the dog, a mat for the cat.", "Cats chase mice, dogs chase cats."]


def test_build_corpus_from_list_and_dataframe():
    c = text.build_corpus(DOCS, min_df=1, max_df=1.0)
    assert "the" not in c.vocabulary and "cat" in c.vocabulary  # English stop words dropped
    assert c.counts.shape == (4, c.vocab_size) and sp.issparse(c.counts)
    assert c.counts[0, list(c.vocabulary).index("cat")] == 2
    df = pd.DataFrame({"body": DOCS, "id": range(4)})
    c2 = text.build_corpus(df, column="body", min_df=2, max_df=1.0)
    assert set(c2.vocabulary) <= set(c.vocabulary) and "barks" not in c2.vocabulary  # min_df
    c3 = text.build_corpus(DOCS, min_df=1, max_df=0.3, drop_empty=True)  # words of one document only
    assert "mat" not in c3.vocabulary and "barks" in c3.vocabulary
    new = c.transform(["the cat and the unicorn"])
    assert new.counts.sum() == 1 and new.vocab_size == c.vocab_size
    pad = c.padded()
    dense = np.zeros(c.counts.shape, int)
    for d in range(4):
        used = pad.word_ids[d] >= 0
        dense[d, pad.word_ids[d][used]] = pad.counts[d][used]
    np.testing.assert_array_equal(dense, c.counts.toarray())
    obs, ho = text.completion_split(c.counts, seed=1)
    np.testing.assert_array_equal((obs + ho).toarray(), c.counts.toarray())
    lengths = c.doc_lengths
    np.testing.assert_array_equal(np.asarray(obs.sum(1)).ravel(), np.round(0.5 * lengths).astype(int))
    X = text.from_triples([0, 0, 1, 1], [2, 2, 0, 1], [1, 3, 1, 1], vocab_size=4)
    np.testing.assert_array_equal(X.toarray(), [[0, 0, 4, 0], [1, 1, 0, 0]])


def test_bad_input_errors():
    with pytest.raises(DataError, match="empty document"):
        text.build_corpus(DOCS + ["the and of"], min_df=1, max_df=1.0)
    dropped = text.build_corpus(DOCS + ["the and of"], min_df=1, max_df=1.0, drop_empty=True)
    assert dropped.num_docs == 4 and list(dropped.doc_labels) == [0, 1, 2, 3]
    with pytest.raises(DataError, match="non-empty vocabulary"):
        text.build_corpus(["the and", "of the"], min_df=1)
    with pytest.raises(DataError, match="non-empty vocabulary"):
        text.build_corpus(DOCS, min_df=10)
    with pytest.raises(DataError, match="single string"):
        text.build_corpus("one document")
    with pytest.raises(DataError, match="strings"):
        text.build_corpus(["fine text", 3])
    with pytest.raises(DataError, match="column"):
        text.build_corpus(pd.DataFrame({"body": DOCS}))
    with pytest.raises(DataError, match="K >= 2"):
        lda.lda_data(np.ones((3, 4), int), num_topics=1)
    with pytest.raises(DataError, match="K >= 2"):
        lda.fit_lda(np.ones((3, 4), int), num_topics=1)
    with pytest.raises(DataError, match="integer word counts"):
        lda.lda_data(np.array([[1.0, 0.5], [2.0, 1.0]]), num_topics=2)
    with pytest.raises(DataError, match="non-negative"):
        text.as_count_matrix(np.array([[1, -1]]))
    with pytest.raises(DataError, match="drop_empty=True") as info:
        lda.lda_data(np.array([[1, 2], [0, 0]]), num_topics=2)
    assert "empty document" in str(info.value)
    # the hint is true: lda_data and fit_lda accept the option
    kept = lda.lda_data(np.array([[1, 2], [0, 0], [3, 0]]), num_topics=2, drop_empty=True)
    assert kept.kwargs["word_ids"].shape[0] == 2 and list(kept.extra["kept_docs"]) == [0, 2]
    assert kept.extra["corpus"].num_docs == 2
    f = lda.fit_lda(sp.csr_matrix(np.array([[1, 2], [0, 0], [3, 0]])), num_topics=2, method="vb", num_steps=2,
                    drop_empty=True, num_posterior_draws=2)
    assert lda.doc_topics(f).shape == (2, 2)
    with pytest.raises(DataError, match="allow_empty=True"):
        text.build_corpus(DOCS, min_df=1, max_df=1.0).transform(["zebra quagga"])
    with pytest.raises(DataError, match="word_ids"):
        lda.lda(word_ids=np.array([[0, 7]]), counts=np.array([[1, 1]]), num_topics=2, vocab_size=3)
    with pytest.raises(DataError, match="integer word counts"):
        lda.lda(word_ids=np.array([[0, 1]]), counts=np.array([[1.5, 1.0]]), num_topics=2, vocab_size=3)
    with pytest.raises(DataError, match="2-dimensional"):
        text.as_count_matrix(np.ones(3))


def test_seed_topics_spread_over_the_true_topics(sim):
    X = sim["X"]
    lb = lda.seed_topics(sp.csr_matrix(X), K_TRUE, seed=0)
    assert lb.shape == (K_TRUE, V_TRUE) and np.all(np.isfinite(lb))
    np.testing.assert_allclose(np.exp(lb).sum(1), 1.0, rtol=1e-9)

    def distinct(rows):  # do the seeds' dominant blocks of ten words cover the three topics?
        return len(set(rows.reshape(K_TRUE, K_TRUE, 10).sum(-1).argmax(1))) == K_TRUE

    seeded = np.mean([distinct(np.exp(lda.seed_topics(X, K_TRUE, seed=s))) for s in range(50)])
    drawn = []
    for s in range(50):
        idx = np.random.default_rng(s).choice(len(X), K_TRUE, replace=False)
        drawn.append(distinct(X[idx] / X[idx].sum(1, keepdims=True)))
    # k-means++ on Hellinger distance: measured 0.46 against 0.16 for documents drawn uniformly
    assert seeded > 0.35 and seeded > np.mean(drawn) + 0.15, (seeded, np.mean(drawn))
    with pytest.raises(DataError, match="init_topics"):
        lda.fit_lda(sim["md"], num_steps=5, init_topics="kmeans")
    with pytest.raises(DataError, match="mix"):
        lda.seed_topics(X, K_TRUE, mix=0.0)


# ------------------------------------------------------------------------------------------ slow


@pytest.mark.slow
def test_minibatch_svi_recovers_known_topics(sim):
    """SVI on minibatches of 50 of the 200 documents (each document's factors move once every
    four steps): 800 steps recover the topics as full-batch SVI does."""
    fit = lda.fit_lda(sim["md"], num_steps=800, learning_rate=0.1, batch_size=50, seed=0, num_posterior_draws=20)
    assert fit.info["batch_size"] == 50
    m = lda.match_topics(lda.topic_word(fit), sim["beta"])
    # measured 0.025-0.065 at seed 0 (1,600 steps: 0.034-0.078)
    assert m.distances.max() < 0.12, m.distances
    theta_hat = lda.doc_topics(fit)[:, m.permutation]
    assert theta_hat.shape == sim["theta"].shape  # every document's factors, not one minibatch's
    assert np.abs(theta_hat - sim["theta"]).mean() < 0.06  # measured 0.035


@pytest.mark.slow
def test_core_fit_runs_the_card_path(sim):
    import ppl_models as pm

    md = lda.lda_data(sim["X"][:80], num_topics=K_TRUE, alpha=0.3)
    # fit()'s generic start (the median of prior draws) puts eta = 0.05 topics tens of log-units
    # from the data, where 300 steps recovered nothing (Hellinger 0.6-0.8); the program's
    # default_init_strategy starts near the uniform point, as fit_lda(init_topics="uniform") does
    assert callable(lda.lda.default_init_strategy)
    res = pm.fit(lda.lda, md, method="svi", num_steps=600, learning_rate=0.1, num_posterior_draws=10, seed=0)
    ll = res.log_likelihood()["counts"]
    assert ll.shape == (1, 10, 80) and np.all(np.isfinite(ll))
    assert lda.match_topics(lda.topic_word(res), sim["beta"]).distances.max() < 0.2


@pytest.mark.slow
def test_prodlda_recovers_topic_blocks_and_beats_unigram(sim):
    res = lda.fit_prodlda(sim["md"], num_steps=1000, learning_rate=0.01, batch_size=50, hidden=20, seed=0)
    m = lda.match_topics(lda.topic_word(res), sim["beta"])
    assert m.distances.max() < 0.3, m.distances  # measured 0.15-0.18 at seed 0
    X_test, _, _ = _simulate(80, seed=2)
    obs, ho = text.completion_split(X_test, seed=0)
    got = float(lda.heldout_perplexity(res, obs, ho).perplexity)
    freq = sim["X"].sum(0) / sim["X"].sum()
    unigram = float(np.exp(-(ho.toarray() * np.log(freq)).sum() / ho.sum()))
    assert got < 0.8 * unigram
    theta = lda.transform(res, np.eye(V_TRUE, dtype=int)[[0, 15, 25]] * 5)
    assert theta.shape == (3, K_TRUE) and len(set(np.argmax(theta, 1))) == 3


@pytest.mark.slow
def test_nuts_reference_on_a_small_corpus():
    X, _, beta = _simulate(40, seed=5, length=80)
    md = lda.lda_data(X, num_topics=K_TRUE, alpha=0.3)
    res = lda.fit_lda(md, method="nuts", num_chains=1, num_warmup=150, num_samples=150, progress_bar=False)
    m = lda.match_topics(lda.topic_word(res), beta)
    assert m.distances.max() < 0.2, m.distances
    assert res.sample_stats["diverging"].mean() < 0.05


def test_bundled_kjv_corpus():
    from ppl_models.catalog import load_card
    from ppl_models.datasets.kjv import load_kjv, load_kjv_chapters

    df = load_kjv_chapters()
    assert len(df) == 1189 and df["book"].nunique() == 66
    assert df["text"].iloc[0].startswith("In the beginning God created the heaven and the earth.")
    md = load_kjv(num_topics=4, books=["Ruth", "Jonah"], min_df=1, max_df=1.0)
    c = md.extra["corpus"]
    assert c.num_docs == 8 and md.kwargs["num_topics"] == 4 and md.observed == ("counts",)
    assert "unto" not in c.vocabulary and "boaz" in c.vocabulary
    card = load_card("kjv_lda")
    assert card.family == "lda" and card.inference["method"] == "svi"


def test_posterior_predictive_documents(sim, sim_fit):
    pp = sim_fit.predict(num_samples=5, seed=1)["counts"]
    pad = sim["md"].kwargs
    assert pp.shape[-2:] == pad["word_ids"].shape
    totals = pp.sum(-1)
    # replicated documents keep their length; tokens on words outside the slots are not stored
    assert np.all(totals <= pad["doc_length"]) and np.all(pp[..., pad["word_ids"] < 0] == 0)
    # with 30 words, a 60-token document's slots hold most of its replicated tokens
    assert totals.mean() > 0.6 * pad["doc_length"].mean()


@pytest.mark.slow
def test_four_topics_recover_the_four_books():
    """The known-answer check of tidytext's four Gutenberg novels split into chapters: with K = 4
    each book gets its own topic. The argmax topic of each chapter, matched one to one to the
    books by the Hungarian algorithm on the confusion counts, must give the chapter's book.

    LDA has local optima (two topics sharing a book, another two books sharing a topic), so, as
    in practice, three restarts are fitted and the one with the best ELBO is kept."""
    from scipy.optimize import linear_sum_assignment

    from ppl_models.datasets.four_books import FOUR_BOOKS, load_four_books

    md = load_four_books(num_topics=4)
    books = md.extra["books"]
    assert md.extra["corpus"].num_docs == 193 and set(books) == set(FOUR_BOOKS)
    fits = [lda.fit_lda(md, num_steps=300, learning_rate=0.1, seed=s, num_posterior_draws=20) for s in range(3)]
    fit = min(fits, key=lambda f: f.svi_losses[-50:].mean())
    label = np.array([FOUR_BOOKS.index(b) for b in books])
    topic = lda.doc_topics(fit).argmax(1)
    confusion = np.zeros((4, 4), int)
    np.add.at(confusion, (label, topic), 1)
    rows, cols = linear_sum_assignment(-confusion)
    accuracy = confusion[rows, cols].sum() / len(label)
    # measured (seeds 0-4): accuracy 0.98, 0.72, 1.00, 0.93, 0.75, in the order of the final
    # losses but for the last two; the best loss of seeds 0-2 is seed 2's, accuracy 1.00
    assert accuracy > 0.9, confusion
    # each book's topic leads with the book's own names
    names = [{"pip", "joe", "estella", "havisham"}, {"elizabeth", "darcy", "bennet", "bingley"},
             {"martians", "martian"}, {"nautilus", "nemo", "conseil", "ned"}]
    table = lda.top_words(fit, 10)
    for b, k in zip(rows, cols):
        assert names[b] & set(table.iloc[k]), (FOUR_BOOKS[b], table.iloc[k].tolist())


def test_prodlda_card_path_generic_fit_with_the_amortized_guide(sim):
    """The kjv_prodlda card names its guide; ``ppl_models.fit`` then learns ProdLDA's decoder
    (``numpyro.param`` sites) with the encoder, and the Fit substitutes those learned values
    wherever it reruns the program (pointwise log-likelihood, posterior predictive)."""
    import jax.numpy as jnp

    import ppl_models as pm
    from ppl_models.catalog import inference_options, load_card

    card = load_card("kjv_prodlda")
    opts = inference_options(card)
    assert opts["guide"] is lda.prodlda_guide and opts["method"] == "svi"
    md = sim["md"]
    data = {**md.kwargs, "alpha": 1.0, "hidden": 20}
    f = pm.fit(lda.prodlda, data, method="svi", guide=opts["guide"], num_steps=300, learning_rate=0.01,
               num_posterior_draws=4, seed=0, progress_bar=False)
    assert lda._model_kind(f) == "prodlda"
    assert {"decoder_weight", "decoder_bias"} <= set(f.svi_params)
    ll = f.log_likelihood()["counts"]
    D = md.kwargs["word_ids"].shape[0]
    assert ll.shape == (1, 4, D) and np.all(np.isfinite(ll))
    # the same numbers from the learned decoder by hand, for one draw
    W, b = jnp.asarray(f.svi_params["decoder_weight"]), jnp.asarray(f.svi_params["decoder_bias"])
    ids, counts = jnp.asarray(md.kwargs["word_ids"]), jnp.asarray(md.kwargs["counts"])
    log_p = jax.nn.log_softmax(jnp.asarray(f.samples["theta"][0, 2]) @ W + b, axis=-1)
    lp = jnp.where(ids >= 0, jnp.take_along_axis(log_p, jnp.where(ids >= 0, ids, 0), axis=-1), 0.0)
    doc_length = jnp.asarray(md.kwargs["doc_length"]) if md.kwargs.get("doc_length") is not None \
        else counts.sum(-1)
    ref = lda.ProdLDADocuments(lp, ids, doc_length).log_prob(counts)
    np.testing.assert_allclose(ll[0, 2], np.asarray(ref), rtol=1e-5)
    pp = f.predict(num_samples=2)["counts"]
    assert pp.shape[-2:] == ids.shape
    tw = lda.prodlda_topic_word(f)
    np.testing.assert_allclose(tw.sum(-1), 1.0, rtol=1e-6)


def test_prodlda_heldout_scoring_blocks_equal_the_dense_computation():
    """ProdLDA's held-out scoring never forms the (D, V) matrix of logits (documents in blocks,
    the softmax normaliser over vocabulary chunks); it equals the dense computation."""
    from ppl_models.fit import Fit

    rng = np.random.default_rng(0)
    D, V, Kt, H = 9, 40, 3, 5
    params = {"decoder_weight": rng.normal(0, 1.0, (Kt, V)), "decoder_bias": rng.normal(-3, 1.0, V),
              "encoder_w1": rng.normal(0, 0.3, (V, H)), "encoder_b1": np.zeros(H),
              "encoder_w2": rng.normal(0, 0.3, (H, H)), "encoder_b2": np.zeros(H),
              "encoder_w3": rng.normal(0, 0.3, (H, Kt)), "encoder_b3": np.zeros(Kt)}
    fit = Fit(model=lda.prodlda, data={"vocab_size": V, "num_topics": Kt}, method="svi", samples={}, info={"model": "prodlda"})
    fit.svi_params = {k: v.astype(np.float32) for k, v in params.items()}
    X = rng.poisson(0.6, (D, V))
    X[:, 0] += 2
    obs, ho = text.completion_split(X, seed=1)
    theta = lda.prodlda_doc_topics(fit, *text.to_padded(obs))
    logits = theta @ params["decoder_weight"] + params["decoder_bias"]
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    hd = ho.toarray()
    want = float(np.exp(-(hd * log_p).sum() / hd.sum()))
    got = float(lda.heldout_perplexity(fit, obs, ho).perplexity)
    assert got == pytest.approx(want, rel=1e-5)
    ids, _ = text.to_padded(ho)
    dense_slots = np.where(ids >= 0, np.take_along_axis(log_p, np.maximum(ids, 0), 1), 0.0)
    # a budget of 30 logits: one document a block, the 40 words in chunks of 30 (the second padded)
    small = lda._prodlda_slot_log_probs(fit, theta, ids, max_elements=30)
    np.testing.assert_allclose(small, dense_slots, rtol=1e-5, atol=1e-5)


def test_abstract_site_inspection_equals_the_core_one(sim):
    """The fits read the programs' sites from an abstract run (nothing drawn or compiled); it
    must classify them exactly as the core's concrete ``inspect_model`` does."""
    from ppl_models._trace import inspect_model

    kw = sim["md"].kwargs
    for model, kwargs in ((lda.lda, kw), (lda.prodlda, dict(kw, alpha=1.0, hidden=5))):
        got, want = lda._inspect_sites(model, kwargs), inspect_model(model, dict(kwargs), seed=0)
        for field in ("latent", "observed", "deterministic", "dims", "shapes", "discrete_latent"):
            assert getattr(got, field) == getattr(want, field), field
        assert got.observed_values.keys() == want.observed_values.keys()
        for k in got.observed_values:
            np.testing.assert_array_equal(got.observed_values[k], want.observed_values[k])
