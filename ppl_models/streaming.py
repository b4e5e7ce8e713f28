"""SVI on data larger than memory: minibatches streamed from disk, resumable from checkpoints.

The program is written as for in-memory data — a plate over the rows it is given. Each step
:func:`fit_streaming` reads exactly ``batch_size`` rows from disk (a NumPy ``.npy`` file opened
as a memory map, any array that supports row indexing, or a Parquet file), runs the program on
them, and multiplies the log-likelihood of every observed site by ``N / batch_size``, which
makes the minibatch ELBO an unbiased estimate of the full-data ELBO (the prior terms are not
scaled). Every ``checkpoint_every`` steps the optimiser state is written atomically; a run
started with the same checkpoint path continues from it, and the batch of each step depends
only on ``(seed, step)``, so an interrupted run and an uninterrupted one end in the same place.

How rows are drawn:

* arrays and ``.npy`` memory maps (random row access is cheap): each step draws
  ``batch_size`` distinct rows uniformly from all ``N``;
* Parquet (a row group must be decompressed whole): each epoch visits the row groups in a
  random order, shuffles the rows of ``shuffle_groups`` consecutive groups together, and cuts
  that stream into batches of exactly ``batch_size`` rows, crossing row-group (and epoch)
  boundaries. Every row is used once per epoch, each row group is read about once per epoch,
  and at most two windows of ``shuffle_groups`` row groups are in memory.

Rows of a batch come from a stream of rows, so every keyword argument that is *not* a row
(sizes, options, a network object) goes in ``static_data`` and reaches the program unchanged.
Programs with one latent variable per row (LDA's document-topic proportions) do not suit this:
a mean-field guide has no parameters for rows it has not seen.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from numpyro.infer.initialization import init_to_median
from numpyro.primitives import Messenger

from ._trace import inspect_model, observed_kwargs
from .data import describe
from .errors import DataError
from .fit import Fit

__all__ = ["RowSource", "fit_streaming", "scale_likelihood"]


class scale_likelihood(Messenger):
    """Multiply the log-density of observed sample sites (only) by ``factor``."""

    def __init__(self, fn: Callable | None = None, factor: float = 1.0):
        self.factor = factor
        super().__init__(fn)

    def process_message(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "sample" and msg.get("is_observed"):
            msg["scale"] = self.factor if msg.get("scale") is None else msg["scale"] * self.factor


class RowSource:
    """Rows of named arrays on disk, read a minibatch at a time.

    Parameters
    ----------
    columns : mapping
        Keyword argument -> a ``.npy`` path (opened with ``mmap_mode="r"``) or an array-like
        with a row axis (``np.memmap``, ``np.ndarray``). All must have the same number of rows.
    """

    def __init__(self, columns: Mapping[str, Any]):
        self._cols: dict[str, Any] = {}
        for name, col in columns.items():
            if isinstance(col, (str, os.PathLike)):
                p = Path(col)
                if not p.exists():
                    raise DataError(f"source[{name!r}]", "an existing .npy file", repr(str(p)))
                col = np.load(p, mmap_mode="r")
            if not hasattr(col, "shape") or len(col.shape) == 0:
                raise DataError(f"source[{name!r}]", "an array with a row axis", describe(col))
            self._cols[name] = col
        if not self._cols:
            raise DataError("source", "at least one column of rows", "an empty mapping")
        rows = {k: v.shape[0] for k, v in self._cols.items()}
        if len(set(rows.values())) != 1:
            raise DataError("source", "columns with the same number of rows", f"{rows}")
        self.num_rows = next(iter(rows.values()))
        self._parquet = None

    @classmethod
    def from_parquet(cls, path: str | os.PathLike, columns: Mapping[str, str | list[str]], *,
                     shuffle_groups: int = 1) -> "RowSource":
        """Rows of a Parquet file: ``columns`` maps a keyword argument to one column (a vector)
        or a list of columns (a matrix).

        Batches hold exactly ``batch_size`` rows taken from an epoch-wise shuffled stream (see
        the module docstring): the row groups in a random order, the rows of every
        ``shuffle_groups`` consecutive groups shuffled together. Raise ``shuffle_groups`` when
        the file is sorted (by time, by class) so that one row group is not representative;
        memory holds at most ``2 * shuffle_groups`` row groups.
        """
        try:
            import pyarrow.parquet as pq
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("RowSource.from_parquet needs pyarrow: pip install 'ppl_models[parquet]'") from e

        if isinstance(shuffle_groups, bool) or not isinstance(shuffle_groups, (int, np.integer)) or shuffle_groups < 1:
            raise DataError("shuffle_groups", "an integer >= 1", describe(shuffle_groups))
        p = Path(path)
        if not p.exists():
            raise DataError("path", "an existing Parquet file", repr(str(p)))
        pf = pq.ParquetFile(p)
        names = {c for v in columns.values() for c in ([v] if isinstance(v, str) else v)}
        missing = sorted(names - set(pf.schema_arrow.names))
        if missing:
            raise DataError("columns", f"columns of the file ({pf.schema_arrow.names})", f"{missing}")
        self = cls.__new__(cls)
        self._cols = {}
        self._parquet = (pf, dict(columns))
        self._group_rows = np.array([pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)],
                                    dtype=np.int64)
        self._shuffle_groups = int(shuffle_groups)
        self._cache: dict[tuple[int, int, int], dict[str, np.ndarray]] = {}
        self.num_rows = int(self._group_rows.sum())
        return self

    # ---------------------------------------------------------------- Parquet stream
    def _epoch_layout(self, seed: int, epoch: int) -> tuple[list[np.ndarray], np.ndarray]:
        """The windows of row groups of one epoch (in visiting order) and where each starts."""
        order = np.random.default_rng([seed, epoch, 0]).permutation(len(self._group_rows))
        k = self._shuffle_groups
        windows = [order[i:i + k] for i in range(0, len(order), k)]
        sizes = np.array([self._group_rows[w].sum() for w in windows], dtype=np.int64)
        return windows, np.concatenate([[0], np.cumsum(sizes)])

    def _window_rows(self, seed: int, epoch: int, w: int, groups: np.ndarray) -> dict[str, np.ndarray]:
        """The rows of window ``w`` of ``epoch``, shuffled (the two latest windows are kept)."""
        key = (seed, epoch, w)
        if key not in self._cache:
            pf, columns = self._parquet
            names = sorted({c for v in columns.values() for c in ([v] if isinstance(v, str) else v)})
            table = pf.read_row_groups([int(g) for g in groups], columns=names).to_pandas()
            perm = np.random.default_rng([seed, epoch, 1, w]).permutation(len(table))
            out = {}
            for k, v in columns.items():
                arr = table[v].to_numpy() if isinstance(v, str) else table[list(v)].to_numpy()
                out[k] = arr[perm]
            while len(self._cache) >= 2:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = out
        return self._cache[key]

    def _parquet_batch(self, step: int, batch_size: int, seed: int) -> dict[str, np.ndarray]:
        n = self.num_rows
        start, stop = step * batch_size, (step + 1) * batch_size  # positions in the endless stream
        parts: list[dict[str, np.ndarray]] = []
        pos = start
        while pos < stop:
            epoch, offset = divmod(pos, n)
            windows, starts = self._epoch_layout(seed, epoch)
            w = int(np.searchsorted(starts, offset, side="right") - 1)
            rows = self._window_rows(seed, epoch, w, windows[w])
            lo = offset - starts[w]
            take = min(stop - pos, int(starts[w + 1] - offset))
            parts.append({k: v[lo:lo + take] for k, v in rows.items()})
            pos += take
        return {k: np.concatenate([p[k] for p in parts]) if len(parts) > 1 else parts[0][k] for k in parts[0]}

    def batch(self, step: int, batch_size: int, seed: int) -> dict[str, np.ndarray]:
        """The ``batch_size`` rows of minibatch ``step``: a function of ``(seed, step)`` only."""
        if self._parquet is not None:
            return self._parquet_batch(step, batch_size, seed)
        rng = np.random.default_rng([seed, step])
        idx = np.sort(rng.choice(self.num_rows, size=batch_size, replace=False))  # sorted: disk locality
        return {k: np.asarray(v[idx]) for k, v in self._cols.items()}


def _save_checkpoint(path: Path, step: int, state: Any, losses: np.ndarray) -> None:
    leaves = jax.tree_util.tree_leaves(state)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp.npz")
    np.savez(tmp, step=np.int64(step), losses=losses, **{f"leaf_{i:04d}": np.asarray(x) for i, x in enumerate(leaves)})
    os.replace(tmp, path)


def _load_checkpoint(path: Path, like: Any) -> tuple[int, Any, np.ndarray]:
    with np.load(path) as z:
        n = len([k for k in z.files if k.startswith("leaf_")])
        treedef = jax.tree_util.tree_structure(like)
        if n != treedef.num_leaves:
            raise DataError("checkpoint", "a checkpoint of the same model and guide", f"{n} saved arrays")
        leaves = [jnp.asarray(z[f"leaf_{i:04d}"]) for i in range(n)]
        return int(z["step"]), jax.tree_util.tree_unflatten(treedef, leaves), np.asarray(z["losses"])


def _rows_on_device(rows: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
    return {k: jnp.asarray(v) for k, v in rows.items()}


def fit_streaming(
    model: Callable,
    source: RowSource | Mapping[str, Any],
    static_data: Mapping[str, Any] | None = None,
    *,
    batch_size: int = 1024,
    num_steps: int = 5000,
    learning_rate: float = 0.01,
    guide: Callable | None = None,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 500,
    num_posterior_draws: int = 1000,
    stop_after: int | None = None,
) -> Fit:
    """SVI with minibatches read from disk; see the module docstring.

    Parameters
    ----------
    model : callable
        A NumPyro program over the rows it is given (plain plates, no ``subsample_size``).
    source : RowSource or mapping
        The row data (a mapping is wrapped in :class:`RowSource`).
    static_data : mapping, optional
        Keyword arguments that are not rows (sizes, options, a network object): passed to the
        program unchanged, never converted to JAX arrays.
    batch_size, num_steps, learning_rate, guide, seed
        As for :func:`ppl_models.fit` with ``method="svi"``.
    checkpoint : path, optional
        ``.npz`` file for the optimiser state; if it exists the run resumes from it.
    stop_after : int, optional
        Stop after this many steps in this call (to spread a long run over sessions); the
        checkpoint then holds the place. The returned fit uses the state reached.

    Returns
    -------
    Fit
        Draws from the guide; ``Fit.data`` holds the last minibatch (the full data set never is
        in memory), ``info["num_rows"]`` the size of the data set.
    """
    src = source if isinstance(source, RowSource) else RowSource(source)
    static = dict(static_data or {})
    if not isinstance(batch_size, int) or not 1 <= batch_size <= src.num_rows:
        raise DataError("batch_size", f"an integer in [1, {src.num_rows}]", describe(batch_size))
    factor = src.num_rows / batch_size
    scaled = scale_likelihood(model, factor=factor)
    first_rows = src.batch(0, batch_size, seed)
    clash = sorted(set(first_rows) & set(static))
    if clash:
        raise DataError("static_data", "keyword arguments that are not also columns of the source", f"{clash}")
    first = {**static, **first_rows}
    sites = inspect_model(model, first, seed=seed)
    guide_obj = guide if guide is not None else AutoNormal(scaled, init_loc_fn=init_to_median(num_samples=15))
    decay = 0.01 ** (1.0 / num_steps)
    svi = SVI(scaled, guide_obj, numpyro.optim.Adam(step_size=lambda i: learning_rate * decay ** i), Trace_ELBO())
    # Only the rows become JAX arrays; static arguments (sizes, options, objects) reach the
    # program exactly as given, as they do inside the jitted update below.
    state = svi.init(jax.random.PRNGKey(seed), **static, **_rows_on_device(first_rows))
    start, losses = 0, np.zeros(0)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        start, state, losses = _load_checkpoint(ckpt, state)
    update = jax.jit(lambda st, batch: svi.update(st, **static, **batch))
    end = num_steps if stop_after is None else min(num_steps, start + int(stop_after))
    new_losses = []
    t0 = time.perf_counter()
    batch = _rows_on_device(first_rows)
    for step in range(start, end):
        batch = _rows_on_device(src.batch(step, batch_size, seed))
        state, loss = update(state, batch)
        new_losses.append(loss)
        if ckpt is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == end):
            losses = np.concatenate([losses, np.asarray(jnp.stack(new_losses))])
            new_losses = []
            _save_checkpoint(ckpt, step + 1, state, losses)
    if new_losses:
        losses = np.concatenate([losses, np.asarray(jnp.stack(new_losses))])
    params = svi.get_params(state)
    data = {**static, **{k: np.asarray(v) for k, v in batch.items()}}
    return_sites = sites.latent + sites.deterministic
    draws = Predictive(model, guide=guide_obj, params=params, num_samples=num_posterior_draws,
                       return_sites=return_sites)(jax.random.PRNGKey(seed + 1), **static, **batch)
    samples = {k: np.asarray(v)[None] for k, v in draws.items() if k in return_sites}
    info = {"method": "svi", "seed": seed, "num_steps": num_steps, "steps_done": end, "batch_size": batch_size,
            "num_rows": src.num_rows, "learning_rate": learning_rate, "fit_seconds": time.perf_counter() - t0,
            "final_loss": float(losses[-1]) if losses.size else float("nan"), "streamed": True}
    res = Fit(model=model, data=data, method="svi", samples=samples, sites=sites,
              observed=tuple(observed_kwargs(sites, data)), info=info)
    res.svi_params = {k: np.asarray(v) for k, v in params.items()}
    res.svi_losses = losses
    return res
