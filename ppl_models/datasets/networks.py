"""The bundled Bayesian networks (BIF files from the bnlearn repository, via pgmpy's wheel).

``load_network("alarm")`` reads ``datasets/data/bif/alarm.bif.gz`` with our own BIF parser;
:func:`load_network_sample` draws rows from a network (optionally with values missing at
random) as the :class:`~ppl_models.data.ModelData` of
:func:`ppl_models.models.bayesnet.bayesnet_model`, the generating network kept in ``extra``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data import ModelData
from ..errors import DataError

__all__ = ["BIF_DIR", "available_networks", "load_network", "load_network_sample"]

BIF_DIR = Path(__file__).resolve().parent / "data" / "bif"


def available_networks() -> list[str]:
    """Names of the bundled networks (``asia``, ``alarm``, ``hailfinder``, ...)."""
    return sorted(p.name[: -len(".bif.gz")] for p in BIF_DIR.glob("*.bif.gz"))


@lru_cache(maxsize=32)
def _read(name: str):
    from ..models.bayesnet import read_bif

    return read_bif(BIF_DIR / f"{name}.bif.gz", name=name)


def load_network(name: str):
    """A bundled network by name, as a :class:`~ppl_models.models.bayesnet.BayesianNetwork`.

    Parameters
    ----------
    name : str
        One of :func:`available_networks`.
    """
    names = available_networks()
    if name not in names:
        raise DataError("name", f"one of the bundled networks {names}", repr(name))
    # Parsed once per process; each caller gets its own copy to modify.
    net = _read(name)
    return net.with_cpts({}, name=name)


def load_network_sample(network: str = "asia", num_rows: int = 10_000, seed: int = 0,
                        missing_fraction: float = 0.0, prior_concentration: float = 1.0) -> ModelData:
    """Rows sampled forward from a bundled network, optionally with values missing at random.

    Parameters
    ----------
    network : str
        A bundled network's name.
    num_rows : int
        Rows to draw.
    seed : int
        Seed of the rows and of the missingness mask.
    missing_fraction : float
        Each value is removed independently with this probability (missing completely at
        random), in ``[0, 1)``.
    prior_concentration : float
        Dirichlet concentration of the program's table rows.

    Returns
    -------
    ModelData
        Keyword arguments of :func:`~ppl_models.models.bayesnet.bayesnet_model`;
        ``extra["network"]`` is the generating network and ``extra["frame"]`` the rows as a
        DataFrame (NaN where missing).
    """
    from ..models.bayesnet import network_data

    if not 0.0 <= float(missing_fraction) < 1.0:
        raise DataError("missing_fraction", "a fraction in [0, 1)", missing_fraction)
    if int(num_rows) < 1:
        raise DataError("num_rows", "a positive number of rows", num_rows)
    net = load_network(network)
    frame = net.sample(int(num_rows), seed=int(seed)).astype(object)
    if missing_fraction > 0:
        mask = np.random.default_rng(int(seed) + 1).random(frame.shape) < float(missing_fraction)
        frame = frame.mask(mask)
    md = network_data(net, frame, prior_concentration=prior_concentration)
    md.name = f"{network}_sample"
    md.description = (f"{num_rows} rows sampled from the {network} network"
                      + (f", {missing_fraction:.0%} of the values missing at random" if missing_fraction else ""))
    md.extra.update(network=net, frame=frame, missing_fraction=float(missing_fraction))
    return md
