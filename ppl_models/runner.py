"""What ``ppl-models run | check | sample`` do, as functions (the CLI only parses arguments).

Each writes its outputs atomically (to a temporary name, then renamed), so an interrupted run
never leaves a half-written file behind under the final name.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .catalog import Card, card_imports, inference_options
from .diagnostics import ConvergenceReport, SBCResult, check_convergence, sbc
from .fit import Fit, resolve_reference
from .inference import fit as fit_model
from .inference import sample_prior

__all__ = ["RunResult", "run_entry", "check_entry", "sample_entry", "atomic_write"]


def atomic_write(path: Path, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp_path)``, then rename the temporary file to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}{path.suffix}")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


@dataclass
class RunResult:
    fit: Fit
    report: ConvergenceReport
    summary: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _plot_vars(fit: Fit, limit: int = 6, max_components: int = 64) -> list[str]:
    """Up to ``limit`` latent variables small enough to draw (a 10 x 4,383 topic matrix is not)."""
    det = set(fit.sites.deterministic if fit.sites else [])
    names = [k for k, v in fit.samples.items() if k not in det and int(np.prod(v.shape[2:])) <= max_components]
    return names[:limit]


def _save_plots(fit: Fit, tree: Any, out: Path, files: dict[str, Path]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import arviz_plots as azp
    import matplotlib.pyplot as plt

    def save_pc(pc, path: Path) -> None:
        # an arviz_plots PlotCollection saves itself; its figure is then closed to free memory
        atomic_write(path, lambda p: pc.savefig(p, dpi=90, format="png"))
        try:
            plt.close(pc.viz["figure"].item())
        except Exception:
            plt.close("all")

    names = _plot_vars(fit)
    if not names:
        files["trace_error"] = Path("trace plot skipped: every variable has more than 64 components")
    try:
        if not names:
            raise LookupError("nothing to draw")
        pc = azp.plot_trace_dist(tree, var_names=names, backend="matplotlib")
        save_pc(pc, out / "trace.png")
        files["trace"] = out / "trace.png"
    except LookupError:
        pass
    except Exception as exc:  # a plot must never cost the user the fit itself
        files["trace_error"] = Path(f"trace plot failed: {exc}")
    if "posterior_predictive" in tree.children:
        obs = tree["observed_data"].to_dataset() if "observed_data" in tree.children else None
        # one observation axis only: a matrix-valued site (naive Bayes' features) has no
        # one-dimensional predictive check
        names = [v for v in (obs.data_vars if obs is not None else []) if obs[v].ndim <= 1
                 and v in tree["posterior_predictive"].data_vars]
        if obs is not None and not names:
            files["ppc_error"] = Path("posterior predictive plot skipped: no one-dimensional observed site")
            return
        try:
            kind = "dist"
            if obs is not None:
                obs = obs[names]
                values = np.concatenate([np.ravel(obs[v].values) for v in obs.data_vars])
                whole = np.all(np.equal(np.mod(values, 1), 0))
                if whole and set(np.unique(values)) <= {0, 1}:
                    kind = "pava"
                elif whole and values.min() >= 0:
                    kind = "rootogram"
            if kind != "dist":
                # ArviZ decides "discrete" from the dtype: whole-valued floats become integers
                tree = tree.copy()
                for g in ("observed_data", "posterior_predictive"):
                    tree[g] = tree[g].to_dataset()[names].astype("int64")
            if kind == "pava":
                pc = azp.plot_ppc_pava(tree, var_names=names, backend="matplotlib")
            elif kind == "rootogram":
                pc = azp.plot_ppc_rootogram(tree, var_names=names, backend="matplotlib")
            else:
                pc = azp.plot_ppc_dist(tree, var_names=names, backend="matplotlib")
            save_pc(pc, out / "ppc.png")
            files["ppc"] = out / "ppc.png"
        except Exception as exc:
            files["ppc_error"] = Path(f"posterior predictive plot failed: {exc}")


def run_entry(card: Card, out: str | Path | None = None, overrides: dict[str, Any] | None = None,
              progress: bool | None = None, echo: Callable[[str], None] = lambda s: None) -> RunResult:
    """Fit a card's model with its defaults; check the gate; write the outputs to ``out``."""
    t0 = time.perf_counter()
    md = card.load_data()
    model = card.model()
    opts = inference_options(card, overrides)
    echo(f"{card.name}: {card.description}")
    echo(f"fitting {card.model_ref} with {opts.get('method', 'nuts')} "
         f"({', '.join(f'{k}={v}' for k, v in opts.items() if k != 'method')})")
    res = fit_model(model, md, progress_bar=progress, **opts)
    report = check_convergence(res, **card.gate)
    # ESS, MCSE and r-hat describe Markov chains; for independent SVI/MAP draws they say nothing
    # and cost most of the kjv_lda card's run (55,720 variables): statistics only there
    summary = res.summary(kind="all" if res.method in ("nuts", "hmc") else "stats")
    result = RunResult(fit=res, report=report, summary=summary)
    if card.outputs.get("report"):
        with card_imports(card.path):
            fn = resolve_reference(card.outputs["report"], f"{card.path.name}: [outputs] report")
        result.extra = dict(fn(res, md) or {})
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files = result.files
        # posterior predictive thinned to <= 500 draws (a card may set [outputs] posterior_predictive_draws): enough for checks and plots, and it keeps
        # a model with large observations (naive Bayes' X) from holding draws x rows x features
        tree = res.to_arviz(posterior_predictive=int(card.outputs.get("posterior_predictive_draws", 500)))
        atomic_write(out / "fit.nc", lambda p: tree.to_netcdf(p, engine="h5netcdf"))
        files["fit"] = out / "fit.nc"
        atomic_write(out / "summary.csv", lambda p: summary.to_csv(p))
        files["summary"] = out / "summary.csv"
        verdict = {"entry": card.name, "passed": report.passed, "applicable": report.applicable,
                   "failures": report.failures, "divergences": report.divergences,
                   "thresholds": report.thresholds, "method": res.method, "info": _jsonable(res.info),
                   "report": _jsonable(result.extra)}
        atomic_write(out / "convergence.json", lambda p: Path(p).write_text(json.dumps(verdict, indent=2)))
        files["convergence"] = out / "convergence.json"
        _save_plots(res, tree, out, files)
    result.seconds = time.perf_counter() - t0
    return result


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, (dict,)):
            v = _jsonable(v)
        try:
            json.dumps(v)
        except TypeError:
            v = str(v)
        out[k] = v
    return out


