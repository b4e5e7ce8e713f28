"""The Titanic survival table (R ``datasets::Titanic``), and a Bayesian network over it.

2,201 people cross-classified by Class, Sex, Age and Survived (see
``data/titanic.csv.SOURCE.md``). The stated DAG: Sex and Age are roots; Class depends on both
(children and women were unevenly spread over the classes and the crew was almost all adult
men); Survived depends on Class, Sex and Age ("women and children first", by class).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data import ModelData

__all__ = ["TITANIC_STATES", "TITANIC_PARENTS", "load_titanic_table", "load_titanic_rows",
           "titanic_structure", "load_titanic"]

_CSV = Path(__file__).resolve().parent / "data" / "titanic.csv"

TITANIC_STATES = {
    "Sex": ["Male", "Female"],
    "Age": ["Child", "Adult"],
    "Class": ["1st", "2nd", "3rd", "Crew"],
    "Survived": ["No", "Yes"],
}
TITANIC_PARENTS = {"Sex": [], "Age": [], "Class": ["Sex", "Age"], "Survived": ["Class", "Sex", "Age"]}


def load_titanic_table() -> pd.DataFrame:
    """The 32-cell table: columns Class, Sex, Age, Survived, Freq."""
    return pd.read_csv(_CSV)


def load_titanic_rows() -> pd.DataFrame:
    """One row per person (2,201), columns Sex, Age, Class, Survived as categoricals."""
    table = load_titanic_table()
    rows = table.loc[table.index.repeat(table["Freq"]), list(TITANIC_STATES)].reset_index(drop=True)
    for c, states in TITANIC_STATES.items():
        rows[c] = pd.Categorical(rows[c], categories=states)
    return rows


def titanic_structure():
    """The stated DAG with uniform tables (a structure for learning)."""
    from ..models.bayesnet import BayesianNetwork

    tables = {}
    for v, pa in TITANIC_PARENTS.items():
        shape = tuple(len(TITANIC_STATES[p]) for p in pa) + (len(TITANIC_STATES[v]),)
        tables[v] = np.full(shape, 1.0 / shape[-1])
    return BayesianNetwork(TITANIC_PARENTS, tables, states=TITANIC_STATES, name="titanic")


def load_titanic(prior_concentration: float = 1.0, num_rows: int | None = None, seed: int = 0) -> ModelData:
    """The Titanic rows as the data of :func:`~ppl_models.models.bayesnet.bayesnet_model`.

    Parameters
    ----------
    prior_concentration : float
        Dirichlet concentration of the table rows.
    num_rows : int, optional
        A random subset of this many people (for quick checks); default all 2,201.
    seed : int
        Seed of the subset.
    """
    from ..models.bayesnet import network_data

    rows = load_titanic_rows()
    if num_rows is not None and num_rows < len(rows):
        pick = np.random.default_rng(seed).choice(len(rows), size=int(num_rows), replace=False)
        rows = rows.iloc[np.sort(pick)].reset_index(drop=True)
    md = network_data(titanic_structure(), rows, prior_concentration=prior_concentration)
    md.name = "titanic"
    md.description = f"Titanic passengers and crew ({len(rows)} people): Class, Sex, Age, Survived"
    md.extra["frame"] = rows
    return md
