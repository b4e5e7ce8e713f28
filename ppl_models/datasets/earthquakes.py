"""Annual counts of major earthquakes, 1900-2006 (Zucchini & MacDonald), bundled as CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import ModelData
from ..errors import DataError

__all__ = ["load_earthquakes"]

_CSV = Path(__file__).resolve().parent / "data" / "earthquakes.csv"


def load_earthquakes(num_years: int | None = None) -> ModelData:
    """Counts of magnitude-7+ earthquakes per year, 1900-2006 (107 counts; USGS).

    Parameters
    ----------
    num_years : int, optional
        Keep only the first ``num_years`` years (small data sets for SBC).

    Returns
    -------
    ModelData
        ``kwargs``: ``obs`` int array ``(T,)`` and ``num_timesteps`` T, for
        :func:`ppl_models.models.hmm.poisson_hmm`; ``extra["years"]``. No ArviZ dims: the
        observed site is one whole sequence, so its log-likelihood has no time axis.
    """
    raw = np.genfromtxt(_CSV, delimiter=",", names=True, dtype=np.int64)
    years, counts = np.asarray(raw["year"]), np.asarray(raw["count"])
    if num_years is not None:
        if isinstance(num_years, bool) or not isinstance(num_years, int) or not 2 <= num_years <= len(counts):
            raise DataError("num_years", f"an integer in [2, {len(counts)}] or None", repr(num_years))
        years, counts = years[:num_years], counts[:num_years]
    return ModelData(
        kwargs={"obs": counts, "num_timesteps": int(counts.shape[0])},
        observed=("obs",),
        name="earthquakes",
        description=f"Annual counts of magnitude 7+ earthquakes, {years[0]}-{years[-1]} (USGS)",
        extra={"years": years},
    )
