"""Contraction kernels of the Bayesian-network family against brute-force enumeration."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppl_models.errors import QueryError
from ppl_models.kernels import bayesnet as K


def _random_factor_graph(rng, num_vars=6, num_factors=7, max_scope=3):
    cards = [int(c) for c in rng.integers(2, 4, size=num_vars)]
    scopes = []
    for _ in range(num_factors):
        k = int(rng.integers(1, max_scope + 1))
        scopes.append(tuple(int(v) for v in rng.choice(num_vars, size=k, replace=False)))
    # every variable in some factor
    for v in range(num_vars):
        if not any(v in s for s in scopes):
            scopes.append((v,))
    logs = [np.log(rng.uniform(0.05, 1.0, size=[cards[v] for v in s])) for s in scopes]
    return cards, scopes, logs


def _assert_matches_joint(res, b, joint):
    """Evidence set ``b`` of a batched result equals brute force on its (unnormalised) joint."""
    n = joint.ndim
    np.testing.assert_allclose(float(res.log_evidence[b]), np.log(joint.sum()), rtol=1e-12)
    for v in range(n):
        other = tuple(u for u in range(n) if u != v)
        np.testing.assert_allclose(np.asarray(res.marginals[v][b]), joint.sum(axis=other) / joint.sum(),
                                   atol=1e-12)


def _brute_joint(cards, scopes, logs):
    """The unnormalized joint over all variables, by broadcasting every factor."""
    total = np.zeros(cards)
    for s, t in zip(scopes, logs):
        order = np.argsort(s)
        t = np.transpose(t, order)
        shape = [1] * len(cards)
        for v in sorted(s):
            shape[v] = cards[v]
        total = total + t.reshape(shape)
    return total


@pytest.mark.parametrize("optimize", ["auto", "min-fill", "min-weight", "greedy", "optimal"])
def test_log_contract_equals_enumeration(optimize):
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        for _ in range(3):
            cards, scopes, logs = _random_factor_graph(rng)
            joint = _brute_joint(cards, scopes, logs)
            for out in [(), (2,), (4, 0)]:
                plan = K.plan_contraction(scopes, cards, out, optimize=optimize)
                got = np.asarray(K.log_contract(plan, [jnp.asarray(t) for t in logs]))
                other = tuple(v for v in range(len(cards)) if v not in out)
                want = np.log(np.exp(joint).sum(axis=other))
                if len(out) == 2 and out[0] > out[1]:
                    want = want.T
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_node_marginals_equal_enumeration_with_evidence():
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        cards, scopes, logs = _random_factor_graph(rng, num_vars=5, num_factors=6)
        n = len(cards)
        plan = K.plan_contraction(list(scopes) + [(v,) for v in range(n)], cards, ())
        values = np.array([1, -1, 0, -1, -1])
        vectors = K.evidence_log_vectors(jnp.asarray(values), cards)
        res = K.node_marginals(plan, [jnp.asarray(t) for t in logs], vectors)
        joint = np.exp(_brute_joint(cards, scopes, logs))
        index = tuple(slice(None) if x < 0 else int(x) for x in values)
        mask = np.zeros(cards)
        mask[index] = 1.0
        joint = joint * mask
        np.testing.assert_allclose(float(res.log_evidence), np.log(joint.sum()), rtol=1e-12)
        for v in range(n):
            other = tuple(u for u in range(n) if u != v)
            want = joint.sum(axis=other) / joint.sum()
            np.testing.assert_allclose(np.asarray(res.marginals[v]), want, atol=1e-12)


def test_max_contract_finds_the_enumerated_argmax():
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        for _ in range(4):
            cards, scopes, logs = _random_factor_graph(rng)
            plan = K.plan_contraction(scopes, cards, ())
            res = K.max_contract(plan, [jnp.asarray(t) for t in logs])
            joint = _brute_joint(cards, scopes, logs)
            best = np.unravel_index(np.argmax(joint), joint.shape)
            np.testing.assert_allclose(float(res.log_joint), joint.max(), rtol=1e-12)
            assert tuple(int(x) for x in res.assignment) == tuple(int(b) for b in best)


def test_contraction_is_stable_in_float32_for_long_products():
    # 200 binary variables in a chain, each factor ~1e-3: the joint is ~1e-600, far below the
    # float32 range; the scaled contraction must still give the right log.
    n = 200
    cards = [2] * n
    scopes = [(i, i + 1) for i in range(n - 1)]
    table = np.log(np.array([[1e-3, 2e-3], [3e-3, 4e-3]]))
    plan = K.plan_contraction(scopes, cards, ())
    got = float(K.log_contract(plan, [jnp.asarray(table, jnp.float32)] * (n - 1)))
    # exact value by a float64 transfer-matrix product in log space
    with np.errstate(divide="ignore"):
        msg = np.zeros(2)
        for _ in range(n - 1):
            msg = np.logaddexp.reduce(msg[:, None] + table, axis=0)
    want = np.logaddexp.reduce(msg)
    assert np.isfinite(got)
    assert abs(got - want) < 1e-3 * abs(want)


def test_evidence_log_vectors():
    vecs = K.evidence_log_vectors(jnp.asarray([1, -1]), [3, 2])
    np.testing.assert_array_equal(np.asarray(vecs[0]), [-np.inf, 0.0, -np.inf])
    np.testing.assert_array_equal(np.asarray(vecs[1]), [0.0, 0.0])


def test_memory_refusal_carries_the_estimate():
    cards = [2] * 40
    scopes = [(i, i + 1) for i in range(39)]
    plan = K.plan_contraction(scopes, cards, tuple(range(40)))  # a joint over 2^40 states
    assert plan.largest_intermediate == 2**40
    with pytest.raises(K.ContractionTooLargeError) as err:
        K.check_memory(plan, batch_size=1, itemsize=4, memory_limit=2**30)
    assert err.value.required_bytes == K.required_bytes(plan, 1, 4) > 2**30
    assert "TiB" in str(err.value) and "memory limit" in str(err.value)
    assert isinstance(err.value, QueryError)
    small = K.plan_contraction(scopes, cards, ())
    assert K.check_memory(small, 1000, 4, memory_limit=2**30) > 0


def test_elimination_orders_cover_the_non_kept_variables():
    rng = np.random.default_rng(4)
    cards, scopes, _ = _random_factor_graph(rng, num_vars=8, num_factors=9)
    for heuristic in ["min-fill", "min-weight"]:
        order = K.elimination_order(scopes, cards, keep=(3,), heuristic=heuristic)
        assert sorted(order) == [v for v in range(8) if v != 3]
    with pytest.raises(QueryError, match="heuristic"):
        K.elimination_order(scopes, cards, heuristic="random")


def test_ancestral_sample_matches_the_chain_marginals():
    # a -> b -> c
    pa = np.array([0.3, 0.7])
    pb = np.array([[0.9, 0.1], [0.2, 0.8]])
    pc = np.array([[0.5, 0.5], [0.1, 0.9]])
    logs = [jnp.log(jnp.asarray(t, jnp.float32)) for t in (pa, pb, pc)]
    draws = np.asarray(K.ancestral_sample(jax.random.PRNGKey(0), logs, ((), (0,), (1,)),
                                          (0, 1, 2), 200_000))
    assert draws.shape == (200_000, 3) and draws.dtype == np.int32
    joint = pa[:, None, None] * pb[:, :, None] * pc[None, :, :]
    freq = np.zeros((2, 2, 2))
    np.add.at(freq, tuple(draws.T), 1)
    freq /= len(draws)
    se = np.sqrt(joint * (1 - joint) / len(draws))
    assert np.all(np.abs(freq - joint) < 5 * se + 1e-9)


def test_complete_log_likelihood_is_the_sum_of_table_lookups():
    rng = np.random.default_rng(5)
    pa = rng.dirichlet(np.ones(3))
    pb = rng.dirichlet(np.ones(2), size=3)
    values = np.array([[0, 1], [2, 0], [1, 1]])
    got = np.asarray(K.complete_log_likelihood([jnp.log(pa), jnp.log(pb)], ((), (0,)), jnp.asarray(values)))
    want = [np.log(pa[a]) + np.log(pb[a, b]) for a, b in values]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_plan_rejects_outputs_outside_every_factor():
    with pytest.raises(QueryError, match="appear in no factor"):
        K.plan_contraction([(0, 1)], [2, 2, 2], (2,))


def test_brute_force_helper_is_itself_exact():
    # guard the reference: a two-factor product enumerated by hand
    cards, scopes = [2, 3], [(0,), (1, 0)]
    logs = [np.log([0.4, 0.6]), np.log(np.arange(1, 7).reshape(3, 2) / 10.0)]
    joint = _brute_joint(cards, scopes, logs)
    for a, b in itertools.product(range(2), range(3)):
        assert np.isclose(joint[a, b], logs[0][a] + logs[1][b, a])


@pytest.mark.parametrize("optimize", ["auto", "min-fill", "greedy"])
def test_batched_node_marginals_equal_enumeration_per_evidence_set(optimize):
    rng = np.random.default_rng(6)
    with jax.enable_x64(True):
        cards, scopes, logs = _random_factor_graph(rng, num_vars=5, num_factors=6)
        n = len(cards)
        codes = np.array([[1, -1, 0, -1, -1], [-1, -1, -1, -1, -1], [0, 1, 1, 0, 1],
                          [-1, 2 % cards[1], -1, -1, 0]])
        batch = len(codes)
        plan = K.plan_contraction(list(scopes) + [(v, n) for v in range(n)], cards + [batch], (n,),
                                  optimize=optimize)
        tables = [jnp.exp(jnp.asarray(t)) for t in logs]
        vectors = K.batched_indicators(jnp.asarray(codes), cards)
        assert vectors[0].shape == (cards[0], batch)
        res = K.batched_node_marginals(plan, tables, vectors, n)
        assert res.log_evidence.shape == (batch,)
        full = np.exp(_brute_joint(cards, scopes, logs))
        for b, row in enumerate(codes):
            index = tuple(slice(None) if x < 0 else int(x) for x in row)
            mask = np.zeros(cards)
            mask[index] = 1.0
            _assert_matches_joint(res, b, full * mask)
        with pytest.raises(QueryError, match="batch variable"):
            K.batched_scaled_contract(K.plan_contraction(scopes, cards, ()), tables, n)


def test_batched_contraction_rescales_each_evidence_set_in_float32():
    # a 60-variable chain: every set's log-evidence (about -400) is far below the float32
    # range, and the sets differ by tens of nats; each must still come out right, and an
    # impossible set must give -inf without touching the others.
    n = 60
    cards = [2] * n
    table = np.array([[1e-3, 2e-3], [3e-3, 4e-3]], np.float32)
    scopes = [(i, i + 1) for i in range(n - 1)]
    codes = np.full((3, n), -1)
    codes[1, ::2] = 0
    codes[2, :] = 1
    zero = table.copy()
    zero[1, 1] = 0.0  # state 1 followed by 1 is impossible in the last factor
    tables = [jnp.asarray(table)] * (n - 2) + [jnp.asarray(zero)]
    plan = K.plan_contraction(scopes + [(v, n) for v in range(n)], cards + [3], (n,))
    vectors = K.batched_indicators(jnp.asarray(codes), cards, jnp.float32)
    res = jax.jit(lambda t, v: K.batched_node_marginals(plan, t, v, n))(tables, vectors)
    got = np.asarray(res.log_evidence)

    def chain(row):
        with np.errstate(divide="ignore"):
            msg = np.where((row[0] < 0) | (np.arange(2) == row[0]), 0.0, -np.inf)
            for i in range(n - 1):
                t = np.log(np.asarray(tables[i], np.float64))
                ev = np.where((row[i + 1] < 0) | (np.arange(2) == row[i + 1]), 0.0, -np.inf)
                msg = np.logaddexp.reduce(msg[:, None] + t, axis=0) + ev
            return np.logaddexp.reduce(msg)

    for b in range(2):
        want = chain(codes[b])
        assert abs(got[b] - want) < 1e-4 * abs(want), (b, got[b], want)
    assert got[2] == -np.inf
    marg = np.asarray(res.marginals[n // 2])
    assert np.all(np.isfinite(marg[:2])) and np.allclose(marg[:2].sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("optimize", ["auto", "min-fill", "greedy"])
def test_minor_batched_marginals_equal_enumeration_and_the_gradient_path(optimize):
    # the explicit two-pass schedule (batch minor) against brute force and jax.grad's answer,
    # on random factor graphs whose steps mix tables, messages and several operands over the
    # same variables; with soft evidence (likelihood vectors) in some sets.
    rng = np.random.default_rng(11)
    with jax.enable_x64(True):
        for trial in range(3):
            cards, scopes, logs = _random_factor_graph(rng, num_vars=6, num_factors=8)
            n = len(cards)
            batch = 5
            codes = np.full((batch, n), -1)
            codes[0, [1, 3]] = [0, 1 % cards[3]]
            codes[2, :] = [int(rng.integers(c)) for c in cards]
            codes[3, 0] = cards[0] - 1
            plan = K.plan_contraction(list(scopes) + [(v, n) for v in range(n)], cards + [batch], (n,),
                                      optimize=optimize)
            tables = [jnp.exp(jnp.asarray(t)) for t in logs]
            vectors = K.batched_indicators(jnp.asarray(codes), cards)
            # set 4: soft evidence on variable 2
            soft = rng.uniform(0.1, 1.0, size=cards[2])
            vectors[2] = vectors[2].at[:, 4].set(jnp.asarray(soft))
            res = K.minor_batched_marginals(plan, tables, vectors, n)
            ref = K.batched_node_marginals(plan, tables, vectors, n)
            fwd = K.minor_batched_marginals(plan, tables, vectors, n, marginals=False)
            assert fwd.marginals == ()
            np.testing.assert_allclose(np.asarray(fwd.log_evidence), np.asarray(res.log_evidence), rtol=1e-13)
            full = np.exp(_brute_joint(cards, scopes, logs))
            for b in range(batch):
                weight = np.ones(cards)
                for v in range(n):
                    shape = [1] * n
                    shape[v] = cards[v]
                    weight = weight * np.asarray(vectors[v][:, b]).reshape(shape)
                _assert_matches_joint(res, b, full * weight)
            for v in range(n):
                assert res.marginals[v].shape == (batch, cards[v])
                np.testing.assert_allclose(np.asarray(res.marginals[v]), np.asarray(ref.marginals[v]), atol=1e-12)


def test_minor_batched_marginals_rescale_each_set_in_float32_and_refuse_bad_plans():
    # the 60-variable chain of the test above: log-evidence ~ -400 per set, one impossible set
    n = 60
    cards = [2] * n
    table = np.array([[1e-3, 2e-3], [3e-3, 4e-3]], np.float32)
    zero = table.copy()
    zero[1, 1] = 0.0
    tables = [jnp.asarray(table)] * (n - 2) + [jnp.asarray(zero)]
    scopes = [(i, i + 1) for i in range(n - 1)]
    codes = np.full((3, n), -1)
    codes[1, ::2] = 0
    codes[2, :] = 1
    plan = K.plan_contraction(scopes + [(v, n) for v in range(n)], cards + [3], (n,))
    vectors = K.batched_indicators(jnp.asarray(codes), cards, jnp.float32)
    res = jax.jit(lambda t, v: K.minor_batched_marginals(plan, t, v, n))(tables, vectors)
    ref = jax.jit(lambda t, v: K.batched_node_marginals(plan, t, v, n))(tables, vectors)
    got = np.asarray(res.log_evidence)
    assert np.all(np.isfinite(got[:2])) and got[2] == -np.inf
    np.testing.assert_allclose(got[:2], np.asarray(ref.log_evidence)[:2], rtol=1e-5)
    for v in range(n):
        m = np.asarray(res.marginals[v])
        np.testing.assert_allclose(m[:2], np.asarray(ref.marginals[v])[:2], atol=1e-5)
        assert np.allclose(m[:2].sum(axis=1), 1.0, atol=1e-5)
        assert np.all(np.isnan(m[2]))
    with pytest.raises(QueryError, match="batch variable"):
        K.minor_batched_marginals(K.plan_contraction(scopes, cards, ()), tables, vectors, n)
    with pytest.raises(QueryError, match="operands"):
        K.minor_batched_marginals(plan, tables[:-1], vectors, n)
