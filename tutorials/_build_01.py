"""Build and execute tutorials/01_custom_program.ipynb (run: python tutorials/_build_01.py)."""
import os

import nbformat as nbf
from nbclient import NotebookClient
from pathlib import Path

cells = []
md = lambda s: cells.append(nbf.v4.new_markdown_cell(s.strip()))
code = lambda s: cells.append(nbf.v4.new_code_cell(s.strip()))

md("""
# 1 · Your own generative program, end to end

A generative model says how the data were made. Write that story once as a plain NumPyro
function and ppl_models gives you, with no other code: forward sampling (new synthetic data),
the joint log density, posterior inference (NUTS, HMC, SVI, MAP), ArviZ diagnostics, model
comparison by LOO and WAIC, and save/load.

The data: scikit-learn's bundled **diabetes** set (442 patients; Efron et al. 2004). We model
disease progression one year on (`y`) from body-mass index (`bmi`), both standardised.
""")
code("""
%matplotlib inline
import numpy as np
import numpyro
import numpyro.distributions as dist
import matplotlib.pyplot as plt
import arviz as az
import arviz_plots as azp
from sklearn.datasets import load_diabetes

import ppl_models as pm
from ppl_models.diagnostics import check_convergence, compare, loo, waic

d = load_diabetes(as_frame=True).frame
bmi = ((d["bmi"] - d["bmi"].mean()) / d["bmi"].std()).to_numpy(np.float32)
y = ((d["target"] - d["target"].mean()) / d["target"].std()).to_numpy(np.float32)
len(y)
""")
md("""
## The program

Keyword arguments are the data. `y=None` means "not observed": the same code then *samples* `y`,
which is what forward sampling is. The plate is named `obs`; it becomes the ArviZ dimension.
""")
code("""
def linear(bmi, y=None):
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 1.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    with numpyro.plate("obs", bmi.shape[0]):
        numpyro.sample("y", dist.Normal(alpha + beta * bmi, sigma), obs=y)

data = {"bmi": bmi, "y": y}
""")
md("## Forward sampling: what does the prior say the data look like?")
code("""
prior = pm.sample_prior(linear, data, num_samples=200, seed=0)
fig, ax = plt.subplots(figsize=(6, 3))
for draw in prior["y"][:30]:
    ax.hist(draw, bins=30, histtype="step", color="0.7", density=True)
ax.hist(y, bins=30, histtype="step", color="C0", lw=2, density=True, label="observed")
ax.set_xlabel("standardised progression"); ax.legend()
plt.show()
""")
md("## The joint log density at a point\n`log p(y, α, β, σ)` — the number NUTS climbs around.")
code("""
pm.log_joint(linear, data, {"alpha": 0.0, "beta": 0.5, "sigma": 0.9})
""")
md("## Fit with NUTS, and read the diagnostics")
code("""
fit_lin = pm.fit(linear, data, method="nuts", num_chains=4, num_warmup=500, num_samples=500, seed=1)
fit_lin.summary().round(3)
""")
code("""
print(check_convergence(fit_lin))
""")
code("""
dt_lin = fit_lin.to_arviz(posterior_predictive=True)
azp.plot_trace_dist(dt_lin, backend="matplotlib")
plt.show()
""")
code("""
azp.plot_ppc_dist(dt_lin, backend="matplotlib")
plt.show()
""")
md("""
## A second model: heavier tails

A Student-t likelihood is the same story with a different noise distribution. Which predicts
new patients better? PSIS-LOO (ArviZ) and WAIC answer from the pointwise log-likelihood that
`to_arviz()` always includes.
""")
code("""
def robust(bmi, y=None):
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 1.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    nu = numpyro.sample("nu", dist.Gamma(2.0, 0.1))
    with numpyro.plate("obs", bmi.shape[0]):
        numpyro.sample("y", dist.StudentT(nu, alpha + beta * bmi, sigma), obs=y)

fit_rob = pm.fit(robust, data, num_chains=4, num_warmup=500, num_samples=500, seed=2)
print(check_convergence(fit_rob))
cmp = compare({"normal": fit_lin, "student_t": fit_rob})
cmp
""")
code("""
print("normal   ", waic(fit_lin))
print("student-t", waic(fit_rob))
""")
md("""
How to read the table: the first row is the model with the higher expected log predictive
density (elpd); the second row's `elpd_diff` is how far behind it is, and `dse` the standard
error of that difference. Two questions: is the difference large compared with `dse` (is the
ranking more than noise)? And is it large in itself? Below an `elpd_diff` of about 4 two
models predict about equally well whatever the ratio, and the `dse` of so small a difference
is itself unreliable (Sivula et al. 2022; ArviZ flags it as `|elpd_diff| < 4`). The next
cell answers both from the comparison's unrounded numbers, and looks at where the posterior
of the degrees of freedom `nu` lies (a Student-t with `nu` above about 30 is practically a
normal).
""")
code("""
raw = compare({"normal": fit_lin, "student_t": fit_rob}, round_to="none")  # the table above, unrounded
best, other = raw.index[0], raw.index[1]
diff, dse = -float(raw.loc[other, "elpd_diff"]), float(raw.loc[other, "dse"])
print(f"{best} is ahead by {diff:.2f} elpd, {diff / dse:.1f} times the standard error of the difference")
print("the ranking is", "more than noise" if diff > 2 * dse else "within noise", "(difference vs 2 dse);",
      "the difference is small (< 4): the models predict about equally well" if diff < 4
      else "the difference is large (>= 4)")
nu = fit_rob.samples["nu"].ravel()
lo, med, hi = np.quantile(nu, [0.05, 0.5, 0.95])
print(f"nu: median {med:.0f}, 90% interval {lo:.0f} to {hi:.0f}")
keep = "normal" if best == "normal" or diff < 4 else "student_t"
print(f"keep: {keep}", "(it predicts at least as well with one parameter fewer)" if keep == "normal"
      else "(heavy tails predict clearly better)")
""")
md("""
Heavy tails would show as a small `nu` and a clear lead for the Student-t; without them the
simpler model is kept.
""")
md("""
## Variational inference on the same program

`method="svi"` fits a Gaussian approximation (AutoNormal); `"map"` a point estimate. Same
`Fit`, same summary.
""")
code("""
fit_svi = pm.fit(linear, data, method="svi", num_steps=3000, learning_rate=0.05, seed=0)
fit_svi.summary(kind="stats").round(3)
""")
md("## Predict for new patients, then save and load with nothing lost")
code("""
new = {"bmi": np.array([-1.0, 0.0, 2.0], np.float32)}
pred = fit_lin.predict(new, seed=0)["y"]
print("posterior predictive mean:", pred.mean(axis=(0, 1)).round(3))

import tempfile, os
path = fit_lin.save(os.path.join(tempfile.mkdtemp(), "linear.nc"))
back = pm.load_fit(path, model=linear)
assert np.array_equal(back.samples["beta"], fit_lin.samples["beta"])
back
""")
md("""
## Exact discrete queries: joint, marginal, conditional

For discrete variables, the joint table answers every question. Four points
(x, y) ∈ {(1,0), (1,1), (2,0), (2,0)} give the empirical joint; summing gives p(x); Bayes'
rule gives p(y | x) — the same functions naive Bayes uses on its model joint.
""")
code("""
from ppl_models.queries import DiscreteJoint
joint = DiscreteJoint.from_data({"x": [1, 1, 2, 2], "y": [0, 1, 0, 0]})
print(joint.table())
print(joint.marginal("x").table())
joint.conditional_table("y", given="x")
""")

nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                               "language": "python"}})
out = Path(__file__).with_name("01_custom_program.ipynb")
# The kernel inherits this environment: a headless MPLBACKEND=Agg would leave every figure out of
# the notebook (the first cell's %matplotlib inline also sees to it when a user runs it).
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(out.parent)}}).execute()
nbf.write(nb, out)
print("wrote", out)
