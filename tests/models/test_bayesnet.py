"""The Bayesian-network family: declaration, BIF, exact queries, sampling, learning."""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import warnings
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from ppl_models.errors import DataError, ModelError, QueryError
from ppl_models.models import bayesnet as bn
from ppl_models.models.bayesnet import BayesianNetwork, BIFError, read_bif, write_bif

BIF_DIR = Path(bn.__file__).resolve().parents[1] / "datasets" / "data" / "bif"
BUNDLED = sorted(BIF_DIR.glob("*.bif.gz"))


# --------------------------------------------------------------------------------------------
# fixtures and the brute-force reference
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def asia():
    return read_bif(BIF_DIR / "asia.bif.gz")


@pytest.fixture(scope="session")
def alarm():
    return read_bif(BIF_DIR / "alarm.bif.gz")


@pytest.fixture(scope="session")
def sprinkler():
    """A hand-declared network mixing the three CPT formats (DataFrame, dict, array)."""
    cloudy = pd.DataFrame([[0.5, 0.5]], columns=["no", "yes"])
    sprinkler = pd.DataFrame([[0.5, 0.5], [0.9, 0.1]],
                             index=pd.Index(["no", "yes"], name="cloudy"), columns=["off", "on"])
    rain = {"no": {"dry": 0.8, "wet": 0.2}, "yes": {"dry": 0.2, "wet": 0.8}}
    grass = np.array([[[1.0, 0.0], [0.1, 0.9]], [[0.1, 0.9], [0.01, 0.99]]])
    return BayesianNetwork(
        {"sprinkler": ["cloudy"], "rain": ["cloudy"], "grass": ["sprinkler", "rain"]},
        {"cloudy": cloudy, "sprinkler": sprinkler, "rain": rain, "grass": grass},
        states={"grass": ["dry", "wet"]}, name="sprinkler")


def brute_joint(net: BayesianNetwork) -> np.ndarray:
    """The full joint over all nodes (axes in ``net.nodes`` order) by broadcasting the CPTs."""
    idx = {v: i for i, v in enumerate(net.nodes)}
    cards = [len(net.states[v]) for v in net.nodes]
    joint = np.ones(cards)
    for v in net.nodes:
        scope = [idx[p] for p in net.parents[v]] + [idx[v]]
        t = net.cpt_array(v, normalized=True)
        order = np.argsort(scope)
        t = np.transpose(t, order)
        shape = [1] * len(cards)
        for a in sorted(scope):
            shape[a] = cards[a]
        joint = joint * t.reshape(shape)
    return joint


def brute_query(net, joint, targets, evidence):
    idx = {v: i for i, v in enumerate(net.nodes)}
    sub = joint.copy()
    for v, s in evidence.items():
        keep = np.zeros(joint.shape[idx[v]])
        keep[net.states[v].index(s)] = 1.0
        shape = [1] * joint.ndim
        shape[idx[v]] = -1
        sub = sub * keep.reshape(shape)
    other = tuple(i for i in range(joint.ndim) if net.nodes[i] not in targets)
    table = sub.sum(axis=other)
    # axes of `table` are the targets in node order; reorder to the requested order
    kept = [v for v in net.nodes if v in targets]
    table = np.transpose(table, [kept.index(t) for t in targets])
    return table / table.sum()


def random_evidence(net, rng, k, seed):
    row = net.sample(1, seed=seed).iloc[0]
    nodes = list(rng.choice(list(net.nodes), size=k, replace=False))
    return {v: row[v] for v in nodes}


# --------------------------------------------------------------------------------------------
# exact queries against enumeration and pgmpy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["sprinkler", "asia", "cancer", "survey"])
def test_queries_equal_brute_force_on_small_networks(which, request):
    net = request.getfixturevalue(which) if which in ("sprinkler", "asia") else \
        read_bif(BIF_DIR / f"{which}.bif.gz")
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        joint = brute_joint(net)
        assert np.isclose(joint.sum(), 1.0)
        evidences = [{}] + [random_evidence(net, rng, k, seed) for seed, k in enumerate([1, 2, 3])]
        for ev in evidences:
            for t in net.nodes:
                got = net.query(t, ev)["probability"].to_numpy()
                np.testing.assert_allclose(got, brute_query(net, joint, [t], ev), atol=1e-12)
            free = [v for v in net.nodes if v not in ev]
            pair = [free[-1], [v for v in net.nodes if v != free[-1]][0]]
            got = net.query(pair, ev)["probability"].to_numpy()
            np.testing.assert_allclose(got, brute_query(net, joint, pair, ev).reshape(-1), atol=1e-12)
        # all marginals of many evidence sets in one call
        frame = pd.DataFrame(evidences[1:])
        allm = net.marginals_batch(frame)
        for r, ev in enumerate(evidences[1:]):
            for t in net.nodes:
                np.testing.assert_allclose(allm[t].iloc[r].to_numpy(), brute_query(net, joint, [t], ev),
                                           atol=1e-12)
        # the batched call gives the same numbers as the single ones
        for t in [net.nodes[0], net.nodes[-1]]:
            batch = net.query_batch(t, frame)
            for r, ev in enumerate(evidences[1:]):
                clean = {k: v for k, v in ev.items()}
                np.testing.assert_allclose(batch.iloc[r].to_numpy(),
                                           brute_query(net, joint, [t], clean), atol=1e-12)


def test_encoding_is_the_same_for_every_column_kind(asia):
    rows = asia.sample(50, seed=8).astype(object)
    rows = rows.mask(np.random.default_rng(2).random(rows.shape) < 0.3)
    want = asia.encode(rows)  # object columns, None where missing
    assert (want == -1).any() and (want >= 0).any()
    as_str = rows.astype("string[pyarrow]")
    assert isinstance(as_str.dtypes.iloc[0], pd.StringDtype)
    np.testing.assert_array_equal(asia.encode(as_str), want)
    cats = rows.astype(pd.CategoricalDtype(["no", "yes"]))  # categories in another order
    np.testing.assert_array_equal(asia.encode(cats), want)
    ev_nodes, codes, _ = asia._encode_evidence(as_str)
    np.testing.assert_array_equal(codes, want[:, [asia.nodes.index(v) for v in ev_nodes]])
    bad = as_str.copy()
    bad.loc[3, "xray"] = "maybe"
    with pytest.raises(DataError, match=r"data\['xray'\].*'maybe' in row 3"):
        asia.encode(bad)
    with pytest.raises(QueryError, match=r"evidence xray='maybe'"):
        asia.marginals_batch(bad)