def check_entry(card: Card, out: str | Path | None = None, *, num_replications: int | None = None,
                seed: int | None = None, echo: Callable[[str], None] = lambda s: None,
                progress: bool = False) -> SBCResult:
    """Simulation-based calibration of a card's model at the card's small ``[check]`` settings."""
    chk = dict(card.check)
    md = card.load_data(**dict(chk.pop("data_args", {})))
    model = card.model()
    reps = int(num_replications or chk.pop("num_replications", 100))
    chk.pop("num_replications", None)
    kwargs = {k: chk[k] for k in ("num_warmup", "num_samples", "thin", "params", "alpha",
                                  "chunk_size", "target_accept_prob") if k in chk}
    echo(f"SBC of {card.name}: {reps} replications, {kwargs}")
    result = sbc(model, md, num_replications=reps, seed=int(seed if seed is not None else chk.get("seed", 0)),
                 progress=progress, **kwargs)
    if out is not None:
        out = Path(out)
        atomic_write(out / "sbc.csv", lambda p: result.table.to_csv(p))
        import matplotlib.pyplot as plt

        fig = result.plot()
        atomic_write(out / "sbc.png", lambda p: fig.savefig(p, dpi=90, format="png"))
        plt.close(fig)
    return result


def sample_entry(card: Card, out: str | Path | None = None, *, num_samples: int = 100,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """Forward-sample a card's model: parameters from the prior, then synthetic data sets."""
    md = card.load_data()
    model = card.model()
    draws = sample_prior(model, md, num_samples=num_samples, seed=seed)
    if out is not None:
        import xarray as xr

        out = Path(out)
        obs = set(md.observed)
        groups = {}
        for group, keep in (("prior", lambda k: k not in obs), ("prior_predictive", lambda k: k in obs)):
            vars_ = {k: xr.DataArray(v[None], dims=["chain", "draw"] + [f"{k}_dim_{i}" for i in range(v.ndim - 1)])
                     for k, v in draws.items() if keep(k)}
            if vars_:
                groups[f"/{group}"] = xr.Dataset(vars_)
        tree = xr.DataTree.from_dict(groups)
        atomic_write(out / "prior.nc", lambda p: tree.to_netcdf(p, engine="h5netcdf"))
        for k in obs:
            if k in draws and draws[k].ndim in (2, 3):
                first = draws[k][0]
                frame = pd.DataFrame(first if first.ndim == 2 else first[:, None])
                atomic_write(out / f"synthetic_{k}.csv", lambda p, f=frame: f.to_csv(p, index=False))
    return draws
