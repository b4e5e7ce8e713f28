"""Binary classification sets for the generative-versus-discriminative study (Ng & Jordan 2001).

Every loader returns a :class:`ClassificationSet`: features ``X``, labels ``y`` (0/1 codes),
and ``features`` — ``"continuous"``, ``"binary"`` or ``"categorical"`` — which says which naive
Bayes likelihood suits the set (Gaussian, Bernoulli, categorical). All data are offline:

* ``breast_cancer``: Wisconsin diagnostic, scikit-learn's bundled copy, 569 × 30 continuous
  (1 = malignant);
* ``breast_cancer_binned``: the same, each feature discretized into ``num_bins`` quantile bins
  (codes ``0..num_bins-1``; the bin edges are quantiles of the whole set, a fixed
  preprocessing, as Ng & Jordan discretized their continuous sets);
* ``digits_0v1``, ``digits_2v3``: UCI optdigits (scikit-learn's bundled test set), 8 × 8 pixel
  counts 0..16 treated as continuous, two digits each (1 = the second digit);
* ``digits_0v1_binary``, ``digits_2v3_binary``: the same pixels binarized at ``> 8``;
* ``pima``: Pima diabetes, ``MASS::Pima.tr`` + ``Pima.te`` (532 × 7 continuous, 1 = diabetic),
  bundled as ``data/pima.csv``;
* ``biopsy``: the original Wisconsin breast cancer data, ``MASS::biopsy`` (683 complete rows ×
  9 scores 1..10, as categorical codes 0..9; 1 = malignant), bundled as ``data/biopsy.csv``.

:data:`NG_JORDAN_SETS` maps each name to its loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = [
    "FEATURE_KINDS",
    "ClassificationSet",
    "load_breast_cancer_continuous",
    "load_breast_cancer_binned",
    "load_digits_pair",
    "load_pima",
    "load_biopsy",
    "quantile_bins",
    "NG_JORDAN_SETS",
    "load_set",
]

_DATA = Path(__file__).resolve().parent / "data"
FEATURE_KINDS = ("continuous", "binary", "categorical")


class ClassificationSet(NamedTuple):
    """A binary classification data set.

    ``X`` (N, D) float64; ``y`` (N,) int codes 0/1; ``feature_names`` (D,);
    ``class_names`` (label of code 0, label of code 1); ``features`` in
    ``("continuous", "binary", "categorical")``; ``num_categories`` (categorical only, else
    None); ``name``; ``description``.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    class_names: list[str]
    features: str
    num_categories: int | None
    name: str
    description: str


def quantile_bins(X: np.ndarray, num_bins: int) -> np.ndarray:
    """Each column discretized into ``num_bins`` bins at its empirical quantiles.

    Ties can merge bins (a column with few distinct values gets fewer); codes stay in
    ``0..num_bins-1``.

    Returns
    -------
    int array, same shape as ``X``
    """
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 2:
        raise DataError("num_bins", "an int >= 2", repr(num_bins))
    X = np.asarray(X, dtype=np.float64)
    qs = np.linspace(0, 1, num_bins + 1)[1:-1]
    out = np.empty(X.shape, dtype=np.int64)
    for j in range(X.shape[1]):
        edges = np.unique(np.quantile(X[:, j], qs))
        # side="left": a value equal to an edge goes to the lower bin (the minimum is bin 0).
        out[:, j] = np.searchsorted(edges, X[:, j], side="left")
    return out