def test_whole_frame_string_encoding_equals_the_per_column_path(alarm):
    # pyarrow string columns are looked up all at once among the state names of every node;
    # alarm's nodes have different state names, so a name that belongs to another node must
    # still be refused, naming the node and the value
    rows = alarm.sample(40, seed=3).astype(object)
    rows = rows.mask(np.random.default_rng(4).random(rows.shape) < 0.6)
    as_str = rows.astype("string[pyarrow]")
    nodes = list(as_str.columns)
    fast = alarm._encode_arrow_frame(as_str, nodes)
    assert fast is not None and fast.shape == (40, len(nodes)) and (fast == -1).any()
    per_column = np.stack([alarm._encode_column(v, rows[v], "evidence") for v in nodes], axis=1)
    np.testing.assert_array_equal(fast, per_column)
    np.testing.assert_array_equal(alarm.encode(as_str), alarm.encode(rows))
    bad = as_str.copy()
    names = {str(s) for v in alarm.nodes for s in alarm.states[v]}
    node, other = next((v, s) for v in nodes for s in sorted(names) if s not in map(str, alarm.states[v]))
    bad.loc[bad.index[5], node] = other  # a state of another node, not of this one
    assert alarm._encode_arrow_frame(bad, nodes) is None
    with pytest.raises(QueryError, match=rf"evidence {node}='{other}'"):
        alarm.marginals_batch(bad)
    bad.loc[bad.index[5], node] = "NOWHERE"  # no node's state
    assert alarm._encode_arrow_frame(bad, nodes) is None
    with pytest.raises(QueryError, match=rf"evidence {node}='NOWHERE'"):
        alarm.marginals_batch(bad)


def test_marginals_and_log_probability_with_missing_values(asia):
    with jax.enable_x64(True):
        joint = brute_joint(asia)
        ev = {"smoke": "yes", "xray": "yes"}
        margs = asia.marginals(ev)
        for v in asia.nodes:
            np.testing.assert_allclose(margs[v].to_numpy(), brute_query(asia, joint, [v], ev), atol=1e-12)
        data = asia.sample(20, seed=3).astype(object)
        data.iloc[::2, 2] = None
        data.iloc[::3, 5] = None
        data.iloc[1, :] = None
        got = asia.log_probability(data)
        idx = {v: i for i, v in enumerate(asia.nodes)}
        for r in range(len(data)):
            sl = [slice(None)] * joint.ndim
            for v in asia.nodes:
                s = data.iloc[r][v]
                if s is not None and not pd.isna(s):
                    sl[idx[v]] = asia.states[v].index(s)
            np.testing.assert_allclose(got[r], np.log(joint[tuple(sl)].sum()), atol=1e-12)


def test_map_query_equals_enumerated_argmax(asia, sprinkler):
    with jax.enable_x64(True):
        for net, evs in [(asia, [{}, {"dysp": "yes"}, {"xray": "yes", "smoke": "no"}]),
                         (sprinkler, [{}, {"grass": "wet"}])]:
            joint = brute_joint(net)
            for ev in evs:
                got = net.map_query(ev)
                masked = joint.copy()
                for v, s in ev.items():
                    keep = np.zeros(joint.shape[net.nodes.index(v)], bool)
                    keep[net.states[v].index(s)] = True
                    shape = [1] * joint.ndim
                    shape[net.nodes.index(v)] = -1
                    masked = masked * keep.reshape(shape)
                best = np.unravel_index(np.argmax(masked), masked.shape)
                want = {v: net.states[v][i] for v, i in zip(net.nodes, best)}
                assert got == want
            # marginal MAP of two nodes
            got = net.map_query({}, targets=[net.nodes[0], net.nodes[-1]])
            table = brute_query(net, joint, [net.nodes[0], net.nodes[-1]], {})
            a, b = np.unravel_index(np.argmax(table), table.shape)
            assert got == {net.nodes[0]: net.states[net.nodes[0]][a], net.nodes[-1]: net.states[net.nodes[-1]][b]}


def _pgmpy_model(path):
    pytest.importorskip("pgmpy")
    from pgmpy.readwrite import BIFReader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BIFReader(string=gzip.open(path, "rt").read()).get_model()
    # Like ours, compare on tables whose rows sum to one (alarm's are off by up to 1e-7).
    for cpd in model.get_cpds():
        cpd.normalize()
    return model


def _masked_log_joint(net, joint, evidence):
    """``log p(x, evidence)`` over the full joint (``-inf`` off the evidence)."""
    masked = joint.copy()
    for v, s in evidence.items():
        keep = np.zeros(joint.shape[net.nodes.index(v)])
        keep[net.states[v].index(s)] = 1.0
        shape = [1] * joint.ndim
        shape[net.nodes.index(v)] = -1
        masked = masked * keep.reshape(shape)
    with np.errstate(divide="ignore"):
        return np.log(masked)


