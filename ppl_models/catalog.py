"""The model catalog: ready-to-run entries, one TOML card each, in ``models_catalog/``.

A card names a program (``module:function``), its static arguments, a data loader
(``module:function`` returning a :class:`~ppl_models.data.ModelData`), the inference
defaults, the convergence gate the run must pass, and small SBC settings. A user's own card
(a path to a ``.toml`` file) works the same way and may name the user's own program.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .data import ModelData
from .errors import CatalogError, DataError
from .fit import resolve_reference

__all__ = ["Card", "catalog_dir", "list_entries", "load_card", "card_imports", "GATE_DEFAULTS"]

GATE_DEFAULTS = {"rhat_max": 1.01, "ess_bulk_min": 400, "ess_tail_min": 400, "max_divergences": 0}
_SECTIONS = {"name", "description", "family", "model", "data", "inference", "gate", "check", "outputs"}
_INFERENCE_KEYS = {
    "method", "seed", "num_chains", "num_warmup", "num_samples", "thinning", "chain_method",
    "target_accept_prob", "max_tree_depth", "dense_mass", "trajectory_length", "num_steps",
    "learning_rate", "subsample_size", "num_posterior_draws", "init_strategy", "guide",
}


def catalog_dir() -> Path:
    """The directory of the bundled cards (inside the installed package, or the source tree)."""
    try:
        p = Path(str(importlib.resources.files("ppl_models.models_catalog")))
        if p.is_dir():
            return p
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "models_catalog"


@contextlib.contextmanager
def card_imports(path: Path):
    """Let a user's card name modules next to it or in the current directory.

    For a card outside the bundled catalog, both directories go at the front of ``sys.path``
    while its references are imported (and its loader runs), and come off again afterwards;
    the modules imported from them are then dropped from ``sys.modules``, so that another card
    with a module of the same name next to it gets its own. The bundled cards name only
    installed modules: nothing is added for them (a file in the current directory cannot
    shadow what they import).
    """
    card_dir = Path(path).resolve().parent
    if card_dir == catalog_dir().resolve():
        yield
        return
    dirs = [str(card_dir), os.getcwd()]
    added = [d for d in dict.fromkeys(dirs) if d not in sys.path]
    for d in reversed(added):
        sys.path.insert(0, d)
    before = set(sys.modules)
    try:
        yield
    finally:
        for d in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(d)
        roots = [Path(d) for d in added]
        for name in set(sys.modules) - before:
            file = getattr(sys.modules.get(name), "__file__", None)
            if file and any(Path(file).resolve().is_relative_to(r) for r in roots):
                del sys.modules[name]


@dataclass
class Card:
    """One catalog entry, validated."""

    name: str
    description: str
    family: str
    model_ref: str
    model_args: dict[str, Any]
    loader_ref: str
    data_args: dict[str, Any]
    inference: dict[str, Any]
    gate: dict[str, Any]
    check: dict[str, Any]
    path: Path
    outputs: dict[str, Any] = field(default_factory=dict)

    def model(self) -> Callable:
        """The program, with the card's static arguments bound by :meth:`load_data`."""
        with card_imports(self.path):
            fn = resolve_reference(self.model_ref, f"{self.path.name}: [model] function")
        if not callable(fn):
            raise CatalogError(f"{self.path}: [model] function {self.model_ref!r} is not callable")
        return fn

    def load_data(self, **overrides: Any) -> ModelData:
        """Run the card's loader; the card's ``[model.args]`` join the program's kwargs."""
        args = {**self.data_args, **overrides}
        with card_imports(self.path):
            loader = resolve_reference(self.loader_ref, f"{self.path.name}: [data] loader")
        import inspect

        try:
            inspect.signature(loader).bind(**args)
        except TypeError as exc:
            raise CatalogError(f"{self.path}: [data] loader {self.loader_ref!r} does not accept {sorted(args)}: {exc}") from None
        except ValueError:  # no signature to read (a builtin): the call will tell
            pass
        with card_imports(self.path):  # a loader may read files or import next to its card
            md = loader(**args)
        if not isinstance(md, ModelData):
            if isinstance(md, dict):
                md = ModelData(kwargs=md)
            else:
                raise CatalogError(f"{self.path}: [data] loader {self.loader_ref!r} returned "
                                   f"{type(md).__name__}, expected ppl_models.data.ModelData or a dict")
        md.kwargs.update(self.model_args)
        if not md.name:
            md.name = self.name
        return md


