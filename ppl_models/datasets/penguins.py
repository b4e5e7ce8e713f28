"""Palmer penguins body measurements (333 complete rows, 3 species), bundled as CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data import ModelData
from ..errors import DataError
from ._bundled import row_count

__all__ = ["load_penguins", "FEATURES", "SPECIES"]

_CSV = Path(__file__).resolve().parent / "data" / "penguins.csv"
FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
SPECIES = ("Adelie", "Chinstrap", "Gentoo")


def load_penguins(features: Sequence[str] = FEATURES, standardize: bool = True,
                  num_rows: int | None = None) -> ModelData:
    """Palmer penguins (Gorman, Williams & Fraser 2014): body measurements and species.

    Rows with any missing value (including ``sex``) are dropped, leaving 333 birds, so the rows
    match the usual "complete cases" set.

    Parameters
    ----------
    features : sequence of str
        Columns among :data:`FEATURES`.
    standardize : bool
        Centre and scale each feature; ``extra["center"]``/``extra["scale"]`` undo it.
    num_rows : int, optional
        Keep only the first ``num_rows`` rows (small data sets for simulation-based calibration).

    Returns
    -------
    ModelData
        ``kwargs = {"X": (333, D), "num_obs": 333, "num_features": D}`` for
        :func:`ppl_models.models.mixture.mvn_mixture`; ``extra["species"]`` holds the species code
        per row (0 Adelie, 1 Chinstrap, 2 Gentoo) for the adjusted Rand index, which is never
        used in fitting.
    """
    feats = list(features)
    bad = [f for f in feats if f not in FEATURES] or ([] if feats else ["(none)"])
    if bad:
        raise DataError("features", f"a non-empty selection of {list(FEATURES)}", f"{bad}")
    with open(_CSV, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if all(v not in ("", "NA") for v in r.values())]
    rows = rows[: row_count(num_rows, len(rows))]
    X = np.array([[float(r[f]) for f in feats] for r in rows])
    species = np.array([SPECIES.index(r["species"]) for r in rows], dtype=np.int32)
    center = X.mean(axis=0) if standardize else np.zeros(X.shape[1])
    scale = X.std(axis=0, ddof=1) if standardize else np.ones(X.shape[1])
    return ModelData(
        kwargs={"X": (X - center) / scale, "num_obs": X.shape[0], "num_features": X.shape[1]},
        observed=("X",),
        coords={"feature": feats},
        dims={"loc": ["component", "feature"], "weights": ["component"], "loc_order": ["component"],
              "corr_chol": ["component", "feature", "feature_bis"]},
        name="penguins",
        description="Palmer penguins: bill length/depth, flipper length, body mass; 333 birds, 3 species",
        extra={"species": species, "species_names": list(SPECIES), "center": center, "scale": scale,
               "features": feats, "raw": X, "island": [r["island"] for r in rows], "sex": [r["sex"] for r in rows]},
    )