@pytest.mark.parametrize("name,num_sets", [("asia", 10), ("sachs", 6)])
def test_mpe_equals_brute_force_and_pgmpy_map_query(name, num_sets):
    """The MPE over all nodes against enumeration of the joint and pgmpy's map_query.

    pgmpy's ``map_query`` must be given ``variables`` = every non-evidence node: called without
    it, pgmpy 1.1 multiplies its *unreduced* CPTs (the evidence is silently dropped) and returns
    the prior mode over all nodes, evidence nodes included, e.g. ``dysp = no`` given
    ``dysp = yes`` on asia. That is the difference an exploratory script once saw.
    """
    net = read_bif(BIF_DIR / f"{name}.bif.gz")
    model = _pgmpy_model(BIF_DIR / f"{name}.bif.gz")
    from pgmpy.inference import VariableElimination

    ve = VariableElimination(model)
    rng = np.random.default_rng(11)
    evidences = [{}, *(random_evidence(net, rng, int(rng.integers(1, 5)), 300 + i)
                       for i in range(num_sets - 1))]
    if name == "asia":
        evidences.append({"dysp": "yes"})

    def log_p(log_joint, assignment):
        return float(log_joint[tuple(net.states[v].index(assignment[v]) for v in net.nodes)])

    with jax.enable_x64(True):
        joint = brute_joint(net)
        batch = net.map_query_batch(pd.DataFrame(evidences, index=range(len(evidences))),
                                    return_log_probability=True)
        for r, ev in enumerate(evidences):
            log_joint = _masked_log_joint(net, joint, ev)
            ours = net.map_query(ev)
            assert set(ours) == set(net.nodes)
            assert all(ours[v] == s for v, s in ev.items()), (ev, ours)
            best = float(log_joint.max())
            # the assignment attains the maximum (a tie may pick another maximizer)
            np.testing.assert_allclose(log_p(log_joint, ours), best, atol=1e-9, rtol=0)
            row = batch.iloc[r]
            assert {v: row[v] for v in net.nodes} == ours
            np.testing.assert_allclose(row["log_probability"], best, atol=1e-9, rtol=0)
            free = [v for v in net.nodes if v not in ev]
            theirs = ve.map_query(variables=free, evidence=ev, show_progress=False)
            theirs = {**theirs, **ev}
            if theirs != ours:  # only a tie may separate the two answers
                np.testing.assert_allclose(log_p(log_joint, theirs), log_p(log_joint, ours),
                                           atol=1e-9, rtol=0)
        if name == "asia":
            # the pitfall: without `variables` pgmpy ignores the evidence (the prior mode)
            prior = ve.map_query(evidence={"dysp": "yes"}, show_progress=False)
            assert prior["dysp"] == "no"
            assert prior == net.map_query({})
            assert net.map_query({"dysp": "yes"})["dysp"] == "yes"


@pytest.mark.parametrize("name,num_sets", [("asia", 12), ("alarm", 12)])
def test_queries_equal_pgmpy_variable_elimination(name, num_sets, request):
    net = request.getfixturevalue(name)
    model = _pgmpy_model(BIF_DIR / f"{name}.bif.gz")
    from pgmpy.inference import VariableElimination

    ve = VariableElimination(model)
    rng = np.random.default_rng(7)
    evidences = [random_evidence(net, rng, int(rng.integers(1, 6)), 100 + i) for i in range(num_sets)]
    targets = [[v for v in net.nodes if v not in ev][int(rng.integers(0, len(net.nodes) - len(ev)))]
               for ev in evidences]
    with jax.enable_x64(True):
        batch = net.query_batch(net.nodes[0], pd.DataFrame(evidences))  # warm + batched path
        assert batch.shape == (num_sets, len(net.states[net.nodes[0]]))
        for ev, t in zip(evidences, targets):
            ours = net.query(t, ev)["probability"].to_numpy()
            f = ve.query([t], evidence=ev, show_progress=False)
            theirs = np.array([f.values[f.state_names[t].index(s)] for s in net.states[t]])
            np.testing.assert_allclose(ours, theirs, atol=1e-9, rtol=0)
        # a joint of two nodes
        ev = evidences[0]
        free = [v for v in net.nodes if v not in ev]
        pair = [free[0], free[-1]]
        ours = net.query(pair, ev)["probability"].to_numpy().reshape(
            len(net.states[pair[0]]), len(net.states[pair[1]]))
        f = ve.query(pair, evidence=ev, show_progress=False)
        f = f.copy()
        f.reorder = None
        vals = np.zeros_like(ours)
        for i, s in enumerate(net.states[pair[0]]):
            for j, u in enumerate(net.states[pair[1]]):
                vals[i, j] = f.get_value(**{pair[0]: s, pair[1]: u})
        np.testing.assert_allclose(ours, vals, atol=1e-9, rtol=0)


def test_memory_refusal_instead_of_a_crash(alarm):
    # the joint over all 37 alarm nodes has ~1e16 entries
    with pytest.raises(bn.ContractionTooLargeError, match="memory limit") as err:
        alarm.query(list(alarm.nodes))
    assert err.value.required_bytes > err.value.limit_bytes
    with pytest.raises(bn.ContractionTooLargeError):
        alarm.query("HR", {"CVP": "LOW"}, memory_limit=1000)


# --------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------


def test_forward_sampling_frequencies_match_the_marginals(asia):
    df = asia.sample(100_000, seed=0)
    assert list(df.columns) == list(asia.nodes) and len(df) == 100_000
    assert all(isinstance(df[c].dtype, pd.CategoricalDtype) for c in df.columns)
    joint = brute_joint(asia)
    for v in asia.nodes:
        p = brute_query(asia, joint, [v], {})
        freq = df[v].value_counts(normalize=True).reindex(list(asia.states[v])).to_numpy()
        se = np.sqrt(p * (1 - p) / len(df))
        assert np.all(np.abs(freq - p) < 5 * se + 1e-12), v
    # pairwise: smoke and lung
    table = pd.crosstab(df["smoke"], df["lung"], normalize=True).to_numpy()
    want = brute_query(asia, joint, ["smoke", "lung"], {})
    assert np.abs(table - want).max() < 0.006
    # deterministic node: either = lung or tub, always
    either = (df["lung"] == "yes") | (df["tub"] == "yes")
    assert ((df["either"] == "yes") == either).all()
    assert asia.sample(10, seed=1).equals(asia.sample(10, seed=1))


# --------------------------------------------------------------------------------------------
# BIF
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", BUNDLED, ids=[p.name for p in BUNDLED])
def test_bif_round_trip_is_lossless(path, tmp_path):
    net = read_bif(path)
    text = net.to_bif()
    again = read_bif(text)
    assert again == net
    for v in net.nodes:
        assert np.array_equal(again.cpt_array(v), net.cpt_array(v))
        assert again.states[v] == net.states[v] and again.parents[v] == net.parents[v]
    out = tmp_path / (path.name)
    write_bif(net, out)
    assert read_bif(out) == net
    assert read_bif(out).to_bif() == text


