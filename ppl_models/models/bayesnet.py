"""Discrete Bayesian networks: declaration, BIF I/O, exact queries, sampling, Bayesian learning.

A :class:`BayesianNetwork` is a DAG over named discrete variables with one conditional
probability table (CPT) per node. Exact queries (marginals, joints, batched over many evidence
sets, the most probable explanation) are tensor contractions planned and executed by
:mod:`ppl_models.kernels.bayesnet`; the network reads and writes the BIF format of the bnlearn
repository with a parser that never evaluates its input.

For learning, :func:`bayesnet_model` is the network as a NumPyro program: a Dirichlet prior on
every CPT row and the rows of a data table drawn from :class:`BayesNetRows`, a distribution
whose ``log_prob`` marginalizes the missing entries of each row exactly by variable
elimination. :func:`fit_cpts` conditions it on a DataFrame and returns a
:class:`CPTPosterior`, whose queries carry credible intervals over the posterior of the tables.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from numpyro.distributions import constraints

from ..errors import DataError, ModelError, QueryError
from ..kernels.bayesnet import (  # noqa: F401  (re-exported: bayesnet.plan_contraction works)
    ContractionPlan,
    absorb_evidence,
    evidence_indicators,
    scaled_contract,
    ContractionTooLargeError,
    MPEResult,
    QueryResult,
    ancestral_sample,
    check_memory,
    complete_log_likelihood,
    default_memory_limit,
    elimination_order,
    evidence_log_vectors,
    log_contract,
    max_contract,
    MarginalsResult,
    batched_indicators,
    batched_node_marginals,
    minor_batched_marginals,
    batched_scaled_contract,
    most_probable_explanation,
    node_marginals,
    plan_contraction,
    posterior_query,
    required_bytes,
)

__all__ = [
    "BayesianNetwork",
    "BIFError",
    "read_bif",
    "write_bif",
    "parse_bif",
    "ContractionTooLargeError",
    "plan_contraction",
    "log_contract",
    "max_contract",
    "posterior_query",
    "ancestral_sample",
]

# A row of a CPT may be off one by this much (the bnlearn files round to a few digits).
ROW_SUM_ATOL = 1e-4

_NAME_RE = re.compile(r"^[^\s{}()\[\],;|\"']+$")


# ============================================================================================
# BIF parsing
# ============================================================================================


class BIFError(DataError):
    """A malformed BIF file; the message carries the line number."""

    def __init__(self, line: int | None, expected: str, got: str, source: str = "BIF"):
        self.line = line
        super().__init__(f"{source}, line {line}" if line is not None else source, expected, got)


_TOKEN_RE = re.compile(
    r"(?P<ws>[ \t\r\f\v]+)|(?P<nl>\n)|(?P<lcomment>//[^\n]*)|(?P<bcomment>/\*.*?\*/)"
    r"|(?P<prop>property\b[^;]*;)|(?P<punct>[{}()\[\],;|])|(?P<word>[^\s{}()\[\],;|]+)",
    re.DOTALL,
)


def _tokenize(text: str, source: str) -> list[tuple[str, str, int]]:
    """``(kind, text, line)`` tokens; comments dropped, ``property ...;`` kept whole."""
    tokens = []
    line = 1
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:  # pragma: no cover - the word class matches any other character
            raise BIFError(line, "a token", repr(text[pos:pos + 20]), source)
        kind = m.lastgroup
        tok = m.group()
        if kind in ("punct", "word", "prop"):
            tokens.append((kind, tok, line))
        line += tok.count("\n")
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str, source: str):
        self.source = source
        self.toks = _tokenize(text, source)
        self.i = 0
        self.last_line = text.count("\n") + 1

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def line(self) -> int:
        t = self.peek()
        return t[2] if t else self.last_line

    def fail(self, expected: str):
        t = self.peek()
        raise BIFError(self.line(), expected, repr(t[1]) if t else "the end of the file", self.source)

    def next(self, expected: str) -> tuple[str, str, int]:
        t = self.peek()
        if t is None:
            self.fail(expected)
        self.i += 1
        return t

    def expect(self, text: str) -> int:
        t = self.peek()
        if t is None or t[1] != text:
            self.fail(repr(text))
        self.i += 1
        return t[2]

    def word(self, what: str) -> str:
        t = self.peek()
        if t is None or t[0] != "word":
            self.fail(what)
        self.i += 1
        return t[1]

    def number(self, what: str) -> float:
        t = self.peek()
        if t is None or t[0] != "word":
            self.fail(what)
        try:
            # float() parses a literal; nothing in the file is ever evaluated.
            value = float(t[1])
        except ValueError:
            self.fail(what)
        if not math.isfinite(value) or value < 0:
            raise BIFError(t[2], f"{what} (finite and >= 0)", repr(t[1]), self.source)
        self.i += 1
        return value

    def number_list(self, what: str) -> list[float]:
        values = [self.number(what)]
        while self.peek() is not None and self.peek()[1] == ",":
            self.i += 1
            values.append(self.number(what))
        return values

    def name_list(self, what: str, closer: str) -> list[str]:
        names = [self.word(what)]
        while self.peek() is not None and self.peek()[1] == ",":
            self.i += 1
            names.append(self.word(what))
        self.expect(closer)
        return names


def parse_bif(text: str, source: str = "BIF") -> dict[str, Any]:
    """Parse BIF text into plain Python structures, validating as it goes.

    Parameters
    ----------
    text : str
        The file's content.
    source : str
        Shown in error messages (the file name).

    Returns
    -------
    dict
        ``name``; ``states`` (node -> list of states, in file order); ``parents``
        (node -> list); ``cpts`` (node -> float64 array ``(*parent cards, card)``);
        ``properties`` (``"network"`` or a node -> list of ``property`` strings).

    Raises
    ------
    BIFError
        A malformed file: the message names the line, what was expected and what was found.
    """
    p = _Parser(text, source)
    name = "unknown"
    states: dict[str, list[str]] = {}
    state_lines: dict[str, int] = {}
    parents: dict[str, list[str]] = {}
    cpts: dict[str, np.ndarray] = {}
    properties: dict[str, list[str]] = {}
    block_lines: dict[str, int] = {}
    while p.peek() is not None:
        kind, tok, line = p.next("'network', 'variable' or 'probability'")
        if tok == "network":
            name = p.word("a network name")
            p.expect("{")
            while p.peek() is not None and p.peek()[0] == "prop":
                properties.setdefault("network", []).append(p.next("a property")[1])
            p.expect("}")
        elif tok == "variable":
            var_line = p.line()
            var = p.word("a variable name")
            if var in states:
                raise BIFError(var_line, f"a new variable name", f"{var!r} declared twice", source)
            p.expect("{")
            declared = None
            while p.peek() is not None and p.peek()[1] != "}":
                t = p.peek()
                if t[0] == "prop":
                    properties.setdefault(var, []).append(p.next("a property")[1])
                    continue
                p.expect("type")
                p.expect("discrete")
                p.expect("[")
                count_line = p.line()
                count_tok = p.word("the number of states")
                if not count_tok.isdigit() or int(count_tok) < 1:
                    raise BIFError(count_line, "a positive integer number of states",
                                   repr(count_tok), source)
                p.expect("]")
                p.expect("{")
                names = p.name_list(f"a state name of {var!r}", "}")
                p.expect(";")
                if len(names) != int(count_tok):
                    raise BIFError(count_line, f"{count_tok} state names for variable {var!r}",
                                   f"{len(names)}: {names}", source)
                if len(set(names)) != len(names):
                    raise BIFError(count_line, f"distinct state names for variable {var!r}",
                                   f"{names}", source)
                declared = names
            p.expect("}")
            if declared is None:
                raise BIFError(var_line, f"a 'type discrete' declaration for variable {var!r}",
                               "none", source)
            states[var] = declared
            state_lines[var] = var_line
        elif tok == "probability":
            p.expect("(")
            head_line = p.line()
            child = p.word("the variable of the probability block")
            pa: list[str] = []
            if p.peek() is not None and p.peek()[1] == "|":
                p.i += 1
                pa = p.name_list("a parent name", ")")
            else:
                p.expect(")")
            for v in [child] + pa:
                if v not in states:
                    raise BIFError(head_line, "a variable declared before its probability block",
                                   f"undeclared variable {v!r}", source)
            if child in cpts:
                raise BIFError(head_line, f"one probability block for {child!r}", "a second one", source)
            if len(set(pa)) != len(pa) or child in pa:
                raise BIFError(head_line, f"distinct parents of {child!r}", f"{pa}", source)
            card = len(states[child])
            pcards = [len(states[q]) for q in pa]
            table = np.full(tuple(pcards) + (card,), np.nan)
            p.expect("{")
            default = None
            while p.peek() is not None and p.peek()[1] != "}":
                t = p.peek()
                row_line = t[2]
                if t[0] == "prop":
                    properties.setdefault(child, []).append(p.next("a property")[1])
                elif t[1] == "table":
                    p.i += 1
                    values = p.number_list("a probability")
                    p.expect(";")
                    if len(values) != table.size:
                        raise BIFError(row_line, f"{table.size} values in the table of {child!r}",
                                       f"{len(values)}", source)
                    # BIF (and pgmpy's writer) list a conditional 'table' with the child
                    # varying slowest and the last parent fastest.
                    arr = np.asarray(values).reshape((card,) + tuple(pcards))
                    table[...] = np.moveaxis(arr, 0, -1)
                elif t[1] == "default":
                    p.i += 1
                    values = p.number_list("a probability")
                    p.expect(";")
                    if len(values) != card:
                        raise BIFError(row_line, f"{card} default values for {child!r}",
                                       f"{len(values)}", source)
                    default = values
                elif t[1] == "(":
                    p.i += 1
                    config = p.name_list(f"a state of a parent of {child!r}", ")")
                    if len(config) != len(pa):
                        raise BIFError(row_line, f"{len(pa)} parent state(s) for {child!r}",
                                       f"{len(config)}: {config}", source)
                    index = []
                    for q, s in zip(pa, config):
                        if s not in states[q]:
                            raise BIFError(row_line, f"a state of {q!r} among {states[q]}",
                                           repr(s), source)
                        index.append(states[q].index(s))
                    values = p.number_list("a probability")
                    p.expect(";")
                    if len(values) != card:
                        raise BIFError(row_line, f"{card} probabilities for {child!r} (one per state)",
                                       f"{len(values)}", source)
                    if not np.isnan(table[tuple(index)]).all():
                        raise BIFError(row_line, f"each parent configuration of {child!r} once",
                                       f"{tuple(config)} again", source)
                    table[tuple(index)] = values
                else:
                    p.fail("'table', 'default', a '(parent states)' row or 'property'")
            p.expect("}")
            missing = np.isnan(table[..., 0])
            if missing.any():
                if default is None:
                    first = tuple(int(i) for i in np.argwhere(missing)[0])
                    config = tuple(states[q][i] for q, i in zip(pa, first))
                    raise BIFError(head_line, f"a row for every parent configuration of {child!r}",
                                   f"no row for {config}", source)
                table[missing] = default
            sums = table.sum(axis=-1)
            bad = np.abs(sums - 1.0) > ROW_SUM_ATOL
            if bad.any():
                first = tuple(int(i) for i in np.argwhere(bad)[0]) if pa else ()
                config = tuple(states[q][i] for q, i in zip(pa, first))
                raise BIFError(head_line, f"probabilities of {child!r} summing to one in every row",
                               f"a sum of {float(sums[first] if pa else sums):.6g} for parents {config}",
                               source)
            parents[child] = pa
            cpts[child] = table
            block_lines[child] = head_line
        else:
            raise BIFError(line, "'network', 'variable' or 'probability'", repr(tok), source)
    for v in states:
        if v not in cpts:
            raise BIFError(state_lines[v], f"a probability block for variable {v!r}", "none", source)
    cycle = _find_cycle(parents)
    if cycle:
        # the block, among the cycle's, that comes last in the file closes it
        closing = max(cycle[:-1], key=lambda v: block_lines[v])
        raise BIFError(block_lines[closing], "an acyclic graph of parents",
                       f"the cycle {_format_cycle(cycle)}, closed by the probability block of "
                       f"{closing!r}", source)
    return {"name": name, "states": states, "parents": parents, "cpts": cpts,
            "properties": properties}


def _decode_bif(data: bytes, source: str) -> str:
    """UTF-8 text of a BIF file's bytes; :class:`BIFError` naming the line and byte offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BIFError(line, "UTF-8 text",
                       f"the byte {data[exc.start:exc.start + 1]!r} at byte offset {exc.start} "
                       f"({exc.reason})", source) from None


