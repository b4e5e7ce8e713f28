"""What a model program is made of: its sites, their plates and the observed arguments.

One traced run of the program (with a fixed seed, under the data given) tells which sites are
latent, which are observed, which are deterministic, and which plates each lies in. Everything
that needs that knowledge — ArviZ dims, prior predictive, log-likelihood — reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import jax
import numpy as np
from numpyro import handlers

__all__ = ["ModelSites", "inspect_model"]


@dataclass
class ModelSites:
    """The sites of one traced run of a model program.

    Attributes
    ----------
    latent : list of str
        Sample sites that are not observed (what inference samples).
    observed : list of str
        Observed sample sites.
    deterministic : list of str
        ``numpyro.deterministic`` sites.
    dims : dict
        Site name -> list of dimension names of its value (without chain/draw), from the plates
        it lies in; axes outside any plate are named ``{site}_dim_{i}``.
    observed_values : dict
        Observed site name -> its observed value (a NumPy array).
    shapes : dict
        Site name -> the shape of its value.
    """

    latent: list[str] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    deterministic: list[str] = field(default_factory=list)
    dims: dict[str, list[str]] = field(default_factory=dict)
    observed_values: dict[str, np.ndarray] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    discrete_latent: list[str] = field(default_factory=list)


def _site_dims(name: str, site: dict[str, Any]) -> list[str]:
    value = site["value"]
    shape = tuple(np.shape(value))
    fn = site.get("fn")
    event_dim = len(getattr(fn, "event_shape", ())) if fn is not None else 0
    if site["type"] == "deterministic":
        event_dim = 0
    batch_rank = len(shape) - event_dim
    names = [f"{name}_dim_{i}" for i in range(len(shape))]
    for frame in site.get("cond_indep_stack", []):
        if frame.dim is None:
            continue
        axis = batch_rank + frame.dim
        if 0 <= axis < batch_rank and shape[axis] == frame.size:
            names[axis] = frame.name
    return names


def check_keywords(model: Callable, keys: Any, argument: str) -> None:
    """Keys the program has no keyword argument for (and no ``**kwargs`` to take them) are a
    :class:`~ppl_models.errors.DataError` naming ``argument``. A program whose signature cannot
    be read passes (running it will tell)."""
    import inspect

    from .errors import DataError

    try:
        params = inspect.signature(model).parameters.values()
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(keys) - set(names))
    if unknown:
        raise DataError(argument, f"keyword arguments the model accepts ({names})", f"also {unknown}")


def inspect_model(model: Callable, kwargs: dict[str, Any], seed: int = 0) -> ModelSites:
    """Trace ``model(**kwargs)`` once and classify its sites."""
    tr = handlers.trace(handlers.seed(model, jax.random.PRNGKey(seed))).get_trace(**kwargs)
    return classify_sites(tr)


def classify_sites(tr: Mapping[str, Any], observed_values: Mapping[str, Any] | None = None) -> ModelSites:
    """Sort a NumPyro trace's sites into observed / latent / deterministic, with dims and shapes.

    ``observed_values``: where the observed values come from when the trace holds none usable
    (an abstract trace under ``jax.eval_shape``); by default the sites' own values.
    """
    sites = ModelSites()
    for name, site in tr.items():
        if site["type"] == "sample":
            if site.get("is_observed", False):
                sites.observed.append(name)
                value = site["value"] if observed_values is None else observed_values[name]
                sites.observed_values[name] = np.asarray(value)
            elif site.get("infer", {}).get("enumerate") is None:
                sites.latent.append(name)
                if getattr(site["fn"], "is_discrete", False):
                    sites.discrete_latent.append(name)
            else:
                continue
        elif site["type"] == "deterministic":
            sites.deterministic.append(name)
        else:
            continue
        sites.dims[name] = _site_dims(name, site)
        sites.shapes[name] = tuple(np.shape(site["value"]))
    return sites


def observed_kwargs(model_sites: ModelSites, kwargs: dict[str, Any],
                    observed: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """Names of the keyword arguments that feed observed sites.

    By convention an observed site takes its value from the keyword argument of the same name;
    ``observed`` (e.g. from :class:`~ppl_models.data.ModelData`) overrides the convention.
    """
    if observed:
        return [k for k in observed if k in kwargs]
    return [name for name in model_sites.observed if name in kwargs]