def test_bif_matches_pgmpy_reading(alarm):
    model = _pgmpy_model(BIF_DIR / "alarm.bif.gz")
    assert set(model.nodes()) == set(alarm.nodes)
    assert set(model.edges()) == set(alarm.edges)
    cpd = model.get_cpds("HR")
    for v in alarm.parents["HR"]:
        assert list(cpd.state_names[v]) == list(alarm.states[v])


GOOD = """network tiny {
}
variable a {
  type discrete [ 2 ] { yes, no };
}
variable b {
  type discrete [ 2 ] { on, off };
}
probability ( a ) {
  table 0.3, 0.7;
}
probability ( b | a ) {
  (yes) 0.9, 0.1;
  (no) 0.2, 0.8;
}
"""


def test_bif_extras_comments_default_and_conditional_table():
    text = GOOD.replace("probability ( b | a ) {\n  (yes) 0.9, 0.1;\n  (no) 0.2, 0.8;\n}",
                        "probability ( b | a ) { // a comment\n  (yes) 0.9, 0.1;\n  default 0.2, 0.8;\n"
                        "  property note = \"kept\" ;\n}")
    text = "/* block\ncomment */\n" + text
    net = read_bif(text)
    np.testing.assert_array_equal(net.cpt_array("b"), [[0.9, 0.1], [0.2, 0.8]])
    assert net.properties["b"] == ['property note = "kept" ;']
    # a conditional 'table' lists the child slowest (pgmpy's writer convention)
    t2 = GOOD.replace("(yes) 0.9, 0.1;\n  (no) 0.2, 0.8;", "table 0.9, 0.2, 0.1, 0.8;")
    np.testing.assert_array_equal(read_bif(t2).cpt_array("b"), [[0.9, 0.1], [0.2, 0.8]])
    assert read_bif(GOOD).name == "tiny"


@pytest.mark.parametrize("bad,line,fragment", [
    (GOOD.replace("[ 2 ] { yes, no }", "[ 3 ] { yes, no }"), 4, "3 state names"),
    (GOOD.replace("(no) 0.2, 0.8;", "(maybe) 0.2, 0.8;"), 14, "'maybe'"),
    (GOOD.replace("(no) 0.2, 0.8;", "(no) 0.2, 0.7;"), 12, "summing to one"),
    (GOOD.replace("(no) 0.2, 0.8;", "(no) 0.2, abc;"), 14, "'abc'"),
    (GOOD.replace("(no) 0.2, 0.8;", "(no) 0.2, 0.8"), 15, "';'"),
    (GOOD.replace("(no) 0.2, 0.8;", ""), 12, "no row for ('no',)"),
    (GOOD.replace("probability ( b | a )", "probability ( b | c )"), 12, "undeclared variable 'c'"),
    (GOOD.replace("table 0.3, 0.7;", "table 0.3, 0.7, 0.0;"), 10, "2 values"),
    (GOOD.replace("table 0.3, 0.7;", "table __import__('os'), 0.7;"), 10, "__import__"),
    (GOOD + "bogus\n", 16, "'bogus'"),
    (GOOD[:-3], 14, "the end of the file"),
])
def test_malformed_bif_gives_line_numbered_errors(bad, line, fragment):
    with pytest.raises(BIFError) as err:
        read_bif(bad)
    assert err.value.line == line, str(err.value)
    assert f"line {line}" in str(err.value) and fragment in str(err.value)
    assert isinstance(err.value, DataError)


def test_bif_cycle_names_the_line_of_the_block_that_closes_it():
    # a's block (line 9) now has the parent b, whose block (line 13) has the parent a
    cyclic = GOOD.replace("probability ( a ) {\n  table 0.3, 0.7;\n}",
                          "probability ( a | b ) {\n  (on) 0.3, 0.7;\n  (off) 0.5, 0.5;\n}")
    with pytest.raises(BIFError) as err:
        read_bif(cyclic)
    assert err.value.line == 13, str(err.value)
    assert "line 13" in str(err.value) and "cycle" in str(err.value)
    assert "a -> b -> a" in str(err.value) or "b -> a -> b" in str(err.value)
    assert "probability block of 'b'" in str(err.value)


def test_bif_that_is_not_utf8_names_the_file_line_and_byte(tmp_path):
    data = GOOD.encode().replace(b"{ on, off }", b"{ on, \xe9t\xe9 }")  # latin-1 'ete', line 7
    offset = data.index(b"\xe9")
    for name, payload in (("latin.bif", data), ("latin.bif.gz", gzip.compress(data))):
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(BIFError) as err:
            read_bif(path)
        msg = str(err.value)
        assert err.value.line == 7 and f"{name}, line 7" in msg, msg
        assert f"byte offset {offset}" in msg and "UTF-8" in msg and "\\xe9" in msg, msg
        assert isinstance(err.value, DataError)
    with open(tmp_path / "latin.bif", "rb") as fh:
        with pytest.raises(BIFError, match="line 7"):
            read_bif(fh)
    with open(tmp_path / "latin.bif", encoding="utf-8") as fh:  # text mode: no line to give
        with pytest.raises(BIFError, match="latin.bif.*UTF-8.*binary mode"):
            read_bif(fh)


def test_a_long_chain_declared_child_first_needs_no_recursion():
    n = 1500  # deeper than Python's default recursion limit of 1,000
    cond = np.array([[0.9, 0.1], [0.2, 0.8]])
    structure = {f"v{i}": [f"v{i - 1}"] for i in reversed(range(1, n))}
    cpts = {f"v{i}": cond for i in reversed(range(1, n))}
    cpts["v0"] = np.array([0.5, 0.5])
    states = {f"v{i}": ["lo", "hi"] for i in range(n)}
    net = BayesianNetwork(structure, cpts, states=states, name="chain")
    assert net.nodes == tuple(f"v{i}" for i in range(n))  # parents first
    back = read_bif(net.to_bif())  # the parser's own cycle check walks the chain too
    assert back == net
    structure["v0"] = [f"v{n - 1}"]  # close it into one cycle of all the nodes
    cpts["v0"] = cond
    with pytest.raises(ModelError, match=rf"cycle of {n} nodes: v\d+ -> v\d+ -> .* -> v\d+") as err:
        BayesianNetwork(structure, cpts, states=states)
    assert len(str(err.value)) < 300  # shortened, not 1,500 names


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


