"""Days absent from school (Quine 1975; R ``MASS::quine``), 146 children, bundled as CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..data import ModelData
from ._bundled import row_count

__all__ = ["load_quine"]

_CSV = Path(__file__).resolve().parent / "data" / "quine.csv"


def load_quine(num_rows: int | None = None) -> ModelData:
    """Days absent in a school year for 146 children in Walgett, New South Wales.

    The counts (mean 16.5, variance 264) are far more dispersed than a Poisson: the textbook
    case for a Poisson mixture (or a negative binomial).

    Parameters
    ----------
    num_rows : int, optional
        Keep only the first ``num_rows`` rows (small data sets for simulation-based calibration).

    Returns
    -------
    ModelData
        ``kwargs = {"y": (146,) int, "num_obs": 146}`` for
        :func:`ppl_models.models.mixture.poisson_mixture`; ``extra`` holds the covariates
        (``Eth``, ``Sex``, ``Age``, ``Lrn``), which the mixture does not use.
    """
    with open(_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows = rows[: row_count(num_rows, len(rows))]
    y = np.array([int(r["Days"]) for r in rows], dtype=np.int32)
    return ModelData(
        kwargs={"y": y, "num_obs": y.shape[0]},
        observed=("y",),
        dims={"rate": ["component"], "weights": ["component"]},
        name="quine",
        description="Days absent from school, 146 children in rural New South Wales (MASS::quine)",
        extra={k: [r[k] for r in rows] for k in ("Eth", "Sex", "Age", "Lrn")},
    )
