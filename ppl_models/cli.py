"""``ppl-models``: list, run, check and forward-sample catalog entries.

    ppl-models list
    ppl-models run ENTRY [--out DIR] [--method M] [--num-samples N] ...
    ppl-models check ENTRY [--out DIR] [--replications R]
    ppl-models sample ENTRY [--out DIR] [--num-samples N]

ENTRY is a bundled entry's name or the path of a card of your own (its module may sit next to
the card or in the current directory). Exit status: 0 when the run passes its gate (or SBC
passes); 1 when the convergence gate or SBC fails; 2 for an error a user can cause (an unknown
entry, a malformed card, bad data, a program that cannot run on its data, diverged SVI), printed
as one line without a traceback; 3 for an unexpected error, in ppl_models or in a card's own code (printed with its traceback).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

_T0 = time.perf_counter()

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ppl-models", description="Ready-to-run probabilistic models on real data.")
    p.add_argument("--traceback", action="store_true",
                   help="on an error, also print the traceback (of the program's own exception, when "
                        "a program failed on its data)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the catalog entries")

    run = sub.add_parser("run", help="fit an entry with its defaults, check convergence, write outputs")
    run.add_argument("entry", help="catalog entry name, or path to a .toml card")
    run.add_argument("--out", help="directory for fit.nc, summary.csv, convergence.json, trace.png, ppc.png")
    run.add_argument("--method", choices=["nuts", "hmc", "svi", "map"])
    run.add_argument("--num-samples", type=int)
    run.add_argument("--num-warmup", type=int)
    run.add_argument("--num-chains", type=int)
    run.add_argument("--num-steps", type=int, help="SVI optimisation steps")
    run.add_argument("--seed", type=int)
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    chk = sub.add_parser("check", help="simulation-based calibration of an entry's model")
    chk.add_argument("entry")
    chk.add_argument("--out", help="directory for sbc.csv and sbc.png")
    chk.add_argument("--replications", type=int)
    chk.add_argument("--seed", type=int)
    chk.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    smp = sub.add_parser("sample", help="forward-sample an entry's model (prior and synthetic data)")
    smp.add_argument("entry")
    smp.add_argument("--out", help="directory for prior.nc and synthetic_*.csv")
    smp.add_argument("--num-samples", type=int, default=100)
    smp.add_argument("--seed", type=int, default=0)
    return p


def _echo(msg: str) -> None:
    print(msg, flush=True)


def _cmd_list() -> int:
    from .catalog import list_entries

    cards = list_entries()
    width = max((len(c.name) for c in cards), default=10)
    for c in cards:
        print(f"{c.name:<{width}}  {c.family:<12} {c.description}")
    return 0


def _writable_out(out: str | None) -> None:
    """``--out`` made (with its parents) and written to before any long work, so a bad path is a
    user error at once, not an internal one after the fit."""
    if out is None:
        return
    import tempfile
    from pathlib import Path

    from .errors import DataError

    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise DataError("--out", "a directory that can be created and written to", repr(out),
                        f"{type(exc).__name__}: {exc.strerror or exc}") from None


def _cmd_run(args: argparse.Namespace) -> int:
    import pandas as pd

    from .catalog import load_card
    from .runner import run_entry

    card = load_card(args.entry)
    _writable_out(args.out)
    overrides = {"method": args.method, "num_samples": args.num_samples, "num_warmup": args.num_warmup,
                 "num_chains": args.num_chains, "num_steps": args.num_steps, "seed": args.seed}
    progress = False if args.no_progress else None
    res = run_entry(card, args.out, overrides, progress=progress, echo=_echo)
    table = res.summary
    shown = 40
    with pd.option_context("display.width", 160, "display.max_columns", 12):
        print(table.head(shown).round(3).to_string())
    if len(table) > shown:
        where = f" (all of them in {args.out}/summary.csv)" if args.out else ""
        print(f"... {len(table) - shown} more rows{where}")
    for k, v in res.extra.items():
        print(f"{k}: {v}")
    print(str(res.report))
    if "sampling_seconds" in res.fit.info:
        print(f"sampling: {res.fit.info['sampling_seconds']:.1f} s; total {time.perf_counter() - _T0:.1f} s")
    for k, v in res.files.items():
        print(f"{'wrote' if not k.endswith('_error') else 'note'} {k}: {v}")
    return 0 if res.report.passed else 1


def _cmd_check(args: argparse.Namespace) -> int:
    from .catalog import load_card
    from .runner import check_entry

    card = load_card(args.entry)
    _writable_out(args.out)
    res = check_entry(card, args.out, num_replications=args.replications, seed=args.seed, echo=_echo,
                      progress=sys.stderr.isatty() and not args.no_progress)
    print(str(res))
    return 0 if res.passed else 1


def _cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from .catalog import load_card
    from .runner import sample_entry

    card = load_card(args.entry)
    _writable_out(args.out)
    draws = sample_entry(card, args.out, num_samples=args.num_samples, seed=args.seed)
    print(f"{card.name}: {args.num_samples} forward draws")
    for k, v in draws.items():
        v = np.asarray(v)
        print(f"  {k:<20} shape {tuple(v.shape[1:])!s:<14} mean {np.mean(v):.4g}  sd {np.std(v):.4g}")
    if args.out:
        print(f"wrote {args.out}/prior.nc")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ppl-models`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        from .errors import PPLModelsError

        if args.command == "list":
            return _cmd_list()
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "check":
            return _cmd_check(args)
        if args.command == "sample":
            return _cmd_sample(args)
    except KeyboardInterrupt:
        print("ppl-models: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from .errors import PPLModelsError

        # user errors (ppl_models raises them on purpose; FloatingPointError is diverged SVI,
        # whose message says what to change): one line, no traceback
        import traceback

        if isinstance(exc, (PPLModelsError, FloatingPointError)):
            if args.traceback:
                traceback.print_exception(exc)
            print(f"ppl-models: error: {exc}", file=sys.stderr)
            cause = exc.__cause__
            if cause is not None and not isinstance(cause, PPLModelsError) and not args.traceback:
                print(f"ppl-models: (it came from a {type(cause).__name__}; `ppl-models --traceback "
                      f"{args.command} ...` shows where)", file=sys.stderr)
            return 2

        traceback.print_exc()
        print(f"ppl-models: unexpected error ({type(exc).__name__}), in ppl_models or in the card's own code "
              "(its program or loader): the traceback above shows where",
              file=sys.stderr)
        return 3
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
