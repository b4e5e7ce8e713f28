"""Input validation: arrays and pandas objects in, validated arrays out.

Every check raises :class:`~ppl_models.errors.DataError` naming the argument, what was
expected and what was given, so the message can be shown to a user as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import DataError

__all__ = [
    "ModelData",
    "as_float_matrix",
    "as_float_array",
    "as_int_array",
    "as_labels",
    "check_finite",
    "describe",
]


@dataclass
class ModelData:
    """The keyword arguments of a model program, with their ArviZ labels.

    Attributes
    ----------
    kwargs : dict
        Keyword arguments passed to the model program (data and static options).
    observed : tuple of str
        Names of the keyword arguments that are observations. Setting them to ``None``
        turns the program into a forward simulator (prior predictive, SBC).
    coords : dict
        ArviZ coordinates, e.g. ``{"feature": ["radius", ...]}``.
    dims : dict
        ArviZ dimension names per site, e.g. ``{"beta": ["feature"]}``. Sites not listed get
        their dimension names from the model's plates.
    name, description : str
        Shown by the CLI.
    extra : dict
        Anything a family's post-processing wants (class labels, the scaler, the truth).
    """

    kwargs: dict[str, Any]
    observed: tuple[str, ...] = ()
    coords: dict[str, Any] = field(default_factory=dict)
    dims: dict[str, list[str]] = field(default_factory=dict)
    name: str = ""
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def without_observed(self) -> dict[str, Any]:
        """The kwargs with every observed argument set to ``None`` (forward simulation)."""
        out = dict(self.kwargs)
        for k in self.observed:
            out[k] = None
        return out


def describe(x: Any) -> str:
    """A short description of a value for an error message."""
    if x is None:
        return "None"
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is not None:
        return f"an array of shape {tuple(shape)} and dtype {dtype}"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of length {len(x)}"
    r = repr(x)
    return r if len(r) <= 60 else r[:57] + "..."


def _to_numpy(name: str, x: Any) -> np.ndarray:
    try:
        import pandas as pd

        if isinstance(x, (pd.DataFrame, pd.Series)):
            x = x.to_numpy()
    except ImportError:  # pragma: no cover
        pass
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and such
        raise DataError(name, "an array-like", describe(x), str(exc)) from None


def check_finite(name: str, x: np.ndarray) -> np.ndarray:
    """Raise if ``x`` holds NaN or infinity, saying where the first one is."""
    bad = ~np.isfinite(x)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            name,
            "finite values (no NaN or inf)",
            f"{int(bad.sum())} non-finite value(s), the first {x[idx].item()!r} at index {idx}",
        )
    return x


def as_float_array(name: str, x: Any, *, ndim: int | None = None, allow_nan: bool = False) -> np.ndarray:
    """A float array, optionally of a given rank, finite unless ``allow_nan``."""
    if x is None:
        raise DataError(name, "an array", "None")
    arr = _to_numpy(name, x)
    if arr.dtype == object:
        try:  # an object array of numbers (e.g. from a mixed DataFrame) is fine
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(name, "numeric values", "an object array with non-numeric entries") from None
    if np.iscomplexobj(arr):
        raise DataError(name, "real numbers", f"complex values (dtype {arr.dtype})")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(name, "numeric values", f"dtype {arr.dtype}")
    arr = arr.astype(np.float64) if arr.dtype != np.float32 else arr
    if ndim is not None and arr.ndim != ndim:
        raise DataError(name, f"a {ndim}-dimensional array", f"shape {arr.shape}")
    if not allow_nan:
        check_finite(name, arr)
    return arr


def as_float_matrix(name: str, X: Any, *, n_features: int | None = None) -> tuple[np.ndarray, list[str]]:
    """A finite ``(n, d)`` float matrix and its column names (from a DataFrame, else x0..)."""
    cols: list[str] | None = None
    try:
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            cols = [str(c) for c in X.columns]
            non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
            if non_numeric:
                raise DataError(name, "numeric columns", f"non-numeric column(s) {non_numeric}")
    except ImportError:  # pragma: no cover
        pass
    arr = as_float_array(name, X)
    if arr.ndim == 1:
        raise DataError(name, "a 2-dimensional array (n_samples, n_features)", f"shape {arr.shape}",
                        "Reshape your data with X.reshape(-1, 1) for a single feature "
                        "or X.reshape(1, -1) for a single sample")
    if arr.ndim != 2:
        raise DataError(name, "a 2-dimensional array (n_samples, n_features)", f"shape {arr.shape}")
    if arr.shape[0] == 0:
        raise DataError(name, "at least one row", "0 rows")
    if n_features is not None and arr.shape[1] != n_features:
        raise DataError(name, f"{n_features} feature column(s)", f"{arr.shape[1]}")
    return arr, cols if cols is not None else [f"x{j}" for j in range(arr.shape[1])]


def as_int_array(name: str, x: Any, *, low: int | None = None, high: int | None = None,
                 ndim: int | None = None) -> np.ndarray:
    """An integer array with values in ``[low, high)``; floats must be whole numbers."""
    arr = _to_numpy(name, x)
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        check_finite(name, arr)
        if not np.all(arr == np.round(arr)):
            raise DataError(name, "integer values", "non-integer values")
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(name, "integer values", f"dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise DataError(name, f"a {ndim}-dimensional array", f"shape {arr.shape}")
    if low is not None and arr.size and arr.min() < low:
        raise DataError(name, f"values >= {low}", f"minimum {arr.min()}")
    if high is not None and arr.size and arr.max() >= high:
        raise DataError(name, f"values < {high}", f"maximum {arr.max()}")
    return arr


def as_labels(name: str, y: Any, *, classes: Sequence[Any] | None = None,
              n_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Encode class labels as ``0..C-1``.

    Returns ``(codes, classes)``. When ``classes`` is given, a label outside them raises.
    """
    arr = _to_numpy(name, y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(name, "a 1-dimensional array of labels", f"shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise DataError(name, f"{n_rows} labels (one per row of X)", f"{arr.shape[0]}")
    if np.issubdtype(arr.dtype, np.floating):
        check_finite(name, arr)
    if classes is None:
        classes_arr, codes = np.unique(arr, return_inverse=True)
        return codes.astype(np.int32), classes_arr
    classes_arr = np.asarray(classes)
    lookup = {c: i for i, c in enumerate(classes_arr.tolist())}
    try:
        codes = np.array([lookup[v] for v in arr.tolist()], dtype=np.int32)
    except KeyError as exc:
        raise DataError(name, f"labels among the classes {classes_arr.tolist()}",
                        f"the label {exc.args[0]!r}") from None
    return codes, classes_arr


def as_mapping(name: str, data: Any) -> dict[str, Any]:
    """A model's data argument: a mapping of keyword arguments or a :class:`ModelData`."""
    if isinstance(data, ModelData):
        return dict(data.kwargs)
    if data is None:
        return {}
    if isinstance(data, Mapping):
        return dict(data)
    raise DataError(name, "a mapping of the model's keyword arguments or a ModelData", describe(data))
