"""Every bundled catalog entry runs end to end (at small settings: the full-settings gate
verdicts are recorded by scripts/verify_catalog.py in benchmarks/results/catalog.md)."""

from __future__ import annotations

import pytest

from ppl_models.catalog import list_entries
from ppl_models.runner import run_entry

CARDS = list_entries()


@pytest.mark.slow
@pytest.mark.parametrize("card", CARDS, ids=[c.name for c in CARDS])
def test_entry_runs_end_to_end(card, tmp_path):
    method = card.inference.get("method", "nuts")
    small = ({"num_chains": 2, "num_warmup": 50, "num_samples": 50} if method in ("nuts", "hmc")
             else {"num_steps": 50, "num_posterior_draws": 20})
    res = run_entry(card, tmp_path, small, progress=False)
    assert (tmp_path / "fit.nc").exists() and (tmp_path / "summary.csv").exists()
    assert len(res.summary) > 0
    assert res.fit.num_draws == (50 if method in ("nuts", "hmc") else 20)


SBC_CARDS = [c for c in CARDS if c.name in ("breast_cancer_logistic", "breast_cancer_naive_bayes")]


@pytest.mark.slow
@pytest.mark.parametrize("card", SBC_CARDS, ids=[c.name for c in SBC_CARDS])
def test_classifier_cards_pass_sbc(card):
    from ppl_models.runner import check_entry

    res = check_entry(card)
    assert res.passed, str(res)
    assert res.num_replications == card.check["num_replications"]
