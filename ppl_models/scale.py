"""Past one core: data sharded across devices, and multi-host start-up.

The engine is JAX/XLA itself; nothing here schedules work.

* :func:`data_mesh` — a one-axis device mesh (``"data"``) over the local devices.
* :func:`shard_rows` — place arrays with their first axis split across that mesh. A model
  whose likelihood sums over rows then runs data-parallel (SPMD) inside the jitted potential:
  XLA partitions the per-row work and inserts the reduction. Pass ``shard=[...]`` to
  :func:`ppl_models.fit` to do this for you.
* :func:`initialize_distributed` — wire a multi-host run through ``jax.distributed.initialize``
  from environment variables (nothing hard-coded); a no-op on a single host.

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


def shard_rows(data: Mapping[str, Any], names: Sequence[str], mesh: Mesh | None = None) -> dict[str, Any]:
    """``data`` with the arrays in ``names`` split by rows (axis 0) across ``mesh``.

    Every other argument is left as it is (replicated where used). The number of rows must be
    a multiple of the number of devices: XLA partitions only even splits.
    """
    mesh = mesh if mesh is not None else data_mesh()
    n_dev = mesh.devices.size
    out = dict(data)
    for name in names:
        if name not in out:
            raise DataError("shard", f"names of the model's keyword arguments {sorted(out)}", repr(name))
        arr = np.asarray(out[name])
        if arr.ndim == 0:
            raise DataError(f"shard[{name!r}]", "an array with a row axis", "a scalar")
        if arr.shape[0] % n_dev:
            raise DataError(f"shard[{name!r}]", f"a number of rows divisible by the {n_dev} devices",
                            f"{arr.shape[0]} rows", "drop or pad rows, or use fewer devices")
        spec = PartitionSpec("data", *([None] * (arr.ndim - 1)))
        out[name] = jax.device_put(arr, NamedSharding(mesh, spec))
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
