"""SVI on data larger than memory: minibatches streamed from disk, resumable from checkpoints.

The program is written as for in-memory data — a plate over the rows it is given. Each step
:func:`fit_streaming` reads ``batch_size`` rows from disk (a NumPy ``.npy`` file opened as a
memory map, any array that supports row indexing, or the row groups of a Parquet file), runs
the program on them, and multiplies the log-likelihood of every observed site by
``N / batch_size``, which makes the minibatch ELBO an unbiased estimate of the full-data ELBO
(the prior terms are not scaled). Every ``checkpoint_every`` steps the optimiser state is
written atomically; a run started with the same checkpoint path continues from it, and the
batch of each step depends only on ``(seed, step)``, so an interrupted run and an
uninterrupted one end in the same place.
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
        rows = {k: v.shape[0] for k, v in self._cols.items()}
        if len(set(rows.values())) != 1:
            raise DataError("source", "columns with the same number of rows", f"{rows}")
        self.num_rows = next(iter(rows.values()))
        self._parquet = None

    @classmethod
    def from_parquet(cls, path: str | os.PathLike, columns: Mapping[str, str | list[str]]) -> "RowSource":
        """Rows of a Parquet file: ``columns`` maps a keyword argument to one column (a vector)
        or a list of columns (a matrix). Minibatches are drawn within one random row group at a
        time, so only that row group is ever in memory."""
        try:
            import pyarrow.parquet as pq
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("RowSource.from_parquet needs pyarrow: pip install 'ppl_models[parquet]'") from e

        pf = pq.ParquetFile(path)
        self = cls.__new__(cls)
        self._cols = {}
        self._parquet = (pf, dict(columns))
        self.num_rows = pf.metadata.num_rows
        return self

    def batch(self, step: int, batch_size: int, seed: int) -> dict[str, np.ndarray]:
        """The rows of minibatch ``step``: a function of ``(seed, step)`` only."""
        rng = np.random.default_rng([seed, step])
        if self._parquet is not None:
            pf, columns = self._parquet
            group = int(rng.integers(pf.num_row_groups))
            names = sorted({c for v in columns.values() for c in ([v] if isinstance(v, str) else v)})
            table = pf.read_row_group(group, columns=names).to_pandas()
            take = np.sort(rng.choice(len(table), size=min(batch_size, len(table)), replace=False))
            out = {}
            for k, v in columns.items():
                out[k] = table[v].to_numpy()[take] if isinstance(v, str) else table[list(v)].to_numpy()[take]
            return out
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
        Keyword arguments that are not rows (sizes, options).
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
    first = {**static, **src.batch(0, batch_size, seed)}
    sites = inspect_model(model, first, seed=seed)
    guide_obj = guide if guide is not None else AutoNormal(scaled, init_loc_fn=init_to_median(num_samples=15))
    decay = 0.01 ** (1.0 / num_steps)
    svi = SVI(scaled, guide_obj, numpyro.optim.Adam(step_size=lambda i: learning_rate * decay ** i), Trace_ELBO())
    state = svi.init(jax.random.PRNGKey(seed), **{k: jnp.asarray(v) for k, v in first.items()})
    start, losses = 0, np.zeros(0)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        start, state, losses = _load_checkpoint(ckpt, state)
    update = jax.jit(lambda st, batch: svi.update(st, **static, **batch))
    end = num_steps if stop_after is None else min(num_steps, start + int(stop_after))
    new_losses = []
    t0 = time.perf_counter()
    batch = first
    for step in range(start, end):
        batch = {k: jnp.asarray(v) for k, v in src.batch(step, batch_size, seed).items()}
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
                       return_sites=return_sites)(jax.random.PRNGKey(seed + 1), **{k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in data.items()})
    samples = {k: np.asarray(v)[None] for k, v in draws.items() if k in return_sites}
    info = {"method": "svi", "seed": seed, "num_steps": num_steps, "steps_done": end, "batch_size": batch_size,
            "num_rows": src.num_rows, "learning_rate": learning_rate, "fit_seconds": time.perf_counter() - t0,
            "final_loss": float(losses[-1]) if losses.size else float("nan"), "streamed": True}
    res = Fit(model=model, data=data, method="svi", samples=samples, sites=sites,
              observed=tuple(observed_kwargs(sites, data)), info=info)
    res.svi_params = {k: np.asarray(v) for k, v in params.items()}
    res.svi_losses = losses
    return res