def load_breast_cancer_continuous() -> ClassificationSet:
    """Breast cancer (Wisconsin diagnostic), 569 × 30 continuous; 1 = malignant."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    # sklearn codes malignant as 0; the study calls the disease class 1.
    y = (d.target == 0).astype(np.int64)
    return ClassificationSet(d.data.astype(np.float64), y, list(d.feature_names), ["benign", "malignant"],
                             "continuous", None, "breast_cancer",
                             "Wisconsin diagnostic breast cancer, 30 continuous features (scikit-learn)")


def load_breast_cancer_binned(num_bins: int = 4) -> ClassificationSet:
    """Breast cancer with every feature cut into ``num_bins`` quantile bins (categorical)."""
    base = load_breast_cancer_continuous()
    codes = quantile_bins(base.X, num_bins)
    return base._replace(X=codes.astype(np.float64), features="categorical", num_categories=int(num_bins),
                         name="breast_cancer_binned",
                         description=f"Wisconsin diagnostic breast cancer, 30 features in {num_bins} quantile bins")


def load_digits_pair(first: int = 0, second: int = 1, *, binarize: bool = False,
                     threshold: float = 8.0) -> ClassificationSet:
    """Two digits of UCI optdigits (8 × 8 pixel counts 0..16); 1 = ``second``.

    Parameters
    ----------
    first, second : int
        The two digits, distinct, in 0..9.
    binarize : bool
        Pixels as ``x > threshold`` (Bernoulli features) instead of counts (continuous).
    threshold : float
    """
    from sklearn.datasets import load_digits

    if first == second or not {first, second} <= set(range(10)):
        raise DataError("first, second", "two distinct digits in 0..9", (first, second))
    d = load_digits()
    keep = np.isin(d.target, [first, second])
    X = d.data[keep].astype(np.float64)
    y = (d.target[keep] == second).astype(np.int64)
    name = f"digits_{first}v{second}" + ("_binary" if binarize else "")
    if binarize:
        X = (X > threshold).astype(np.float64)
    desc = (f"optdigits {first} vs {second}, 64 pixels " +
            (f"binarized at > {threshold:g}" if binarize else "as counts 0..16"))
    return ClassificationSet(X, y, [f"pixel_{i}" for i in range(64)], [str(first), str(second)],
                             "binary" if binarize else "continuous", None, name, desc)


def load_pima() -> ClassificationSet:
    """Pima diabetes, ``MASS::Pima.tr`` + ``Pima.te``: 532 × 7 continuous; 1 = diabetic."""
    df = pd.read_csv(_DATA / "pima.csv")
    cols = ["npreg", "glu", "bp", "skin", "bmi", "ped", "age"]
    y = (df["type"] == "Yes").to_numpy().astype(np.int64)
    return ClassificationSet(df[cols].to_numpy(np.float64), y, cols, ["No", "Yes"], "continuous", None, "pima",
                             "Pima Indian diabetes (MASS Pima.tr + Pima.te), 7 continuous features")


def load_biopsy() -> ClassificationSet:
    """Original Wisconsin breast cancer, ``MASS::biopsy``: 683 complete rows × 9 scores.

    The scores 1..10 become categorical codes 0..9; the 16 rows with a missing ``V6`` are
    dropped. 1 = malignant.
    """
    df = pd.read_csv(_DATA / "biopsy.csv")
    cols = [f"V{i}" for i in range(1, 10)]
    df = df.dropna(subset=cols)
    X = df[cols].to_numpy(np.float64) - 1.0
    y = (df["class"] == "malignant").to_numpy().astype(np.int64)
    return ClassificationSet(X, y, cols, ["benign", "malignant"], "categorical", 10, "biopsy",
                             "Wisconsin original breast cancer (MASS biopsy), 9 scores 1-10 as categories")


NG_JORDAN_SETS: dict[str, Callable[[], ClassificationSet]] = {
    "breast_cancer": load_breast_cancer_continuous,
    "breast_cancer_binned": load_breast_cancer_binned,
    "digits_0v1": lambda: load_digits_pair(0, 1),
    "digits_2v3": lambda: load_digits_pair(2, 3),
    "digits_0v1_binary": lambda: load_digits_pair(0, 1, binarize=True),
    "digits_2v3_binary": lambda: load_digits_pair(2, 3, binarize=True),
    "pima": load_pima,
    "biopsy": load_biopsy,
}


def load_set(name: str) -> ClassificationSet:
    """The set called ``name`` in :data:`NG_JORDAN_SETS`."""
    if name not in NG_JORDAN_SETS:
        raise DataError("name", f"one of {list(NG_JORDAN_SETS)}", repr(name))
    return NG_JORDAN_SETS[name]()
