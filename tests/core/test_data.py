"""Input validation: every error names the argument, the expected and the given value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppl_models.data import as_float_matrix, as_int_array, as_labels
from ppl_models.errors import DataError


def test_matrix_from_dataframe_keeps_column_names():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    X, cols = as_float_matrix("X", df)
    assert cols == ["a", "b"] and X.shape == (2, 2)


@pytest.mark.parametrize("bad, fragment", [
    (np.array([1.0, 2.0]), "2-dimensional"),
    (np.array([[1.0, np.nan]]), "non-finite"),
    (np.array([[1.0, np.inf]]), "non-finite"),
    (np.zeros((0, 3)), "at least one row"),
    (pd.DataFrame({"a": ["x", "y"]}), "numeric"),
])
def test_bad_matrices(bad, fragment):
    with pytest.raises(DataError, match=fragment) as info:
        as_float_matrix("X", bad)
    assert "argument `X`" in str(info.value)


def test_feature_count_mismatch():
    with pytest.raises(DataError, match="3 feature column"):
        as_float_matrix("X", np.zeros((2, 2)), n_features=3)


def test_labels_outside_the_classes():
    codes, classes = as_labels("y", ["b", "a", "b"])
    assert codes.tolist() == [1, 0, 1] and classes.tolist() == ["a", "b"]
    with pytest.raises(DataError, match="the label 'c'"):
        as_labels("y", ["a", "c"], classes=classes)
    with pytest.raises(DataError, match="3 labels"):
        as_labels("y", ["a", "b"], n_rows=3)


def test_int_arrays():
    assert as_int_array("counts", [1.0, 2.0]).dtype == np.int64
    with pytest.raises(DataError, match="values >= 0"):
        as_int_array("counts", [1, -1], low=0)
    with pytest.raises(DataError, match="integer values"):
        as_int_array("counts", [1.5])


def test_complex_and_object_inputs():
    with pytest.raises(DataError, match="real numbers"):
        as_float_matrix("X", np.array([[1 + 2j, 0]]))
    X, _ = as_float_matrix("X", np.array([[1, 2.5]], dtype=object))
    assert X.dtype == np.float64
    with pytest.raises(DataError, match="non-numeric"):
        as_float_matrix("X", np.array([["a", 1]], dtype=object))
