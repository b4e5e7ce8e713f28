"""Exact joint / marginal / conditional tables, and Bayes' rule."""

from __future__ import annotations

import numpy as np
import pytest

from ppl_models.errors import DataError, QueryError
from ppl_models.queries import DiscreteJoint, conditional, marginal

SEED_POINTS = {"x": [1, 1, 2, 2], "y": [0, 1, 0, 0]}


def test_seed_example_exact_tables():
    joint = DiscreteJoint.from_data(SEED_POINTS)
    assert joint.states == {"x": [1, 2], "y": [0, 1]}
    assert joint.prob.tolist() == [[0.25, 0.25], [0.5, 0.0]]
    assert joint.conditional("y", given="x").tolist() == [[0.5, 0.5], [1.0, 0.0]]
    assert joint.marginal("x").prob.tolist() == [0.5, 0.5]
    assert joint.marginal("y").prob.tolist() == [0.75, 0.25]
    assert joint.probability(x=2, y=0) == 0.5
    # the reverse direction, p(x | y): y = 1 was only seen with x = 1
    assert joint.conditional("x", given="y").tolist() == [[1 / 3, 2 / 3], [1.0, 0.0]]
    table = joint.conditional_table("y", "x")
    assert table.loc[2, 0] == 1.0 and table.loc[1, 1] == 0.5


def test_bayes_rule_equals_definition_on_random_tables():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(24)).reshape(2, 3, 4)
    cond = conditional(p, axis=2)
    np.testing.assert_allclose(cond, p / p.sum(axis=2, keepdims=True))
    np.testing.assert_allclose(marginal(p, (0, 2)), p.sum(axis=(0, 2)))
    # log space gives the same answer
    np.testing.assert_allclose(np.exp(conditional(np.log(p), axis=2, log=True)), cond, rtol=1e-12)
    np.testing.assert_allclose(np.exp(marginal(np.log(p), 1, log=True)), p.sum(axis=1), rtol=1e-12)


def test_log_conditional_is_stable_and_jax_compatible():
    import jax
    import jax.numpy as jnp

    logits = jnp.array([[-1000.0, -1001.0], [5.0, 5.0]])
    out = jax.jit(lambda t: conditional(t, -1, log=True))(logits)
    np.testing.assert_allclose(np.exp(np.asarray(out)), [[1 / (1 + np.exp(-1)), 1 / (1 + np.e)], [0.5, 0.5]], rtol=1e-4)  # float32 at magnitude 1000


def test_zero_probability_given_is_nan():
    p = np.array([[0.5, 0.5], [0.0, 0.0]])
    out = conditional(p, 1)
    assert np.isnan(out[1]).all() and out[0].tolist() == [0.5, 0.5]


def test_errors_name_the_problem():
    joint = DiscreteJoint.from_data(SEED_POINTS)
    with pytest.raises(QueryError, match="unknown variable 'z'"):
        joint.marginal("z")
    with pytest.raises(QueryError, match="unknown state 3"):
        joint.probability(x=3)
    with pytest.raises(DataError, match="variables"):
        DiscreteJoint.from_data(SEED_POINTS, variables=["x", "w"])
    with pytest.raises(DataError, match="states"):
        DiscreteJoint.from_data(SEED_POINTS, states={"x": [1]})
    with pytest.raises(DataError, match="prob"):
        DiscreteJoint(np.array([0.5, 0.6]), ["a"], {"a": [0, 1]})