def read_bif(source: str | os.PathLike | io.IOBase, *, name: str | None = None) -> "BayesianNetwork":
    """Read a network from a BIF file (``.bif`` or gzipped ``.bif.gz``) or from BIF text.

    Parameters
    ----------
    source : path, file object or str
        A path, an open (text or binary) file, or the BIF text itself (a string that contains
        a ``{``).
    name : str, optional
        Overrides the network's name.

    Returns
    -------
    BayesianNetwork
    """
    label = "BIF"
    if hasattr(source, "read"):
        label = getattr(source, "name", "BIF")
        try:
            raw = source.read()
        except UnicodeDecodeError as exc:  # a text-mode file: its decoder saw the bad byte
            raise BIFError(None, "UTF-8 text", f"bytes that are not UTF-8 ({exc.reason}); open the "
                           f"file in binary mode ('rb') to be told their line", str(label)) from None
        text = _decode_bif(raw, str(label)) if isinstance(raw, bytes) else raw
    elif isinstance(source, str) and "{" in source:
        text = source
    else:
        path = Path(source)
        if not path.exists():
            raise DataError("source", "an existing BIF file or BIF text", str(path))
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        label = path.name
        text = _decode_bif(data, label)
    parsed = parse_bif(text, source=str(label))
    if name is None:
        name = parsed["name"]
        if name == "unknown" and label != "BIF":  # bnlearn files say 'unknown': use the file's
            name = str(label).split(".")[0]
    net = BayesianNetwork(parsed["parents"], parsed["cpts"], states=parsed["states"], name=name)
    net.properties = parsed["properties"]
    return net


def write_bif(network: "BayesianNetwork", path: str | os.PathLike | None = None) -> str:
    """Write ``network`` as BIF; gzip when ``path`` ends in ``.gz``. Returns the text.

    Probabilities are written with ``repr`` (the shortest string that reads back to the same
    float64), so read -> write -> read is lossless.
    """
    text = network.to_bif()
    if path is not None:
        path = Path(path)
        data = text.encode("utf-8")
        path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return text


# ============================================================================================
# The network
# ============================================================================================


