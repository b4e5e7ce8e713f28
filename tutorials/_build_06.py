import os
import time
from pathlib import Path

import nbformat as nbf
from nbclient import NotebookClient

nb = nbf.v4.new_notebook()
md = lambda s: nbf.v4.new_markdown_cell(s)
code = lambda s: nbf.v4.new_code_cell(s)
cells = [
md("""# Tutorial 6: LDA topic models

Latent Dirichlet allocation (Blei, Ng & Jordan 2003) is a generative story for documents:

1. each topic $k = 1..K$ is a distribution over the vocabulary, $\\beta_k \\sim \\mathrm{Dirichlet}(\\eta)$;
2. each document $d$ draws topic proportions $\\theta_d \\sim \\mathrm{Dirichlet}(\\alpha)$;
3. each token of the document draws a topic $z \\sim \\theta_d$, then a word $w \\sim \\beta_z$.

Summing every token's $z$ out, a document's word counts are multinomial with probabilities $\\theta_d \\beta$.
`ppl_models.models.lda.lda` observes the counts through that exact marginal (`LDADocuments`), on sparse
documents (each document's distinct words and their counts), so SVI and NUTS only see $\\theta$ and $\\beta$.

This notebook: forward-sample a small corpus, recover its topics, check that four topics recover four novels,
fit the King James Bible (one chapter a document), show topics as a table and a plot, find the topics of a new
text, and compare held-out perplexity across $K$. Every fit starts from topics seeded from the documents
(`init_topics="documents"`: k-means of the documents' word distributions)."""),
code("""%matplotlib inline
import time
import numpy as np
import matplotlib.pyplot as plt
import jax, jax.numpy as jnp

from ppl_models import text
from ppl_models.models import lda
from ppl_models.datasets.kjv import load_kjv"""),
md("""## The generative story, run forward

Three topics over 30 words, each concentrated on its own block of ten words; 200 documents of 60 tokens.
`sample_tokens` draws every token's topic and word; the counts are what a topic model sees."""),
code("""rng = np.random.default_rng(1)
K, V, D, N = 3, 30, 200, 60
beta_true = np.full((K, V), 0.02 / (V - 10))
for k in range(K):
    beta_true[k, 10 * k:10 * k + 10] = 0.098
beta_true /= beta_true.sum(1, keepdims=True)
theta_true = rng.dirichlet(np.full(K, 0.3), D)
tok = lda.sample_tokens(jax.random.PRNGKey(0), jnp.asarray(theta_true, jnp.float32), jnp.asarray(beta_true, jnp.float32),
                        jnp.full(D, N), N)
words = np.asarray(tok.words)
X = np.zeros((D, V), int)
np.add.at(X, (np.repeat(np.arange(D), N), words.ravel()), 1)
print("document 0, first tokens (topic:word):", [f"{z}:{w}" for z, w in zip(np.asarray(tok.topics)[0, :8], words[0, :8])])
print("corpus:", X.shape, "tokens", X.sum())"""),
md("""## Recovering the simulated topics

Mean-field SVI (`fit_lda`), every document in every step. Topics are exchangeable, so they are matched to
the truth by the Hungarian algorithm (`match_topics`) before comparing; the Hellinger distance is in [0, 1]."""),
code("""md_sim = lda.lda_data(X, num_topics=K, alpha=0.3)
t0 = time.perf_counter()
fit_sim = lda.fit_lda(md_sim, num_steps=300, learning_rate=0.1, seed=0, num_posterior_draws=50)
print(f"fitted in {time.perf_counter() - t0:.1f} s")
m = lda.match_topics(lda.topic_word(fit_sim), beta_true)
print("Hellinger distance of each matched topic:", np.round(m.distances, 3))
theta_hat = lda.doc_topics(fit_sim)[:, m.permutation]
print("mean absolute error of theta:", round(float(np.abs(theta_hat - theta_true).mean()), 3))
lda.top_words(fit_sim, 6)"""),
md("""## A known answer: four novels, four topics

tidytext's corpus (Silge & Robinson, *Text Mining with R*, ch. 6), bundled: the 193 chapters of *Great
Expectations*, *Pride and Prejudice*, *The War of the Worlds* and *Twenty Thousand Leagues under the Sea*. With
$K = 4$ each book should get its own topic: the chapter's most probable topic, matched to the books by the
Hungarian algorithm, should name its book."""),
code("""from scipy.optimize import linear_sum_assignment
from ppl_models.datasets.four_books import FOUR_BOOKS, load_four_books

md_books = load_four_books(num_topics=4)
t0 = time.perf_counter()
fit_books = lda.fit_lda(md_books, num_steps=300, learning_rate=0.1, seed=0, num_posterior_draws=20)
print(f"{md_books.extra['corpus'].num_docs} chapters, vocabulary {md_books.extra['corpus'].vocab_size}, "
      f"fitted in {time.perf_counter() - t0:.1f} s")
label = np.array([FOUR_BOOKS.index(b) for b in md_books.extra["books"]])
confusion = np.zeros((4, 4), int)
np.add.at(confusion, (label, lda.doc_topics(fit_books).argmax(1)), 1)
rows, cols = linear_sum_assignment(-confusion)
print("chapters whose topic names their book:", f"{confusion[rows, cols].sum() / len(label):.1%}")
import pandas as pd
pd.DataFrame(confusion[:, cols], index=FOUR_BOOKS, columns=[f"topic{k}" for k in cols])"""),
code("""lda.top_words(fit_books, 8).iloc[cols].set_axis(FOUR_BOOKS)"""),
md("""## The King James Bible, one chapter a document

1,189 chapters bundled with the package (public domain, from Debian's `bible-kjv`). The text pipeline
drops English and early-modern stop words (`unto`, `thou`, ...) and rare and ubiquitous words. 80% of the
chapters are fitted; the others are kept for held-out perplexity.

Here the fit is `method="vb"`: the same model with the conjugate mean-field family
($q(\\beta_k) = \\mathrm{Dirichlet}(\\lambda_k)$, $q(\\theta_d) = \\mathrm{Dirichlet}(\\gamma_d)$) fitted by
closed-form coordinate-ascent updates instead of gradient steps, so 50 full-batch steps do what 300-400
SVI steps do (with `batch_size=`, the same updates become online LDA's stochastic natural-gradient steps)."""),
code("""md_kjv = load_kjv(num_topics=10)
corpus = md_kjv.extra["corpus"]
print(corpus.num_docs, "chapters, vocabulary", corpus.vocab_size, ",", corpus.num_tokens, "tokens")
train_idx, test_idx = text.train_test_split_documents(corpus.num_docs, test_fraction=0.2, seed=0)
train = corpus.subset(train_idx)
observed, heldout = text.completion_split(corpus.counts[test_idx], seed=0)

t0 = time.perf_counter()
fit10 = lda.fit_lda(lda.lda_data(train, num_topics=10), method="vb", num_steps=50, seed=0, num_posterior_draws=20)
print(f"K=10 fitted in {time.perf_counter() - t0:.1f} s; ELBO {-fit10.svi_losses[0]:.4g} -> {-fit10.svi_losses[-1]:.4g}")
table = lda.top_words(fit10, 8)
table"""),
md("""Top words of four topics, with their probabilities:"""),
code("""beta10 = lda.topic_word(fit10)
fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
for ax, k in zip(axes, range(4)):
    top = np.argsort(-beta10[k])[:8][::-1]
    ax.barh(corpus.vocabulary[top], beta10[k, top])
    ax.set_title(f"topic {k}")
fig.tight_layout()
plt.show()"""),
md("""Coherence from document co-occurrence in the fitted chapters (UMass: closer to 0 is better; NPMI in [-1, 1]):"""),
code("""print("UMass", np.round(lda.coherence(fit10, train.counts, measure="umass").per_topic, 2))
print("NPMI ", np.round(lda.coherence(fit10, train.counts, measure="npmi").per_topic, 3))"""),
md("""## The topics of a new document

New text is mapped onto the fitted vocabulary (`Corpus.transform`), and its topic proportions are fitted
for the fixed topics (the mean-field fold-in)."""),
code("""new = corpus.transform(["And the priest shall burn the fat upon the altar for a burnt offering, "
                         "a sacrifice of sweet savour unto the LORD for the sin of the congregation."])
theta_new = lda.transform(fit10, new.counts)[0]
for k in np.argsort(-theta_new)[:3]:
    print(f"topic {k}: {theta_new[k]:.2f}  ", " ".join(table.iloc[k][:6]))"""),
md("""## Held-out perplexity against K

Document completion: for every held-out chapter, $\\theta$ is fitted on half of its tokens and the other half
is scored; lower is better. The unigram model (training word frequencies) is the baseline."""),
code("""freq = np.asarray(train.counts.sum(0)).ravel() + 0.5
unigram = float(np.exp(-heldout.multiply(np.log(freq / freq.sum())).sum() / heldout.sum()))
ks, ppl = [2, 5, 10, 20], []
for k in ks:
    f = fit10 if k == 10 else lda.fit_lda(lda.lda_data(train, num_topics=k), method="vb", num_steps=50, seed=0,
                                          num_posterior_draws=20)
    ppl.append(float(lda.heldout_perplexity(f, observed, heldout).perplexity))
    print(f"K={k:2d}: perplexity {ppl[-1]:.0f}")
fig, ax = plt.subplots(figsize=(4.5, 3))
ax.plot(ks, ppl, "o-", label="LDA (SVI)")
ax.axhline(unigram, color="gray", ls="--", label="unigram")
ax.set_xlabel("K"); ax.set_ylabel("held-out perplexity"); ax.legend()
fig.tight_layout()
plt.show()"""),
md("""## Forward sampling from the fitted model

Synthetic chapters: $\\theta \\sim \\mathrm{Dirichlet}(\\alpha)$ and tokens from the fitted topics."""),
code("""synth = lda.sample_documents(fit10, 2, 12, seed=1)
for d in range(2):
    w = np.asarray(synth.tokens.words)[d]
    print(" ".join(corpus.vocabulary[w[w >= 0]]))"""),
]
nb["cells"] = cells
nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
path = Path(__file__).resolve().parent / "06_lda.ipynb"
t0 = time.time()
# figures are saved into the notebook only by the inline backend: an MPLBACKEND=Agg inherited
# from the environment would leave the plot cells without an image
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
nbf.write(nb, path)
print(f"executed and saved {path} in {time.time() - t0:.0f} s")