def test_declaration_errors_name_the_node_and_value():
    root = {"yes": 0.5, "no": 0.5}
    cond = {"yes": {"yes": 0.9, "no": 0.1}, "no": {"yes": 0.2, "no": 0.8}}
    with pytest.raises(ModelError, match="cycle: (a -> b -> a|b -> a -> b)"):
        BayesianNetwork({"a": ["b"], "b": ["a"]}, {"a": cond, "b": cond})
    with pytest.raises(ModelError, match=r"CPT of 'b' does not sum to one given \{'a': 'no'\}.*1\.1"):
        BayesianNetwork({"b": ["a"]}, {"a": root, "b": {"yes": {"yes": 0.9, "no": 0.1},
                                                         "no": {"yes": 0.3, "no": 0.8}}})
    with pytest.raises(ModelError, match="CPT of 'a' does not sum to one"):
        BayesianNetwork(None, {"a": {"yes": 0.5, "no": 0.6}})
    with pytest.raises(ModelError, match=r"shape \(2,\).*need shape \(2, 2\)|shape \(2,\); its parents"):
        BayesianNetwork({"b": ["a"]}, {"a": root, "b": np.array([0.5, 0.5])},
                        states={"b": ["yes", "no"]})
    with pytest.raises(ModelError, match=r"'b' has a row for a='maybe'"):
        BayesianNetwork({"b": ["a"]}, {"a": root, "b": {"yes": {"yes": 1.0, "no": 0.0},
                                                         "maybe": {"yes": 0.2, "no": 0.8}}})
    with pytest.raises(ModelError, match=r"no row for the parent states \{'a': 'no'\}"):
        BayesianNetwork({"b": ["a"]}, {"a": root, "b": {"yes": {"yes": 1.0, "no": 0.0}}})
    with pytest.raises(ModelError, match="-0.1"):
        BayesianNetwork(None, {"a": {"yes": 1.1, "no": -0.1}})
    with pytest.raises(ModelError, match=r"\['c'\] appear in the structure but have no CPT"):
        BayesianNetwork([("c", "a")], {"a": root})


def test_query_errors_name_the_node_and_value(asia):
    with pytest.raises(QueryError, match=r"evidence smoke='maybe'.*states are \['yes', 'no'\]"):
        asia.query("lung", {"smoke": "maybe"})
    with pytest.raises(QueryError, match=r"evidence names the unknown node 'smoking'"):
        asia.query("lung", {"smoking": "yes"})
    with pytest.raises(QueryError, match=r"the query names the unknown node 'lungs'"):
        asia.query("lungs")
    with pytest.raises(QueryError, match="probability zero"):
        asia.query("asia", {"tub": "yes", "either": "no"})
    with pytest.raises(DataError, match=r"data\['smoke'\].*'often'"):
        asia.encode(pd.DataFrame({"smoke": ["yes", "often"]}))


# --------------------------------------------------------------------------------------------
# Bayesian learning of the tables
# --------------------------------------------------------------------------------------------

import jax.numpy as jnp  # noqa: E402
import numpyro  # noqa: E402

from ppl_models.datasets.networks import available_networks, load_network, load_network_sample  # noqa: E402


@pytest.fixture(scope="session")
def two_node():
    return BayesianNetwork({"b": ["a"]}, {"a": {"x": 0.3, "y": 0.7},
                                          "b": {"x": {"u": 0.9, "v": 0.1}, "y": {"u": 0.2, "v": 0.8}}},
                           name="two")


def test_rows_distribution_log_prob_is_the_exact_marginal(asia):
    data = asia.sample(40, seed=5).astype(object)
    data = data.mask(np.random.default_rng(0).random(data.shape) < 0.3)
    codes = asia.encode(data)
    tables = [jnp.asarray(asia.cpt_array(v, normalized=True)) for v in asia.nodes]
    with jax.enable_x64(True):
        d = bn.BayesNetRows(asia, [jnp.asarray(t, jnp.float64) for t in tables], has_missing=True)
        got = np.asarray(d.log_prob(jnp.asarray(codes)))
        np.testing.assert_allclose(got, asia.log_probability(data), atol=1e-10)
        complete = asia.encode(asia.sample(40, seed=6))
        fast = bn.BayesNetRows(asia, tables, has_missing=False).log_prob(jnp.asarray(complete))
        slow = d.log_prob(jnp.asarray(complete))
        np.testing.assert_allclose(np.asarray(fast), np.asarray(slow), atol=1e-10)
    draws = bn.BayesNetRows(asia, tables).sample(jax.random.PRNGKey(0), (3, 5))
    assert draws.shape == (3, 5, len(asia.nodes))


def test_program_sites_and_forward_simulation(two_node):
    tr = numpyro.handlers.trace(numpyro.handlers.seed(bn.bayesnet_model, 0)).get_trace(two_node, num_rows=7)
    assert tr["cpt_a"]["value"].shape == (1, 2)
    assert tr["cpt_b"]["value"].shape == (2, 2)
    assert tr["obs"]["value"].shape == (7, 2)
    assert set(np.unique(np.asarray(tr["obs"]["value"]))) <= {0, 1}
    with pytest.raises(DataError, match="num_rows"):
        numpyro.handlers.seed(bn.bayesnet_model, 0)(two_node)


