"""The result of conditioning a program on data: :class:`Fit`.

A ``Fit`` holds the posterior draws (``(chain, draw, ...)`` arrays), the sampler statistics,
the data and the program that made them. It is the one place that builds ArviZ output
(:meth:`Fit.to_arviz`), and it saves to / loads from netCDF through ArviZ's own writer with
nothing lost: draws, statistics, log-likelihood, observed and constant data, the settings, and
a reference to the program so that a loaded fit can still predict, and for SVI fits the
learned parameters and the loss trace.

Memory: :meth:`Fit.log_likelihood` and :meth:`Fit.predict` take ``batch_size`` (draws run
through the program at a time) and ``out`` (where the result goes: preallocated arrays,
``np.memmap`` s, or ``.npy`` files written chunk by chunk), so that e.g. 10,000 draws x 10^6
points can be written to disk without ever holding the whole result in memory.
"""

from __future__ import annotations

import importlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import numpy as np

from ._trace import ModelSites, check_keywords, inspect_model

from .errors import DataError, PPLModelsError

__all__ = ["Fit", "load_fit", "model_reference", "resolve_reference"]

_ATTR_PREFIX = "ppl_models_"
_RESUME_GROUP = "ppl_models_resume_state"
_SVI_GROUP = "ppl_models_svi"


def model_reference(model: Callable) -> str | None:
    """``"module:qualname"`` of a program defined at module level, else ``None``."""
    mod = getattr(model, "__module__", None)
    qual = getattr(model, "__qualname__", None)
    if not mod or not qual or "<" in qual or mod == "__main__":
        return None
    return f"{mod}:{qual}"


def resolve_reference(ref: str, argument: str = "function") -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise DataError(argument, "a reference of the form 'package.module:function'", repr(ref))
    mod_name, attr = ref.split(":")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise DataError(argument, "an importable module", repr(mod_name), str(exc)) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise DataError(argument, f"an attribute of module {mod_name!r}", repr(attr))
        obj = getattr(obj, part)
    return obj


def device_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """NumPy arrays as JAX arrays, so that traced indices (minibatches, vmap) can index them."""
    import jax.numpy as jnp

    return {k: jnp.asarray(v) if isinstance(v, np.ndarray) and v.dtype != object else v
            for k, v in kwargs.items()}


