"""Test-suite set-up: host devices for parallel chains, JAX's persistent compilation cache, and
a headless matplotlib."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

# ppl_models sets XLA's host device count when it is imported before JAX, so import it first.
import ppl_models  # noqa: E402,F401
import jax  # noqa: E402

from ppl_models._config import enable_compilation_cache  # noqa: E402

enable_compilation_cache()


def pytest_report_header(config):
    return f"jax {jax.__version__}, {jax.local_device_count()} devices: {jax.devices()}"