def _find_cycle(parents: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A directed cycle as a list of nodes (first == last, parent -> child), or None.

    Iterative depth-first search from child to parent (no recursion: a chain of thousands of
    nodes declared child-first would exceed Python's recursion limit).
    """
    color: dict[str, int] = {}  # 0/absent: unvisited; 1: on the current path; 2: done
    for root in parents:
        if color.get(root, 0):
            continue
        path = [root]
        todo = [iter(parents.get(root, ()))]
        color[root] = 1
        while path:
            u = next(todo[-1], None)
            if u is None:
                color[path.pop()] = 2
                todo.pop()
                continue
            c = color.get(u, 0)
            if c == 1:
                cyc = path[path.index(u):] + [u]
                return list(reversed(cyc))
            if c == 0:
                color[u] = 1
                path.append(u)
                todo.append(iter(parents.get(u, ())))
    return None


def _format_cycle(cycle: Sequence[str]) -> str:
    """``a -> b -> a``; a long cycle shortened to its first and last few nodes."""
    if len(cycle) <= 13:
        return " -> ".join(cycle)
    return (f"of {len(cycle) - 1} nodes: " + " -> ".join(cycle[:6]) + " -> ... -> "
            + " -> ".join(cycle[-6:]))


def _state_index(states: Sequence[Any], value: Any) -> int | None:
    for i, s in enumerate(states):
        if s == value:
            return i
    text = str(value)
    for i, s in enumerate(states):
        if str(s) == text:
            return i
    return None


@lru_cache(maxsize=256)
def _compiled_query(plan: ContractionPlan, num_factors: int):
    """``jit(vmap(posterior_query))`` over evidence sets, for one plan (cached)."""
    ev_cards = tuple(plan.cardinalities[vs[0]] for vs in plan.operand_vars[num_factors:])

    def one(log_factors, ev_values):
        return posterior_query(plan, list(log_factors) + evidence_log_vectors(ev_values, ev_cards))

    return jax.jit(jax.vmap(one, in_axes=(None, 0)))


@lru_cache(maxsize=256)
def _compiled_mpe(plan: ContractionPlan, num_factors: int):
    """``jit(vmap(max_contract))``; the plan's operands are the CPTs, one per node in order."""
    cards = tuple(plan.cardinalities[vs[-1]] for vs in plan.operand_vars)

    def one(log_factors, ev_values):
        return max_contract(plan, absorb_evidence(log_factors, evidence_log_vectors(ev_values, cards)))

    return jax.jit(jax.vmap(one, in_axes=(None, 0)))


def _minor_indicators(codes_t: jax.Array, cards: tuple, dtype) -> list[jax.Array]:
    """:func:`batched_indicators` from the codes transposed, ``(V, B)``.

    Every indicator is then built from a contiguous row; reading strided columns of a
    ``(B, V)`` array in every fusion that uses an indicator made hailfinder's marginals program
    ~15% slower (a transpose inside the program is laid out away by XLA, hence on the host).
    """
    out = []
    for v, card in enumerate(cards):
        row = codes_t[v][None, :]
        out.append(((jnp.arange(card)[:, None] == row) | (row < 0)).astype(dtype))
    return out


@lru_cache(maxsize=64)
def _compiled_batched_marginals(plan: ContractionPlan, num_nodes: int):
    """``jit(minor_batched_marginals)``: every node's marginal for a batch of evidence sets.

    The plan's operands are the CPTs (node order), then one ``(node, batch)`` indicator per
    node; variable ``num_nodes`` is the batch (its cardinality is the batch size). The
    two-pass schedule with the batch minor
    (:func:`~ppl_models.kernels.bayesnet.minor_batched_marginals`) gives the same values as
    the gradient of the contraction (:func:`~ppl_models.kernels.bayesnet.batched_node_marginals`)
    in 40-60% less time on CPU.
    """
    cards = tuple(plan.cardinalities[:num_nodes])

    def run(tables, codes_t):
        vectors = _minor_indicators(codes_t, cards, tables[0].dtype)
        res = minor_batched_marginals(plan, tables, vectors, num_nodes)
        # one (B, sum of cardinalities) array: one transfer to the host instead of one per node
        return res.log_evidence, jnp.concatenate(res.marginals, axis=1)

    return jax.jit(run)


@lru_cache(maxsize=64)
def _compiled_batched_log_evidence(plan: ContractionPlan, num_nodes: int):
    """``log p(evidence)`` of a batch, no marginals: the forward pass of the two-pass schedule."""
    cards = tuple(plan.cardinalities[:num_nodes])

    def run(tables, codes_t):
        vectors = _minor_indicators(codes_t, cards, tables[0].dtype)
        return minor_batched_marginals(plan, tables, vectors, num_nodes, marginals=False).log_evidence

    return jax.jit(run)


def _bucket(n: int, cap: int) -> int:
    """Batch size to compile for ``n`` rows: the next power of two, at most ``cap``.

    Padding to a few fixed sizes keeps the number of compiled programs small.
    """
    b = 1
    while b < n:
        b *= 2
    return max(1, min(b, cap))


def _run_batched(fn, log_factors, codes: np.ndarray, cap: int, transpose: bool = False):
    """Apply a compiled ``vmap`` program to ``codes`` in padded chunks; concatenate outputs.

    ``transpose``: pass each chunk as ``(V, B)`` (the batch-minor programs) instead of ``(B, V)``.
    """
    n = len(codes)
    size = _bucket(n, cap)
    outs = []
    for start in range(0, n, size):
        block = codes[start:start + size]
        used = len(block)
        if used < size:
            block = np.concatenate([block, np.repeat(block[-1:], size - used, axis=0)])
        res = fn(log_factors, jnp.asarray(np.ascontiguousarray(block.T) if transpose else block))
        outs.append(jax.tree_util.tree_map(lambda a, u=used: np.asarray(a)[:u], res))
    if len(outs) == 1:
        return outs[0]
    return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *outs)


@lru_cache(maxsize=64)
def _compiled_sampler(parents: tuple, order: tuple, num_samples: int):
    return jax.jit(lambda key, log_cpts: ancestral_sample(key, log_cpts, parents, order, num_samples))


def _log(a: np.ndarray) -> jax.Array:
    with np.errstate(divide="ignore"):
        return jnp.asarray(np.log(a))


class BayesianNetwork:
    """A discrete Bayesian network with named variables and states.

    Parameters
    ----------
    structure : mapping or sequence or None
        The DAG: a mapping ``node -> parents`` or a sequence of ``(parent, child)`` edges.
        ``None``: parents come from each CPT (the index names of a DataFrame).
    cpts : mapping
        ``node -> table``. A table is one of

        * a DataFrame whose columns are the node's states and whose rows are the parent
          configurations (index level names = the parents; a root has one row);
        * a dict: ``{state: p}`` for a root, ``{parent_state or (parent states...): {state: p}}``
          otherwise;
        * an array of shape ``(*parent cardinalities, cardinality)`` (needs ``states``).
    states : mapping, optional
        ``node -> sequence of state names`` (their order is the axis order). Default: the
        columns / keys of each CPT.
    name : str
        The network's name (written to BIF).
    validate_atol : float
        Tolerance of the row-sum check.

    Raises
    ------
    ModelError
        A cycle (named), a parent without a table, a table of the wrong shape, a missing
        parent configuration, negative entries, or a row that does not sum to one (naming the
        node and the row).

    Notes
    -----
    Nodes are kept in a topological order (``nodes``); the CPT of node ``v`` is stored as a
    float64 array with one axis per parent (in ``parents[v]`` order) and the node's own axis
    last.
    """

    def __init__(self, structure: Mapping[str, Sequence[str]] | Sequence[tuple[str, str]] | None,
                 cpts: Mapping[str, Any], *, states: Mapping[str, Sequence[Any]] | None = None,
                 name: str = "network", validate_atol: float = ROW_SUM_ATOL):
        if not isinstance(cpts, Mapping) or not cpts:
            raise ModelError("`cpts` must be a non-empty mapping node -> table")
        self.name = str(name)
        self.properties: dict[str, list[str]] = {}
        declared: dict[str, list[str]] = {str(v): [] for v in cpts}
        if structure is not None:
            if isinstance(structure, Mapping):
                items = [(str(p), str(c)) for c, ps in structure.items() for p in ps]
                for c in structure:
                    declared.setdefault(str(c), [])
            else:
                items = []
                for e in structure:
                    if not isinstance(e, (tuple, list)) or len(e) != 2:
                        raise ModelError(f"an edge must be a (parent, child) pair, got {e!r}")
                    items.append((str(e[0]), str(e[1])))
            for p, c in items:
                declared.setdefault(c, [])
                declared.setdefault(p, [])
                if p == c:
                    raise ModelError(f"node {c!r} is its own parent (a cycle {c} -> {c})")
                if p not in declared[c]:
                    declared[c].append(p)
        no_table = [v for v in declared if v not in {str(k) for k in cpts}]
        if no_table:
            raise ModelError(f"node(s) {no_table} appear in the structure but have no CPT")
        states = {str(k): list(v) for k, v in (states or {}).items()}

        # Parents declared by a DataFrame's index names take precedence in order.
        raw = {str(k): v for k, v in cpts.items()}
        for v, table in raw.items():
            if isinstance(table, pd.DataFrame):
                names = [n for n in table.index.names if n is not None]
                if names:
                    names = [str(n) for n in names]
                    if structure is not None and set(names) != set(declared[v]):
                        raise ModelError(f"the CPT of {v!r} is indexed by {names} but the structure "
                                         f"gives the parents {declared[v]}")
                    declared[v] = names
        cycle = _find_cycle(declared)
        if cycle:
            text = _format_cycle(cycle)
            raise ModelError(f"the graph has a cycle{' ' if text.startswith('of') else ': '}{text}")

        # States: given, else from the tables' columns / keys.
        for v, table in raw.items():
            if v in states:
                continue
            if isinstance(table, pd.DataFrame):
                states[v] = list(table.columns)
            elif isinstance(table, pd.Series) and not declared[v]:
                states[v] = list(table.index)
            elif isinstance(table, Mapping) and table:
                first = next(iter(table.values()))
                states[v] = list(first.keys()) if (declared[v] and isinstance(first, Mapping)) else list(table.keys())
            else:
                raise ModelError(f"the states of node {v!r} are not given: pass `states` for "
                                 f"array tables")
        for v, ss in states.items():
            if len(ss) < 1:
                raise ModelError(f"node {v!r} has no states")
            if len(set(map(str, ss))) != len(ss):
                raise ModelError(f"node {v!r} has repeated state names {ss}")

        order = self._topological_order(declared)
        self.nodes: tuple[str, ...] = tuple(order)
        self.states: dict[str, tuple] = {v: tuple(states[v]) for v in order}
        self.parents: dict[str, tuple[str, ...]] = {v: tuple(declared[v]) for v in order}
        self._index = {v: i for i, v in enumerate(order)}
        self._plans: dict = {}
        self._cpt: dict[str, np.ndarray] = {}
        for v in order:
            self._cpt[v] = self._table_array(v, raw[v], validate_atol)
        # Inference uses every row divided by its sum: the bnlearn files round to a few digits
        # (alarm's rows are off by up to 1e-7), and a row that does not sum to one would make
        # a node with no evidence below it change the answer. The tables as given are kept for
        # writing (a lossless BIF round trip).
        self._cpt_norm = {v: a / a.sum(axis=-1, keepdims=True) for v, a in self._cpt.items()}

    # -- construction helpers ----------------------------------------------------------------
    @staticmethod
    def _topological_order(parents: Mapping[str, Sequence[str]]) -> list[str]:
        """The order of repeated sweeps over the nodes in their given order, each sweep taking
        every node whose parents are all taken already (deterministic), in O(nodes + edges).

        A node is taken in sweep ``max(0, max over parents u of sweep(u) + [u comes after it])``
        (a parent taken earlier in the same sweep counts), and within a sweep in given order;
        the sweeps are computed in one pass of Kahn's algorithm instead of being run.
        """
        names = list(parents)
        pos = {v: i for i, v in enumerate(names)}
        children: dict[str, list[str]] = {v: [] for v in names}
        waiting = {v: len(parents[v]) for v in names}
        for v in names:
            for p in parents[v]:
                children[p].append(v)
        sweep = {v: 0 for v in names}
        ready = [v for v in names if waiting[v] == 0]
        seen = 0
        while ready:
            u = ready.pop()
            seen += 1
            for c in children[u]:
                sweep[c] = max(sweep[c], sweep[u] + (pos[u] > pos[c]))
                waiting[c] -= 1
                if waiting[c] == 0:
                    ready.append(c)
        if seen < len(names):  # pragma: no cover - _find_cycle ran before
            raise ModelError("the graph has a cycle")
        return sorted(names, key=lambda v: (sweep[v], pos[v]))

    def _table_array(self, v: str, table: Any, atol: float) -> np.ndarray:
        pa = self.parents[v]
        shape = tuple(len(self.states[p]) for p in pa) + (len(self.states[v]),)
        if isinstance(table, pd.Series) and not pa:
            table = table.to_frame().T
        if isinstance(table, pd.DataFrame):
            arr = self._frame_to_array(v, table, shape)
        elif isinstance(table, Mapping):
            arr = self._dict_to_array(v, table, shape)
        else:
            try:
                arr = np.asarray(table, dtype=np.float64)
            except (TypeError, ValueError):
                raise ModelError(f"the CPT of {v!r} is not a DataFrame, dict or numeric array: "
                                 f"{type(table).__name__}") from None
            if arr.shape != shape:
                raise ModelError(f"the CPT of {v!r} has shape {arr.shape}; its parents {list(pa)} "
                                 f"and its {shape[-1]} states need shape {shape}")
        return self._validate_table(v, arr, atol)

    def _frame_to_array(self, v, df: pd.DataFrame, shape) -> np.ndarray:
        pa = self.parents[v]
        st = self.states[v]
        cols = []
        for s in st:
            j = _state_index(list(df.columns), s)
            if j is None:
                raise ModelError(f"the CPT of {v!r} has no column for state {s!r}; columns are "
                                 f"{list(df.columns)}")
            cols.append(j)
        if len(df.columns) != len(st):
            extra = [c for c in df.columns if _state_index(st, c) is None]
            raise ModelError(f"the CPT of {v!r} has column(s) {extra} that are not states of {v!r} {list(st)}")
        values = df.to_numpy()[:, cols]
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            raise ModelError(f"the CPT of {v!r} has non-numeric entries") from None
        if not pa:
            if len(df) != 1:
                raise ModelError(f"node {v!r} has no parents, so its CPT needs one row, got {len(df)}")
            return values.reshape(shape)
        arr = np.full(shape, np.nan)
        names = [str(n) for n in df.index.names]
        level_of = {n: i for i, n in enumerate(names)}
        for r, key in enumerate(df.index):
            key = key if isinstance(key, tuple) else (key,)
            idx = []
            for p in pa:
                s = key[level_of[p]] if p in level_of else None
                j = _state_index(self.states[p], s)
                if j is None:
                    raise ModelError(f"the CPT of {v!r} has a row for {p}={s!r}, not a state of "
                                     f"{p!r} {list(self.states[p])}")
                idx.append(j)
            if not np.isnan(arr[tuple(idx)]).all():
                raise ModelError(f"the CPT of {v!r} has two rows for the parent states {key}")
            arr[tuple(idx)] = values[r]
        return arr

    def _dict_to_array(self, v, table: Mapping, shape) -> np.ndarray:
        pa = self.parents[v]
        st = self.states[v]

        def row(d: Any, where: str) -> np.ndarray:
            if not isinstance(d, Mapping):
                out = np.asarray(d, dtype=np.float64)
                if out.shape != (len(st),):
                    raise ModelError(f"the CPT of {v!r}{where} needs {len(st)} probabilities, got {d!r}")
                return out
            out = np.full(len(st), np.nan)
            for s, p in d.items():
                j = _state_index(st, s)
                if j is None:
                    raise ModelError(f"the CPT of {v!r}{where} names {s!r}, not a state of {v!r} {list(st)}")
                out[j] = float(p)
            if np.isnan(out).any():
                lacking = [st[j] for j in np.flatnonzero(np.isnan(out))]
                raise ModelError(f"the CPT of {v!r}{where} gives no probability for state(s) {lacking}")
            return out

        if not pa:
            return row(table, "").reshape(shape)
        arr = np.full(shape, np.nan)
        for key, d in table.items():
            key_t = key if isinstance(key, tuple) else (key,)
            if len(key_t) != len(pa):
                raise ModelError(f"the CPT of {v!r} has a row keyed {key!r}; it needs one state per "
                                 f"parent {list(pa)}")
            idx = []
            for p, s in zip(pa, key_t):
                j = _state_index(self.states[p], s)
                if j is None:
                    raise ModelError(f"the CPT of {v!r} has a row for {p}={s!r}, not a state of "
                                     f"{p!r} {list(self.states[p])}")
                idx.append(j)
            arr[tuple(idx)] = row(d, f" given {dict(zip(pa, key_t))}")
        return arr

    def _validate_table(self, v: str, arr: np.ndarray, atol: float) -> np.ndarray:
        pa = self.parents[v]
        missing = np.isnan(arr).any(axis=-1)
        if missing.any():
            idx = tuple(int(i) for i in np.argwhere(missing)[0])
            config = {p: self.states[p][i] for p, i in zip(pa, idx)}
            raise ModelError(f"the CPT of {v!r} has no row for the parent states {config}")
        if not np.isfinite(arr).all() or (arr < 0).any():
            bad = np.argwhere(~np.isfinite(arr) | (arr < 0))[0]
            config = {p: self.states[p][i] for p, i in zip(pa, bad[:-1])}
            raise ModelError(f"the CPT of {v!r} has the entry {arr[tuple(bad)]!r} for state "
                             f"{self.states[v][bad[-1]]!r} given {config}: probabilities must be "
                             f"finite and >= 0")
        sums = arr.sum(axis=-1)
        off = np.abs(sums - 1.0) > atol
        if off.any():
            idx = tuple(int(i) for i in np.argwhere(off)[0]) if pa else ()
            config = {p: self.states[p][i] for p, i in zip(pa, idx)}
            total = float(sums[idx]) if pa else float(sums)
            raise ModelError(f"the CPT of {v!r} does not sum to one given {config}: the row sums "
                             f"to {total:.6g}")
        return np.ascontiguousarray(arr, dtype=np.float64)

    # -- structure ---------------------------------------------------------------------------
    @property
    def cardinality(self) -> dict[str, int]:
        """``node -> number of states``."""
        return {v: len(s) for v, s in self.states.items()}

    @property
    def edges(self) -> list[tuple[str, str]]:
        """``(parent, child)`` pairs."""
        return [(p, v) for v in self.nodes for p in self.parents[v]]

    def children(self, node: str) -> list[str]:
        """The nodes that have ``node`` as a parent."""
        self._check_node(node, "node")
        return [v for v in self.nodes if node in self.parents[v]]

    def ancestors(self, nodes: Sequence[str]) -> set[str]:
        """``nodes`` and all their ancestors."""
        out: set[str] = set()
        todo = list(nodes)
        while todo:
            v = todo.pop()
            if v not in out:
                out.add(v)
                todo.extend(self.parents[v])
        return out

    def cpt(self, node: str) -> pd.DataFrame:
        """The CPT of ``node`` as a DataFrame: a row per parent configuration, a column per state."""
        self._check_node(node, "node")
        arr = self._cpt[node]
        pa = self.parents[node]
        cols = pd.Index(list(self.states[node]), name=node)
        if not pa:
            return pd.DataFrame(arr.reshape(1, -1), columns=cols, index=pd.Index([""], name=None))
        index = pd.MultiIndex.from_product([list(self.states[p]) for p in pa], names=list(pa))
        return pd.DataFrame(arr.reshape(-1, arr.shape[-1]), index=index, columns=cols)

    def cpt_array(self, node: str, *, normalized: bool = False) -> np.ndarray:
        """The CPT of ``node`` as a float64 array ``(*parent cards, card)`` (a copy).

        ``normalized=True``: each row divided by its sum, as inference uses it.
        """
        self._check_node(node, "node")
        return (self._cpt_norm if normalized else self._cpt)[node].copy()

    def with_cpts(self, tables: Mapping[str, np.ndarray], *, name: str | None = None,
                  validate_atol: float = ROW_SUM_ATOL) -> "BayesianNetwork":
        """A copy with some CPTs replaced by arrays of the same shapes (validated)."""
        new = {v: tables.get(v, self._cpt[v]) for v in self.nodes}
        net = BayesianNetwork({v: self.parents[v] for v in self.nodes}, new, states=self.states,
                              name=name or self.name, validate_atol=validate_atol)
        net.properties = dict(self.properties)
        return net

    def num_parameters(self) -> int:
        """Free parameters of the tables (each row has ``card - 1``)."""
        return int(sum(a.size // a.shape[-1] * (a.shape[-1] - 1) for a in self._cpt.values()))

    def __repr__(self) -> str:
        return (f"BayesianNetwork({self.name!r}, {len(self.nodes)} nodes, {len(self.edges)} edges, "
                f"{self.num_parameters()} free parameters)")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BayesianNetwork):
            return NotImplemented
        # The same variables, states, parents and tables; the order nodes were declared in
        # does not matter.
        return (set(self.nodes) == set(other.nodes) and self.states == other.states
                and self.parents == other.parents
                and all(np.array_equal(self._cpt[v], other._cpt[v]) for v in self.nodes))

    __hash__ = None  # mutable-by-properties and compared by value

    # -- validation of queries ---------------------------------------------------------------
    def _check_node(self, node: Any, what: str) -> str:
        if node not in self._index:
            shown = list(self.nodes[:20]) + (["..."] if len(self.nodes) > 20 else [])
            raise QueryError(f"{what} names the unknown node {node!r}; the nodes of "
                             f"{self.name!r} are {shown}")
        return node

    def _state_code(self, node: str, value: Any, what: str) -> int:
        j = _state_index(self.states[node], value)
        if j is None:
            raise QueryError(f"{what} {node}={value!r}: {value!r} is not a state of {node!r}; "
                             f"its states are {list(self.states[node])}")
        return j

    def encode(self, data: pd.DataFrame | Mapping[str, Sequence[Any]], *,
               argument: str = "data", columns: Sequence[str] | None = None) -> np.ndarray:
        """State names -> integer codes, ``-1`` for missing (NaN/None).

        Parameters
        ----------
        data : DataFrame or mapping of columns
            Columns named by nodes (a subset unless ``columns`` requires them all).
        columns : sequence of str, optional
            The node order of the result (default: all nodes, absent ones missing).

        Returns
        -------
        ndarray of int32, shape (n_rows, len(columns))
        """
        df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(dict(data))
        unknown = [c for c in df.columns if c not in self._index]
        if unknown:
            raise DataError(argument, f"columns among the nodes of {self.name!r}",
                            f"unknown column(s) {unknown}")
        cols = list(self.nodes if columns is None else columns)
        out = np.full((len(df), len(cols)), -1, dtype=np.int32)
        for j, v in enumerate(cols):
            if v not in df.columns:
                continue
            try:
                out[:, j] = self._encode_column(v, df[v], "data")
            except QueryError:
                col = df[v]
                bad = [x for x in col.dropna().unique() if _state_index(self.states[v], x) is None]
                rows = col.index[col.isin(bad[:1])]
                raise DataError(f"{argument}[{v!r}]", f"states of {v!r} {list(self.states[v])}",
                                f"{bad[0]!r} in row {rows[0]!r}") from None
        return out

    def _evidence_frame(self, evidence: Any) -> pd.DataFrame:
        if evidence is None:
            return pd.DataFrame(index=[0])
        if isinstance(evidence, pd.DataFrame):
            return evidence
        if isinstance(evidence, Mapping):
            return pd.DataFrame({k: [v] for k, v in evidence.items()}, index=[0])
        if isinstance(evidence, Sequence) and all(isinstance(e, Mapping) for e in evidence):
            return pd.DataFrame(list(evidence))
        raise QueryError(f"evidence must be a dict node -> state, a list of them, or a DataFrame; "
                         f"got {type(evidence).__name__}")

    def _encode_column(self, v: str, col: pd.Series, what: str) -> np.ndarray:
        """State names -> codes for one column (``-1`` where missing).

        The column is factorized once (pandas' hash table, in C); only its distinct values
        are looked up among the node's states.
        """
        states = list(self.states[v])
        fast = self._encode_arrow(v, col)
        if fast is not None:
            return fast
        if isinstance(col.dtype, pd.CategoricalDtype):
            raw = col.cat.codes.to_numpy()
            if list(col.cat.categories) == states:
                return raw.astype(np.int32)
            uniques = list(col.cat.categories)
        else:
            raw, uniques = pd.factorize(col, use_na_sentinel=True)
        lookup = {s: i for i, s in enumerate(states)}
        by_text = None
        # the last entry maps the missing-value code -1 to -1
        mapping = np.full(len(uniques) + 1, -1, dtype=np.int32)
        for k, u in enumerate(uniques):
            j = lookup.get(u)
            if j is None:
                # a second chance for states given as strings of non-string states (or vice versa)
                if by_text is None:
                    by_text = {str(s): i for i, s in enumerate(states)}
                j = by_text.get(str(u))
                if j is None:
                    self._state_code(v, u, what)  # raises, naming node and value
            mapping[k] = j
        return mapping[np.asarray(raw)]

    def _encode_arrow(self, v: str, col: pd.Series) -> np.ndarray | None:
        """Codes of a pyarrow-backed string column by ``pyarrow.compute.index_in``, or None.

        No Python object is made per value (pandas' default string columns are pyarrow
        arrays). ``None`` for other columns, and for a column with a value that is not a
        state, so that the general path names it in its error.
        """
        dtype = col.dtype
        if not (isinstance(dtype, pd.StringDtype) and getattr(dtype, "storage", None) == "pyarrow"):
            return None
        try:
            import pyarrow as pa
            import pyarrow.compute as pc
        except ImportError:  # pragma: no cover - pyarrow-backed strings imply pyarrow
            return None
        arr = pa.array(col.array)
        if arr.type != pa.string() and arr.type != pa.large_string():
            return None
        cache = self._plans.setdefault("arrow-states", {})
        key = (v, str(arr.type))
        if key not in cache:
            cache[key] = pa.array([str(s) for s in self.states[v]], type=arr.type)
        found = pc.index_in(arr, value_set=cache[key])
        if found.null_count != arr.null_count:
            return None
        return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int32)

    def _encode_arrow_frame(self, df: pd.DataFrame, nodes: Sequence[str]) -> np.ndarray | None:
        """Codes of a frame whose columns are all pyarrow strings, in one hash look-up.

        The columns are looked up together among the distinct state names of all the nodes
        (one ``pyarrow.compute.index_in`` over every value instead of one per column: ~2x
        faster on hailfinder's 56 mostly empty columns), then each column's global index is
        mapped to its node's state code. ``None`` (the per-column path decides, and names a
        bad value in its error) for other columns, and when a value is not a state of its node.
        """
        if not nodes or len(df) == 0:
            return None
        arrays = []
        for v, (_, col) in zip(nodes, df.items()):
            dtype = col.dtype
            if not (isinstance(dtype, pd.StringDtype) and getattr(dtype, "storage", None) == "pyarrow"):
                return None
            arrays.append(col.array)
        try:
            import pyarrow as pa
            import pyarrow.compute as pc
        except ImportError:  # pragma: no cover - pyarrow-backed strings imply pyarrow
            return None
        chunks = [pa.array(a) for a in arrays]
        kind = chunks[0].type
        if kind not in (pa.string(), pa.large_string()) or any(c.type != kind for c in chunks):
            return None
        cache = self._plans.setdefault("arrow-frame", {})
        if "names" not in cache:
            names: dict[str, int] = {}
            for v in self.nodes:
                for st in self.states[v]:
                    names.setdefault(str(st), len(names))
            # lookup[node, global name index] = the node's state code, -2 for another node's state
            lookup = np.full((len(self.nodes), len(names) + 1), -2, dtype=np.int32)
            lookup[:, -1] = -1  # missing value
            for i, v in enumerate(self.nodes):
                for j, st in enumerate(self.states[v]):
                    # the first state with this name, as _state_index finds it
                    if lookup[i, names[str(st)]] == -2:
                        lookup[i, names[str(st)]] = j
            cache["names"] = list(names)
            cache["lookup"] = lookup
        if kind not in cache:
            cache[kind] = pa.array(cache["names"], type=kind)
        found = pc.index_in(pa.chunked_array(chunks, type=kind), value_set=cache[kind])
        if found.null_count != sum(c.null_count for c in chunks):
            return None  # a value that is no state name of any node
        lookup = cache["lookup"]
        flat = pc.fill_null(found, lookup.shape[1] - 1).to_numpy().reshape(len(nodes), len(df))
        rows = np.array([self._index[v] for v in nodes])[:, None]
        codes = lookup[rows, flat]
        if (codes == -2).any():
            return None  # a state name of another node
        return np.ascontiguousarray(codes.T)

    def _encode_evidence(self, evidence: Any) -> tuple[list[str], np.ndarray, pd.Index]:
        df = self._evidence_frame(evidence)
        ev_nodes = []
        for c in df.columns:
            self._check_node(c, "evidence")
            ev_nodes.append(c)
        codes = self._encode_arrow_frame(df, ev_nodes)
        if codes is None:
            codes = np.full((len(df), len(ev_nodes)), -1, dtype=np.int32)
            for j, v in enumerate(ev_nodes):
                codes[:, j] = self._encode_column(v, df[v], "evidence")
        # Drop nodes never observed in this batch: they only add work.
        observed = (codes >= 0).any(axis=0)
        ev_nodes = [v for v, o in zip(ev_nodes, observed) if o]
        return ev_nodes, codes[:, observed], df.index

    def _state_columns(self, v: str) -> pd.Index:
        """The states of ``v`` as a column Index named ``v`` (made once per node)."""
        cache = self._plans.setdefault("state-columns", {})
        if v not in cache:
            cache[v] = pd.Index(list(self.states[v]), name=v)
        return cache[v]

    # -- exact queries -----------------------------------------------------------------------
    def _plan(self, targets: Sequence[str], ev_nodes: Sequence[str], optimize: str,
              prune: bool = True) -> tuple[ContractionPlan, list[str]]:
        relevant = self.ancestors(list(targets) + list(ev_nodes)) if prune else set(self.nodes)
        # Barren nodes (not ancestors of a target or evidence) sum to one: leave them out.
        factors = [v for v in self.nodes if v in relevant]
        idx = self._index
        operand_vars = [tuple(idx[p] for p in self.parents[v]) + (idx[v],) for v in factors]
        operand_vars += [(idx[v],) for v in ev_nodes]
        cards = [len(self.states[v]) for v in self.nodes]
        plan = plan_contraction(operand_vars, cards, [idx[t] for t in targets], optimize=optimize)
        return plan, factors

    def _itemsize(self) -> int:
        return 8 if jax.config.jax_enable_x64 else 4

    def _chunk_cap(self, plan, semiring, memory_limit) -> int:
        """The most evidence sets per call that fit ``memory_limit`` (refuse if not even one)."""
        limit = default_memory_limit() if memory_limit is None else int(memory_limit)
        check_memory(plan, 1, self._itemsize(), semiring, limit, self.nodes)
        return max(1, limit // max(1, required_bytes(plan, 1, self._itemsize(), semiring)))

    def _log_factors(self, factors):
        # Device copies of the log-tables, made once per precision (queries reuse them).
        key = ("log", bool(jax.config.jax_enable_x64))
        if key not in self._plans:
            self._plans[key] = {v: _log(self._cpt_norm[v]) for v in self.nodes}
        cache = self._plans[key]
        return [cache[v] for v in factors]

    def _batched_query(self, targets, ev_nodes, codes, optimize, memory_limit):
        plan, factors = self._plan(targets, ev_nodes, optimize)
        cap = self._chunk_cap(plan, "sum", memory_limit)
        res = _run_batched(_compiled_query(plan, len(factors)), self._log_factors(factors), codes, cap)
        return res.log_evidence, res.log_posterior

    def _marginals_plan(self, optimize: str):
        """The plan over all CPTs (node order) with no output: evidence is absorbed into them."""
        key = ("marginals", optimize)
        if key not in self._plans:
            self._plans[key] = self._plan([], [], optimize, prune=False)
        return self._plans[key]

    def _lin_tables(self):
        """Device copies of the normalized tables in linear space (node order), made once."""
        key = ("lin", bool(jax.config.jax_enable_x64))
        if key not in self._plans:
            dtype = jnp.result_type(float)
            self._plans[key] = [jnp.asarray(self._cpt_norm[v], dtype=dtype) for v in self.nodes]
        return self._plans[key]

    def _batched_marginals_plan(self, optimize: str, batch: int) -> ContractionPlan:
        """The plan over all CPTs and one indicator per node, the batch an explicit variable.

        Variable ``len(nodes)`` is the batch (cardinality ``batch``); the output keeps only it.
        The contraction order is searched with the batch size known, so that products of
        tables alone (shared by the batch) come before the batched evidence where cheaper.
        """
        key = ("batched-marginals", optimize, int(batch))
        if key not in self._plans:
            num = len(self.nodes)
            idx = self._index
            operand_vars = [tuple(idx[p] for p in self.parents[v]) + (idx[v],) for v in self.nodes]
            operand_vars += [(i, num) for i in range(num)]
            cards = [len(self.states[v]) for v in self.nodes] + [int(batch)]
            self._plans[key] = plan_contraction(operand_vars, cards, (num,), optimize=optimize)
        return self._plans[key]

    def _batched_marginals(self, codes_all: np.ndarray, optimize: str, memory_limit):
        """``(log_evidence (B,), [p(node | e) (B, card) per node])`` for all-node codes.

        One compiled program per padded batch size (powers of two up to what fits
        ``memory_limit``): the evidence sets are the batch variable of one contraction
        (:func:`~ppl_models.kernels.bayesnet.batched_node_marginals`).
        """
        # The memory estimate of one evidence set (every factor counted per set: an upper
        # bound, since products of tables alone are shared by the batch).
        cap = self._chunk_cap(self._batched_marginals_plan(optimize, 1), "grad", memory_limit)
        size = _bucket(len(codes_all), cap)
        plan = self._batched_marginals_plan(optimize, size)
        log_z, flat = _run_batched(_compiled_batched_marginals(plan, len(self.nodes)),
                                   self._lin_tables(), codes_all, size, transpose=True)
        cuts = np.cumsum([len(self.states[v]) for v in self.nodes])[:-1]
        return log_z, np.split(flat, cuts, axis=1)

    def _all_codes(self, ev_nodes, codes) -> np.ndarray:
        full = np.full((len(codes), len(self.nodes)), -1, dtype=np.int32)
        for j, v in enumerate(ev_nodes):
            full[:, self._index[v]] = codes[:, j]
        return full

    def marginals(self, evidence: Mapping[str, Any] | None = None, *, optimize: str = "auto",
                  memory_limit: int | None = None) -> dict[str, pd.Series]:
        """Every node's posterior marginal ``p(node | evidence)`` from one compiled pass.

        One contraction of the whole network gives ``log p(evidence)``; its gradient with
        respect to the evidence vectors gives all the marginals (see
        :func:`~ppl_models.kernels.bayesnet.batched_node_marginals`). The compiled program is
        the same for every evidence pattern, so it compiles once per network (and batch size).

        Returns
        -------
        dict
            ``node -> Series`` indexed by the node's states.
        """
        frame = self._evidence_frame(evidence)
        ev_nodes, codes, index = self._encode_evidence(frame)
        log_z, margs = self._batched_marginals(self._all_codes(ev_nodes, codes), optimize, memory_limit)
        self._raise_impossible(log_z, index, frame)
        return {v: pd.Series(margs[i][0], index=pd.Index(list(self.states[v]), name=v),
                             name="probability") for i, v in enumerate(self.nodes)}

    def marginals_batch(self, evidence: pd.DataFrame | Sequence[Mapping], *, optimize: str = "auto",
                        memory_limit: int | None = None) -> dict[str, pd.DataFrame]:
        """:meth:`marginals` for many evidence sets in one compiled call.

        Parameters
        ----------
        evidence : DataFrame or list of dicts
            One row per evidence set (NaN/None where a node is unobserved); the observed
            nodes may differ from row to row.

        Returns
        -------
        dict
            ``node -> DataFrame`` with a row per evidence set and a column per state.
        """
        frame = self._evidence_frame(evidence)
        ev_nodes, codes, index = self._encode_evidence(frame)
        log_z, margs = self._batched_marginals(self._all_codes(ev_nodes, codes), optimize, memory_limit)
        self._raise_impossible(log_z, index, frame)
        return {v: pd.DataFrame(margs[i], index=index, columns=self._state_columns(v), copy=False)
                for i, v in enumerate(self.nodes)}

    def marginals_codes(self, codes: np.ndarray, *, optimize: str = "auto",
                        memory_limit: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """Every node's marginal for pre-encoded evidence: the array-in, array-out fast path.

        Parameters
        ----------
        codes : ndarray of int, shape (B, len(nodes))
            One row per evidence set, one column per node in ``nodes`` order (as from
            :meth:`encode`), ``-1`` where unobserved.

        Returns
        -------
        log_evidence : ndarray, shape (B,)
            ``log p(evidence_b)`` (``-inf`` for impossible evidence; no error is raised).
        marginals : list of ndarray
            ``marginals[i]`` has shape ``(B, cardinality of nodes[i])``.
        """
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != len(self.nodes):
            raise DataError("codes", f"an integer array of shape (B, {len(self.nodes)})", f"shape {codes.shape}")
        cards = np.array([len(self.states[v]) for v in self.nodes])
        if (codes >= cards).any() or (codes < -1).any():
            raise DataError("codes", "codes in -1..cardinality-1 for every node", "a code out of range")
        return self._batched_marginals(codes.astype(np.int32), optimize, memory_limit)

    def _target_query(self, targets, ev_nodes, codes, optimize, memory_limit):
        """Log-evidence and log-posterior over ``targets`` for every row of ``codes``.

        One target: the network-wide marginals program (compiled once per network). Several:
        a contraction planned for that joint, restricted to the ancestors of the targets and
        the evidence (the other nodes sum to one).
        """
        if len(targets) == 1:
            log_z, margs = self._batched_marginals(self._all_codes(ev_nodes, codes), optimize,
                                                   memory_limit)
            with np.errstate(divide="ignore"):
                return log_z, np.log(margs[self._index[targets[0]]])
        return self._batched_query(targets, ev_nodes, codes, optimize, memory_limit)

    def _check_targets(self, targets: str | Sequence[str]) -> list[str]:
        targets = [targets] if isinstance(targets, str) else list(targets)
        if not targets:
            raise QueryError("a query needs at least one target node")
        for t in targets:
            self._check_node(t, "the query")
        if len(set(targets)) != len(targets):
            raise QueryError(f"the targets {targets} repeat a node")
        return targets

    def _raise_impossible(self, log_z, index, evidence_frame):
        bad = np.flatnonzero(~np.isfinite(log_z))
        if bad.size:
            r = bad[0]
            row = evidence_frame.iloc[r].dropna().to_dict() if len(evidence_frame.columns) else {}
            raise QueryError(f"the evidence {row} (evidence set {index[r]!r}) has probability zero "
                             f"under {self.name!r}: no posterior exists")

    def query(self, targets: str | Sequence[str], evidence: Mapping[str, Any] | None = None, *,
              optimize: str = "auto", memory_limit: int | None = None) -> pd.DataFrame:
        """``p(targets | evidence)``, exactly.

        Parameters
        ----------
        targets : str or sequence of str
            One node (its marginal) or several (their joint).
        evidence : dict, optional
            ``node -> state name``.
        optimize : str
            Contraction-order strategy (see :func:`plan_contraction`).
        memory_limit : int, optional
            Bytes; a query whose largest intermediate factor would exceed it raises
            :class:`ContractionTooLargeError` with the estimate.

        Returns
        -------
        DataFrame
            One row per joint state of the targets (a MultiIndex named by the targets) and the
            column ``probability``.
        """
        targets = self._check_targets(targets)
        frame = self._evidence_frame(evidence)
        ev_nodes, codes, index = self._encode_evidence(frame)
        log_z, log_post = self._target_query(targets, ev_nodes, codes, optimize, memory_limit)
        self._raise_impossible(log_z, index, frame)
        mi = pd.MultiIndex.from_product([list(self.states[t]) for t in targets], names=targets)
        return pd.DataFrame({"probability": np.exp(log_post[0]).reshape(-1)}, index=mi)

    def query_batch(self, targets: str | Sequence[str], evidence: pd.DataFrame | Sequence[Mapping], *,
                    optimize: str = "auto", memory_limit: int | None = None,
                    return_log_evidence: bool = False) -> pd.DataFrame:
        """``p(targets | evidence_i)`` for many evidence sets in one compiled call.

        Parameters
        ----------
        targets : str or sequence of str
        evidence : DataFrame or list of dicts
            One row per evidence set; columns are nodes, values state names, NaN/None where a
            node is not observed in that set.
        optimize, memory_limit
            As in :meth:`query`. The batch is split into chunks that fit ``memory_limit``.
        return_log_evidence : bool
            Add a column ``log_evidence`` (``log p(evidence_i)``).

        Returns
        -------
        DataFrame
            One row per evidence set (the evidence's index), one column per joint state of the
            targets (a MultiIndex when there are several targets).
        """
        targets = self._check_targets(targets)
        frame = self._evidence_frame(evidence)
        ev_nodes, codes, index = self._encode_evidence(frame)
        log_z, log_post = self._target_query(targets, ev_nodes, codes, optimize, memory_limit)
        self._raise_impossible(log_z, index, frame)
        if len(targets) == 1:
            cols = pd.Index(list(self.states[targets[0]]), name=targets[0])
        else:
            cols = pd.MultiIndex.from_product([list(self.states[t]) for t in targets], names=targets)
        out = pd.DataFrame(np.exp(log_post.reshape(len(codes), -1)), index=index, columns=cols)
        if return_log_evidence:
            out["log_evidence"] = log_z
        return out

    def log_probability(self, data: pd.DataFrame, *, optimize: str = "auto",
                        memory_limit: int | None = None) -> np.ndarray:
        """``log p(row)`` of every row, missing values (NaN) summed out exactly.

        Parameters
        ----------
        data : DataFrame
            Columns are nodes (any subset), values state names.

        Returns
        -------
        ndarray, shape (n_rows,)
        """
        ev_nodes, codes, _ = self._encode_evidence(data)
        if not ev_nodes:
            return np.zeros(len(codes))
        # the forward contraction only (the marginals would need its reverse pass as well)
        cap = self._chunk_cap(self._batched_marginals_plan(optimize, 1), "sum", memory_limit)
        size = _bucket(len(codes), cap)
        plan = self._batched_marginals_plan(optimize, size)
        return _run_batched(_compiled_batched_log_evidence(plan, len(self.nodes)), self._lin_tables(),
                            self._all_codes(ev_nodes, codes), size, transpose=True)

    def map_query(self, evidence: Mapping[str, Any] | None = None, targets: Sequence[str] | None = None,
                  *, optimize: str = "auto", memory_limit: int | None = None) -> dict[str, Any]:
        """The most probable joint state.

        Parameters
        ----------
        evidence : dict, optional
            ``node -> state``.
        targets : sequence of str, optional
            ``None`` (default): the most probable explanation (MPE) over every node, by
            max-product elimination. Given: the marginal MAP ``argmax p(targets | evidence)``
            of those nodes, the others summed out (from the exact joint over the targets).
        optimize, memory_limit
            As in :meth:`query`.

        Returns
        -------
        dict
            ``node -> state`` (evidence nodes included in the MPE).
        """
        frame = self.map_query_batch(self._evidence_frame(evidence), targets=targets,
                                     optimize=optimize, memory_limit=memory_limit)
        return frame.iloc[0].to_dict()

    def map_query_batch(self, evidence: pd.DataFrame | Sequence[Mapping], targets: Sequence[str] | None = None,
                        *, optimize: str = "auto", memory_limit: int | None = None,
                        return_log_probability: bool = False) -> pd.DataFrame:
        """:meth:`map_query` for many evidence sets in one compiled call.

        Returns
        -------
        DataFrame
            One row per evidence set, one column per node (state names); with
            ``return_log_probability`` also ``log_probability``: ``log p(x*, evidence)`` for the
            MPE, ``log p(targets* | evidence)`` for a marginal MAP.
        """
        frame = self._evidence_frame(evidence)
        if targets is not None:
            targets = self._check_targets(targets)
            table = self.query_batch(targets, frame, optimize=optimize, memory_limit=memory_limit)
            values = table.to_numpy()
            best = values.argmax(axis=1)
            combos = list(table.columns)
            rows = [dict(zip(targets, combos[b] if len(targets) > 1 else (combos[b],))) for b in best]
            out = pd.DataFrame(rows, index=table.index, columns=targets)
            if return_log_probability:
                out["log_probability"] = np.log(values[np.arange(len(best)), best])
            return out
        ev_nodes, codes, index = self._encode_evidence(frame)
        # Every node gets an evidence vector, so one compiled program serves any evidence.
        plan, factors = self._marginals_plan(optimize)
        cap = self._chunk_cap(plan, "max", memory_limit)
        res = _run_batched(_compiled_mpe(plan, len(factors)), self._log_factors(factors),
                           self._all_codes(ev_nodes, codes), cap)
        log_joint, codes_out = res.log_joint, res.assignment
        self._raise_impossible(log_joint, index, frame)
        out = pd.DataFrame({v: pd.Categorical.from_codes(codes_out[:, i], categories=list(self.states[v]))
                            for i, v in enumerate(self.nodes)}, index=index)
        out = out.astype(object)
        if return_log_probability:
            out["log_probability"] = log_joint
        return out

    # -- sampling ----------------------------------------------------------------------------
    def sample_codes(self, n: int, seed: int | jax.Array = 0) -> np.ndarray:
        """``n`` forward samples as integer codes, shape ``(n, len(nodes))`` in node order."""
        n = int(n)
        if n < 1:
            raise DataError("n", "a positive number of rows", n)
        key = jax.random.PRNGKey(seed) if isinstance(seed, (int, np.integer)) else seed
        parents = tuple(tuple(self._index[p] for p in self.parents[v]) for v in self.nodes)
        order = tuple(range(len(self.nodes)))  # nodes are stored in topological order
        fn = _compiled_sampler(parents, order, n)
        return np.asarray(fn(key, self._log_factors(self.nodes)))

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        """``n`` rows drawn by ancestral sampling, as a DataFrame of categorical columns.

        Parameters
        ----------
        n : int
        seed : int

        Returns
        -------
        DataFrame
            Columns in node (topological) order, ``pd.Categorical`` with the states as
            categories in their declared order.
        """
        codes = self.sample_codes(n, seed)
        return self.decode(codes)

    def decode(self, codes: np.ndarray) -> pd.DataFrame:
        """Integer codes ``(n, len(nodes))`` (``-1`` = missing) -> DataFrame of categoricals."""
        codes = np.asarray(codes)
        return pd.DataFrame({v: pd.Categorical.from_codes(codes[:, i], categories=list(self.states[v]))
                             for i, v in enumerate(self.nodes)})

    # -- BIF ---------------------------------------------------------------------------------
    @classmethod
    def from_bif(cls, source: str | os.PathLike, *, name: str | None = None) -> "BayesianNetwork":
        """Same as :func:`read_bif`."""
        return read_bif(source, name=name)

    def to_bif(self) -> str:
        """The network as BIF text (probabilities written exactly, rows by parent states)."""
        for v in self.nodes:
            for s in (v,) + tuple(map(str, self.states[v])):
                if not _NAME_RE.match(s):
                    raise ModelError(f"{s!r} (node {v!r}) cannot be written to BIF: names may not "
                                     f"contain spaces, quotes or any of {{}}()[],;|")
        net_name = self.name if _NAME_RE.match(self.name) else "unknown"
        lines = [f"network {net_name} {{"]
        lines += [f"  {p}" for p in self.properties.get("network", [])]
        lines.append("}")
        for v in self.nodes:
            st = ", ".join(map(str, self.states[v]))
            lines.append(f"variable {v} {{")
            lines.append(f"  type discrete [ {len(self.states[v])} ] {{ {st} }};")
            lines += [f"  {p}" for p in self.properties.get(v, [])]
            lines.append("}")
        for v in self.nodes:
            pa = self.parents[v]
            arr = self._cpt[v]
            head = f"probability ( {v} | {', '.join(pa)} ) {{" if pa else f"probability ( {v} ) {{"
            lines.append(head)
            if not pa:
                lines.append("  table " + ", ".join(repr(float(x)) for x in arr) + ";")
            else:
                for idx in np.ndindex(*arr.shape[:-1]):
                    config = ", ".join(str(self.states[p][i]) for p, i in zip(pa, idx))
                    lines.append(f"  ({config}) " + ", ".join(repr(float(x)) for x in arr[idx]) + ";")
            lines.append("}")
        return "\n".join(lines) + "\n"

    def write_bif(self, path: str | os.PathLike | None = None) -> str:
        """Same as :func:`write_bif`."""
        return write_bif(self, path)


# ============================================================================================
# Bayesian learning of the tables
# ============================================================================================


def _as_network(network: Any) -> BayesianNetwork:
    """A :class:`BayesianNetwork`, or the name of a bundled one (``"asia"``, ``"alarm"``...)."""
    if isinstance(network, BayesianNetwork):
        return network
    if isinstance(network, str):
        from ..datasets.networks import load_network

        return load_network(network)
    raise DataError("network", "a BayesianNetwork or the name of a bundled network", repr(network))


class BayesNetRows(dist.Distribution):
    """Rows of all a network's variables, each missing entry summed out exactly.

    A row is an integer vector with one code per node (in ``network.nodes`` order); ``-1``
    marks a missing value. ``log_prob`` is ``log p(observed entries of the row)``: one table
    look-up per node when no row has a missing value (``has_missing=False``), else variable
    elimination of all the rows at once (:func:`~ppl_models.kernels.bayesnet.batched_scaled_contract`,
    the rows the batch variable of one contraction planned per network and number of rows).
    ``sample`` draws complete rows forward.

    Parameters
    ----------
    network : BayesianNetwork
        The structure (its own tables are ignored).
    cpts : sequence of Array
        One table per node, in node order, shaped ``(*parent cardinalities, cardinality)``,
        rows on the simplex.
    has_missing : bool
        ``False`` promises that no row has a ``-1`` (the cheap look-up path).
    """

    arg_constraints: dict = {}
    pytree_data_fields = ("cpts",)
    pytree_aux_fields = ("network", "has_missing")

    def __init__(self, network: BayesianNetwork, cpts: Sequence[jax.Array], *, has_missing: bool = True,
                 validate_args: bool | None = None):
        self.network = network
        self.cpts = tuple(cpts)
        self.has_missing = bool(has_missing)
        self._max_card = max(len(s) for s in network.states.values())
        super().__init__(batch_shape=(), event_shape=(len(network.nodes),), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.independent(constraints.integer_interval(-1, self._max_card - 1), 1)

    def _parents(self) -> tuple:
        idx = self.network._index
        return tuple(tuple(idx[p] for p in self.network.parents[v]) for v in self.network.nodes)

    def sample(self, key, sample_shape=()):
        n = int(np.prod(sample_shape)) if sample_shape else 1
        logs = [jnp.log(t) for t in self.cpts]
        rows = ancestral_sample(key, logs, self._parents(), tuple(range(len(logs))), n)
        return rows.reshape(tuple(sample_shape) + (len(logs),))

    def log_prob(self, value):
        value = jnp.asarray(value)
        flat = value.reshape((-1, value.shape[-1]))
        if not self.has_missing:
            out = complete_log_likelihood([jnp.log(t) for t in self.cpts], self._parents(), flat)
        else:
            # One contraction for all rows, the rows its batch variable: the tables enter once
            # (no copy per row) and meet the rows' 0/1 indicators in plain matrix products,
            # forward and in the gradient NUTS takes with respect to the tables.
            cards = tuple(len(self.network.states[v]) for v in self.network.nodes)
            plan = self.network._batched_marginals_plan("auto", flat.shape[0])
            tables = list(self.cpts)
            vectors = batched_indicators(flat, cards, tables[0].dtype)
            out = batched_scaled_contract(plan, tables + vectors, len(cards))
        return out.reshape(value.shape[:-1])


def _has_missing(obs: Any) -> bool:
    if obs is None:
        return False
    if isinstance(obs, jax.core.Tracer):  # cannot look inside: take the general path
        return True
    return bool((np.asarray(obs) < 0).any())


def cpt_site(node: str) -> str:
    """The NumPyro site name of a node's table: ``cpt_<node>``."""
    return f"cpt_{node}"


def bayesnet_model(network: Any, obs: Any = None, num_rows: int | None = None,
                   prior_concentration: float = 1.0, missing: bool | None = None):
    """A discrete Bayesian network as a NumPyro program, with a Dirichlet prior on every CPT row.

    Parameters
    ----------
    network : BayesianNetwork or str
        The structure (a bundled network's name works); its tables are not used.
    obs : array of int, shape (N, V), optional
        Rows coded by :meth:`BayesianNetwork.encode` (``-1`` = missing, summed out exactly).
        ``None`` simulates ``num_rows`` rows.
    num_rows : int, optional
        Rows to simulate when ``obs`` is ``None``.
    prior_concentration : float
        The Dirichlet concentration of every entry of every row (1 = uniform on the simplex).
    missing : bool, optional
        Whether ``obs`` has missing entries; default: looked up in ``obs`` (when it is traced,
        e.g. in batched fits, assumed ``True`` unless given).

    Sites
    -----
    ``cpt_<node>`` : shape (number of parent configurations, cardinality), in the plate
    ``<node>_parents``; ``obs`` : shape (N, V), in the plate ``rows``.
    """
    net = _as_network(network)
    tables = []
    for v in net.nodes:
        card = len(net.states[v])
        pshape = tuple(len(net.states[p]) for p in net.parents[v])
        n_cfg = int(np.prod(pshape)) if pshape else 1
        with numpyro.plate(f"{v}_parents", n_cfg):
            theta = numpyro.sample(cpt_site(v), dist.Dirichlet(jnp.full((card,), float(prior_concentration))))
        tables.append(theta.reshape(pshape + (card,)))
    if obs is None and num_rows is None:
        raise DataError("num_rows", "the number of rows to simulate when obs is None", "None")
    n = obs.shape[0] if obs is not None else int(num_rows)
    has_missing = _has_missing(obs) if missing is None else bool(missing)
    with numpyro.plate("rows", n):
        numpyro.sample("obs", BayesNetRows(net, tables, has_missing=has_missing), obs=obs)


def _bayesnet_init_strategy(data: Any = None, seed: int = 0):
    """Where NUTS and SVI on :func:`bayesnet_model` start: every table at its available-case
    posterior mean.

    Each node's row counts come from the rows where the node and its parents are all observed
    (:func:`count_table`; unbiased when values are missing completely at random), plus the
    prior's concentration: a point near the posterior's bulk, strictly inside every simplex.
    The generic start (the median of prior draws) puts the 509 free entries of ALARM's tables
    far from the data, and warm-up then spends its first hundreds of steps getting there.
    ``None`` (the generic start) when there are no observed rows.
    """
    from numpyro.infer.initialization import init_to_value

    del seed
    kwargs = getattr(data, "kwargs", data)
    if not isinstance(kwargs, Mapping) or kwargs.get("obs") is None or kwargs.get("network") is None:
        return None
    obs = kwargs["obs"]
    if isinstance(obs, jax.core.Tracer):
        return None
    net = _as_network(kwargs["network"])
    codes = np.asarray(obs)
    if codes.ndim != 2 or codes.shape[1] != len(net.nodes):
        return None
    conc = float(kwargs.get("prior_concentration", 1.0))
    values = {}
    for v in net.nodes:
        counts = count_table(net, codes, v) + conc
        rows = counts.reshape(-1, counts.shape[-1])
        values[cpt_site(v)] = jnp.asarray(rows / rows.sum(axis=-1, keepdims=True))
    return init_to_value(values=values)


bayesnet_model.default_init_strategy = _bayesnet_init_strategy


# 2 dims per table plus chain and draw must stay within NumPy's 64 dimensions (see network_data)
_MAX_LABELLED_NODES = 30


def network_data(network: Any, data: pd.DataFrame, *, prior_concentration: float = 1.0):
    """The :class:`~ppl_models.data.ModelData` of :func:`bayesnet_model` for a DataFrame.

    Columns absent from ``data`` are missing in every row; NaN/None cells are missing.

    The table of node ``v`` has the ArviZ dims ``<v>_parents`` and ``<v>_state``, labelled by
    the parent configurations and the states. A network of more than
    ``_MAX_LABELLED_NODES`` nodes would give a summary more dimensions than NumPy's limit of 64
    (ArviZ stacks every variable's dims into one array), so its tables share dims by size
    instead: ``parent_configs_<n>`` and ``states_<k>``, numbered
    (:meth:`CPTPosterior.cpt_summary` still names the states and parents).
    """
    from ..data import ModelData

    net = _as_network(network)
    codes = net.encode(data)
    coords = {"rows": np.arange(len(codes)), "node": list(net.nodes)}
    dims = {"obs": ["rows", "node"]}
    labelled = len(net.nodes) <= _MAX_LABELLED_NODES
    for v in net.nodes:
        if labelled:
            coords[f"{v}_parents"] = _parent_labels(net, v)
            coords[f"{v}_state"] = [str(s) for s in net.states[v]]
            dims[cpt_site(v)] = [f"{v}_parents", f"{v}_state"]
        else:
            n_cfg = int(np.prod([len(net.states[p]) for p in net.parents[v]]))
            card = len(net.states[v])
            coords[f"parent_configs_{n_cfg}"] = list(range(n_cfg))
            coords[f"states_{card}"] = list(range(card))
            dims[cpt_site(v)] = [f"parent_configs_{n_cfg}", f"states_{card}"]
    # num_rows lets the program simulate as many rows when obs is None (posterior predictive)
    return ModelData(kwargs={"network": net, "obs": codes, "num_rows": int(len(codes)),
                             "prior_concentration": float(prior_concentration)},
                     observed=("obs",), coords=coords, dims=dims, name=net.name,
                     description=f"{net.name}: {len(codes)} rows, {int((codes < 0).sum())} missing values",
                     extra={"network": net})


def _parent_labels(net: BayesianNetwork, v: str) -> list[str]:
    pa = net.parents[v]
    if not pa:
        return ["-"]
    return [",".join(f"{p}={net.states[p][i]}" for p, i in zip(pa, idx))
            for idx in np.ndindex(*(len(net.states[p]) for p in pa))]


def count_table(net: BayesianNetwork, codes: np.ndarray, node: str) -> np.ndarray:
    """Counts ``(*parent cards, card)`` of a node and its parents over the rows where they are
    all observed."""
    idx = net._index
    cols = [idx[p] for p in net.parents[node]] + [idx[node]]
    shape = tuple(len(net.states[u]) for u in net.parents[node]) + (len(net.states[node]),)
    sub = codes[:, cols]
    ok = (sub >= 0).all(axis=1)
    counts = np.zeros(shape)
    np.add.at(counts, tuple(sub[ok].T), 1.0)
    return counts


class CPTPosterior:
    """Posterior draws of a network's tables, and queries with credible intervals.

    Attributes
    ----------
    network : BayesianNetwork
        The structure (with the tables it was declared with).
    fit : ppl_models.fit.Fit or None
        The fit the draws come from (NUTS, SVI, or exact conjugate draws, method
        ``"exact"``); ``None`` only when built from bare ``samples``.
    tables : dict
        ``node -> array (draws, *parent cards, card)``.
    """

    def __init__(self, network: BayesianNetwork, fit: Any = None, *, samples: Mapping[str, Any] | None = None):
        self.network = network
        self.fit = fit
        if samples is None:
            if fit is None:
                raise DataError("fit", "a Fit or samples", "neither")
            samples = fit.get_samples()
        self.tables = {}
        for v in network.nodes:
            pshape = tuple(len(network.states[p]) for p in network.parents[v])
            a = np.asarray(samples[cpt_site(v)])
            self.tables[v] = a.reshape((a.shape[0],) + pshape + (len(network.states[v]),))

    @property
    def num_draws(self) -> int:
        return next(iter(self.tables.values())).shape[0]

    def mean_network(self) -> BayesianNetwork:
        """The network with every table replaced by its posterior mean."""
        means = {v: t.mean(axis=0) for v, t in self.tables.items()}
        means = {v: m / m.sum(axis=-1, keepdims=True) for v, m in means.items()}
        return self.network.with_cpts(means, name=f"{self.network.name}_posterior_mean")

    def cpt_summary(self, node: str, ci_prob: float = 0.89) -> pd.DataFrame:
        """Posterior mean, sd and equal-tailed interval of every entry of ``node``'s table."""
        self.network._check_node(node, "node")
        t = self.tables[node]
        lo, hi = np.quantile(t, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
        net = self.network
        pa = net.parents[node]
        rows = []
        for idx in np.ndindex(*t.shape[1:]):
            rec = {p: net.states[p][i] for p, i in zip(pa, idx[:-1])}
            rec[node] = net.states[node][idx[-1]]
            rec.update(mean=t[(slice(None),) + idx].mean(), sd=t[(slice(None),) + idx].std(ddof=1),
                       lower=lo[idx], upper=hi[idx])
            rows.append(rec)
        return pd.DataFrame(rows).set_index(list(pa) + [node])

    def query(self, target: str, evidence: Mapping[str, Any] | None = None, *, ci_prob: float = 0.89,
              max_draws: int | None = None) -> pd.DataFrame:
        """``p(target | evidence)`` under each posterior draw of the tables, summarized.

        Parameters
        ----------
        target : str
        evidence : dict, optional
        ci_prob : float
            Mass of the equal-tailed credible interval.
        max_draws : int, optional
            Use at most this many draws (evenly thinned).

        Returns
        -------
        DataFrame
            Index: the target's states; columns ``mean``, ``sd``, ``lower``, ``upper`` and
            ``plug_in`` (the answer of the posterior-mean tables).
        """
        net = self.network
        target = net._check_targets(target)[0]
        frame = net._evidence_frame(evidence)
        ev_nodes, codes, index = net._encode_evidence(frame)
        codes_all = net._all_codes(ev_nodes, codes)[0]
        plan, factors = net._marginals_plan("auto")
        step = 1 if max_draws is None or self.num_draws <= max_draws else self.num_draws // max_draws
        with np.errstate(divide="ignore"):
            logs = [jnp.asarray(np.log(self.tables[v][::step])) for v in factors]
        cap = net._chunk_cap(plan, "grad", None)
        fn = _compiled_draw_marginals(plan, len(factors))
        probs = []
        n = logs[0].shape[0]
        for start in range(0, n, cap):
            res = fn([lg[start:start + cap] for lg in logs], jnp.asarray(codes_all))
            probs.append(np.asarray(res.marginals[net._index[target]]))
            if not np.all(np.isfinite(np.asarray(res.log_evidence))):
                net._raise_impossible(np.asarray(res.log_evidence), index.repeat(len(res.log_evidence)), frame)
        p = np.concatenate(probs)
        lo, hi = np.quantile(p, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
        plug = self.mean_network().query(target, evidence)["probability"].to_numpy()
        return pd.DataFrame({"mean": p.mean(axis=0), "sd": p.std(axis=0, ddof=1), "lower": lo,
                             "upper": hi, "plug_in": plug},
                            index=pd.Index(list(net.states[target]), name=target))


@lru_cache(maxsize=64)
def _compiled_draw_marginals(plan: ContractionPlan, num_factors: int):
    """``jit(vmap(node_marginals))`` over draws of the tables, for one evidence set."""
    cards = tuple(plan.cardinalities[vs[-1]] for vs in plan.operand_vars)

    def one(log_factors, ev_values):
        return node_marginals(plan, log_factors, evidence_log_vectors(ev_values, cards), absorbed=True)

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


def fit_cpts(network: Any, data: pd.DataFrame, method: str = "nuts", *, prior_concentration: float = 1.0,
             seed: int = 0, num_draws: int = 1000, **fit_kwargs) -> CPTPosterior:
    """The posterior of a network's tables given a DataFrame of observations.

    Parameters
    ----------
    network : BayesianNetwork or str
        The structure (its tables are ignored).
    data : DataFrame
        Columns named by nodes, values state names; NaN/None where missing (summed out
        exactly in the likelihood).
    method : {"exact", "nuts", "hmc", "svi", "map"}
        ``"exact"``: the conjugate posterior (independent Dirichlet rows with the counts
        added), drawn directly; complete data only. The others run
        :func:`ppl_models.fit` on :func:`bayesnet_model`.
    prior_concentration : float
        Dirichlet concentration of every table entry.
    seed : int
    num_draws : int
        Draws per chain for ``"exact"``.
    **fit_kwargs
        Passed to :func:`ppl_models.fit` (``num_chains``, ``num_warmup``, ``num_samples``,
        ``num_steps``, ``learning_rate``, ...). ``"exact"`` takes only ``num_chains``
        (default 1): that many independent sets of ``num_draws`` exact draws, so that r-hat
        and ESS read as for MCMC.

    Returns
    -------
    CPTPosterior
        Its ``fit`` is a :class:`ppl_models.fit.Fit` for every method: for ``"exact"`` one
        built from the conjugate draws (method ``"exact"``, as
        :meth:`~ppl_models.fit.Fit.from_samples` would), so ``post.fit.to_arviz()``, ``post.fit.summary()`` and
        ``post.fit.predict()`` work as after NUTS.
    """
    from ..inference import fit as run_fit

    net = _as_network(network)
    md = network_data(net, data, prior_concentration=prior_concentration)
    if str(method).lower() == "exact":
        codes = md.kwargs["obs"]
        if (codes < 0).any():
            raise DataError("data", "complete rows for method='exact' (no missing values)",
                            f"{int((codes < 0).sum())} missing value(s)",
                            "use method='nuts' or 'svi', which sum missing values out")
        num_chains = fit_kwargs.pop("num_chains", 1)
        if fit_kwargs:
            raise DataError("fit_kwargs", "only num_chains for method='exact' (the draws are "
                            "exact: no warm-up, steps or sampler settings)", sorted(fit_kwargs))
        if not isinstance(num_chains, (int, np.integer)) or num_chains < 1:
            raise DataError("num_chains", "a positive integer", repr(num_chains))
        if not isinstance(num_draws, (int, np.integer)) or num_draws < 1:
            raise DataError("num_draws", "a positive integer", repr(num_draws))
        if not (isinstance(prior_concentration, (int, float, np.number)) and prior_concentration > 0):
            raise DataError("prior_concentration", "a positive number", repr(prior_concentration))
        rng = np.random.default_rng(seed)
        samples = {}
        for v in net.nodes:
            counts = count_table(net, codes, v)
            alpha = counts.reshape(-1, counts.shape[-1]) + prior_concentration
            g = rng.gamma(alpha, size=(int(num_chains), int(num_draws)) + alpha.shape)
            samples[cpt_site(v)] = g / g.sum(axis=-1, keepdims=True)
        # Independent Dirichlet rows need no sampler: the draws go into a Fit as they are (what
        # Fit.from_samples does, less its trace of the program, which would draw from every
        # Dirichlet prior: a sampler compiled per table shape, about a minute on alarm). The
        # program is traced once with a draw substituted for every table instead; it has no
        # deterministic sites to fill in.
        from numpyro import handlers

        from .._trace import inspect_model
        from ..fit import Fit

        first = {k: a[0, 0] for k, a in samples.items()}
        traced = {}

        def trace_once():
            # abstractly (jax.eval_shape): the program's small eager ops (plates, priors)
            # would otherwise compile one by one, seconds for a network of 56 nodes
            traced["sites"] = inspect_model(handlers.substitute(bayesnet_model, data=first),
                                            md.kwargs, seed=seed)
            return jnp.zeros(())

        jax.eval_shape(trace_once)
        sites = traced["sites"]
        result = Fit(bayesnet_model, md.kwargs, "exact", samples, sites=sites,
                     observed=tuple(md.observed), coords=md.coords, dims=md.dims,
                     info={"method": "exact", "seed": int(seed), "num_chains": int(num_chains),
                           "num_samples": int(num_draws),
                           "prior_concentration": float(prior_concentration)})
        return CPTPosterior(net, result)
    result = run_fit(bayesnet_model, md, method=method, seed=seed, **fit_kwargs)
    return CPTPosterior(net, result)


def catalog_report(fit: Any, model_data: ModelData, ci_prob: float = 0.89) -> dict[str, Any]:
    """What ``ppl-models run`` prints for a Bayesian-network card (``[outputs] report``).

    ``missing_values``: how many values of the fitted rows were missing (summed out exactly).
    When the rows were sampled from a known network (``extra["network"]``, as
    :func:`ppl_models.datasets.networks.load_network_sample` gives), also how well the tables
    were learned back: ``table_error``, the mean over nodes of the mean absolute error of the
    posterior-mean table, and ``coverage``, the share of table entries whose equal-tailed
    ``ci_prob`` interval holds the generating value (near ``ci_prob`` for a calibrated posterior;
    lower for a mean-field SVI guide, whose intervals are too narrow). Entries that are exactly
    0 or 1 (deterministic nodes, such as asia's ``either``) are left out of the coverage: no
    interval of a Dirichlet posterior reaches them.
    """
    extra = getattr(model_data, "extra", None) or {}
    out: dict[str, Any] = {}
    frame = extra.get("frame")
    if frame is not None:
        out["missing_values"] = int(pd.DataFrame(frame).isna().to_numpy().sum())
    net = extra.get("network")
    if net is None:
        return out
    post = CPTPosterior(net, fit)
    errors, inside, total = [], 0, 0
    for v in net.nodes:
        truth = net.cpt_array(v, normalized=True)
        t = post.tables[v]
        lo, hi = np.quantile(t, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
        errors.append(float(np.abs(t.mean(axis=0) - truth).mean()))
        interior = (truth > 0) & (truth < 1)  # a table entry of exactly 0 or 1 lies outside
        inside += int(((lo <= truth) & (truth <= hi) & interior).sum())  # every interval
        total += int(interior.sum())
    out["table_error"] = round(float(np.mean(errors)), 4)
    out["coverage"] = round(inside / total, 3)
    return out


__all__ += ["BayesNetRows", "bayesnet_model", "network_data", "fit_cpts", "CPTPosterior", "catalog_report",
            "count_table", "cpt_site", "read_bif", "MarginalsResult", "node_marginals"]
