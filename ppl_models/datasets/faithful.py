"""Old Faithful geyser eruptions (272 eruptions: duration and waiting time), bundled as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..data import ModelData
from ._bundled import read_columns, row_count

__all__ = ["load_faithful", "COLUMNS"]

_CSV = Path(__file__).resolve().parent / "data" / "faithful.csv"
COLUMNS = ("eruptions", "waiting")


def load_faithful(columns: Sequence[str] | str = COLUMNS, standardize: bool = True,
                  num_rows: int | None = None) -> ModelData:
    """Old Faithful (R ``datasets::faithful``): eruption duration (min) and waiting time (min).

    Parameters
    ----------
    columns : str or sequence of str
        ``"eruptions"``, ``"waiting"`` or both. One column gives the observed argument ``x`` of
        shape (272,) for :func:`ppl_models.models.mixture.gaussian_mixture`; two give ``X`` of
        shape (272, 2) for :func:`~ppl_models.models.mixture.mvn_mixture`.
    standardize : bool
        Centre and scale each column (the mixture priors are set for standardised data);
        ``extra["center"]`` and ``extra["scale"]`` undo it.
    num_rows : int, optional
        Keep only the first ``num_rows`` rows (small data sets for simulation-based calibration).

    Returns
    -------
    ModelData
    """
    X, cols = read_columns(_CSV, columns, COLUMNS)
    X = X[: row_count(num_rows, X.shape[0])]
    center = X.mean(axis=0) if standardize else np.zeros(X.shape[1])
    scale = X.std(axis=0, ddof=1) if standardize else np.ones(X.shape[1])
    Z = (X - center) / scale
    n = Z.shape[0]
    if len(cols) == 1:
        kwargs = {"x": Z[:, 0], "num_obs": n}
        observed = ("x",)
        dims = {"loc": ["component"], "weights": ["component"]}
    else:
        kwargs = {"X": Z, "num_obs": n, "num_features": Z.shape[1]}
        observed = ("X",)
        dims = {"loc": ["component", "feature"], "weights": ["component"], "loc_order": ["component"],
                "corr_chol": ["component", "feature", "feature_bis"]}
    return ModelData(
        kwargs=kwargs, observed=observed, coords={"feature": cols}, dims=dims, name="faithful",
        description="Old Faithful eruptions: duration and waiting time (min), 272 eruptions",
        extra={"center": center, "scale": scale, "columns": cols, "raw": X},
    )
