"""Test-suite set-up: JAX's persistent compilation cache and a headless matplotlib."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

from ppl_models._config import enable_compilation_cache  # noqa: E402

enable_compilation_cache()


def pytest_report_header(config):
    return f"jax {jax.__version__}, devices {jax.devices()}"
