"""ppl_models: generative and discriminative models as NumPyro programs, on JAX, with ArviZ.

The workflow is the same for every program, the catalog's and your own::

    import ppl_models as pm
    res = pm.fit(model, data, method="nuts", seed=0)
    res.summary(); res.to_arviz(); res.predict(new_data)
    pm.sample_prior(model, data, num_samples=100, seed=0)
    pm.log_joint(model, data, values)
"""

__version__ = "0.1.0"

from ._config import enable_compilation_cache, set_precision  # noqa: E402
from .data import ModelData  # noqa: E402
from .errors import CatalogError, DataError, ModelError, PPLModelsError, QueryError  # noqa: E402
from .fit import Fit, load_fit  # noqa: E402
from .inference import fit, log_joint, log_joint_fn, sample_prior  # noqa: E402

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
