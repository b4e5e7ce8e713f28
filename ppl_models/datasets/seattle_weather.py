"""Seattle daily weather 2012-2015 as a categorical sequence, bundled as CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..data import ModelData
from ..errors import DataError

__all__ = ["load_seattle_weather", "CATEGORIES"]

_CSV = Path(__file__).resolve().parent / "data" / "seattle-weather.csv"
# "sun" first: categorical_hmm labels states by the probability of category `order_by` = 0.
CATEGORIES = ("sun", "fog", "drizzle", "rain", "snow")


def load_seattle_weather(num_days: int | None = None) -> ModelData:
    """One-word daily weather in Seattle, 2012-01-01 to 2015-12-31 (1461 days; NOAA via Vega).

    Parameters
    ----------
    num_days : int, optional
        Keep only the first ``num_days`` days (small data sets for SBC).

    Returns
    -------
    ModelData
        ``kwargs``: ``obs`` int codes ``(T,)`` into :data:`CATEGORIES`, ``num_categories`` 5,
        ``num_timesteps`` T, ``order_by`` 0 (states labelled by their probability of sun), for
        :func:`ppl_models.models.hmm.categorical_hmm`;
        ``extra``: ``categories``, ``dates``, ``precipitation`` (mm).
    """
    with open(_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    lookup = {c: i for i, c in enumerate(CATEGORIES)}
    codes = np.array([lookup[r["weather"]] for r in rows], dtype=np.int64)
    dates = [r["date"] for r in rows]
    precip = np.array([float(r["precipitation"]) for r in rows])
    if num_days is not None:
        if isinstance(num_days, bool) or not isinstance(num_days, int) or not 2 <= num_days <= len(codes):
            raise DataError("num_days", f"an integer in [2, {len(codes)}] or None", repr(num_days))
        codes, dates, precip = codes[:num_days], dates[:num_days], precip[:num_days]
    return ModelData(
        kwargs={"obs": codes, "num_categories": len(CATEGORIES), "num_timesteps": int(codes.shape[0]),
                "order_by": 0},
        observed=("obs",),
        name="seattle_weather",
        description=f"Seattle daily weather {dates[0]} to {dates[-1]}: {', '.join(CATEGORIES)}",
        extra={"categories": list(CATEGORIES), "dates": dates, "precipitation": precip},
    )
