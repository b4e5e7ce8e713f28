"""Old Faithful, 299 successive eruptions (MASS::geyser), bundled as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


from ..data import ModelData
from ..errors import DataError
from ._bundled import read_columns

__all__ = ["load_geyser", "COLUMNS"]

_CSV = Path(__file__).resolve().parent / "data" / "geyser.csv"
COLUMNS = ("duration", "waiting")


def load_geyser(columns: Sequence[str] | str = "duration", num_eruptions: int | None = None) -> ModelData:
    """Successive eruptions of Old Faithful, August 1985: duration and waiting time (minutes).

    Parameters
    ----------
    columns : str or sequence of str
        ``"duration"`` (default) gives ``obs`` ``(T,)`` for
        :func:`ppl_models.models.hmm.gaussian_hmm`; two columns give ``obs`` ``(T, 2)`` for
        :func:`ppl_models.models.hmm.mvn_hmm`. Values are in minutes, not standardised.
    num_eruptions : int, optional
        Keep only the first ``num_eruptions`` eruptions (small data sets for SBC).

    Returns
    -------
    ModelData
        ``kwargs``: ``obs`` and ``num_timesteps``; ``extra["columns"]``.
    """
    X, cols = read_columns(_CSV, columns, COLUMNS)
    if num_eruptions is not None:
        if isinstance(num_eruptions, bool) or not isinstance(num_eruptions, int) \
                or not 2 <= num_eruptions <= X.shape[0]:
            raise DataError("num_eruptions", f"an integer in [2, {X.shape[0]}] or None", repr(num_eruptions))
        X = X[:num_eruptions]
    T = X.shape[0]
    obs = X[:, 0] if len(cols) == 1 else X
    return ModelData(
        kwargs={"obs": obs, "num_timesteps": T},
        observed=("obs",),
        name="geyser",
        description=f"Old Faithful, {T} successive eruptions (Azzalini & Bowman 1990): {', '.join(cols)}",
        extra={"columns": cols},
    )
