"""Shared helpers of the loaders: where bundled files are, and the checks every loader makes."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError

__all__ = ["DATA_DIR", "bundled", "row_count", "read_columns"]

DATA_DIR = Path(__file__).resolve().parent / "data"


def bundled(name: str) -> Path:
    """The path of a bundled data file (each has a ``<name>.SOURCE.md`` beside it)."""
    return DATA_DIR / name


def row_count(value: int | None, n: int, *, argument: str = "num_rows", minimum: int = 1) -> int:
    """A validated number of leading rows to keep: all ``n`` when ``value`` is None."""
    if value is None:
        return n
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= n:
        raise DataError(argument, f"an integer in [{minimum}, {n}] or None", repr(value))
    return value


def read_columns(path: Path, columns: Sequence[str] | str, allowed: Sequence[str],
                 argument: str = "columns") -> tuple[np.ndarray, list[str]]:
    """Selected numeric columns of a bundled CSV as an ``(n, k)`` float64 array."""
    cols = [columns] if isinstance(columns, str) else list(columns)
    bad = [c for c in cols if c not in allowed] or ([] if cols else ["(none)"])
    if bad:
        raise DataError(argument, f"a non-empty selection of {list(allowed)}", f"{bad}")
    raw = np.genfromtxt(path, delimiter=",", names=True)
    return np.stack([np.asarray(raw[c], dtype=np.float64) for c in cols], axis=1), cols
