"""The ppl-models command line and catalog cards, including a user's own card and program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ppl_models import cli
from ppl_models.catalog import list_entries, load_card, parse_card
from ppl_models.errors import CatalogError

USER_MODULE = '''
import numpy as np
import numpyro
import numpyro.distributions as dist
from ppl_models.data import ModelData


def poisson_rate(counts=None, n=40, prior_rate=1.0):
    rate = numpyro.sample("rate", dist.Gamma(2.0, prior_rate))
    with numpyro.plate("obs", n):
        numpyro.sample("counts", dist.Poisson(rate), obs=counts)


def load(n=40, seed=0):
    counts = np.random.default_rng(seed).poisson(3.0, size=n).astype(np.float32)
    return ModelData(kwargs={"counts": counts, "n": n}, observed=("counts",), name="user counts")
'''

USER_CARD = '''
name = "user_poisson"
description = "A user's own Poisson-Gamma program"
family = "custom"

[model]
function = "user_models_for_test:poisson_rate"

[data]
loader = "user_models_for_test:load"
[data.args]
n = 40

[inference]
method = "nuts"
num_chains = 2
num_warmup = 300
num_samples = 400
seed = 0

[gate]
ess_bulk_min = 200
ess_tail_min = 200

[check]
num_replications = 40
num_warmup = 150
num_samples = 200
[check.data_args]
n = 10
'''


@pytest.fixture()
def user_card(tmp_path, monkeypatch):
    (tmp_path / "user_models_for_test.py").write_text(USER_MODULE)
    card = tmp_path / "user_poisson.toml"
    card.write_text(USER_CARD)
    monkeypatch.syspath_prepend(str(tmp_path))
    return card


def _run_cli(args, env_extra=None, cwd=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "ppl_models.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_run_user_card_writes_every_output(user_card, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["run", str(user_card), "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "convergence gate" in text and "PASSED" in text and "rate" in text
    for name in ("fit.nc", "summary.csv", "convergence.json", "trace.png", "ppc.png"):
        assert (out / name).exists() and (out / name).stat().st_size > 0, name
    verdict = json.loads((out / "convergence.json").read_text())
    assert verdict["passed"] and verdict["entry"] == "user_poisson"
    from ppl_models import load_fit

    back = load_fit(out / "fit.nc")
    assert back.samples["rate"].shape == (2, 400)
    assert "posterior_predictive" in back.to_arviz(posterior_predictive=True).children


def test_check_user_card_runs_sbc(user_card, tmp_path, capsys):
    code = cli.main(["check", str(user_card), "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "SBC PASSED" in text and (tmp_path / "sbc.csv").exists() and (tmp_path / "sbc.png").exists()


def test_sample_user_card_forward_samples(user_card, tmp_path, capsys):
    code = cli.main(["sample", str(user_card), "--out", str(tmp_path), "--num-samples", "25"])
    assert code == 0
    assert (tmp_path / "prior.nc").exists() and (tmp_path / "synthetic_counts.csv").exists()
    assert "counts" in capsys.readouterr().out


def test_list_shows_the_bundled_catalog(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for card in list_entries():
        assert card.name in out


def test_every_bundled_card_is_valid_and_resolves():
    cards = list_entries()
    assert cards, "the catalog is empty"
    for card in cards:
        assert card.path.stem == card.name
        assert callable(card.model())


def test_unknown_entry_exits_2_without_traceback():
    r = _run_cli(["run", "no_such_model"])
    assert r.returncode == 2
    assert "unknown catalog entry 'no_such_model'" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("content, fragment", [
    ("name = 'x'\n[model]\nfunction = 'a:b'\n", "missing the key 'data'"),
    ("[model\n", "not valid TOML"),
    ("[model]\nfunction = 'nocolon'\n[data]\nloader = 'a:b'\n", "package.module:function"),
    ("[model]\nfunction = 'a:b'\n[data]\nloader = 'a:b'\n[inference]\nwarmup = 3\n", "unknown key"),
    ("[model]\nfunction = 'a:b'\n[data]\nloader = 'a:b'\nbogus = 1\n", None),
])
def test_malformed_cards(tmp_path, content, fragment):
    p = tmp_path / "bad.toml"
    p.write_text(content)
    if fragment is None:  # unknown keys inside [data] are the loader's business: parse succeeds
        parse_card(p)
        return
    with pytest.raises(CatalogError, match=fragment):
        load_card(p)


def test_malformed_card_cli_message(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[model]\nfunction = 'nocolon'\n[data]\nloader = 'a:b'\n")
    r = _run_cli(["run", str(p)])
    assert r.returncode == 2 and "malformed card" in r.stderr and "Traceback" not in r.stderr


def test_card_naming_a_missing_module(tmp_path):
    p = tmp_path / "missing.toml"
    p.write_text("[model]\nfunction = 'nowhere_module:f'\n[data]\nloader = 'nowhere_module:g'\n")
    r = _run_cli(["run", str(p)])
    assert r.returncode == 2 and "nowhere_module" in r.stderr and "Traceback" not in r.stderr


def _card_beside_its_module(tmp_path, loader_body):
    """A card and its module in one directory, named nowhere on sys.path."""
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "beside_module.py").write_text(USER_MODULE + loader_body)
    card = cards / "beside.toml"
    card.write_text(USER_CARD.replace("user_models_for_test:poisson_rate", "beside_module:poisson_rate")
                    .replace("user_models_for_test:load", "beside_module:load"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": ""}
    return card, elsewhere, env


def test_a_cards_module_next_to_it_is_importable_from_anywhere(tmp_path):
    card, elsewhere, env = _card_beside_its_module(tmp_path, "")
    r = _run_cli(["sample", str(card), "--num-samples", "5", "--out", str(tmp_path / "out")], env, cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert "counts" in r.stdout and (tmp_path / "out" / "prior.nc").exists()
    # a module in the current directory, the card elsewhere, through the console script (whose
    # sys.path, unlike `python -m`'s, does not start with the current directory)
    script = Path(sys.executable).with_name("ppl-models")
    if script.exists():
        (elsewhere / "beside_module.py").write_text((card.parent / "beside_module.py").read_text())
        (card.parent / "beside_module.py").unlink()
        r = subprocess.run([str(script), "sample", str(card), "--num-samples", "5"], capture_output=True,
                           text=True, env=dict(os.environ, **env), cwd=elsewhere, timeout=600)
        assert r.returncode == 0, r.stderr
        (card.parent / "beside_module.py").write_text((elsewhere / "beside_module.py").read_text())
    # ... and the card's directory is on sys.path only while its references are resolved
    import sys as _sys

    before = list(_sys.path)
    load_card(card).model()
    assert _sys.path == before


BAD_LOADERS = '''

def load_nan(n=40, seed=0):
    md = load(n, seed)
    md.kwargs["counts"][3] = float("nan")
    return md


def load_short(n=40, seed=0):
    md = load(n, seed)
    md.kwargs["counts"] = md.kwargs["counts"][:-1]
    return md


def load_negative(n=40, seed=0):
    md = load(n, seed)
    md.kwargs["counts"][5] = -2
    return md
'''


@pytest.mark.parametrize("loader, fragment", [
    ("load_nan", r"argument `counts`: expected finite values (no NaN or inf), got 1 non-finite value(s), "
                 r"the first nan at index (3,)"),
    ("load_short", "argument `counts`: expected an array whose shape broadcasts with (40,)"),
    ("load_negative", "argument `counts`: expected values in the support of the observed site `counts` "
                      "(Poisson: non-negative integers), got 1 value(s) outside it, the first -2.0 at index (5,)"),
])
def test_bad_data_in_a_user_card_is_one_line_and_exit_2(tmp_path, loader, fragment):
    card, elsewhere, env = _card_beside_its_module(tmp_path, BAD_LOADERS)
    card.write_text(card.read_text().replace("beside_module:load", f"beside_module:{loader}"))
    r = _run_cli(["run", str(card), "--no-progress"], env, cwd=elsewhere)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("ppl-models:")]
    assert len(lines) == 1 and fragment in lines[0], r.stderr


def test_an_internal_error_is_not_reported_as_a_failed_gate(monkeypatch, capsys):
    def broken():
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "_cmd_list", broken)
    assert cli.main(["list"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "unexpected error (RuntimeError)" in err


def test_a_program_error_is_one_line_with_a_pointer_and_traceback_on_request(monkeypatch, capsys):
    from ppl_models.errors import ModelError

    def failing(args):
        try:
            raise TypeError("dot_general requires contracting dimensions to have the same shape")
        except TypeError as exc:
            raise ModelError("the program failed when run on its data ['x', 'y']: TypeError: ...") from exc

    monkeypatch.setattr(cli, "_cmd_run", failing)
    assert cli.main(["run", "whatever"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("ppl-models: error: the program failed") and "--traceback" in lines[1]
    assert cli.main(["--traceback", "run", "whatever"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "dot_general" in err


def test_an_unwritable_out_is_a_user_error_before_any_fit(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    assert cli.main(["run", "breast_cancer_logistic", "--out", str(blocker / "sub"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "argument `--out`" in err and "Traceback" not in err


def test_two_cards_with_same_named_modules_beside_them_get_their_own(tmp_path):
    from ppl_models.catalog import card_imports
    from ppl_models.fit import resolve_reference

    got = []
    for which in ("a", "b"):
        d = tmp_path / which
        d.mkdir()
        (d / "mymod_for_card_test.py").write_text(f"def which():\n    return {which!r}\n")
        with card_imports(d / "card.toml"):
            got.append(resolve_reference("mymod_for_card_test:which", "test")())
    assert got == ["a", "b"]
    assert "mymod_for_card_test" not in sys.modules
