"""Past one core: data sharded across devices, and multi-host start-up.

The engine is JAX/XLA itself; nothing here schedules work.

* :func:`data_mesh` — a one-axis device mesh (``"data"``) over the local devices.
* :func:`shard_rows` — place arrays with their first axis split across that mesh. A model
  whose likelihood sums over rows then runs data-parallel (SPMD) inside the jitted potential:
  XLA partitions the per-row work and inserts the reduction. Pass ``shard=[...]`` to
  :func:`ppl_models.fit` to do this for you.
* :func:`initialize_distributed` — wire a multi-host run through ``jax.distributed.initialize``
  from environment variables (nothing hard-coded); a no-op on a single host.

Multi-host data. After :func:`initialize_distributed`, :func:`data_mesh` spans every process's
devices, and there are two ways to place the rows on it:

* ``shard_rows(data, names)`` (the default, and what ``fit(..., shard=[...])`` does): every
  process passes the *same, full* arrays. ``jax.device_put`` then keeps on each process only
  the rows of its own devices, but each process must first hold (read, or build) all of them.
* ``shard_rows(local_data, names, process_local=True)``: each process passes only *its own*
  rows (the same number on every process, a multiple of its local device count), e.g. its
  share of the files; the global array is assembled with
  ``jax.make_array_from_process_local_data``, with process ``p``'s rows as the ``p``-th block.
  No process ever holds the whole data set. Use the result with
  ``pm.log_joint_fn(model, sharded)``. ``fit(..., shard=[...])`` keeps arrays already sharded
  this way as they are, but on more than one process it also reads observed values back to
  the host (to check them and build the ArviZ output), which needs them fully addressable:
  with several processes, use ``log_joint_fn`` in your own jitted sampler or optimizer.

The single-process path of both is tested here (``tests/core/test_scale.py``, 4 host
devices); no multi-process run has been tested.

On a CPU, several devices exist only if XLA is told before JAX starts
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``); importing ppl_models first does that
(see ``PPL_MODELS_HOST_DEVICES``).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .errors import DataError

__all__ = ["data_mesh", "shard_rows", "initialize_distributed", "DISTRIBUTED_ENV"]

#: Environment variables read by :func:`initialize_distributed`.
DISTRIBUTED_ENV = {
    "coordinator_address": "PPL_MODELS_COORDINATOR",     # host:port of process 0
    "num_processes": "PPL_MODELS_NUM_PROCESSES",
    "process_id": "PPL_MODELS_PROCESS_ID",
    "local_device_ids": "PPL_MODELS_LOCAL_DEVICE_IDS",   # optional, comma-separated
}


def data_mesh(num_devices: int | None = None) -> Mesh:
    """A one-dimensional mesh named ``"data"`` over the first ``num_devices`` devices (all by default)."""
    devices = jax.devices()
    n = len(devices) if num_devices is None else int(num_devices)
    if not 1 <= n <= len(devices):
        raise DataError("num_devices", f"between 1 and {len(devices)} (the devices JAX sees)", n)
    try:
        from jax.sharding import AxisType

        return Mesh(np.array(devices[:n]), ("data",), axis_types=(AxisType.Auto,))
    except ImportError:  # older JAX: every axis is automatic
        return Mesh(np.array(devices[:n]), ("data",))


def _row_spec(ndim: int) -> PartitionSpec:
    return PartitionSpec("data", *([None] * (ndim - 1)))


def _already_sharded(value: Any, sharding: NamedSharding) -> bool:
    """Whether ``value`` is a JAX array already split by rows over ``sharding``'s mesh."""
    if not isinstance(value, jax.Array) or value.ndim == 0:
        return False
    try:
        return value.sharding.is_equivalent_to(sharding, value.ndim)
    except Exception:  # a sharding of another kind
        return False


