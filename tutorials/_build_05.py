"""Build and execute tutorials/05_bayesnet.ipynb (run: python tutorials/_build_05.py)."""
import os
import time
from pathlib import Path

import nbformat as nbf
from nbclient import NotebookClient

cells = []
md = lambda s: cells.append(nbf.v4.new_markdown_cell(s.strip()))  # noqa: E731
code = lambda s: cells.append(nbf.v4.new_code_cell(s.strip()))  # noqa: E731

md("""
# 5 · Discrete Bayesian networks: exact queries, Bayes' rule, learning the tables

A Bayesian network is a generative model over named discrete variables: each node is drawn from
its conditional probability table (CPT) given its parents, in topological order, and the joint
distribution is the product of the tables. In `ppl_models.models.bayesnet`

* exact queries (marginals, joints, the most probable explanation) are **tensor
  contractions**: variable elimination planned once (min-fill or `opt_einsum`'s path search)
  and compiled with JAX, batched over many evidence sets in one call;
* the network reads and writes the BIF format of the bnlearn repository;
* learning puts a Dirichlet prior on every CPT row and conditions on a table of observations,
  **missing values summed out exactly** by the same elimination kernel, so that every answer
  can carry a credible interval.

We build the classic *asia* network (Lauritzen & Spiegelhalter 1988) by hand, ask it diagnostic
questions, learn its tables back from data, and then load the 37-node ALARM network from BIF.
""")
code("""
import time
import numpy as np
import pandas as pd
import jax

import ppl_models as pm
from ppl_models.models.bayesnet import BayesianNetwork, read_bif, fit_cpts
from ppl_models.datasets.networks import BIF_DIR, load_network, available_networks
from ppl_models.errors import QueryError

pm.enable_compilation_cache()  # compiled contractions are reused across sessions
""")
md("""
## Build asia by hand

Eight yes/no variables: a visit to Asia raises the chance of tuberculosis; smoking raises the
chances of lung cancer and bronchitis; `either` is the deterministic "tuberculosis or lung
cancer"; an x-ray shows either, and dyspnoea (shortness of breath) follows either and bronchitis.
A CPT is a DataFrame (a row per parent configuration, a column per state), a dict, or an array.
""")
code("""
yn = ["yes", "no"]

def cond(parent, rows):
    # rows: {parent state: P(node = yes | parent state)}
    return pd.DataFrame([[p, 1 - p] for p in rows.values()],
                        index=pd.Index(list(rows), name=parent), columns=yn)

either = pd.DataFrame(
    [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
    index=pd.MultiIndex.from_product([yn, yn], names=["lung", "tub"]), columns=yn)
dysp = pd.DataFrame(
    [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9]],
    index=pd.MultiIndex.from_product([yn, yn], names=["bronc", "either"]), columns=yn)

asia = BayesianNetwork(
    None,   # the parents come from the tables' index names
    {
        "asia": {"yes": 0.01, "no": 0.99},
        "smoke": {"yes": 0.5, "no": 0.5},
        "tub": cond("asia", {"yes": 0.05, "no": 0.01}),
        "lung": cond("smoke", {"yes": 0.1, "no": 0.01}),
        "bronc": cond("smoke", {"yes": 0.6, "no": 0.3}),
        "either": either,
        "xray": cond("either", {"yes": 0.98, "no": 0.05}),
        "dysp": dysp,
    },
    name="asia")
print(asia)
print(asia.edges)
asia.cpt("dysp")
""")
md("""
The declaration is validated: the graph must be acyclic, every row must sum to one, and every
parent configuration must be there. Mistakes are reported by node and value:
""")
code("""
for bad in [
    lambda: BayesianNetwork(None, {"a": {"yes": 0.5, "no": 0.6}}),
    lambda: BayesianNetwork({"a": ["b"], "b": ["a"]},
                            {"a": cond("b", {"yes": .5, "no": .5}), "b": cond("a", {"yes": .5, "no": .5})}),
    lambda: asia.query("lung", {"smoke": "sometimes"}),
    lambda: asia.query("lung", {"smoker": "yes"}),
]:
    try:
        bad()
    except Exception as exc:
        print(type(exc).__name__ + ":", exc)
""")
md("""
It is the same network as the bnlearn file bundled with the package (read by our own BIF parser),
up to the last bit of a float:
""")
code("""
bundled = load_network("asia")
same_tables = all(np.allclose(asia.cpt_array(v), bundled.cpt_array(v), atol=1e-15) for v in asia.nodes)
print("same parents:", asia.parents == bundled.parents, " same tables:", same_tables)
# `==` is exact, and 1 - 0.98 is not the float 0.02 written in the file:
print("identical:", asia == bundled, abs((1 - 0.98) - 0.02))
print(asia.to_bif()[:200])
""")
md("""
## Diagnostic questions

A patient who smokes has a positive x-ray. How likely is lung cancer? And tuberculosis, or
bronchitis? One call answers a marginal; the first call compiles the network's contraction
(about a second), later calls reuse it for any evidence.
""")
code("""
ev = {"smoke": "yes", "xray": "yes"}
t0 = time.perf_counter(); q = asia.query("lung", ev); t1 = time.perf_counter()
print(q, f"\\n(first call {t1 - t0:.2f} s)")
t0 = time.perf_counter(); marg = asia.marginals(ev); t1 = time.perf_counter()
print(pd.DataFrame({v: s for v, s in marg.items()}).T.round(4), f"\\n(all marginals, warm: {1e3 * (t1 - t0):.1f} ms)")
""")
md("""
Dyspnoea as well shifts the balance between the two explanations of the x-ray; the most
probable explanation (MPE, by max-product elimination) is the single most likely state of
everything:
""")
code("""
print(asia.query(["lung", "tub"], {"smoke": "yes", "xray": "yes", "dysp": "yes"}).round(4))
asia.map_query({"smoke": "yes", "xray": "yes", "dysp": "yes"})
""")
md("""
## Bayes' rule through the network

The network *is* Bayes' rule, done for all the variables at once. For one pair it can be checked by
hand: p(lung | xray) = p(xray | lung) p(lung) / p(xray), where each term is itself a query.
""")
code("""
p_lung = asia.query("lung")["probability"]["yes"]
p_xray = asia.query("xray")["probability"]["yes"]
p_xray_given_lung = asia.query("xray", {"lung": "yes"})["probability"]["yes"]
by_hand = p_xray_given_lung * p_lung / p_xray
exact = asia.query("lung", {"xray": "yes"})["probability"]["yes"]
print(f"prior p(lung)={p_lung:.4f}, likelihood p(xray|lung)={p_xray_given_lung:.4f}, "
      f"evidence p(xray)={p_xray:.4f}")
print(f"Bayes' rule by hand {by_hand:.6f}  ==  network query {exact:.6f}")
""")
md("""
Many questions at once: a DataFrame of evidence sets (NaN where a node is not observed) goes
through one compiled call.
""")
code("""
patients = pd.DataFrame({
    "smoke": ["yes", "no", "yes", None, "no"],
    "xray":  ["yes", "yes", "no", "yes", None],
    "dysp":  [None, "yes", "yes", "no", "yes"],
    "asia":  [None, None, None, "yes", "yes"],
})
pd.concat({"p(lung | ...)": asia.query_batch("lung", patients),
           "p(tub | ...)": asia.query_batch("tub", patients)}, axis=1).round(4)
""")
md("""
## Sampling

Ancestral sampling draws every node given its sampled parents, vectorized over the rows.
""")
code("""
t0 = time.perf_counter(); rows = asia.sample(100_000, seed=0); t1 = time.perf_counter()
print(f"{len(rows):,} rows in {t1 - t0:.2f} s")
print(rows.head())
print("p(lung=yes): sample", (rows["lung"] == "yes").mean().round(4), " exact",
      asia.query("lung")["probability"]["yes"].round(4))
""")
md("""
## Learning the tables, with uncertainty

Each CPT row gets a Dirichlet(1) prior. With complete rows the posterior is conjugate (each row a
Dirichlet with the counts added) and `method="exact"` draws it directly. The rare branch
(asia = yes, 1% of people) stays uncertain even with 10,000 rows: the credible intervals say so,
where a point estimate would not.
""")
code("""
data = asia.sample(10_000, seed=1)
post = fit_cpts(asia, data, method="exact", num_draws=2000, seed=0)
print(post.cpt_summary("tub").round(4))
print(post.cpt_summary("lung").round(4))
""")
md("""
Posterior queries average over the tables: p(lung | smoke, xray) under each draw of the tables,
summarised by its mean and an 89% interval (the `plug_in` column is the answer of the
posterior-mean tables).
""")
code("""
post.query("lung", {"smoke": "yes", "xray": "yes"}).round(4)
""")
md("""
The same uncertainty as a picture: every entry p(node = yes | parents) of four tables, the
posterior mean with its 89% interval, against the table the rows were drawn from. The rows
conditioned on asia = yes (about 100 of the 10,000 people) carry the wide intervals.
""")
code("""
import matplotlib.pyplot as plt

labels, mean, lower, upper, truth = [], [], [], [], []
for node in ["tub", "lung", "bronc", "xray"]:
    summary = post.cpt_summary(node)
    yes = summary.xs("yes", level=node)
    for config, row in yes.iterrows():
        config = config if isinstance(config, tuple) else (config,)
        parents = ", ".join(f"{p}={s}" for p, s in zip(asia.parents[node], config))
        labels.append(f"p({node}=yes | {parents})")
        mean.append(row["mean"]); lower.append(row["lower"]); upper.append(row["upper"])
        index = tuple(asia.states[p].index(s) for p, s in zip(asia.parents[node], config))
        truth.append(asia.cpt_array(node)[index][0])
mean, lower, upper = map(np.asarray, (mean, lower, upper))
y = np.arange(len(labels))
fig, ax = plt.subplots(figsize=(7, 3.6))
ax.errorbar(mean, y, xerr=[mean - lower, upper - mean], fmt="o", capsize=3,
            label="posterior mean, 89% interval")
ax.scatter(truth, y, marker="x", color="C3", zorder=3, label="generating table")
ax.set_yticks(y, labels)
ax.set_xlabel("probability")
ax.set_title("asia, learned from 10,000 rows")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
plt.show()
""")
md("""
### Missing values

Real tables have holes. Below, 20% of the values are removed at random from 1,000 rows. The
NumPyro program (`bayesnet_model`) sums every missing value out **exactly** (its row likelihood
is a variable-elimination contraction), and NUTS samples the 18 free table entries. No rows are
dropped and nothing is imputed.
""")
code("""
rng = np.random.default_rng(2)
holes = asia.sample(1000, seed=3).astype(object)
holes = holes.mask(rng.random(holes.shape) < 0.2)
print(holes.head(), "\\nmissing values:", int(holes.isna().sum().sum()))
t0 = time.perf_counter()
post_nuts = fit_cpts(asia, holes, method="nuts", num_chains=2, num_warmup=400, num_samples=600, seed=0)
print(f"NUTS: {time.perf_counter() - t0:.1f} s")
from ppl_models.diagnostics import check_convergence
print(check_convergence(post_nuts.fit, ess_bulk_min=200, ess_tail_min=200))
comparison = pd.DataFrame({
    "truth": asia.cpt_array("lung")[:, 0],
    "posterior mean": post_nuts.tables["lung"].mean(axis=0)[:, 0],
    "sd": post_nuts.tables["lung"].std(axis=0)[:, 0],
}, index=pd.Index(["smoke=yes", "smoke=no"], name="p(lung=yes | ...)"))
comparison.round(4)
""")
md("""
## ALARM from BIF

ALARM (Beinlich et al. 1989) monitors patients in intensive care: 37 nodes, 46 edges, 509 free
table entries. It ships with the package among other bnlearn networks:
""")
code("""
print(available_networks())
path = BIF_DIR / "alarm.bif.gz"   # any .bif or .bif.gz file works the same way
alarm = read_bif(path)            # our own parser: line-numbered errors, nothing evaluated
print(path.name, "->", alarm)
assert alarm == load_network("alarm")  # load_network("alarm") is the shortcut for the same file
ev = {"HRBP": "HIGH", "BP": "LOW", "CVP": "HIGH"}
t0 = time.perf_counter(); print(alarm.query("HYPOVOLEMIA", ev)); t1 = time.perf_counter()
print(f"first call (compiles): {t1 - t0:.1f} s")
""")
code("""
evidence = alarm.sample(1000, seed=4).astype(object)
evidence = evidence.mask(np.random.default_rng(5).random(evidence.shape) < 0.9)  # ~4 findings a patient
t0 = time.perf_counter(); alarm.marginals_batch(evidence); t1 = time.perf_counter()
t2 = time.perf_counter(); margs = alarm.marginals_batch(evidence); t3 = time.perf_counter()
print(f"all 37 marginals for {len(evidence)} patients: first call {t1 - t0:.1f} s (compiles the "
      f"batched shape), then {1e3 * (t3 - t2):.0f} ms")
margs["LVFAILURE"].head()
""")
md("""
A query whose intermediate factors would not fit in memory is refused with an estimate, instead
of crashing the process — here the joint over all 37 nodes (about 10^16 cells):
""")
code("""
try:
    alarm.query(list(alarm.nodes))
except QueryError as exc:
    print(type(exc).__name__ + ":", exc)
""")
md("""
## Where next

* `ppl-models run alarm_missing` learns ALARM's tables by SVI from 1,000 rows with 20% missing values and prints the tables' error and the share of entries whose 89% interval holds the truth (too narrow under the mean-field guide); `benchmarks/cards/alarm_missing_nuts.toml` is the same by NUTS (one chain of 300 + 300 took about 2.5 minutes of CPU here, four chains of 500 + 500 far longer);
  `asia_cpts`, `titanic_bn` and `alarm_missing` are the catalog entries of this family.
* `benchmarks/bench_bayesnet.py` times queries, sampling and learning against pgmpy.
""")

nb = nbf.v4.new_notebook()
nb["cells"] = cells
nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
path = Path(__file__).resolve().parent / "05_bayesnet.ipynb"
t0 = time.time()
# the kernel draws figures with the inline backend, so that they are saved in the notebook
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
NotebookClient(nb, timeout=900, kernel_name="python3",
               resources={"metadata": {"path": str(path.parent)}}).execute()
nbf.write(nb, path)
print(f"executed and saved {path} in {time.time() - t0:.0f} s")
