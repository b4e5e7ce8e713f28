"""Exceptions a user can cause, each naming the argument, the expected and the given value."""

from __future__ import annotations

__all__ = ["PPLModelsError", "DataError", "CatalogError", "ModelError", "QueryError"]


class PPLModelsError(Exception):
    """Base class of every error ppl_models raises on purpose."""


class DataError(PPLModelsError, ValueError):
    """Input data of the wrong shape, type or value.

    The message always has the form ``argument `name`: expected ..., got ...``.
    """

    def __init__(self, argument: str, expected: str, got: object, hint: str | None = None):
        self.argument = argument
        self.expected = expected
        self.got = got
        msg = f"argument `{argument}`: expected {expected}, got {got}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class ModelError(PPLModelsError, ValueError):
    """A model specification that cannot work (e.g. K < 1, a CPT that does not sum to one)."""


class CatalogError(PPLModelsError, LookupError):
    """An unknown catalog entry or a malformed catalog card."""


class QueryError(PPLModelsError, ValueError):
    """A query on a discrete model that names an unknown variable or state."""