def shard_rows(data: Mapping[str, Any], names: Sequence[str], mesh: Mesh | None = None, *,
               process_local: bool = False) -> dict[str, Any]:
    """``data`` with the arrays in ``names`` split by rows (axis 0) across ``mesh``.

    Every other argument is left as it is (replicated where used). XLA partitions only even
    splits, so the number of rows must be a multiple of the number of devices. Arrays already
    split this way over ``mesh`` (a previous call's output) are kept as they are.

    Parameters
    ----------
    data : mapping
        The program's keyword arguments.
    names : sequence of str
        The arguments to split by rows.
    mesh : Mesh, optional
        Default :func:`data_mesh` (every device JAX sees, on every process).
    process_local : bool
        ``False`` (default): the arrays are the full data, and under multi-process JAX every
        process must pass the same full arrays (``jax.device_put`` of a global sharding).
        ``True``: each process passes only its own rows, the same number on every process and
        a multiple of its devices in the mesh; the global array, process ``p``'s rows as block
        ``p``, is built with ``jax.make_array_from_process_local_data``. On one process both
        give the same array.
    """
    mesh = mesh if mesh is not None else data_mesh()
    n_dev = mesh.devices.size
    here = jax.process_index()
    local_devices = [d for d in mesh.devices.flat if d.process_index == here]
    n_proc = len({d.process_index for d in mesh.devices.flat})
    out = dict(data)
    for name in names:
        if name not in out:
            raise DataError("shard", f"names of the model's keyword arguments {sorted(out)}", repr(name))
        value = out[name]
        if np.ndim(value) == 0:
            raise DataError(f"shard[{name!r}]", "an array with a row axis", "a scalar")
        sharding = NamedSharding(mesh, _row_spec(np.ndim(value)))
        if _already_sharded(value, sharding):
            continue
        arr = np.asarray(value)
        if process_local:
            if not local_devices:
                raise DataError("mesh", f"a mesh with devices of this process ({here})", f"devices {mesh.devices}")
            if arr.shape[0] % len(local_devices):
                raise DataError(f"shard[{name!r}]",
                                f"a number of local rows divisible by this process's {len(local_devices)} devices",
                                f"{arr.shape[0]} rows", "drop or pad rows")
            global_shape = (arr.shape[0] * n_proc,) + arr.shape[1:]
            out[name] = jax.make_array_from_process_local_data(sharding, arr, global_shape)
            continue
        if arr.shape[0] % n_dev:
            raise DataError(f"shard[{name!r}]", f"a number of rows divisible by the {n_dev} devices",
                            f"{arr.shape[0]} rows", "drop or pad rows, or use fewer devices")
        out[name] = jax.device_put(arr, sharding)
    return out


def initialize_distributed(env: Mapping[str, str] | None = None) -> bool:
    """Start a multi-host JAX run from environment variables; return whether it did.

    Reads ``PPL_MODELS_COORDINATOR`` (``host:port`` of process 0), ``PPL_MODELS_NUM_PROCESSES``,
    ``PPL_MODELS_PROCESS_ID`` and optionally ``PPL_MODELS_LOCAL_DEVICE_IDS``. With none of them
    set this is the single-host path: nothing is started and ``False`` is returned, so the same
    script runs on one machine and on many. Call it before any other JAX work.
    """
    env = os.environ if env is None else env
    present = {k: env.get(v) for k, v in DISTRIBUTED_ENV.items() if env.get(v)}
    if not present:
        return False
    missing = [DISTRIBUTED_ENV[k] for k in ("coordinator_address", "num_processes", "process_id")
               if k not in present]
    if missing:
        raise DataError("environment", f"all of {missing} set for a multi-host run",
                        f"only {sorted(DISTRIBUTED_ENV[k] for k in present)}")
    kwargs: dict[str, Any] = {
        "coordinator_address": present["coordinator_address"],
        "num_processes": int(present["num_processes"]),
        "process_id": int(present["process_id"]),
    }
    if "local_device_ids" in present:
        kwargs["local_device_ids"] = [int(i) for i in present["local_device_ids"].split(",")]
    jax.distributed.initialize(**kwargs)
    return True