def test_learned_tables_converge_to_the_generating_ones(asia):
    frame = asia.sample(200_000, seed=11)
    post = bn.fit_cpts(asia, frame, method="exact", num_draws=400, seed=0)
    for v in asia.nodes:
        truth = asia.cpt_array(v, normalized=True)
        mean = post.tables[v].mean(axis=0)
        sd = post.tables[v].std(axis=0)
        # rows seen in the data concentrate on the truth within a few posterior sd;
        # asia=yes is rare (1%), so its rows carry the widest intervals.
        assert np.all(np.abs(mean - truth) < 5 * sd + 2e-3), v
    small = bn.fit_cpts(asia, frame.iloc[:2000], method="exact", num_draws=400, seed=0)
    assert small.tables["smoke"].std(axis=0).max() > 5 * post.tables["smoke"].std(axis=0).max()
    with pytest.raises(DataError, match="missing"):
        bn.fit_cpts(asia, frame.iloc[:10].astype(object).mask(np.eye(10, 8, dtype=bool)), method="exact")


def test_exact_posterior_is_a_fit_matching_the_analytic_dirichlet(two_node):
    from scipy import stats

    from ppl_models.fit import Fit

    frame = two_node.sample(300, seed=21)
    num_chains, num_draws = 2, 2000
    post = bn.fit_cpts(two_node, frame, method="exact", num_draws=num_draws, num_chains=num_chains,
                       prior_concentration=1.5, seed=4)
    fit = post.fit
    assert isinstance(fit, Fit) and fit.method == "exact"
    assert (fit.num_chains, fit.num_draws) == (num_chains, num_draws)
    assert post.num_draws == num_chains * num_draws
    n = num_chains * num_draws
    summary = fit.summary()
    codes = two_node.encode(frame)
    for v in two_node.nodes:
        alpha = bn.count_table(two_node, codes, v).reshape(-1, len(two_node.states[v])) + 1.5
        a0 = alpha.sum(axis=-1, keepdims=True)
        mean = alpha / a0
        sd = np.sqrt(mean * (1 - mean) / (a0 + 1))
        draws = fit.get_samples()[bn.cpt_site(v)]
        assert draws.shape == (n,) + alpha.shape
        np.testing.assert_allclose(draws.mean(axis=0), mean, atol=float(4 * sd.max() / np.sqrt(n)))
        np.testing.assert_allclose(draws.std(axis=0), sd, rtol=0.1)
        rows = summary.loc[[k for k in summary.index if k.startswith(f"{bn.cpt_site(v)}[")]]
        np.testing.assert_allclose(rows["mean"].to_numpy(), mean.reshape(-1),
                                   atol=float(4 * sd.max() / np.sqrt(n)))
        # equal-tailed 89% intervals against the Beta marginals of the Dirichlet rows
        table = post.cpt_summary(v, ci_prob=0.89)
        b = stats.beta(alpha, a0 - alpha)
        for q, col in [(0.055, "lower"), (0.945, "upper")]:
            want = b.ppf(q)
            # Monte Carlo sd of a sample quantile: sqrt(q (1 - q) / n) / density at it
            tol = 4 * np.sqrt(q * (1 - q) / n) / b.pdf(want)
            got = table[col].to_numpy().reshape(want.shape)
            assert np.all(np.abs(got - want) < tol), (v, col, got, want)
    # ArviZ groups as after NUTS; the pointwise log-likelihood is that of each draw's tables
    tree = fit.to_arviz()
    assert {"posterior", "log_likelihood", "observed_data"} <= set(tree.children)
    assert tree["posterior"]["cpt_b"].dims == ("chain", "draw", "b_parents", "b_state")
    ll = tree["log_likelihood"]["obs"].values
    assert ll.shape == (num_chains, num_draws, len(frame))
    tables = {v: fit.samples[bn.cpt_site(v)][1, 7].reshape(two_node.cpt_array(v).shape)
              for v in two_node.nodes}
    np.testing.assert_allclose(ll[1, 7], two_node.with_cpts(tables).log_probability(frame), atol=1e-4)
    # posterior queries carry intervals; the exact p(a | b=u) lies inside for this much data
    q = post.query("a", {"b": "u"})
    exact = two_node.query("a", {"b": "u"})["probability"].to_numpy()
    assert np.all(q["lower"] <= q["plug_in"]) and np.all(q["plug_in"] <= q["upper"])
    assert np.all((q["lower"] < exact + 0.03) & (exact - 0.03 < q["upper"]))
    with pytest.raises(DataError, match="num_warmup"):
        bn.fit_cpts(two_node, frame, method="exact", num_warmup=10)
    with pytest.raises(DataError, match="num_chains"):
        bn.fit_cpts(two_node, frame, method="exact", num_chains=0)


def test_large_networks_share_dims_so_summaries_work(asia, alarm):
    md = bn.network_data(asia, asia.sample(5, seed=0))
    assert md.dims["cpt_either"] == ["either_parents", "either_state"]
    assert md.coords["either_parents"][0] == "lung=yes,tub=yes"
    frame = alarm.sample(300, seed=2)
    md = bn.network_data(alarm, frame)
    cpt_dims = {d for k, ds in md.dims.items() if k.startswith("cpt_") for d in ds}
    assert len(cpt_dims) + 2 <= 64  # chain and draw
    assert md.dims["cpt_HR"] == ["parent_configs_2", "states_3"]
    post = bn.fit_cpts(alarm, frame, method="exact", num_draws=20, num_chains=2)
    summary = post.fit.summary()
    assert len(summary) == sum(a.size for a in (alarm.cpt_array(v) for v in alarm.nodes))
    labelled = post.cpt_summary("HR")
    assert labelled.index.names == ["CATECHOL", "HR"]