def _require(table: dict, key: str, kind: type, where: str, path: Path) -> Any:
    if key not in table:
        raise CatalogError(f"{path}: malformed card: {where} is missing the key {key!r}")
    v = table[key]
    if not isinstance(v, kind):
        raise CatalogError(f"{path}: malformed card: {where}.{key} expected {kind.__name__}, got {type(v).__name__} {v!r}")
    return v


def parse_card(path: Path) -> Card:
    """Read and validate one card; every problem is a :class:`CatalogError` naming the file."""
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: malformed card (not valid TOML): {exc}") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the card: {exc}") from None
    unknown = set(raw) - _SECTIONS
    if unknown:
        raise CatalogError(f"{path}: malformed card: unknown key(s) {sorted(unknown)}; expected {sorted(_SECTIONS)}")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise CatalogError(f"{path}: malformed card: name expected a non-empty string, got {name!r}")
    model = _require(raw, "model", dict, "the card", path)
    data = _require(raw, "data", dict, "the card", path)
    model_ref = _require(model, "function", str, "[model]", path)
    loader_ref = _require(data, "loader", str, "[data]", path)
    for ref, where in ((model_ref, "[model].function"), (loader_ref, "[data].loader")):
        if ref.count(":") != 1:
            raise CatalogError(f"{path}: malformed card: {where} expected 'package.module:function', got {ref!r}")
    inference = dict(raw.get("inference", {}))
    bad = set(inference) - _INFERENCE_KEYS
    if bad:
        raise CatalogError(f"{path}: malformed card: [inference] has unknown key(s) {sorted(bad)}; "
                           f"allowed: {sorted(_INFERENCE_KEYS)}")
    gate = {**GATE_DEFAULTS, **raw.get("gate", {})}
    bad = set(gate) - set(GATE_DEFAULTS)
    if bad:
        raise CatalogError(f"{path}: malformed card: [gate] has unknown key(s) {sorted(bad)}; allowed: {sorted(GATE_DEFAULTS)}")
    return Card(name=name, description=str(raw.get("description", "")), family=str(raw.get("family", "custom")),
                model_ref=model_ref, model_args=dict(model.get("args", {})), loader_ref=loader_ref,
                data_args=dict(data.get("args", {})), inference=inference, gate=gate,
                check=dict(raw.get("check", {})), path=path, outputs=dict(raw.get("outputs", {})))


def list_entries() -> list[Card]:
    """Every bundled card, sorted by name."""
    cards = []
    for p in sorted(catalog_dir().glob("*.toml")):
        cards.append(parse_card(p))
    return cards


def load_card(entry: str | Path) -> Card:
    """A bundled entry by name, or a card file by path."""
    p = Path(entry)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise CatalogError(f"no card file at {str(p)!r}")
        return parse_card(p)
    candidate = catalog_dir() / f"{entry}.toml"
    if candidate.exists():
        return parse_card(candidate)
    names = sorted(q.stem for q in catalog_dir().glob("*.toml"))
    raise CatalogError(f"unknown catalog entry {str(entry)!r}; the entries are {names} "
                       f"(or give the path of a .toml card)")


def inference_options(card: Card, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card's inference settings with command-line overrides applied."""
    opts = dict(card.inference)
    for k, v in (overrides or {}).items():
        if v is not None:
            opts[k] = v
    if "method" in opts and not isinstance(opts["method"], str):
        raise DataError("method", "a string", repr(opts["method"]))
    if isinstance(opts.get("guide"), str):
        # a guide program ("module:function"), called with the same arguments as the model
        ref = opts["guide"]
        with card_imports(card.path):
            opts["guide"] = resolve_reference(ref, f"{card.path.name}: [inference] guide")
        if not callable(opts["guide"]):
            raise CatalogError(f"{card.path}: [inference] guide {ref!r} is not callable")
    return opts
