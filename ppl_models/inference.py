"""One call to condition any NumPyro program on data: ``fit(model, data, method=...)``.

MCMC (NUTS, HMC) and SVI (any guide; MAP is SVI with a point-mass guide) sit behind the same
function and return the same :class:`~ppl_models.fit.Fit`. Forward sampling
(:func:`sample_prior`) and the joint log density (:func:`log_joint`) come from the same
program with no other code.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
import warnings
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro import handlers
from numpyro.infer import HMC, MCMC, NUTS, SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoDelta, AutoNormal
from numpyro.infer.initialization import init_to_median
from numpyro.infer.util import log_density

from ._config import enable_compilation_cache
from ._trace import ModelSites, check_keywords, inspect_model, observed_kwargs
from .data import ModelData, as_mapping, describe
from .errors import DataError, ModelError, PPLModelsError
from .fit import Fit
from .fit import device_kwargs as _device_arrays

__all__ = ["fit", "sample_prior", "log_joint", "METHODS", "default_chain_method", "inspect_program",
           "nonfinite_arguments"]

enable_compilation_cache()

METHODS = ("nuts", "hmc", "svi", "map")

# Per-draw sampler statistics kept from NumPyro, and their ArviZ names.
_EXTRA_FIELDS = ("diverging", "potential_energy", "energy", "num_steps", "accept_prob",
                 "adapt_state.step_size")


def default_chain_method(num_chains: int) -> str:
    """``"parallel"`` when there is a device per chain, else ``"sequential"``.

    Sequential chains each reuse the persistent compilation cache after the first; vectorized
    chains run in lock-step at the slowest chain's tree depth, which hurts multimodal models,
    so it is only used when asked for.
    """
    if num_chains > 1 and jax.local_device_count() >= num_chains:
        return "parallel"
    return "sequential"


def _split_data(data: Any, argument: str = "data") -> tuple[dict[str, Any], ModelData | None]:
    md = data if isinstance(data, ModelData) else None
    kwargs = as_mapping(argument, data)
    return kwargs, md


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(name, f"an integer >= {minimum}", describe(value))
    return int(value)


def _progress(progress_bar: bool | None) -> bool:
    if progress_bar is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress_bar)


def fit(
    model: Callable,
    data: Mapping[str, Any] | ModelData | None = None,
    method: str = "nuts",
    *,
    seed: int = 0,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    thinning: int = 1,
    progress_bar: bool | None = None,
    chain_method: str | None = None,
    init_strategy: Callable | str | None = None,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    trajectory_length: float | None = None,
    guide: Callable | None = None,
    num_steps: int = 5000,
    learning_rate: float = 0.01,
    optimizer: Any = None,
    loss: Any = None,
    subsample_size: int | None = None,
    num_posterior_draws: int = 1000,
    observed: tuple[str, ...] | list[str] | None = None,
    coords: dict[str, Any] | None = None,
    dims: dict[str, list[str]] | None = None,
    resume: Fit | None = None,
    shard: list[str] | tuple[str, ...] | None = None,
) -> Fit:
    """Condition ``model`` on ``data`` and return the posterior as a :class:`Fit`.

    Parameters
    ----------
    model : callable
        A NumPyro program; its keyword arguments are its data. Observed sites take their values
        from the keyword argument of the same name.
    data : mapping or ModelData
        The program's keyword arguments. A :class:`~ppl_models.data.ModelData` also brings
        the names of its observed arguments and ArviZ coords/dims.
    method : {"nuts", "hmc", "svi", "map"}
        ``"nuts"``/``"hmc"``: MCMC with adapted step size and mass matrix. ``"svi"``:
        stochastic variational inference (AutoNormal unless ``guide`` is given), then
        ``num_posterior_draws`` draws from the guide. ``"map"``: SVI with a point-mass guide;
        the posterior is one draw.
    seed : int
        The only source of randomness: the same seed gives the same draws.
    num_chains, num_warmup, num_samples, thinning : int
        MCMC settings. ``num_samples`` draws per chain are kept (after thinning).
    progress_bar : bool, optional
        Show progress; by default only when standard error is a terminal.
    chain_method : {"parallel", "sequential", "vectorized"}, optional
        Default: :func:`default_chain_method`.
    init_strategy : callable, optional
        A NumPyro init strategy, or its name ("median", "mean", "uniform", "uniform:RADIUS",
        "feasible", "sample"). Default: the program's own ``default_init_strategy(data,
        seed=)`` when it has one (mixtures start from k-means), else ``init_to_median``.
    target_accept_prob, max_tree_depth, dense_mass, trajectory_length
        NUTS/HMC settings (``trajectory_length`` is HMC's path length, default 2π).
    guide : callable, optional
        Any NumPyro guide (an autoguide instance, or a guide program) for ``"svi"``.
    num_steps, learning_rate, optimizer, loss
        SVI settings: optimizer defaults to Adam at ``learning_rate`` decaying geometrically to
        1% of it by the last step; loss to ``Trace_ELBO()``.
    subsample_size : int, optional
        For SVI on large data: passed to the program as ``subsample_size=`` during
        optimisation only. A program opts in by taking a ``subsample_size=None`` keyword and
        writing ``numpyro.plate("obs", N, subsample_size=subsample_size)``; log-likelihood and
        predictions afterwards use all the data.
    num_posterior_draws : int
        Draws taken from an SVI guide.
    observed : sequence of str, optional
        Names of the observed keyword arguments (default: those named like an observed site).
    coords, dims : dict, optional
        ArviZ coordinates and per-site dimension names; they add to those of a ``ModelData``
        and to the names inferred from plates.
    shard : sequence of str, optional
        Keyword arguments (data arrays) to split by rows across the devices
        (:func:`ppl_models.scale.shard_rows`), so the likelihood runs data-parallel inside the
        jitted potential. Chains then default to ``"vectorized"`` (the devices hold the data,
        not one chain each).
    resume : Fit, optional
        A NUTS/HMC fit (in memory, or loaded with :func:`~ppl_models.load_fit`) to continue:
        each chain goes on from its last state with its adapted step size and mass matrix,
        without new warm-up, for ``num_samples`` more draws, which are appended. Continuing
        N draws after N gives exactly the draws of one run of 2N with the same seed.

    Returns
    -------
    Fit
    """
    if not callable(model):
        raise DataError("model", "a NumPyro program (a callable)", describe(model))
    method_l = str(method).lower()
    if method_l not in METHODS:
        raise DataError("method", f"one of {list(METHODS)}", repr(method))
    kwargs, md = _split_data(data)
    seed = int(seed)
    num_chains = _positive_int("num_chains", num_chains)
    num_samples = _positive_int("num_samples", num_samples)
    num_warmup = _positive_int("num_warmup", num_warmup, minimum=0)
    thinning = _positive_int("thinning", thinning)
    coords_all = dict(md.coords) if md else {}
    coords_all.update(coords or {})
    dims_all = dict(md.dims) if md else {}
    dims_all.update(dims or {})
    if observed is None and md is not None and md.observed:
        observed = md.observed

    sites, trace = inspect_program(model, kwargs, seed=seed, observed=observed)
    obs_names = observed_kwargs(sites, kwargs, observed)
    if isinstance(init_strategy, str):
        init_strategy = _named_init(init_strategy)
    if init_strategy is None and callable(getattr(model, "default_init_strategy", None)):
        # a family can say how its programs should start (e.g. mixtures from k-means)
        init_strategy = model.default_init_strategy(md if md is not None else kwargs, seed=seed)
    init = init_strategy if init_strategy is not None else init_to_median(num_samples=15)
    key = jax.random.PRNGKey(seed)
    info: dict[str, Any] = {"method": method_l, "seed": seed}
    run_data = dict(kwargs)
    if shard:
        from .scale import shard_rows

        run_data = shard_rows(kwargs, list(shard))
        info["sharded"] = ",".join(shard)
        info["num_devices"] = jax.device_count()
        if chain_method is None:
            chain_method = "vectorized"
    show = _progress(progress_bar)

    if method_l in ("nuts", "hmc"):
        run_model, run_kwargs = model, _device_arrays(run_data)
        if shard:
            # Sharded arrays must be arguments of the jitted sampler, not constants closed over
            # (which XLA would replicate): NumPyro's jit_model_args passes them in, and the
            # non-array arguments (sizes, flags) are bound to the program beforehand.
            run_kwargs, static = _array_kwargs(run_data)
            run_model = functools.partial(model, **static)
        if method_l == "nuts":
            kernel = NUTS(run_model, target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth,
                          dense_mass=dense_mass, init_strategy=init)
        else:
            kernel = HMC(run_model, target_accept_prob=target_accept_prob, dense_mass=dense_mass,
                         init_strategy=init,
                         trajectory_length=trajectory_length if trajectory_length else 2 * np.pi)
        cm = chain_method or default_chain_method(num_chains)
        mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples * thinning,
                    num_chains=num_chains, thinning=thinning, chain_method=cm, progress_bar=show,
                    jit_model_args=bool(shard))
        run_key = key
        if resume is not None:
            run_key = _restore_state(resume, kernel, mcmc, method_l, num_chains, run_kwargs)
        t0 = time.perf_counter()
        with _program_errors(model, kwargs, trace, method_l, init):
            mcmc.run(run_key, extra_fields=_EXTRA_FIELDS, **run_kwargs)
        samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        jax.block_until_ready(samples)
        info["sampling_seconds"] = time.perf_counter() - t0
        extra = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
        stats = _sample_stats(extra)
        info.update(num_chains=num_chains, num_warmup=num_warmup, num_samples=num_samples,
                    thinning=thinning, chain_method=cm, target_accept_prob=target_accept_prob)
        if resume is not None:
            samples = {k: np.concatenate([resume.samples[k], v], axis=1) for k, v in samples.items()}
            stats = {k: np.concatenate([resume.sample_stats[k], v], axis=1) for k, v in stats.items()
                     if k in resume.sample_stats}
            info.update(num_warmup=resume.info.get("num_warmup", num_warmup),
                        num_samples=int(next(iter(samples.values())).shape[1]),
                        resumed_from_draws=resume.num_draws,
                        sampling_seconds=info["sampling_seconds"] + resume.info.get("sampling_seconds", 0.0))
        result = Fit(model=model, data=kwargs, method=method_l, samples=samples, sample_stats=stats,
                     sites=sites, observed=tuple(obs_names), coords=coords_all, dims=dims_all,
                     info=info)
        result._mcmc = mcmc
        result.resume_state = [np.asarray(x) for x in jax.tree_util.tree_leaves(mcmc.last_state)]
        return result

    # --- SVI and MAP -------------------------------------------------------------------------
    num_steps = _positive_int("num_steps", num_steps)
    if method_l == "map":
        if guide is not None:
            raise DataError("guide", "None for method='map' (MAP uses a point-mass guide)", describe(guide))
        guide_obj = AutoDelta(model, init_loc_fn=init)
    else:
        guide_obj = guide if guide is not None else AutoNormal(model, init_loc_fn=init)
    # Adam whose step decays geometrically to 1% of `learning_rate` by the last step: early steps
    # move fast, late steps average out the noise of the one-sample ELBO gradient.
    decay = 0.01 ** (1.0 / num_steps)
    opt = optimizer if optimizer is not None else numpyro.optim.Adam(
        step_size=lambda i: learning_rate * decay ** i)
    svi = SVI(model, guide_obj, opt, loss=loss if loss is not None else Trace_ELBO())
    run_kwargs = _device_arrays(run_data)
    if subsample_size is not None:
        run_kwargs["subsample_size"] = _positive_int("subsample_size", subsample_size)
    k_run, k_draw = jax.random.split(key)
    t0 = time.perf_counter()
    with _program_errors(model, kwargs, trace, method_l, init):
        if shard:
            svi_result = _svi_run_sharded(svi, k_run, num_steps, run_kwargs)
        else:
            svi_result = svi.run(k_run, num_steps, progress_bar=show, **run_kwargs)
    losses = np.asarray(svi_result.losses)
    info["fit_seconds"] = time.perf_counter() - t0
    if not np.isfinite(losses[-1]):
        raise FloatingPointError(
            f"SVI diverged: the loss is {losses[-1]} after {num_steps} steps; lower learning_rate "
            f"(now {learning_rate}) or give a better init_strategy")
    params = {k: np.asarray(v) for k, v in svi_result.params.items()}
    n_draws = 1 if method_l == "map" else _positive_int("num_posterior_draws", num_posterior_draws)
    return_sites = sites.latent + sites.deterministic
    draw_guide = guide_obj
    if subsample_size is not None and guide is None:
        # An autoguide remembers the plate sizes of its first (minibatch) call; a fresh one of the
        # same kind, traced on all the data, reads the same parameters with full-size plates.
        draw_guide = (AutoDelta if method_l == "map" else AutoNormal)(model, init_loc_fn=init)
    pred = Predictive(model, guide=draw_guide, params=svi_result.params, num_samples=n_draws,
                      return_sites=return_sites)
    draws = pred(k_draw, **_device_arrays(kwargs))
    samples = {k: np.asarray(v)[None] for k, v in draws.items() if k in return_sites}
    info.update(num_steps=num_steps, learning_rate=learning_rate, num_posterior_draws=n_draws,
                final_loss=float(losses[-1]), subsample_size=subsample_size,
                guide=type(guide_obj).__name__)
    result = Fit(model=model, data=kwargs, method=method_l, samples=samples, sample_stats={},
                 sites=sites, observed=tuple(obs_names), coords=coords_all, dims=dims_all, info=info)
    result.svi_params = params
    result.svi_losses = losses
    result._guide = guide_obj
    return result


# --------------------------------------------------------------------------- checking the data
def _accepts_missing(model: Callable) -> set[str] | bool:
    """The arguments a program declares may hold NaN (``model.accepts_missing``: True or names)."""
    declared = getattr(model, "accepts_missing", None)
    if declared is None and isinstance(model, functools.partial):
        declared = getattr(model.func, "accepts_missing", None)
    if declared is True:
        return True
    if not declared:
        return set()
    return {declared} if isinstance(declared, str) else set(declared)


def nonfinite_arguments(kwargs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(argument, description)`` for every floating-point array argument holding NaN or inf,
    the description naming how many and the first one's value and index."""
    out = []
    for name, v in kwargs.items():
        if isinstance(v, jax.core.Tracer):  # no values to look at under a transformation
            continue
        if isinstance(v, jax.Array):
            if not jnp.issubdtype(v.dtype, jnp.inexact) or bool(jnp.all(jnp.isfinite(v))):
                continue
            v = np.asarray(v)
        elif isinstance(v, np.ndarray):
            if not np.issubdtype(v.dtype, np.inexact) or np.isfinite(v).all():
                continue
        else:
            continue
        bad = ~np.isfinite(v)
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        out.append((name, f"{int(bad.sum())} non-finite value(s), the first {v[idx].item()!r} at index {idx}"))
    return out


def _recorded(model: Callable, box: dict) -> Callable:
    """``model`` that also keeps the trace of its last run in ``box["trace"]`` (a trace handler
    inside the caller's handlers sees the same messages, so the caller's one run serves both)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        tracer = handlers.trace(model)
        out = tracer(*args, **kwargs)
        box["trace"] = tracer.trace
        return out

    return run


def inspect_program(model: Callable, kwargs: dict[str, Any], *, seed: int = 0,
                    observed: tuple[str, ...] | list[str] | None = None,
                    check_values: bool = True) -> tuple[ModelSites, dict[str, Any]]:
    """Trace the program once on ``kwargs``; return its sites and the trace.

    Bad data becomes a :class:`DataError` naming the argument:

    * an array argument holding NaN or inf, when the program's log density at a prior draw is
      not finite with it (a program that handles missing values itself — an HMM masks NaN —
      passes, as does one that declares ``accepts_missing = True`` or a tuple of argument
      names as an attribute);
    * an observed value whose shape does not broadcast with its site's distribution;
    * an observed value outside the support of a NumPyro distribution (a label 2 for a
      Bernoulli, a class 5 of 3). Custom distributions check their own values.

    A failure of the trace itself is a DataError on a non-finite argument when the program runs
    once its non-finite values are replaced, else a :class:`ModelError` carrying the program's
    own exception as its cause (``ppl-models --traceback`` prints it). ``check_values=False`` only traces (the values are not used as such).
    """
    check_keywords(model, kwargs, "data")
    accepts = _accepts_missing(model)
    nonfinite = [] if accepts is True else [(k, d) for k, d in nonfinite_arguments(kwargs) if k not in accepts]
    box: dict[str, Any] = {}
    try:
        sites = inspect_model(_recorded(model, box), kwargs, seed=seed)
    except PPLModelsError:
        raise
    except (ValueError, TypeError, IndexError, FloatingPointError) as exc:
        if nonfinite and _runs_without_nonfinite(model, kwargs, [k for k, _ in nonfinite], seed):
            # the same program runs once the non-finite values are replaced: they are the cause
            name, got = nonfinite[0]
            raise DataError(name, "finite values (no NaN or inf)", got,
                            f"the program failed on them: {type(exc).__name__}: {exc}") from exc
        raise ModelError(f"the program failed when run on its data {sorted(kwargs)}: "
                         f"{type(exc).__name__}: {exc}") from exc
    trace = box["trace"]
    if not check_values:
        return sites, trace
    if nonfinite:
        lp = _log_density_at(model, kwargs, trace)
        if not np.isfinite(lp):
            name, got = nonfinite[0]
            others = [k for k, _ in nonfinite[1:]]
            hint = (f"the program's log density is {lp} with them"
                    + (f"; non-finite values are also in {others}" if others else "")
                    + "; a program that handles missing values itself can say so with "
                      "`program.accepts_missing = True`")
            raise DataError(name, "finite values (no NaN or inf)", got, hint)
    def retrace(other_seed: int) -> Mapping[str, Any]:
        other: dict[str, Any] = {}
        inspect_model(_recorded(model, other), kwargs, seed=other_seed)
        return other["trace"]

    _check_observed_sites(trace, kwargs, observed, retrace=retrace, seed=seed)
    return sites, trace


def _runs_without_nonfinite(model: Callable, kwargs: Mapping[str, Any], names: list[str], seed: int) -> bool:
    """Whether the program traces once the arrays ``names`` have their NaN/inf replaced by 0."""
    clean = {k: (np.nan_to_num(np.asarray(v), nan=0.0, posinf=0.0, neginf=0.0) if k in names else v)
             for k, v in kwargs.items()}
    try:
        inspect_model(model, clean, seed=seed)
    except Exception:
        return False
    return True


def _log_density_at(model: Callable, kwargs: Mapping[str, Any], trace: Mapping[str, Any]) -> float:
    """The program's joint log density at the traced values of its latent sites."""
    params = {k: s["value"] for k, s in trace.items() if s["type"] == "sample" and not s.get("is_observed")}
    try:
        with warnings.catch_warnings():  # NumPyro warns of out-of-support values; we report them
            warnings.simplefilter("ignore")
            lp, _ = log_density(model, (), dict(kwargs), params)
        return float(lp)
    except PPLModelsError:
        raise
    except (ValueError, TypeError, IndexError, FloatingPointError):
        return float("nan")


def _observed_argument(site_name: str, kwargs: Mapping[str, Any],
                       observed: tuple[str, ...] | list[str] | None) -> str:
    if site_name in kwargs:
        return site_name
    named = [k for k in (observed or ()) if k in kwargs]
    return named[0] if len(named) == 1 else site_name


def _describe_support(support: Any) -> str:
    """A constraint in words: "0 or 1", "integers 0..2", "non-negative integers", else its repr."""
    base = getattr(support, "base_constraint", support)
    kind = type(base).__name__
    lo, hi = getattr(base, "lower_bound", None), getattr(base, "upper_bound", None)

    def one(v: Any) -> Any:
        u = np.unique(np.asarray(v)) if v is not None else np.array([])
        return u.item() if u.size == 1 else None

    if kind == "_Boolean":
        return "0 or 1"
    if kind == "_IntegerInterval" and one(lo) is not None and one(hi) is not None:
        return f"integers {one(lo)}..{one(hi)}"
    if kind in ("_IntegerGreaterThan", "_IntegerNonnegative", "_IntegerPositive") and one(lo) is not None:
        return "non-negative integers" if one(lo) == 0 else f"integers >= {one(lo)}"
    return str(support)


def _support_bounds(support: Any) -> list[np.ndarray]:
    base = getattr(support, "base_constraint", support)
    return [np.asarray(b) for b in (getattr(base, "lower_bound", None), getattr(base, "upper_bound", None))
            if b is not None]


def _support_depends_on_latents(name: str, support: Any, retrace: Callable[[int], Mapping[str, Any]] | None,
                                seed: int) -> bool:
    """Whether the bounds of site ``name``'s support change with the prior draw (``Uniform(0, θ)``
    with θ latent): then values outside it at one draw say nothing about the data."""
    bounds = _support_bounds(support)
    if not bounds or retrace is None:
        return False
    for other_seed in (seed + 1, seed + 2):
        try:
            other = _support_bounds(retrace(other_seed)[name]["fn"].support)
        except Exception:  # cannot tell: do not blame the data
            return True
        if len(other) != len(bounds) or any(a.shape != b.shape or not np.array_equal(a, b)
                                            for a, b in zip(bounds, other)):
            return True
    return False


def _check_observed_sites(trace: Mapping[str, Any], kwargs: Mapping[str, Any],
                          observed: tuple[str, ...] | list[str] | None, *,
                          retrace: Callable[[int], Mapping[str, Any]] | None = None, seed: int = 0) -> None:
    """Shapes and supports of the observed values (see :func:`inspect_program`). A support whose
    bounds depend on latent values (they change when the program is traced again with other
    seeds, only done when a value falls outside) is not checked."""
    from numpyro.distributions.distribution import MaskedDistribution

    for name, site in trace.items():
        if site["type"] != "sample" or not site.get("is_observed", False):
            continue
        fn, value = site["fn"], site["value"]
        arg = _observed_argument(name, kwargs, observed)
        dist_shape = tuple(fn.batch_shape) + tuple(fn.event_shape)
        try:
            np.broadcast_shapes(tuple(np.shape(value)), dist_shape)
        except ValueError:
            raise DataError(arg, f"an array whose shape broadcasts with {dist_shape}, the shape of the "
                            f"observed site `{name}` ({type(fn).__name__} with batch shape "
                            f"{tuple(fn.batch_shape)} and event shape {tuple(fn.event_shape)})",
                            f"shape {tuple(np.shape(value))}") from None
        inner = fn
        while hasattr(inner, "base_dist"):
            if isinstance(inner, MaskedDistribution):
                break
            inner = inner.base_dist
        # only NumPyro's own distributions: a custom one (an HMM with padded steps, a Bayes net
        # with -1 for a missing value) decides itself which values it takes
        if (site.get("mask") is not None or isinstance(inner, MaskedDistribution)
                or not type(inner).__module__.startswith("numpyro.")):
            continue
        try:
            support = fn.support
            ok = np.asarray(support(value))
        except Exception:  # a support that cannot be evaluated on this value: nothing to say
            continue
        v = np.asarray(value)
        finite = np.isfinite(v) if np.issubdtype(v.dtype, np.inexact) else np.ones(v.shape, bool)
        ev = int(getattr(support, "event_dim", 0))
        if ev:
            finite = finite.all(axis=tuple(range(-ev, 0)))
        try:
            ok, finite = np.broadcast_arrays(ok, finite)
        except ValueError:
            continue
        bad = ~ok & finite
        if bad.any() and not _support_depends_on_latents(name, support, retrace, seed):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            shown = v[idx].item() if ev == 0 and v.shape == bad.shape else "a row"
            raise DataError(arg, f"values in the support of the observed site `{name}` "
                            f"({type(inner).__name__}: {_describe_support(support)})",
                            f"{int(bad.sum())} value(s) outside it, the first {shown!r} at index {idx}")


def _site_log_probs(trace: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for name, site in trace.items():
        if site["type"] != "sample":
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lp = site["fn"].log_prob(site["value"])
            if site.get("mask") is not None:
                lp = jnp.where(site["mask"], lp, 0.0)
            out[name] = float(jnp.sum(lp))
        except Exception:
            out[name] = float("nan")
    return out


@contextlib.contextmanager
def _program_errors(model: Callable, kwargs: Mapping[str, Any], trace: Mapping[str, Any], what: str,
                    init: Any):
    """Turn NumPyro's failures on a program and its data into a :class:`ModelError` saying what
    went wrong (the original error is kept as the cause)."""
    try:
        yield
    except PPLModelsError:
        raise
    except RuntimeError as exc:
        if "Cannot find valid initial parameters" not in str(exc):
            raise
        lps = _site_log_probs(trace)
        bad = sorted(k for k, v in lps.items() if not np.isfinite(v))
        where = (f"at a draw from the prior the log density of {bad} is not finite" if bad else
                 "at a draw from the prior every site's log density is finite, so the initial "
                 "points tried lie where the density or its gradient is not; try another "
                 "init_strategy ('sample', 'uniform')")
        strategy = getattr(init, "__name__", None) or getattr(getattr(init, "func", None), "__name__", repr(init))
        raise ModelError(f"{what}: no valid initial values: the init strategy {strategy} found no point "
                         f"where the log density and its gradient are finite ({where})") from exc
    except (ValueError, TypeError, IndexError) as exc:
        raise ModelError(f"{what}: the program failed on its data: {type(exc).__name__}: {exc}") from exc


def _named_init(name: str) -> Callable:
    """A NumPyro init strategy by name (as a catalog card gives it)."""
    from numpyro.infer import initialization as ini

    base, _, arg = name.partition(":")
    table = {"median": lambda: ini.init_to_median(num_samples=15), "mean": lambda: ini.init_to_mean(num_samples=15),
             "uniform": ini.init_to_uniform, "feasible": ini.init_to_feasible, "sample": ini.init_to_sample}
    if base not in table or (arg and base != "uniform"):
        raise DataError("init_strategy", f"one of {sorted(table)}, 'uniform:RADIUS', or a NumPyro init strategy",
                        repr(name))
    if base == "uniform" and arg:
        try:
            return ini.init_to_uniform(radius=float(arg))
        except ValueError:
            raise DataError("init_strategy", "'uniform:RADIUS' with a number", repr(name)) from None
    made = table[base]
    return made() if base in ("median", "mean") else made


def _restore_state(resume: Fit, kernel: Any, mcmc: MCMC, method: str, num_chains: int,
                   kwargs: dict[str, Any]) -> Any:
    """Put ``resume``'s last sampler state into ``mcmc``; return the key to run with."""
    if not isinstance(resume, Fit):
        raise DataError("resume", "a Fit from a NUTS/HMC run", describe(resume))
    if resume.method != method:
        raise DataError("resume", f"a fit made with method={method!r}", f"method={resume.method!r}")
    if resume.num_chains != num_chains:
        raise DataError("num_chains", f"{resume.num_chains} (as in the fit being resumed)", num_chains)
    if not getattr(resume, "resume_state", None):
        raise DataError("resume", "a fit that kept its last sampler state (made by this version)",
                        "a fit without one")
    # The state's structure comes from initialising the same kernel once; its values are the
    # saved leaves (each with a leading chain axis when there are several chains).
    proto = kernel.init(jax.random.PRNGKey(0), 0, None, (), _device_arrays(kwargs))
    treedef = jax.tree_util.tree_structure(proto)
    leaves = [jnp.asarray(x) for x in resume.resume_state]
    if treedef.num_leaves != len(leaves):
        raise DataError("resume", "a fit of the same model and data", "a sampler state of another shape")
    state = jax.tree_util.tree_unflatten(treedef, leaves)
    mcmc.post_warmup_state = state
    return state.rng_key


def _sample_stats(extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """NumPyro's extra fields under ArviZ's sample_stats names."""
    out: dict[str, np.ndarray] = {}
    if "diverging" in extra:
        out["diverging"] = extra["diverging"].astype(bool)
    if "potential_energy" in extra:
        out["lp"] = -extra["potential_energy"]
    if "energy" in extra:
        out["energy"] = extra["energy"]
    if "num_steps" in extra:
        out["n_steps"] = extra["num_steps"]
        out["tree_depth"] = np.floor(np.log2(np.maximum(extra["num_steps"], 1))).astype(np.int64) + 1
    if "accept_prob" in extra:
        out["acceptance_rate"] = extra["accept_prob"]
    if "adapt_state.step_size" in extra:
        out["step_size"] = extra["adapt_state.step_size"]
    return out


def sample_prior(
    model: Callable,
    data: Mapping[str, Any] | ModelData | None = None,
    num_samples: int = 500,
    seed: int = 0,
    *,
    observed: tuple[str, ...] | list[str] | None = None,
    keep_observed: bool = False,
) -> dict[str, np.ndarray]:
    """Forward-sample the program: parameters from the prior, then new data.

    The observed keyword arguments are set to ``None`` (unless ``keep_observed``) so the
    program samples them: the result holds prior draws of every latent site and prior
    predictive draws of every observed site, each with a leading ``num_samples`` axis.
    """
    kwargs, md = _split_data(data)
    num_samples = _positive_int("num_samples", num_samples)
    if observed is None and md is not None and md.observed:
        observed = md.observed
    sites, trace = inspect_program(model, kwargs, seed=int(seed), observed=observed, check_values=keep_observed)
    obs_names = observed_kwargs(sites, kwargs, observed)
    sim_kwargs = dict(kwargs)
    if not keep_observed:
        for name in obs_names:
            sim_kwargs[name] = None
        # the values that matter now are those the simulation runs on (covariates, sizes); a
        # second trace only when some of them are not finite (to tell whether the program
        # takes them): otherwise Predictive's own run is the check
        if nonfinite_arguments(sim_kwargs):
            _, trace = inspect_program(model, sim_kwargs, seed=int(seed))
    pred = Predictive(model, num_samples=num_samples)
    with _program_errors(model, sim_kwargs, trace, "prior sampling", None):
        out = pred(jax.random.PRNGKey(int(seed)), **_device_arrays(sim_kwargs))
    drop = set(sites.observed) if keep_observed else set()
    return {k: np.asarray(v) for k, v in out.items() if k not in drop}


def _svi_run_sharded(svi: SVI, key: jax.Array, num_steps: int, run_kwargs: Mapping[str, Any]):
    """``svi.run`` with the data's arrays as arguments of the jitted loop (so sharded arrays keep
    their sharding; ``svi.run`` closes over them)."""
    from numpyro.infer.svi import SVIRunResult

    arrays, static = _array_kwargs(run_kwargs)
    state = svi.init(key, **static, **arrays)

    @functools.partial(jax.jit, static_argnums=2)
    def steps(state, arrays, n):
        return jax.lax.scan(lambda st, _: svi.update(st, **static, **arrays), state, None, length=n)

    state, losses = steps(state, arrays, num_steps)
    return SVIRunResult(svi.get_params(state), state, losses)


def log_joint(model: Callable, data: Mapping[str, Any] | ModelData | None, values: Mapping[str, Any]) -> float:
    """``log p(x, z, θ)``: the program's joint log density at the given latent values.

    ``values`` maps every latent site to a value in its constrained space; the observed sites
    take their values from ``data``. Returns a float (use ``jax.vmap`` over
    :func:`log_joint_fn` for batches).
    """
    return float(log_joint_fn(model, data)(dict(values)))


def _array_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, jax.Array], dict[str, Any]]:
    """Split program arguments into JAX arrays (which can be arguments of a jitted function,
    keeping their sharding) and everything else (sizes, flags, None: static, closed over)."""
    dev = _device_arrays(kwargs)
    arrays = {k: v for k, v in dev.items() if isinstance(v, jax.Array)}
    return arrays, {k: v for k, v in dev.items() if k not in arrays}


def log_joint_fn(model: Callable, data: Mapping[str, Any] | ModelData | None) -> Callable[..., jax.Array]:
    """A pure function ``values -> log p(x, z, θ)`` that composes with ``jit``/``vmap``/``grad``.

    The function also takes the data's arrays as a second argument, ``fn(values, fn.arrays)``.
    Under ``jit`` an array closed over becomes a constant and loses its sharding; passed as an
    argument it keeps it, so data placed with :func:`ppl_models.scale.shard_rows` are then
    processed data-parallel::

        f = log_joint_fn(model, shard_rows(data, ["X", "y"]))
        value, grad = jax.jit(jax.value_and_grad(f))(values, f.arrays)
    """
    kwargs, _ = _split_data(data)
    arrays, static = _array_kwargs(kwargs)

    def fn(values: dict, data_arrays: Mapping[str, Any] | None = None) -> jax.Array:
        kw = {**static, **(arrays if data_arrays is None else data_arrays)}
        lp, _ = log_density(model, (), kw, {k: jnp.asarray(v) for k, v in values.items()})
        return lp

    fn.arrays = arrays
    return fn
