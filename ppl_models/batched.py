"""Many independent NUTS fits of one program, compiled once and vectorized over data sets.

Simulation-based calibration fits the same program to hundreds of simulated data sets, and
learning curves fit it to hundreds of train splits. Calling :func:`ppl_models.fit` in a loop
would re-trace and re-compile the sampler each time; here NumPyro's functional NUTS kernel
(``numpyro.infer.hmc.hmc``) runs warm-up and sampling inside one ``jit(vmap(...))`` over the
data sets. Each data set gets its own step size and mass matrix adaptation. Under ``vmap`` the
batch moves in lock-step, so a step takes as long as the deepest tree in the batch.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model

from .data import DataError, describe

__all__ = ["fit_many"]


def fit_many(
    model: Callable,
    batched_data: Mapping[str, Any],
    static_data: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    num_warmup: int = 500,
    num_samples: int = 500,
    thinning: int = 1,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    init_radius: float = 2.0,
    chunk_size: int | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Fit ``model`` to ``B`` data sets at once with NUTS (one chain each).

    Parameters
    ----------
    model : callable
        A NumPyro program.
    batched_data : mapping
        Keyword arguments that differ between data sets, each with a leading axis of size ``B``
        (e.g. ``{"y": (B, N)}``).
    static_data : mapping, optional
        Keyword arguments shared by every data set (covariates, sizes, options); Python
        scalars here are static for tracing.
    seed : int
        Seeds the ``B`` chains (one key each).
    num_warmup, num_samples, thinning : int
        Per chain; ``num_samples`` draws are kept after thinning.
    chunk_size : int, optional
        Run the ``B`` fits in chunks of this many (memory); all chunks share one compilation.
    progress : bool
        A progress bar over chunks (one compiled call cannot report progress from inside).

    Returns
    -------
    dict
        Site name -> array of shape ``(B, num_samples, ...)`` in the constrained space, plus
        ``"diverging"`` of shape ``(B, num_samples)``.

    Examples
    --------
    One Poisson HMM per series: three count series of the same length, fitted at once by one
    compiled ``jit(vmap(...))`` call (each series gets its own chain, step size and mass matrix)::

        import numpy as np
        from ppl_models.batched import fit_many
        from ppl_models.models.hmm import poisson_hmm

        obs = np.stack([series_a, series_b, series_c]).astype(np.float32)  # (3, T)
        draws = fit_many(poisson_hmm, {"obs": obs}, {"num_states": 2})
        draws["rates"].shape            # (3, 500, 2): each series' state rates, lowest first
        draws["rates"].mean(axis=1)     # (3, 2) posterior means

    Series of different lengths: pad them and give each data set a batch of one sequence with
    its length, so that the padding is ignored::

        from ppl_models.models.hmm import pad_sequences

        padded, lengths = pad_sequences([s_a, s_b, s_c], fill_value=0.0)      # (3, T_max), (3,)
        draws = fit_many(poisson_hmm, {"obs": padded[:, None, :], "lengths": lengths[:, None]},
                         {"num_states": 2})

    ``tests/core/test_scale.py::test_fit_many_fits_one_hmm_per_series_in_one_compiled_call``
    checks that three series make one compiled call and that each series' rates are recovered.
    """
    static = dict(static_data or {})
    batched = {k: jnp.asarray(v) for k, v in batched_data.items()}
    if not batched:
        raise DataError("batched_data", "at least one batched keyword argument", "an empty mapping")
    sizes = {k: v.shape[0] for k, v in batched.items()}
    if len(set(sizes.values())) != 1:
        raise DataError("batched_data", "arrays with the same leading (batch) size", f"sizes {sizes}")
    B = next(iter(sizes.values()))
    for name, val in (("num_samples", num_samples), ("thinning", thinning)):
        if not isinstance(val, int) or val < 1:
            raise DataError(name, "an integer >= 1", describe(val))

    template = {k: v[0] for k, v in batched.items()}
    params_info, potential_fn_gen, postprocess_fn_gen, _ = initialize_model(
        jax.random.PRNGKey(seed), model, model_kwargs={**static, **template}, dynamic_args=True)
    z_template = params_info.z
    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")

    def one(key, data):
        kwargs = {**static, **data}
        k_init, k_run = jax.random.split(key)
        leaves, treedef = jax.tree_util.tree_flatten(z_template)
        ks = jax.random.split(k_init, len(leaves))
        # init_to_uniform in the unconstrained space, as NumPyro's default does
        z0 = jax.tree_util.tree_unflatten(treedef, [
            jax.random.uniform(k, jnp.shape(x), minval=-init_radius, maxval=init_radius).astype(jnp.result_type(x))
            for k, x in zip(ks, leaves)])
        state = init_kernel(z0, num_warmup, target_accept_prob=target_accept_prob,
                            max_tree_depth=max_tree_depth, dense_mass=dense_mass,
                            model_kwargs=kwargs, rng_key=k_run)

        def warm(s, _):
            return sample_kernel(s, model_kwargs=kwargs), None

        state, _ = jax.lax.scan(warm, state, None, length=num_warmup)

        def draw(s, _):
            def inner(s2, _):
                return sample_kernel(s2, model_kwargs=kwargs), None
            s, _ = jax.lax.scan(inner, s, None, length=thinning)
            return s, (s.z, s.diverging)

        state, (zs, div) = jax.lax.scan(draw, state, None, length=num_samples)
        constrained = jax.vmap(postprocess_fn_gen(**kwargs))(zs)
        return constrained, div

    run = jax.jit(jax.vmap(one))
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), B)
    step = B if chunk_size is None else max(1, int(chunk_size))
    pieces: list[tuple[dict, Any]] = []
    starts = range(0, B, step)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"{B} NUTS fits", unit="chunk")
    for start in starts:
        stop = min(B, start + step)
        idx = np.arange(start, stop)
        if len(idx) < step:  # pad the last chunk so every chunk reuses one compilation
            idx = np.concatenate([idx, np.full(step - len(idx), stop - 1)])
        sub = {k: v[idx] for k, v in batched.items()}
        c, d = run(keys[idx], sub)
        n = stop - start
        pieces.append(({k: np.asarray(v)[:n] for k, v in c.items()}, np.asarray(d)[:n]))
    out = {k: np.concatenate([p[0][k] for p in pieces]) for k in pieces[0][0]}
    out["diverging"] = np.concatenate([p[1] for p in pieces])
    return out
