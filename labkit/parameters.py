"""Parameter checks: one set of rules for ``labkit run -p``, ``labkit train -p`` and the notebooks themselves.

A notebook's parameters are the names assigned in its cell tagged ``parameters`` (papermill's convention):
:func:`declared_parameters` reads them, with their default values, from the ``.ipynb`` file. Every value is
checked against :data:`RULES` (by name: ``seed`` is an integer >= 0, ``max_steps`` an integer >= 1 or None,
``lr`` a number > 0, ``data_root`` an existing folder or None, ...); a name without a rule must keep the type
of its default (a parameter whose default is None and has no rule accepts anything: tests check that every
course notebook's parameters have rules).

- ``labkit run`` calls :func:`check_run_parameters` before any kernel starts: an unknown key stops the run
  with the valid keys and the closest match (a typo such as ``max_step`` no longer runs the full budget).
- ``labkit train`` calls :func:`check_value` on each run option and :func:`check_setting` on each profile
  setting it overrides (:func:`labkit.labs.split_overrides`).
- A notebook's derived cell calls :func:`check_namespace` on its own parameter values, so that an interactive
  run (a value typed into the parameters cell) gets the same message as the command line.

Errors are :class:`ParameterError` (a ``ValueError``) naming the parameter, the value and what is expected.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.env import PROFILES
from labkit.profiles import NAFNET_VARIANT_SPECS

__all__ = ["ParameterError", "Rule", "RULES", "check_value", "check_setting", "check_parameters",
           "check_run_parameters", "check_namespace", "declared_parameters", "unknown_key_message"]


class ParameterError(ValueError):
    """A ``-p`` key or value (or a parameters-cell value) that cannot be used; the message names it."""


@dataclass(frozen=True)
class Rule:
    """What one parameter accepts.

    ``kind``: ``int``, ``float`` (ints accepted), ``bool``, ``str``, ``folder`` (an existing directory),
    ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) or ``choice`` (one of ``choices``).
    ``low`` / ``high``: inclusive bounds for numbers (``low_open``: ``low`` itself excluded).
    ``optional``: None is accepted (it means "the profile's" in the notebooks).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple = ()
    optional: bool = True

    def describe(self) -> str:
        """The expectation in words, e.g. ``an integer >= 1 (or None)``."""
        words = {"int": "an integer", "float": "a number", "bool": "True or False", "str": "a string",
                 "folder": "an existing folder", "device": "a device (auto, cpu, cuda, cuda:N or mps)",
                 "choice": "one of " + ", ".join(repr(c) for c in self.choices)}[self.kind]
        if self.low is not None:
            words += f" {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            words += f"{' and' if self.low is not None else ''} <= {self.high:g}"
        return words + (" (or None)" if self.optional else "")


_POSITIVE_INT = Rule("int", low=1)
_POSITIVE_FLOAT = Rule("float", low=0, low_open=True)

#: the rule of every parameter of the course notebooks and every ``labkit train`` run option, by name
RULES: dict[str, Rule] = {
    "profile": Rule("choice", choices=tuple(PROFILES)),
    "out_dir": Rule("str"),
    "data_root": Rule("folder"), "raw_root": Rule("folder"), "gopro_root": Rule("folder"),
    "seed": Rule("int", low=0, optional=False),
    "device": Rule("device"),
    "scale": Rule("choice", choices=(2, 3, 4, 8)),
    "epochs": _POSITIVE_INT, "max_steps": _POSITIVE_INT, "max_images": _POSITIVE_INT,
    "batch_size": _POSITIVE_INT, "gt_size": _POSITIVE_INT, "process_num": _POSITIVE_INT,
    "test_width": _POSITIVE_INT, "iters_per_epoch": _POSITIVE_INT, "folds": Rule("int", low=2),
    "lr": _POSITIVE_FLOAT, "lambda_gp": Rule("float", low=0), "hsv_threshold": Rule("int", low=0),
    "mask_fraction": Rule("float", low=0, low_open=True, high=1),
    "chroma_kept": Rule("float", low=0, high=0.95),
    "pretrained": Rule("str"), "net": Rule("str"),
    "variant": Rule("choice", choices=tuple(NAFNET_VARIANT_SPECS)),
    "block_type": Rule("choice", choices=("plain", "residual", "gated")),
    "deblur": Rule("bool", optional=False),
    "num_workers": Rule("int", low=0, optional=False),
    "checkpoint_interval": Rule("float", low=0),
}


def _type_ok(value: Any, rule: Rule) -> bool:
    if rule.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if rule.kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if rule.kind == "bool":
        return isinstance(value, bool)
    if rule.kind in ("str", "folder"):
        return isinstance(value, (str, os.PathLike))
    if rule.kind == "device":
        text = str(value)
        return text in ("auto", "cpu", "cuda", "mps") or (text.startswith("cuda:") and text[5:].isdigit())
    return value in rule.choices


def _in_range(value: Any, rule: Rule) -> bool:
    if rule.kind not in ("int", "float"):
        return True
    if rule.low is not None and (value < rule.low or (rule.low_open and value == rule.low)):
        return False
    return rule.high is None or value <= rule.high