def test_nuts_with_missing_values_recovers_the_tables(two_node):
    frame = two_node.sample(3000, seed=3).astype(object)
    frame = frame.mask(np.random.default_rng(1).random(frame.shape) < 0.2)
    post = bn.fit_cpts(two_node, frame, method="nuts", num_chains=2, num_warmup=300,
                       num_samples=300, seed=0)
    for v in two_node.nodes:
        truth = two_node.cpt_array(v)
        mean, sd = post.tables[v].mean(axis=0), post.tables[v].std(axis=0)
        assert np.all(np.abs(mean - truth) < 4 * sd), (v, mean, truth)
    # complete-case counting would have less information: the marginalized posterior is at
    # least as narrow as the one from the complete rows only
    complete = frame.dropna()
    cc = bn.fit_cpts(two_node, complete, method="exact", num_draws=2000)
    assert post.tables["a"].std(axis=0).max() < cc.tables["a"].std(axis=0).max()
    q = post.query("a", {"b": "u"})
    assert list(q.columns) == ["mean", "sd", "lower", "upper", "plug_in"]
    exact = two_node.query("a", {"b": "u"})["probability"].to_numpy()
    assert np.all((q["lower"] < exact + 0.03) & (exact - 0.03 < q["upper"]))
    assert np.all(q["lower"] <= q["mean"]) and np.all(q["mean"] <= q["upper"])


def test_svi_recovers_the_tables(two_node):
    frame = two_node.sample(3000, seed=4)
    post = bn.fit_cpts(two_node, frame, method="svi", num_steps=1500, learning_rate=0.05,
                       num_posterior_draws=200, seed=0)
    exact = bn.fit_cpts(two_node, frame, method="exact", num_draws=2000)
    for v in two_node.nodes:
        np.testing.assert_allclose(post.tables[v].mean(axis=0), exact.tables[v].mean(axis=0), atol=0.02)


def test_fits_start_at_the_available_case_posterior_mean(two_node):
    frame = two_node.sample(400, seed=8).astype(object)
    frame = frame.mask(np.random.default_rng(3).random(frame.shape) < 0.3)
    md = bn.network_data(two_node, frame)
    strategy = bn.bayesnet_model.default_init_strategy(md, seed=0)
    # init_to_value: the site's value is the given one, whatever the prior would draw
    tr = numpyro.handlers.trace(numpyro.handlers.substitute(
        numpyro.handlers.seed(bn.bayesnet_model, 0),
        substitute_fn=lambda site: strategy(site) if site["type"] == "sample" and not site["is_observed"] else None,
    )).get_trace(**md.kwargs)
    complete_b = frame.dropna()  # rows where b and its parent a are both observed
    expected_b = np.array([[(complete_b[(complete_b.a == a)].b == b).sum() + 1.0 for b in ("u", "v")]
                           for a in ("x", "y")])
    expected_b /= expected_b.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(tr["cpt_b"]["value"]), expected_b, rtol=1e-6)
    a_counts = np.array([(frame.a == a).sum() + 1.0 for a in ("x", "y")])
    np.testing.assert_allclose(np.asarray(tr["cpt_a"]["value"])[0], a_counts / a_counts.sum(), rtol=1e-6)
    # nothing to start from: the generic start
    assert bn.bayesnet_model.default_init_strategy({"network": two_node, "obs": None, "num_rows": 5}) is None

def _two_node_exact_posterior_mean(frame):
    """Posterior means of the two-node tables (Dirichlet(1) rows) by quadrature on a grid.

    Three free numbers: ``p(a=x)``, ``p(b=u | a=x)``, ``p(b=u | a=y)``; a row with ``a``
    missing contributes ``p(b)``, a row with ``b`` missing ``p(a)``, so the posterior of the
    tables does not factorize and has no closed form.
    """
    a = frame["a"].map({"x": 0, "y": 1}).to_numpy(float)
    b = frame["b"].map({"u": 0, "v": 1}).to_numpy(float)
    both = ~np.isnan(a) & ~np.isnan(b)
    n = {(i, j): int(np.sum(both & (a == i) & (b == j))) for i in (0, 1) for j in (0, 1)}
    na = [int(np.sum(np.isnan(b) & (a == i))) for i in (0, 1)]
    nb = [int(np.sum(np.isnan(a) & (b == j))) for j in (0, 1)]
    axes = []
    for centre in (0.3, 0.9, 0.2):  # the generating values: the posterior lies within +-0.13
        axes.append(np.linspace(max(centre - 0.13, 1e-3), min(centre + 0.13, 1 - 1e-3), 161))
    ta, tx, ty = np.meshgrid(*axes, indexing="ij")
    pbu = ta * tx + (1 - ta) * ty
    loglik = (n[0, 0] * np.log(ta * tx) + n[0, 1] * np.log(ta * (1 - tx))
              + n[1, 0] * np.log((1 - ta) * ty) + n[1, 1] * np.log((1 - ta) * (1 - ty))
              + na[0] * np.log(ta) + na[1] * np.log(1 - ta)
              + nb[0] * np.log(pbu) + nb[1] * np.log(1 - pbu))
    w = np.exp(loglik - loglik.max())
    # the box holds the posterior: its faces carry a negligible weight
    faces = max(w[[0, -1]].max(), w[:, [0, -1]].max(), w[:, :, [0, -1]].max())
    assert faces < 1e-6
    w /= w.sum()
    return {"a": np.array([(w * ta).sum(), 1 - (w * ta).sum()]),
            "b": np.array([[(w * tx).sum(), 1 - (w * tx).sum()], [(w * ty).sum(), 1 - (w * ty).sum()]])}


def test_svi_with_missing_values_recovers_the_exact_posterior_mean(two_node):
    frame = two_node.sample(1500, seed=4).astype(object)
    frame = frame.mask(np.random.default_rng(2).random(frame.shape) < 0.2)  # ~20% missing
    assert 0.18 < frame.isna().to_numpy().mean() < 0.22
    post = bn.fit_cpts(two_node, frame, method="svi", num_steps=800, learning_rate=0.05,
                       num_posterior_draws=400, seed=0)
    exact = _two_node_exact_posterior_mean(frame)
    for v in two_node.nodes:
        np.testing.assert_allclose(post.tables[v].mean(axis=0), exact[v], atol=0.01)
    # filling the holes with the first state instead of summing them out would be far off
    filled = bn.fit_cpts(two_node, frame.fillna({"a": "x", "b": "u"}), method="exact", num_draws=200)
    assert np.abs(filled.tables["a"].mean(axis=0) - exact["a"]).max() > 0.05


