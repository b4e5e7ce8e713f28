"""The built wheel carries the catalog cards and the bundled data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_cards_and_data(tmp_path):
    import shutil

    # build from a copy of the tracked files, so stale build/ output in a work tree cannot leak in
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout")
    src = tmp_path / "src"
    for rel in files.stdout.split():
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(tmp_path.glob("ppl_models-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    cards = {Path(n).name for n in names if n.startswith("ppl_models/models_catalog/") and n.endswith(".toml")}
    assert cards == {p.name for p in (src / "models_catalog").glob("*.toml")}
    data = {n for n in names if n.startswith("ppl_models/datasets/data/")}
    for p in (src / "ppl_models" / "datasets" / "data").rglob("*"):
        if p.is_file():
            assert f"ppl_models/{p.relative_to(src / 'ppl_models').as_posix()}" in data, p


def test_catalog_found_through_the_package():
    from ppl_models.catalog import catalog_dir

    assert (catalog_dir() / "breast_cancer_logistic.toml").exists()