def check_value(name: str, value: Any, rule: Rule | None = None, *, where: str = "-p") -> Any:
    """Check ``value`` for parameter ``name`` against ``rule`` (default :data:`RULES` [name]); returns it.

    A ``folder`` value must be an existing directory (the message gives its absolute path).

    Raises:
        ParameterError: wrong type, out of range, not a choice, or a missing folder; the message reads
            ``<where> name=<value>: expected <rule>``.
    """
    rule = rule or RULES.get(name)
    if rule is None or (value is None and rule.optional):
        return value
    if not (_type_ok(value, rule) and _in_range(value, rule)):
        raise ParameterError(f"{where} {name}={value!r}: expected {rule.describe()}")
    if rule.kind == "folder" and not Path(value).expanduser().is_dir():
        what = "is a file, not a folder" if Path(value).expanduser().exists() else "does not exist"
        raise ParameterError(f"{where} {name}={value!r}: {Path(value).expanduser().resolve()} {what} "
                             f"(see data/README.md for each lab's layout)")
    return value


def _rule_from_default(default: Any) -> Rule | None:
    """The rule a setting without a named rule gets from its default: keep the type (None: anything)."""
    if default is None:
        return None
    if isinstance(default, bool):
        return Rule("bool", optional=False)
    if isinstance(default, int):
        return Rule("int", optional=False)
    if isinstance(default, float):
        return Rule("float", optional=False)
    if isinstance(default, str):
        return Rule("str", optional=False)
    return None


def check_setting(name: str, value: Any, default: Any, *, where: str = "-p") -> Any:
    """Check an override of a profile setting (``labkit train -p``) whose profile value is ``default``.

    The named rule if there is one; else the default's type (a tuple or list setting takes a tuple or
    list, a dict setting a dict, a None setting anything). Returns the value (a list becomes a tuple
    where the profile holds a tuple).

    Raises:
        ParameterError: as :func:`check_value`.
    """
    if isinstance(default, (tuple, list)) and not isinstance(value, (tuple, list)):
        raise ParameterError(f"{where} {name}={value!r}: expected a list such as {list(default)!r}")
    if isinstance(default, dict) and not isinstance(value, dict):
        raise ParameterError(f"{where} {name}={value!r}: expected a dict such as {default!r}")
    if isinstance(default, tuple):
        value = tuple(value)
    rule = RULES.get(name) or _rule_from_default(default)
    if rule is not None and name not in RULES and isinstance(default, float) and isinstance(value, int):
        return check_value(name, float(value), rule, where=where)
    return check_value(name, value, rule, where=where)


def unknown_key_message(key: str, valid: Sequence[str], where: str) -> str:
    """``<where>: unknown parameter 'max_step' (did you mean 'max_steps'?); valid: ...``."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{where}: unknown parameter {key!r}{hint}; valid: {', '.join(sorted(valid))}"


def check_parameters(params: Mapping[str, Any], declared: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """Check ``params`` (``-p`` key -> value) against a notebook's ``declared`` parameters (name -> default).

    Raises:
        ParameterError: an unknown key (the message lists the valid ones and the closest match) or a bad value.
    """
    for key in params:
        if key not in declared:
            raise ParameterError(unknown_key_message(key, list(declared), where))
    return {k: check_value(k, v, RULES.get(k) or _rule_from_default(declared[k]), where="-p")
            for k, v in params.items()}


def declared_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """The parameters of a notebook: the names its ``parameters``-tagged cell assigns, with their defaults.

    Defaults that are not Python literals are given as None.

    Raises:
        FileNotFoundError: no such notebook file.
        ValueError: the file is not a notebook (JSON), or has no cell tagged ``parameters`` (both name the file).
    """
    path = Path(notebook)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a Jupyter notebook (invalid JSON: {exc})") from None
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            return _assignments(source, path)
    raise ValueError(f"{path}: no cell tagged 'parameters' (papermill needs one to take -p values)")


def _assignments(source: str, path: Path) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for node in ast.parse(source, filename=str(path)).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    names[target.id] = ast.literal_eval(node.value) if node.value is not None else None
                except ValueError:
                    names[target.id] = None
    return names


def check_run_parameters(notebooks: Sequence[Path], params: Mapping[str, Any],
                         sweep: Sequence[Mapping[str, Any]] = ()) -> dict[Path, dict[str, Any]]:
    """``labkit run``: check every ``-p`` key and value (and every swept value) against the chosen notebooks.

    A key must be a parameter of at least one chosen notebook; each notebook gets the keys it declares
    (``labkit run -p max_steps=2`` with 01, which has no ``max_steps``, passes it to the others only).

    Returns:
        notebook path -> the parameters to pass to it.

    Raises:
        ParameterError: a key no chosen notebook declares (valid keys and the closest match are listed), or a
            value its rule rejects.
    """
    declared = {nb: declared_parameters(nb) for nb in notebooks}
    every = {k: v for d in declared.values() for k, v in d.items()}
    where = "-p" if len(notebooks) != 1 else f"notebook {notebooks[0].stem}"
    check_parameters(params, every, where=where)
    for combo in sweep:
        for key in combo:
            if key not in every:
                raise ParameterError(unknown_key_message(key, list(every), f"{where} --sweep"))
        check_parameters(combo, every, where=where)
    return {nb: {k: v for k, v in params.items() if k in d} for nb, d in declared.items()}


def check_namespace(namespace: Mapping[str, Any], names: Sequence[str] | None = None) -> None:
    """A notebook's own check of its parameters cell, run interactively or by papermill.

    ``namespace`` is the notebook's ``globals()``; every name in ``names`` (default: every name with a rule in
    :data:`RULES`) that it holds is checked.

    Raises:
        ParameterError: a value its rule rejects (the message names the parameter).
    """
    for name in names if names is not None else RULES:
        if name in namespace:
            check_value(name, namespace[name], where="parameters cell:")