def _batch_size(batch_size: Any, total: int) -> int:
    """Draws per chunk: all of them for ``None``, else a positive integer."""
    if batch_size is None:
        return max(total, 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        from .data import describe

        raise DataError("batch_size", "None or an integer >= 1 (draws per chunk)", describe(batch_size))
    return int(batch_size)


class _ChunkSink:
    """Where chunks of ``(chain * draw, ...)`` results go, allocated once when the first chunk
    shows each site's shape and dtype.

    ``out`` is ``None`` (NumPy arrays in memory), a mapping ``site -> array | path``, a path
    ending in ``.npy`` (one site), or any other path (a directory, one ``<site>.npy`` each).
    Arrays (``np.ndarray``, ``np.memmap``) are filled in place. Paths are written with plain
    file writes at each chunk's offset, not through a memory map, so no page of the result
    stays resident; the result is returned as a read-only memory map of the file.
    """

    def __init__(self, out: Any, lead: tuple[int, int], argument: str = "out"):
        self.lead = lead
        self.total = lead[0] * lead[1]
        self.argument = argument
        self.spec = out
        if out is not None and not isinstance(out, (str, os.PathLike, Mapping)):
            raise DataError(argument, "None, a mapping site -> array or .npy path, or a path (.npy file or directory)",
                            f"a {type(out).__name__}")
        self.arrays: dict[str, np.ndarray] = {}   # flat (chain * draw, ...) views to fill
        self.files: dict[str, tuple[Path, int]] = {}  # site -> (path, data offset)
        self.results: dict[str, Any] = {}

    def _target(self, site: str, names: list[str]) -> Any:
        out = self.spec
        if isinstance(out, Mapping):
            if site not in out:
                raise DataError(self.argument, f"an entry for every site ({names})", f"entries for {sorted(out)}")
            return out[site]
        p = Path(out)
        if p.suffix == ".npy":
            if len(names) != 1:
                raise DataError(self.argument, f"a directory or a mapping for the {len(names)} sites {names}",
                                f"the single file {str(p)!r}")
            return p
        p.mkdir(parents=True, exist_ok=True)
        return p / f"{site}.npy"

    def _allocate(self, chunk: Mapping[str, np.ndarray]) -> None:
        names = list(chunk)
        for site, v in chunk.items():
            shape = self.lead + tuple(v.shape[1:])
            if self.spec is None:
                self.arrays[site] = np.empty((self.total,) + shape[2:], dtype=v.dtype)
                self.results[site] = self.arrays[site].reshape(shape)
                continue
            target = self._target(site, names)
            if isinstance(target, (str, os.PathLike)):
                path = Path(target)
                path.parent.mkdir(parents=True, exist_ok=True)
                # writes the header and sizes the (sparse) file; no page is touched
                mm = np.lib.format.open_memmap(path, mode="w+", dtype=v.dtype, shape=shape)
                offset = int(mm.offset)
                del mm
                self.files[site] = (path, offset)
                continue
            arr = target
            if not isinstance(arr, np.ndarray) or tuple(arr.shape) != shape:
                raise DataError(f"{self.argument}[{site!r}]", f"an array of shape {shape}",
                                f"{type(arr).__name__} of shape {getattr(arr, 'shape', None)}")
            if not arr.flags.writeable or not arr.flags.c_contiguous:
                raise DataError(f"{self.argument}[{site!r}]", "a writeable C-contiguous array",
                                "a read-only or non-contiguous array")
            self.arrays[site] = arr.reshape((self.total,) + shape[2:])
            self.results[site] = arr

    def put(self, start: int, chunk: Mapping[str, np.ndarray]) -> None:
        chunk = {k: np.asarray(v) for k, v in chunk.items()}
        first = not self.arrays and not self.files and not self.results
        if first and self.spec is None and start == 0 and all(v.shape[0] == self.total for v in chunk.values()):
            # one chunk holds everything: keep it as it is (no second copy)
            self.results = {k: v.reshape(self.lead + v.shape[1:]) for k, v in chunk.items()}
            return
        if first:
            self._allocate(chunk)
        for site, v in chunk.items():
            if site in self.arrays:
                np.copyto(self.arrays[site][start:start + v.shape[0]], v, casting="same_kind")
            else:
                path, offset = self.files[site]
                row = int(np.prod(v.shape[1:], dtype=np.int64)) * v.dtype.itemsize
                with open(path, "r+b") as fh:
                    fh.seek(offset + start * row)
                    fh.write(np.ascontiguousarray(v).data)

    def result(self) -> dict[str, Any]:
        for site, (path, _) in self.files.items():
            self.results[site] = np.load(path, mmap_mode="r")
        return dict(self.results)


_TRACE_ERRORS = (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError,
                 jax.errors.TracerArrayConversionError)


class _ChunkRunner:
    """``fn(key, draws, kwargs)`` for chunk after chunk of draws, compiled once.

    The data's JAX arrays are arguments of the jitted function (not constants folded into it);
    everything else (sizes, options, ``None``) is closed over as it is. Inside, the draws run one
    at a time (``lax.map``), so a chunk holds its result and one draw's intermediates. A program
    that needs concrete data values (Python control flow on them) cannot be traced with its
    data as arguments: it then runs eagerly, chunk by chunk, as before.
    """

    def __init__(self, fn: Callable, kwargs: Mapping[str, Any]):
        self.fn = fn
        self.arrays = {k: v for k, v in kwargs.items() if isinstance(v, jax.Array)}
        self.static = {k: v for k, v in kwargs.items() if k not in self.arrays}
        self.jitted = jax.jit(lambda key, draws, arrays: fn(key, draws, {**self.static, **arrays}))
        self.eager = False

    def __call__(self, key, draws):
        if not self.eager:
            try:
                return self.jitted(key, draws, self.arrays)
            except _TRACE_ERRORS:
                self.eager = True
        return self.fn(key, draws, {**self.static, **self.arrays})


def _flat(samples: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v.reshape((-1,) + v.shape[2:]) for k, v in samples.items()}


def _is_array_like(v: Any) -> bool:
    return isinstance(v, (np.ndarray, jax.Array)) or (
        hasattr(v, "__array__") and not isinstance(v, (str, bytes)))


class Fit:
    """Posterior draws of a program, with the data and settings that made them.

    Build one with :func:`ppl_models.fit`, or from draws made elsewhere (an exact conjugate
    posterior, say) with :meth:`Fit.from_samples`.

    Attributes
    ----------
    model : callable or None
        The program (``None`` after loading a fit whose program cannot be imported).
    data : dict
        The keyword arguments it was conditioned on.
    method : str
        ``"nuts"``, ``"hmc"``, ``"svi"``, ``"map"``, or a family's own (``"exact"``).
    samples : dict
        Site name -> array of shape ``(chain, draw, ...)``: latent and deterministic sites.
    sample_stats : dict
        ArviZ sampler statistics (``diverging``, ``lp``, ``tree_depth``, ...), ``(chain, draw)``.
    observed : tuple of str
        The observed keyword arguments.
    info : dict
        Settings and timings (seed, chains, warm-up, seconds, SVI loss, ...).
    """

    def __init__(self, model: Callable | None, data: Mapping[str, Any], method: str,
                 samples: Mapping[str, np.ndarray], sample_stats: Mapping[str, np.ndarray] | None = None,
                 sites: ModelSites | None = None, observed: tuple[str, ...] = (),
                 coords: Mapping[str, Any] | None = None, dims: Mapping[str, list[str]] | None = None,
                 info: Mapping[str, Any] | None = None):
        self.model = model
        self.data = dict(data)
        self.method = method
        self.samples = {k: np.asarray(v) for k, v in samples.items()}
        self.sample_stats = {k: np.asarray(v) for k, v in (sample_stats or {}).items()}
        self.sites = sites
        self.observed = tuple(observed)
        self.coords = dict(coords or {})
        self.dims = dict(dims or {})
        self.info = dict(info or {})
        self.svi_params: dict[str, np.ndarray] | None = None
        self.svi_losses: np.ndarray | None = None
        self._mcmc = None
        self._guide = None
        self._log_lik: dict[str, np.ndarray] | None = None
        # the sampler's last state (leaves of NumPyro's HMCState), so that a run can go on
        self.resume_state: list[np.ndarray] | None = None
        self._tree = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_samples(cls, model: Callable | None, data: Mapping[str, Any], samples: Mapping[str, Any],
                     method: str, *, group_by_chain: bool = True, observed: tuple[str, ...] | None = None,
                     coords: Mapping[str, Any] | None = None, dims: Mapping[str, list[str]] | None = None,
                     info: Mapping[str, Any] | None = None, seed: int = 0) -> "Fit":
        """A ``Fit`` from draws made outside :func:`ppl_models.fit`.

        ``samples`` are ``(chain, draw, ...)`` arrays (or ``(draw, ...)`` with
        ``group_by_chain=False``, taken as one chain). Deterministic sites missing from
        ``samples`` are filled in by running the program on each draw.
        """
        from numpyro.infer import Predictive

        from ._trace import observed_kwargs

        data = dict(data)
        arrays = {k: np.asarray(v) for k, v in samples.items()}
        if not group_by_chain:
            arrays = {k: v[None] for k, v in arrays.items()}
        sites = inspect_model(model, data, seed=seed) if model is not None else None
        if sites is not None:
            obs_args = set(observed or ())
            missing = [s for s in sites.latent if s not in arrays and s not in obs_args]
            if missing:
                raise DataError("samples", f"draws of every latent site {sites.latent}", f"no draws of {missing}")
            det = [s for s in sites.deterministic if s not in arrays]
            if det:
                n_chain, n_draw = next(iter(arrays.values())).shape[:2]
                flat = {k: arrays[k].reshape((-1,) + arrays[k].shape[2:]) for k in sites.latent if k in arrays}
                out = Predictive(model, posterior_samples=flat, return_sites=det)(jax.random.PRNGKey(seed), **device_kwargs(data))
                for k in det:
                    v = np.asarray(out[k])
                    arrays[k] = v.reshape((n_chain, n_draw) + v.shape[1:])
            obs = tuple(observed_kwargs(sites, data, observed))
        else:
            obs = tuple(observed or ())
        return cls(model=model, data=data, method=method, samples=arrays, sites=sites, observed=obs,
                   coords=coords, dims=dims, info=dict(info or {}, method=method, seed=seed))

    # ------------------------------------------------------------------ draws
    @property
    def num_chains(self) -> int:
        return int(next(iter(self.samples.values())).shape[0])

    @property
    def num_draws(self) -> int:
        return int(next(iter(self.samples.values())).shape[1])

    def get_samples(self, group_by_chain: bool = False) -> dict[str, np.ndarray]:
        """Posterior draws: ``(chain, draw, ...)`` arrays, or ``(chain*draw, ...)`` by default."""
        return dict(self.samples) if group_by_chain else _flat(self.samples)

    def _latent_flat(self) -> dict[str, np.ndarray]:
        names = self.sites.latent if self.sites is not None else list(self.samples)
        return {k: v for k, v in _flat(self.samples).items() if k in names}

    def _require_model(self, what: str) -> Callable:
        if self.model is None:
            raise PPLModelsError(
                f"{what} needs the model program, which this loaded fit could not import; "
                f"pass it: load_fit(path, model=my_model)")
        return self.model

    def _with_params(self, model: Callable) -> Callable:
        """The program with the point estimates SVI learned for its ``numpyro.param`` sites
        (e.g. ProdLDA's decoder) substituted; unchanged when there are none."""
        if not self.svi_params:
            return model
        from numpyro import handlers

        params = {k: jax.numpy.asarray(v) for k, v in self.svi_params.items()}
        return handlers.substitute(model, data=params)

    # ------------------------------------------------------------------ likelihood, prediction
    def log_likelihood(self, batch_size: int | None = None, *, out: Any = None) -> dict[str, np.ndarray]:
        """Pointwise log-likelihood of every observed site, ``(chain, draw, *site_shape)``.

        Computed once and cached: :meth:`to_arviz`, :meth:`save` and LOO/WAIC then use the cache
        and do not run the program again. A result written into the caller's own arrays
        (``out={site: array}``) is not cached; one written to files is, as the read-only memory
        maps returned (do not overwrite those files while the fit is in use).

        Parameters
        ----------
        batch_size : int, optional
            Run the program on this many draws at a time (all at once by default): peak memory
            holds one chunk's intermediates plus the result.
        out : optional
            Where the result goes instead of new arrays: a mapping ``site -> array`` (a
            preallocated ``np.ndarray`` or ``np.memmap`` of the result's shape, filled in place)
            or ``site -> .npy path``, a ``.npy`` path (one observed site), or a directory (one
            ``<site>.npy`` each). Files are written chunk by chunk with plain writes and returned
            as read-only memory maps, so with ``batch_size`` the result is never in memory.
        """
        if self._log_lik is not None and out is None:
            return self._log_lik
        from numpyro.infer import log_likelihood as nlog_lik

        lead = (self.num_chains, self.num_draws)
        sink = _ChunkSink(out, lead)
        total = lead[0] * lead[1]
        step = _batch_size(batch_size, total)
        if self._log_lik is not None:  # computed before: copy it where it was asked for
            for start in range(0, total, step):
                sink.put(start, {k: v.reshape((total,) + v.shape[2:])[start:start + step]
                                 for k, v in self._log_lik.items()})
            return sink.result()
        model = self._with_params(self._require_model("log_likelihood"))
        flat = self._latent_flat()
        dev = device_kwargs(self.data)
        if step >= total:  # all draws at once, vectorized
            sink.put(0, nlog_lik(model, flat, parallel=True, **dev))
        else:  # chunk by chunk, compiled once, one draw at a time inside a chunk
            run = _ChunkRunner(lambda key, draws, kw: nlog_lik(model, draws, parallel=False, **kw), dev)
            for start in range(0, total, step):
                sink.put(start, run(None, {k: v[start:start + step] for k, v in flat.items()}))
        result = sink.result()
        # cached: in-memory results and the read-only maps of files written here (the fit keeps
        # reading those files); never the caller's own arrays, which are theirs to change
        if out is None or not sink.arrays:
            self._log_lik = result
        return result

    def predict(self, new_data: Mapping[str, Any] | None = None, *, seed: int = 0,
                num_samples: int | None = None, return_sites: list[str] | None = None,
                batch_size: int | None = None, out: Any = None) -> dict[str, np.ndarray]:
        """Posterior predictive draws, ``(chain, draw, ...)`` per observed site.

        ``new_data`` replaces keyword arguments (new covariates, a new sequence length); the
        observed arguments are set to ``None`` so the program samples them. ``num_samples``
        thins the posterior to about that many draws in all. ``batch_size`` runs the program
        on that many draws at a time (chunk ``i`` uses the key ``fold_in(PRNGKey(seed), i)``),
        so peak memory holds one chunk's intermediates; the result is allocated once and filled
        chunk by chunk. ``out`` sends it elsewhere, as for :meth:`log_likelihood`: with a
        ``.npy`` path or a directory, 10^4 draws x 10^6 points go to disk chunk by chunk and
        memory never holds more than one chunk::

            fit.predict({"X": X_big}, batch_size=100, out="pred.npy")  # -> {"y": read-only memmap}
        """
        from numpyro.infer import Predictive

        model = self._with_params(self._require_model("predict"))
        kwargs = dict(self.data)
        if new_data:
            unknown = [k for k in new_data if k not in kwargs and k not in self.observed]
            if unknown and self.sites is not None:
                check_keywords(self.model, unknown, "new_data")
            kwargs.update(new_data)
        for name in self.observed:
            if not (new_data and name in new_data and new_data[name] is not None):
                kwargs[name] = None
        names = self.sites.latent if self.sites is not None else list(self.samples)
        by_chain = {k: v for k, v in self.samples.items() if k in names}
        n_chain, n_draw = self.num_chains, self.num_draws
        if num_samples is not None and num_samples < n_chain * n_draw:
            # thin within each chain, so the result keeps its (chain, draw) structure
            stride = -(-(n_chain * n_draw) // int(num_samples))
            by_chain = {k: v[:, ::stride] for k, v in by_chain.items()}
            n_draw = next(iter(by_chain.values())).shape[1]
        latent = {k: v.reshape((-1,) + v.shape[2:]) for k, v in by_chain.items()}
        sites = return_sites or list((self.sites.observed if self.sites else []) or self.observed)
        total = next(iter(latent.values())).shape[0]
        step = _batch_size(batch_size, total)
        sink = _ChunkSink(out, (n_chain, n_draw))
        dev = device_kwargs(kwargs)
        if step >= total:  # all draws at once: one at a time inside (lax.map), eagerly
            sink.put(0, Predictive(model, posterior_samples=latent, return_sites=sites)(jax.random.PRNGKey(seed), **dev))
            return sink.result()
        # chunk by chunk, compiled once (not once per chunk), one draw at a time inside a chunk
        run = _ChunkRunner(lambda key, draws, kw: Predictive(model, posterior_samples=draws, return_sites=sites)(key, **kw),
                           dev)
        for i, start in enumerate(range(0, total, step)):
            part = {k: v[start:start + step] for k, v in latent.items()}
            sink.put(start, run(jax.random.fold_in(jax.random.PRNGKey(seed), i), part))
        return sink.result()

    # ------------------------------------------------------------------ ArviZ
    def _dims_for(self, name: str, value: np.ndarray, sample_axes: int = 2) -> list[str]:
        rank = value.ndim - sample_axes
        # An observed site with an event axis, e.g. X of shape (obs, feature), has a
        # log-likelihood of shape (obs,): its dims are the leading ones of the site's dims.
        for source in (self.dims, self.sites.dims if self.sites is not None else {}):
            if name in source and len(source[name]) >= rank:
                return list(source[name])[:rank]
        return [f"{name}_dim_{i}" for i in range(rank)]

    def _coords_for(self, dims_map: Mapping[str, list[str]], values: Mapping[str, np.ndarray],
                    sample_axes: int) -> dict[str, Any]:
        """The user's coords, kept only where their length fits every variable that uses them."""
        coords: dict[str, Any] = {}
        for dim, labels in self.coords.items():
            n = len(labels)
            ok = True
            for var, dl in dims_map.items():
                if dim in dl:
                    axis = dl.index(dim) + sample_axes
                    if values[var].shape[axis] != n:
                        ok = False
            if ok:
                coords[dim] = list(labels)
        return coords

    def _group(self, values: Mapping[str, np.ndarray], sample_axes: int = 2):
        import xarray as xr

        dims_map = {k: self._dims_for(k, np.asarray(v), sample_axes) for k, v in values.items()}
        coords = self._coords_for(dims_map, values, sample_axes)
        lead = ["chain", "draw"][:sample_axes]
        data_vars = {}
        for k, v in values.items():
            v = np.asarray(v)
            data_vars[k] = xr.DataArray(v, dims=lead + dims_map[k],
                                        coords={d: coords[d] for d in dims_map[k] if d in coords})
        ds = xr.Dataset(data_vars)
        if sample_axes == 2:
            ds = ds.assign_coords(chain=np.arange(next(iter(values.values())).shape[0]),
                                  draw=np.arange(next(iter(values.values())).shape[1]))
        return ds

    def to_arviz(self, *, prior: bool | int = False, posterior_predictive: bool | int = False,
                 log_likelihood: bool = True, seed: int = 0, batch_size: int | None = None,
                 _with_resume_state: bool = False):
        """The fit as an ArviZ 1.x ``xarray.DataTree``.

        Groups: posterior, sample_stats (MCMC), log_likelihood (unless ``log_likelihood=False``),
        observed_data, constant_data (array arguments that are not observations), and when asked
        prior + prior_predictive (``prior=True`` for as many draws as the posterior, or a count)
        and posterior_predictive (``True`` for every draw, or a number of draws to thin to).

        The log-likelihood comes from :meth:`log_likelihood`'s cache when it was computed
        before (the program is not run again); otherwise it is computed here, ``batch_size``
        draws at a time, as is the posterior predictive.
        """
        import xarray as xr

        groups: dict[str, xr.Dataset] = {"posterior": self._group(self.samples)}
        if self.sample_stats:
            groups["sample_stats"] = self._group(self.sample_stats)
        if log_likelihood and self.model is not None and self.sites is not None and self.sites.observed:
            groups["log_likelihood"] = self._group(self.log_likelihood(batch_size=batch_size))
        elif log_likelihood and self._log_lik is not None:
            groups["log_likelihood"] = self._group(self._log_lik)
        obs = self._observed_values()
        if obs:
            groups["observed_data"] = self._group(obs, sample_axes=0)
        const = self._constant_data()
        if const:
            groups["constant_data"] = self._group(const, sample_axes=0)
        if posterior_predictive:
            n_pp = None if posterior_predictive is True else int(posterior_predictive)
            groups["posterior_predictive"] = self._group(self.predict(seed=seed, num_samples=n_pp,
                                                                      batch_size=batch_size))
        if prior:
            from .inference import sample_prior

            model = self._require_model("prior sampling")
            n = self.num_chains * self.num_draws if prior is True else int(prior)
            draws = sample_prior(model, self.data, num_samples=n, seed=seed, observed=self.observed)
            obs_sites = set(self.sites.observed if self.sites else ())
            pri = {k: v[None] for k, v in draws.items() if k not in obs_sites}
            pp = {k: v[None] for k, v in draws.items() if k in obs_sites}
            if pri:
                groups["prior"] = self._group(pri)
            if pp:
                groups["prior_predictive"] = self._group(pp)
        if self.resume_state and _with_resume_state:
            groups[_RESUME_GROUP] = xr.Dataset(
                {f"leaf_{i:03d}": xr.DataArray(np.asarray(v), dims=[f"leaf_{i:03d}_dim_{j}" for j in range(np.ndim(v))])
                 for i, v in enumerate(self.resume_state)})
        if _with_resume_state and (self.svi_params or self.svi_losses is not None):
            groups[_SVI_GROUP] = self._svi_group()
        attrs = self._attrs()
        for ds in groups.values():
            ds.attrs.update({"created_by": "ppl_models", "inference_method": self.method})
        tree = xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})
        tree.attrs.update(attrs)
        return tree

    def _svi_group(self):
        """SVI's learned parameters and loss trace as one Dataset (names kept in its attrs:
        a parameter's name need not be a valid netCDF variable name)."""
        import xarray as xr

        names = list(self.svi_params or {})
        data_vars = {}
        for i, name in enumerate(names):
            v = np.asarray(self.svi_params[name])
            data_vars[f"param_{i:03d}"] = xr.DataArray(v, dims=[f"param_{i:03d}_dim_{j}" for j in range(v.ndim)])
        if self.svi_losses is not None:
            data_vars["losses"] = xr.DataArray(np.asarray(self.svi_losses), dims=["step"])
        return xr.Dataset(data_vars, attrs={"param_names": json.dumps(names)})

    def _observed_values(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.sites is not None:
            out.update(self.sites.observed_values)
        for name in self.observed:
            if name not in out and self.data.get(name) is not None and _is_array_like(self.data[name]):
                out[name] = np.asarray(self.data[name])
        return out

    def _constant_data(self) -> dict[str, np.ndarray]:
        obs = set(self._observed_values()) | set(self.observed)
        out = {}
        for k, v in self.data.items():
            if k in obs or v is None or not _is_array_like(v):
                continue
            arr = np.asarray(v)
            if arr.ndim >= 1 and arr.dtype != object:
                out[k] = arr
        return out

    def _attrs(self) -> dict[str, str]:
        from . import __version__

        static = {}
        for k, v in self.data.items():
            if v is None or isinstance(v, (bool, int, float, str)):
                static[k] = v
            elif isinstance(v, np.generic):
                static[k] = v.item()
        info = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.info.items()
                if isinstance(v, (bool, int, float, str, type(None), np.generic))}
        return {
            _ATTR_PREFIX + "version": __version__,
            _ATTR_PREFIX + "method": self.method,
            _ATTR_PREFIX + "model": model_reference(self.model) or "",
            _ATTR_PREFIX + "observed": json.dumps(list(self.observed)),
            _ATTR_PREFIX + "static_kwargs": json.dumps(static),
            _ATTR_PREFIX + "info": json.dumps(info),
            _ATTR_PREFIX + "coords": json.dumps({k: [str(x) if not isinstance(x, (int, float)) else x
                                                     for x in v] for k, v in self.coords.items()}),
            _ATTR_PREFIX + "dims": json.dumps(self.dims),
        }

    def summary(self, var_names: list[str] | None = None, *, ci_prob: float | None = None,
                kind: str = "all", round_to: Any = None):
        """ArviZ's summary as a pandas DataFrame: mean, sd, HDI bounds, MCSE, bulk/tail ESS, r-hat."""
        import arviz as az

        tree = self.to_arviz(log_likelihood=False)
        return az.summary(tree, var_names=var_names, kind=kind, ci_prob=ci_prob, ci_kind="hdi",
                          round_to=round_to if round_to is not None else "none")

    @property
    def num_divergences(self) -> int:
        d = self.sample_stats.get("diverging")
        return int(np.sum(d)) if d is not None else 0

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, *, posterior_predictive: bool = False, prior: bool | int = False,
             batch_size: int | None = None) -> Path:
        """Write the fit to netCDF atomically (a temporary file, then a rename).

        The file is an ArviZ DataTree; it also keeps the sampler's last state (its own group),
        so ``fit(model, data, resume=load_fit(path))`` can continue the chains later, and for
        SVI fits the learned parameters and the loss trace (group ``ppl_models_svi``).
        ``batch_size`` is passed to the log-likelihood and posterior predictive when they are
        computed here (see :meth:`to_arviz`).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tree = self.to_arviz(posterior_predictive=posterior_predictive, prior=prior, batch_size=batch_size,
                             _with_resume_state=True)
        tmp = str(path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp"))
        try:
            tree.to_netcdf(tmp, engine="h5netcdf")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    def __repr__(self) -> str:
        name = getattr(self.model, "__name__", "model")
        shapes = ", ".join(f"{k}{tuple(v.shape[2:])}" for k, v in self.samples.items())
        return (f"Fit({name}, method={self.method!r}, chains={self.num_chains}, draws={self.num_draws}, "
                f"sites=[{shapes}])")


def load_fit(path: str | os.PathLike, model: Callable | None = None) -> Fit:
    """Read a fit written by :meth:`Fit.save`.

    The program is imported from the reference stored in the file unless ``model`` is given;
    when neither works the fit still loads, with ``model=None`` (draws, summary, ArviZ and LOO
    work; prediction needs the program).
    """
    import arviz as az

    path = Path(path)
    if not path.exists():
        raise DataError("path", "an existing netCDF file written by Fit.save", repr(str(path)))
    tree = az.from_netcdf(str(path))
    attrs = dict(tree.attrs)
    method = attrs.get(_ATTR_PREFIX + "method", "unknown")
    if model is None and attrs.get(_ATTR_PREFIX + "model"):
        try:
            model = resolve_reference(attrs[_ATTR_PREFIX + "model"], "model")
        except DataError:
            model = None

    def ds_dict(group: str) -> dict[str, np.ndarray]:
        if group not in tree.children:
            return {}
        ds = tree[group].to_dataset()
        return {k: ds[k].values for k in ds.data_vars}

    def ds_dims(group: str, lead: int) -> dict[str, list[str]]:
        if group not in tree.children:
            return {}
        ds = tree[group].to_dataset()
        return {k: list(ds[k].dims[lead:]) for k in ds.data_vars}

    samples = ds_dict("posterior")
    stats = ds_dict("sample_stats")
    observed = tuple(json.loads(attrs.get(_ATTR_PREFIX + "observed", "[]")))
    data: dict[str, Any] = {}
    data.update(json.loads(attrs.get(_ATTR_PREFIX + "static_kwargs", "{}")))
    data.update(ds_dict("constant_data"))
    obs_values = ds_dict("observed_data")
    data.update({k: v for k, v in obs_values.items() if k in observed or k not in data})
    info = json.loads(attrs.get(_ATTR_PREFIX + "info", "{}"))
    coords = json.loads(attrs.get(_ATTR_PREFIX + "coords", "{}"))
    dims = json.loads(attrs.get(_ATTR_PREFIX + "dims", "{}"))
    # Keep the dimension names the file has, so a loaded fit writes the same tree.
    for group, lead in (("posterior", 2), ("sample_stats", 2), ("log_likelihood", 2)):
        for k, d in ds_dims(group, lead).items():
            dims.setdefault(k, d)
    for group in ("observed_data", "constant_data"):
        for k, d in ds_dims(group, 0).items():
            dims.setdefault(k, d)
    for group in ("posterior", "observed_data", "constant_data", "log_likelihood"):
        if group in tree.children:
            ds = tree[group].to_dataset()
            for c in ds.coords:
                if c not in ("chain", "draw") and c not in coords:
                    coords[c] = ds[c].values.tolist()
    sites = None
    if model is not None:
        try:
            sites = inspect_model(model, data, seed=int(info.get("seed", 0)))
        except Exception:
            sites = None
    fit = Fit(model=model, data=data, method=method, samples=samples, sample_stats=stats, sites=sites,
              observed=observed, coords=coords, dims=dims, info=info)
    ll = ds_dict("log_likelihood")
    if ll:
        fit._log_lik = ll
    if _RESUME_GROUP in tree.children:
        st = ds_dict(_RESUME_GROUP)
        fit.resume_state = [st[k] for k in sorted(st)]
    if _SVI_GROUP in tree.children:
        svi = tree[_SVI_GROUP].to_dataset()
        names = json.loads(svi.attrs.get("param_names", "[]"))
        fit.svi_params = {name: svi[f"param_{i:03d}"].values for i, name in enumerate(names)}
        if "losses" in svi.data_vars:
            fit.svi_losses = svi["losses"].values
    return fit
