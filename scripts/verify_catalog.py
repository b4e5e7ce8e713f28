"""Run every catalog entry with its own defaults and record its convergence-gate verdict.

    python scripts/verify_catalog.py [ENTRY ...] > benchmarks/results/catalog.md
"""

import sys
import time

from ppl_models.catalog import list_entries, load_card
from ppl_models.runner import run_entry

cards = [load_card(n) for n in sys.argv[1:]] or list_entries()
print("| entry | method | gate | max r-hat | min bulk ESS | min tail ESS | divergences | seconds |")
print("|---|---|---|---|---|---|---|---|")
for card in cards:
    t0 = time.perf_counter()
    try:
        res = run_entry(card, progress=False)
    except Exception as exc:  # record, do not stop: the table is the point
        print(f"| `{card.name}` | | ERROR: {type(exc).__name__}: {str(exc)[:80]} | | | | | |", flush=True)
        continue
    r = res.report
    t = r.table
    if r.applicable:
        print(f"| `{card.name}` | {res.fit.method} | {'passed' if r.passed else 'FAILED'} | {t['r_hat'].max():.3f} | "
              f"{t['ess_bulk'].min():.0f} | {t['ess_tail'].min():.0f} | {r.divergences} | {time.perf_counter() - t0:.0f} |",
              flush=True)
    else:
        print(f"| `{card.name}` | {res.fit.method} | n/a | | | | | {time.perf_counter() - t0:.0f} |", flush=True)
