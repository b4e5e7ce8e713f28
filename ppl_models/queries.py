"""Exact queries on discrete variables: joint, marginal and conditional tables.

A generative model gives the joint ``p(x, y)``; summing gives the marginal ``p(x)``, and
dividing gives the conditional ``p(y | x) = p(x, y) / p(x)`` — Bayes' rule. The same three
operations serve an empirical table counted from data, a naive Bayes classifier (whose joint
``log p(x_n, y)`` is computed per draw), and a Bayesian network's query.

Two layers:

* functions on arrays — :func:`marginal` and :func:`conditional` sum out or normalise
  over axes, in probability space (exact for tables of counts) or log space
  (``log=True``, stable for likelihoods);
* :class:`DiscreteJoint` — the same on a table with named variables and named states.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import DataError, QueryError

__all__ = ["marginal", "conditional", "DiscreteJoint", "empirical_joint"]


def _axes(axis: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise DataError("axis", f"axes in [-{ndim}, {ndim})", repr(a))
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def _logsumexp(x: Any, axis: tuple[int, ...]):
    xp = _namespace(x)
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    return xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m


def _namespace(x: Any):
    if type(x).__module__.startswith("jax") or "jax" in type(x).__module__:
        import jax.numpy as jnp

        return jnp
    return np


def marginal(table: Any, axis: int | Sequence[int], *, log: bool = False):
    """Sum the variables on ``axis`` out of a joint table: ``p(a) = Σ_b p(a, b)``.

    Works on NumPy and JAX arrays (inside ``jit``/``vmap`` too). With ``log=True`` the table
    holds log probabilities and the sum is a log-sum-exp.
    """
    x = table if _namespace(table) is not np else np.asarray(table)
    axes = _axes(axis, x.ndim)
    if log:
        xp = _namespace(x)
        return xp.squeeze(_logsumexp(x, axes), axis=axes)
    return x.sum(axis=axes)


def conditional(table: Any, axis: int | Sequence[int], *, log: bool = False):
    """Normalise a joint table over ``axis``: ``p(target | rest) = p(target, rest) / p(rest)``.

    Bayes' rule is this operation on a joint ``p(x, y)`` with ``axis`` the axis of ``y``.
    Slices where ``p(rest) = 0`` are undefined and come back as NaN.
    """
    x = table if _namespace(table) is not np else np.asarray(table, dtype=float)
    axes = _axes(axis, x.ndim)
    if log:
        return x - _logsumexp(x, axes)
    xp = _namespace(x)
    total = x.sum(axis=axes, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return xp.where(total > 0, x / xp.where(total > 0, total, 1), xp.nan)


class DiscreteJoint:
    """A joint distribution over named discrete variables with named states.

    Parameters
    ----------
    prob : array
        Probabilities, one axis per variable, summing to one.
    variables : sequence of str
    states : mapping
        Variable -> list of its state names (in axis order).
    """

    def __init__(self, prob: Any, variables: Sequence[str], states: Mapping[str, Sequence[Any]]):
        p = np.asarray(prob, dtype=float)
        variables = list(variables)
        if p.ndim != len(variables):
            raise DataError("prob", f"an array with one axis per variable ({len(variables)})", f"shape {p.shape}")
        for v, n in zip(variables, p.shape):
            if v not in states or len(states[v]) != n:
                raise DataError("states", f"{n} state names for {v!r}", repr(states.get(v)))
        if np.any(p < 0) or not np.isclose(p.sum(), 1.0, atol=1e-9):
            raise DataError("prob", "non-negative probabilities summing to one", f"sum {p.sum()}")
        self.prob = p
        self.variables = variables
        self.states = {v: list(states[v]) for v in variables}

    # -------------------------------------------------------------- construction
    @classmethod
    def from_data(cls, data: pd.DataFrame | Mapping[str, Iterable[Any]],
                  variables: Sequence[str] | None = None,
                  states: Mapping[str, Sequence[Any]] | None = None) -> "DiscreteJoint":
        """The empirical joint: the fraction of rows with each combination of values."""
        df = pd.DataFrame(data)
        variables = list(variables or df.columns)
        missing = [v for v in variables if v not in df.columns]
        if missing:
            raise DataError("variables", f"columns of the data {list(df.columns)}", f"{missing}")
        if len(df) == 0:
            raise DataError("data", "at least one row", "0 rows")
        states = dict(states or {})
        codes = []
        for v in variables:
            col = df[v]
            if col.isna().any():
                raise DataError(f"data[{v!r}]", "no missing values", f"{int(col.isna().sum())} missing")
            st = list(states[v]) if v in states else sorted(pd.unique(col).tolist())
            lookup = {s: i for i, s in enumerate(st)}
            try:
                codes.append(np.array([lookup[x] for x in col.tolist()]))
            except KeyError as exc:
                raise DataError(f"data[{v!r}]", f"values among the states {st}", repr(exc.args[0])) from None
            states[v] = st
        counts = np.zeros([len(states[v]) for v in variables])
        np.add.at(counts, tuple(codes), 1)
        return cls(counts / counts.sum(), variables, states)

    @classmethod
    def from_log(cls, log_prob: Any, variables: Sequence[str], states: Mapping[str, Sequence[Any]],
                 normalize: bool = True) -> "DiscreteJoint":
        """A joint from (unnormalised) log probabilities, e.g. a model's ``log p(x, y)``."""
        lp = np.asarray(log_prob, dtype=float)
        if normalize:
            lp = lp - _logsumexp(lp, tuple(range(lp.ndim)))
        return cls(np.exp(lp), variables, states)

    # -------------------------------------------------------------- queries
    def _axis(self, name: str) -> int:
        if name not in self.variables:
            raise QueryError(f"unknown variable {name!r}; the table has {self.variables}")
        return self.variables.index(name)

    def marginal(self, keep: str | Sequence[str]) -> "DiscreteJoint":
        """``p(keep)``: every other variable summed out."""
        keep_l = [keep] if isinstance(keep, str) else list(keep)
        for k in keep_l:
            self._axis(k)
        drop = [i for i, v in enumerate(self.variables) if v not in keep_l]
        p = marginal(self.prob, drop) if drop else self.prob
        kept = [v for v in self.variables if v in keep_l]
        order = [kept.index(k) for k in keep_l]
        return DiscreteJoint(np.transpose(p, order), keep_l, {k: self.states[k] for k in keep_l})

    def conditional(self, target: str | Sequence[str], given: str | Sequence[str] = ()) -> pd.DataFrame | np.ndarray:
        """``p(target | given)`` as an array with axes ``given + target``.

        Computed by Bayes' rule from the joint: marginalise to ``given ∪ target``, then
        normalise over ``target``. Rows whose ``given`` has zero probability are NaN.
        """
        t = [target] if isinstance(target, str) else list(target)
        g = [given] if isinstance(given, str) else list(given)
        if set(t) & set(g):
            raise QueryError(f"variables {sorted(set(t) & set(g))} are both target and given")
        sub = self.marginal(g + t)
        return conditional(sub.prob, tuple(range(len(g), len(g) + len(t))))

    def probability(self, **assignment: Any) -> float:
        """``p(var=state, ...)`` for a partial assignment (the rest summed out)."""
        sub = self.marginal(list(assignment))
        idx = []
        for v, s in assignment.items():
            if s not in sub.states[v]:
                raise QueryError(f"unknown state {s!r} of {v!r}; its states are {sub.states[v]}")
            idx.append(sub.states[v].index(s))
        return float(sub.prob[tuple(idx)])

    def table(self) -> pd.DataFrame:
        """The joint as a DataFrame (rows: first variable's states; columns: the rest)."""
        if len(self.variables) == 1:
            v = self.variables[0]
            return pd.DataFrame({"p": self.prob}, index=pd.Index(self.states[v], name=v))
        rows = pd.Index(self.states[self.variables[0]], name=self.variables[0])
        cols = pd.MultiIndex.from_product([self.states[v] for v in self.variables[1:]], names=self.variables[1:])
        return pd.DataFrame(self.prob.reshape(len(rows), -1), index=rows, columns=cols)

    def conditional_table(self, target: str, given: str | Sequence[str]) -> pd.DataFrame:
        """``p(target | given)`` as a DataFrame: one row per state of ``given``."""
        g = [given] if isinstance(given, str) else list(given)
        c = self.conditional(target, g)
        rows = pd.MultiIndex.from_product([self.states[v] for v in g], names=g) if len(g) > 1 else \
            pd.Index(self.states[g[0]], name=g[0])
        return pd.DataFrame(c.reshape(len(rows), -1), index=rows,
                            columns=pd.Index(self.states[target], name=target))

    def __repr__(self) -> str:
        return f"DiscreteJoint({self.variables}, shape={self.prob.shape})"


def empirical_joint(data: pd.DataFrame | Mapping[str, Iterable[Any]], variables: Sequence[str] | None = None,
                    states: Mapping[str, Sequence[Any]] | None = None) -> DiscreteJoint:
    """Shorthand for :meth:`DiscreteJoint.from_data`."""
    return DiscreteJoint.from_data(data, variables, states)
