"""Classification data sets bundled with scikit-learn (no download), as :class:`ModelData`.

* breast cancer (Wisconsin diagnostic): 569 × 30, binary (malignant / benign);
* wine: 178 × 13, three cultivars (multiclass);
* digits (UCI optdigits test set): 1797 × 64 pixels in 0..16, ten classes, binarized for
  Bernoulli naive Bayes.

Each loader targets one program, ``model="logistic"``
(:func:`ppl_models.models.logistic.logistic_regression`: observed ``y``; ``X`` is a covariate)
or ``model="naive_bayes"`` (:func:`ppl_models.models.naive_bayes.naive_bayes`: observed ``X``
and ``y``, with ``num_obs``/``num_features`` so that forward simulation knows the sizes). The
likelihood and other static options of a program come from a catalog card's ``[model.args]``.

``num_rows`` draws a stratified random subset (for simulation-based calibration, which refits
the model many times). Licence: BSD-3 (scikit-learn); the data are the UCI repository's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data import ModelData
from ..errors import DataError

__all__ = ["MODELS", "load_breast_cancer", "load_wine", "load_digits", "classification_data"]

MODELS = ("logistic", "naive_bayes")


def _subset(y: np.ndarray, num_rows: int | None, seed: int) -> np.ndarray:
    """Row indices: all, or a stratified random subset of ``num_rows`` (every class kept)."""
    n = y.shape[0]
    if num_rows is None:
        return np.arange(n)
    classes = np.unique(y)
    if isinstance(num_rows, bool) or not isinstance(num_rows, (int, np.integer)) or not len(classes) <= num_rows <= n:
        raise DataError("num_rows", f"an int in [{len(classes)}, {n}] or None", repr(num_rows))
    rng = np.random.default_rng(seed)
    # Proportional allocation, at least one row per class.
    counts = np.array([(y == c).sum() for c in classes])
    alloc = np.maximum(1, np.floor(num_rows * counts / n).astype(int))
    while alloc.sum() < num_rows:
        alloc[np.argmax(counts - alloc)] += 1
    while alloc.sum() > num_rows:
        alloc[np.argmax(alloc)] -= 1
    rows = np.concatenate([rng.choice(np.flatnonzero(y == c), a, replace=False) for c, a in zip(classes, alloc)])
    return np.sort(rows)


def classification_data(X: np.ndarray, y: np.ndarray, *, feature_names: list[str], class_names: list[str],
                        model: str = "logistic", name: str = "", description: str = "",
                        extra: dict[str, Any] | None = None) -> ModelData:
    """:class:`ModelData` for a classifier program from a feature matrix and class codes.

    Parameters
    ----------
    X : array (N, D)
    y : int array (N,)
        Codes ``0..C-1``.
    feature_names, class_names : list of str
        ArviZ coords of ``"feature"`` and ``"class"`` (for logistic regression the ``"class"``
        dim lists the non-reference classes ``1..C-1``).
    model : {"logistic", "naive_bayes"}
    """
    if model not in MODELS:
        raise DataError("model", f"one of {list(MODELS)}", repr(model))
    n, d = X.shape
    C = len(class_names)
    coords: dict[str, Any] = {"feature": list(feature_names)}
    if model == "logistic":
        from ..models.logistic import logistic_dims

        kwargs = {"X": X, "y": y, "num_classes": C}
        observed: tuple[str, ...] = ("y",)
        dims = logistic_dims(C)
        if C > 2:
            coords["class"] = list(class_names[1:])
    else:
        kwargs = {"X": X, "y": y, "num_classes": C, "num_obs": n, "num_features": d}
        observed = ("X", "y")
        # The other sites take their dims from the plates ("class", "feature"); explicit dims
        # for `precision` would have to know whether the card shares the variance.
        dims = {"class_prob": ["class"], "y": ["obs"]}
        coords["class"] = list(class_names)
    return ModelData(kwargs=kwargs, observed=observed, coords=coords, dims=dims, name=name,
                     description=description,
                     extra={"feature_names": list(feature_names), "class_names": list(class_names), **(extra or {})})


def _standardize(X: np.ndarray, standardize: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    center = X.mean(0) if standardize else np.zeros(X.shape[1])
    sd = X.std(0) if standardize else np.ones(X.shape[1])
    scale = np.where(sd > 0, sd, 1.0)  # a constant column stays finite
    return (X - center) / scale, center, scale


def load_breast_cancer(*, standardize: bool = True, model: str = "logistic", num_rows: int | None = None,
                       seed: int = 0) -> ModelData:
    """Wisconsin diagnostic breast cancer: 569 tumours × 30 nucleus features.

    ``y`` = 1 for benign, 0 for malignant (scikit-learn's coding). With ``standardize`` each
    column is centred and scaled to unit sd over the rows returned (``extra["center"]``,
    ``extra["scale"]``), the scale the N(0, 2.5²) priors are meant for.

    Returns
    -------
    ModelData
        ``X`` (N, 30), ``y`` (N,), ``num_classes`` = 2 (+ sizes for naive Bayes).
    """
    from sklearn.datasets import load_breast_cancer as _load

    raw = _load()
    rows = _subset(raw.target, num_rows, seed)
    Z, center, scale = _standardize(np.asarray(raw.data, np.float64)[rows], standardize)
    return classification_data(
        Z, raw.target[rows].astype(np.int32), feature_names=[str(f) for f in raw.feature_names],
        class_names=[str(c) for c in raw.target_names], model=model, name="breast_cancer",
        description=f"Wisconsin diagnostic breast cancer, {len(rows)} tumours x 30 features"
                    f"{' (standardized)' if standardize else ''}",
        extra={"center": center, "scale": scale, "rows": rows})


def load_wine(*, standardize: bool = True, model: str = "logistic", num_rows: int | None = None,
              seed: int = 0) -> ModelData:
    """UCI wine: 178 wines × 13 chemical measurements, three cultivars (``class_0..2``).

    Returns
    -------
    ModelData
        ``X`` (N, 13), ``y`` (N,) in 0..2, ``num_classes`` = 3.
    """
    from sklearn.datasets import load_wine as _load

    raw = _load()
    rows = _subset(raw.target, num_rows, seed)
    Z, center, scale = _standardize(np.asarray(raw.data, np.float64)[rows], standardize)
    return classification_data(
        Z, raw.target[rows].astype(np.int32), feature_names=[str(f) for f in raw.feature_names],
        class_names=[str(c) for c in raw.target_names], model=model, name="wine",
        description=f"UCI wine, {len(rows)} wines x 13 measurements, 3 cultivars"
                    f"{' (standardized)' if standardize else ''}",
        extra={"center": center, "scale": scale, "rows": rows})


def load_digits(*, threshold: float | None = 8.0, digits: list[int] | None = None, model: str = "naive_bayes",
                num_rows: int | None = None, seed: int = 0) -> ModelData:
    """Handwritten digits (UCI optdigits test set): 8 × 8 pixel counts in 0..16.

    Parameters
    ----------
    threshold : float or None
        Binarize: pixel > threshold → 1 (for Bernoulli naive Bayes). ``None`` keeps the counts
        (as floats).
    digits : list of int, optional
        Keep only these digits (e.g. ``[0, 1]``); classes are re-coded ``0..len-1`` in this order.
    model : {"naive_bayes", "logistic"}
    num_rows, seed
        Stratified subset.

    Returns
    -------
    ModelData
        ``X`` (N, 64) with features ``pixel_r_c``, ``y`` (N,).
    """
    from sklearn.datasets import load_digits as _load

    raw = _load()
    X, y = np.asarray(raw.data, np.float64), np.asarray(raw.target)
    names = [str(d) for d in range(10)]
    if digits is not None:
        keep = [int(d) for d in digits]
        bad = [d for d in keep if d not in range(10)] or ([] if len(set(keep)) >= 2 else keep)
        if bad or len(set(keep)) != len(keep):
            raise DataError("digits", "two or more distinct digits in 0..9", repr(digits))
        mask = np.isin(y, keep)
        X, y = X[mask], np.array([keep.index(v) for v in y[mask]])
        names = [str(d) for d in keep]
    rows = _subset(y, num_rows, seed)
    X, y = X[rows], y[rows].astype(np.int32)
    if threshold is not None:
        X = (X > float(threshold)).astype(np.float64)
    return classification_data(
        X, y, feature_names=[f"pixel_{i // 8}_{i % 8}" for i in range(64)], class_names=names, model=model,
        name="digits", description=f"UCI optdigits, {len(rows)} images x 64 pixels"
                                   f"{f', binarized at > {threshold}' if threshold is not None else ''}",
        extra={"rows": rows, "threshold": threshold})