@pytest.mark.slow
def test_sbc_passes_for_the_tables_complete_and_with_missing_values(two_node):
    from ppl_models.diagnostics import sbc

    data = {"network": two_node, "obs": np.zeros((30, 2), np.int32), "num_rows": 30, "missing": False}
    res = sbc(bn.bayesnet_model, data, num_replications=60, num_warmup=200, num_samples=200,
              observed=["obs"], seed=1)
    assert res.passed, str(res)

    def masked_simulator(network, obs=None, num_rows=None, prior_concentration=1.0, missing=None):
        # the same prior and rows, then 30% of the values hidden completely at random
        with numpyro.handlers.block(hide=["obs"]):
            tr = numpyro.handlers.trace(bn.bayesnet_model).get_trace(
                network, obs=None, num_rows=num_rows, prior_concentration=prior_concentration)
        full = tr["obs"]["value"]
        hide = numpyro.sample("hide", numpyro.distributions.Bernoulli(0.3).expand(full.shape).to_event(2))
        numpyro.deterministic("obs", jnp.where(hide > 0, -1, full))

    data = dict(data, missing=True)
    res = sbc(bn.bayesnet_model, data, num_replications=60, num_warmup=200, num_samples=200,
              observed=["obs"], seed=2, simulator=masked_simulator, params=["cpt_a", "cpt_b"])
    assert res.passed, str(res)


@pytest.mark.slow
def test_sbc_detects_a_wrong_prior(two_node):
    from functools import partial

    from ppl_models.diagnostics import sbc

    data = {"network": two_node, "obs": np.zeros((30, 2), np.int32), "num_rows": 30, "missing": False}
    wrong = partial(bn.bayesnet_model, prior_concentration=0.2)
    res = sbc(bn.bayesnet_model, data, num_replications=60, num_warmup=200, num_samples=200,
              observed=["obs"], seed=3, simulator=wrong)
    assert not res.passed


def test_loaders(asia):
    assert {"asia", "alarm", "hailfinder", "sachs", "child", "insurance", "win95pts"} <= set(available_networks())
    assert load_network("asia") == asia
    with pytest.raises(DataError, match="bundled networks"):
        load_network("nope")
    md = load_network_sample("alarm", 200, seed=0, missing_fraction=0.2)
    codes = md.kwargs["obs"]
    assert codes.shape == (200, 37)
    assert 0.15 < (codes < 0).mean() < 0.25
    from ppl_models.datasets.titanic import load_titanic, load_titanic_rows

    rows = load_titanic_rows()
    assert len(rows) == 2201
    assert (rows["Survived"] == "Yes").sum() == 711
    md = load_titanic()
    assert md.kwargs["obs"].shape == (2201, 4) and (md.kwargs["obs"] >= 0).all()




def test_alarm_missing_card_loads_and_its_program_runs_at_tiny_settings():
    """The benchmark card (not in the catalog: NUTS at its settings takes far too long here)
    loads, and its program on 60 of its rows has a finite log density and gradient at the
    fit's start (what every sampler step evaluates). A fit itself at tiny settings costs about a
    minute of compiling with a cold cache (20 MAP steps: 58 s of CPU; SVI: 95 s), too long for
    the suite."""
    import dataclasses

    from numpyro.infer.util import initialize_model

    from ppl_models.catalog import parse_card

    root = Path(__file__).resolve().parents[2]
    card = parse_card(root / "benchmarks" / "cards" / "alarm_missing_nuts.toml")
    assert card.data_args["network"] == "alarm" and card.data_args["missing_fraction"] == 0.2
    assert card.inference["method"] == "nuts" and card.model_args["missing"] is True
    md = dataclasses.replace(card, data_args={**card.data_args, "num_rows": 60}).load_data()
    codes = md.kwargs["obs"]
    assert codes.shape == (60, 37) and 0.1 < (codes < 0).mean() < 0.3  # 20% missing
    model = card.model()
    init = model.default_init_strategy(md, seed=0)
    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=md.kwargs, init_strategy=init)
    params = info.param_info.z
    energy, grad = jax.value_and_grad(info.potential_fn)(params)
    assert np.isfinite(float(energy))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grad))
    # the start (the available-case posterior mean) is a valid set of tables, under which the
    # holed rows have a finite exact log-likelihood (missing values summed out)
    start = {v: np.asarray(init({"name": bn.cpt_site(v), "type": "sample", "is_observed": False,
                                 "fn": None, "args": (), "kwargs": {}, "value": None, "infer": {}}))
             for v in md.kwargs["network"].nodes}
    net = md.kwargs["network"]
    tables = {v: start[v].reshape(net.cpt_array(v).shape) for v in net.nodes}
    loglik = net.with_cpts(tables, validate_atol=1e-6).log_probability(md.extra["frame"]).sum()
    assert np.isfinite(loglik) and loglik < 0


def test_catalog_report_gives_table_error_and_interval_coverage():
    from ppl_models.datasets.networks import load_network_sample

    md = load_network_sample("asia", 5000, seed=1)
    post = bn.fit_cpts(md.extra["network"], md.extra["frame"], method="exact", num_draws=400, seed=0)
    rep = bn.catalog_report(post.fit, md)
    assert rep["missing_values"] == 0
    assert rep["table_error"] < 0.02
    # exact conjugate posterior: about 89% of the 28 entries that are not 0 or 1 inside their
    # 89% intervals (pairs of a binary row are covered together: 14 independent ones)
    assert 0.7 <= rep["coverage"] <= 1.0
    # a deliberately wrong posterior (the tables of another sample, shifted) covers far less
    shifted = {k: np.clip(v * 0.7 + 0.15, 0, 1) for k, v in post.fit.get_samples().items()}
    bad = bn.catalog_report(type("F", (), {"get_samples": lambda self: shifted})(), md)
    assert bad["coverage"] < 0.5 and bad["table_error"] > rep["table_error"]
    # no generating network (a real data table): only the count of missing values
    md2 = dataclasses.replace(md, extra={"frame": md.extra["frame"]})
    assert bn.catalog_report(post.fit, md2) == {"missing_values": 0}
