"""ppl_models: generative and discriminative models as NumPyro programs, on JAX, with ArviZ.

The workflow is the same for every program, the catalog's and your own::

    import ppl_models as pm
    res = pm.fit(model, data, method="nuts", seed=0)
    res.summary(); res.to_arviz(); res.predict(new_data)
    pm.sample_prior(model, data, num_samples=100, seed=0)
    pm.log_joint(model, data, values)
"""

__version__ = "0.1.0"

import os as _os
import sys as _sys


def _default_host_devices() -> None:
    # Chains run in parallel only with a device per chain. On a CPU, XLA shows one device unless
    # told otherwise before JAX starts, so ask for max(4, cores) host devices (4 chains is the
    # default); PPL_MODELS_HOST_DEVICES=N picks N, 0 leaves XLA_FLAGS alone. Too late (and
    # harmless) when JAX was imported first.
    want = _os.environ.get("PPL_MODELS_HOST_DEVICES", "")
    if want == "0" or "jax" in _sys.modules:
        return
    flags = _os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    n = int(want) if want.isdigit() else max(4, _os.cpu_count() or 1)
    _os.environ["XLA_FLAGS"] = (flags + f" --xla_force_host_platform_device_count={n}").strip()


_default_host_devices()

from ._config import enable_compilation_cache, set_precision  # noqa: E402
from .data import ModelData  # noqa: E402
from .errors import CatalogError, DataError, ModelError, PPLModelsError, QueryError  # noqa: E402

# Turned on here (inference.py does it too) so that the kernels, usable without NumPyro, also
# find their compiled programs in the persistent cache.
enable_compilation_cache()

# Everything that imports NumPyro is imported on first use (PEP 562), so that the pure-JAX
# kernels (`import ppl_models.kernels.hmm`) work without NumPyro: `pm.fit(...)` and
# `from ppl_models import fit` import `.inference` then.
_CORE = {
    "fit": "inference",
    "sample_prior": "inference",
    "log_joint": "inference",
    "log_joint_fn": "inference",
    "Fit": "fit",
    "load_fit": "fit",
}

# The model families, imported on first use: `ppl_models.hmm.forward_log_prob(...)`,
# `ppl_models.BayesianLogisticRegression()`.
_FAMILIES = ("naive_bayes", "logistic", "mixture", "hmm", "bayesnet", "lda")
_LAZY = {
    "BayesianNaiveBayes": "naive_bayes",
    "BayesianLogisticRegression": "logistic",
    "BayesianNetwork": "bayesnet",
}
_SUBMODULES = ("diagnostics", "queries", "catalog", "batched", "scale", "streaming", "learning_curves", "text",
               "inference")


def __getattr__(name: str):
    import importlib

    if name in _CORE:
        return getattr(importlib.import_module(f".{_CORE[name]}", __name__), name)
    if name in _FAMILIES:
        return importlib.import_module(f".models.{name}", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".models.{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ppl_models' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_CORE) | set(_FAMILIES) | set(_LAZY) | set(_SUBMODULES))


class _Package(_sys.modules[__name__].__class__):
    """``ppl_models.fit`` is the function :func:`ppl_models.inference.fit`, not the submodule
    ``ppl_models/fit.py`` (home of :class:`Fit`). Importing a submodule binds its name on the
    package, so once anything imports ``ppl_models.fit`` (the module) the attribute would shadow
    the lazy function; this property, a data descriptor, takes precedence over the module's
    ``__dict__`` and ignores that binding."""

    @property
    def fit(self):
        override = self.__dict__.get("_fit_override")
        if override is not None:
            return override
        from .inference import fit

        return fit

    @fit.setter
    def fit(self, value):
        import types

        if not isinstance(value, types.ModuleType):  # a module: the import system binding ppl_models/fit.py
            self.__dict__["_fit_override"] = value  # e.g. a test's monkeypatch

    @fit.deleter
    def fit(self):
        self.__dict__.pop("_fit_override", None)


_sys.modules[__name__].__class__ = _Package

__all__ = [
    "__version__",
    "fit",
    "Fit",
    "load_fit",
    "sample_prior",
    "log_joint",
    "log_joint_fn",
    "ModelData",
    "DataError",
    "ModelError",
    "QueryError",
    "CatalogError",
    "PPLModelsError",
    "enable_compilation_cache",
    "set_precision",
]
