"""Configs of experiments: finding and loading them, dotted keys, overrides, JSON.

An experiment ``experiments/NAME.py`` has its base config in ``configs/NAME.py``
(found by :func:`default_config_path`), whose ``get_config(preset)`` returns an
``ml_collections.ConfigDict`` and whose ``HELP`` gives every key a one-line
meaning ending in its unit in brackets (``"bath temperature [K]"``,
``"[-]"`` for a dimensionless number or a name), and whose optional ``CHECKS``
gives keys a range (``{"train.n_steps": "> 0", "train.lr_final_fraction":
"in [0, 1]"}``, see :func:`check_config`) that ``cgjax.run`` checks before it
writes anything. ``cgjax.run`` and ``cgjax.sweep`` both use these helpers.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib.util
import json
import math
import os
import re
import sys
import tempfile
import types
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np

from cgjax import _faults

__all__ = [
    "ConfigFile",
    "apply_override",
    "check_config",
    "default_config_path",
    "flatten",
    "help_lines",
    "json_ready",
    "load_config",
    "load_config_file",
    "load_module",
    "parse_value",
    "undocumented_keys",
    "write_json",
]

#: A key's description: a meaning, then its unit in brackets.
_DESCRIPTION = re.compile(r"^\S.* \[[^\[\]]+\]$")


def load_module(path: str, name: str | None = None) -> types.ModuleType:
    """Imports a Python file by path (an experiment or a config file).

    Raises:
      FileNotFoundError: naming the path when it does not exist.
    """
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    name = name or "cgjax_user_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def default_config_path(experiment_path: str) -> str:
    """``configs/NAME.py`` beside the ``experiments/`` folder of ``experiments/NAME.py``."""
    here = os.path.dirname(os.path.abspath(experiment_path))
    stem = os.path.splitext(os.path.basename(experiment_path))[0]
    return os.path.join(os.path.dirname(here), "configs", f"{stem}.py")


class ConfigFile(NamedTuple):
    """A loaded config file: the config of a preset and what the file says about its keys.

    Attributes:
      config: the ``ml_collections.ConfigDict``.
      descriptions: the file's ``HELP`` (key -> ``"meaning [unit]"``).
      checks: the file's ``CHECKS`` (key -> range rule, see :func:`check_config`).
      path: the config file.
    """

    config: ml_collections.ConfigDict
    descriptions: dict[str, str]
    checks: dict[str, str]
    path: str


def load_config_file(experiment_path: str, spec: str | None = None) -> ConfigFile:
    """The config of an experiment with its file's ``HELP`` and ``CHECKS``.

    Args:
      experiment_path: ``experiments/NAME.py``.
      spec: ``FILE.py[:PRESET]``; ``None``: :func:`default_config_path`'s
        ``get_config()`` (its default preset).

    Raises:
      FileNotFoundError: when the config file does not exist.
      ValueError: when it defines no ``get_config``, or its ``get_config``
        rejects the preset (the message names the file and the preset).
    """
    if spec is None:
        path, preset = default_config_path(experiment_path), ""
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"no base config for {experiment_path}: expected {path} with get_config()"
            )
    else:
        path, _, preset = spec.partition(":")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"config file not found: {path} (from --config={spec})")
    module = load_module(path)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {path} has no get_config()")
    try:
        config = module.get_config(preset) if preset else module.get_config()
    except ValueError as e:  # configs raise ValueError for an unknown preset
        raise ValueError(f"{path}: preset {preset!r}: {e}") from e
    checks = dict(getattr(module, "CHECKS", {}))
    for key, rule in checks.items():
        _parse_rule(rule, f"{path} CHECKS[{key!r}]")
    return ConfigFile(config, dict(getattr(module, "HELP", {})), checks, path)


def load_config(
    experiment_path: str, spec: str | None = None
) -> tuple[ml_collections.ConfigDict, dict[str, str]]:
    """``(config, descriptions)`` of :func:`load_config_file`: the config of an
    experiment and its key descriptions (the config file's ``HELP``)."""
    f = load_config_file(experiment_path, spec)
    return f.config, f.descriptions


_COMPARE = re.compile(r"^(>=|<=|>|<)\s*(\S+)$")
_INTERVAL = re.compile(r"^in\s*([\[(])\s*([^,\s]+)\s*,\s*([^\])\s]+)\s*([\])])$")
_OPS = {
    ">": lambda v, a: v > a,
    ">=": lambda v, a: v >= a,
    "<": lambda v, a: v < a,
    "<=": lambda v, a: v <= a,
}


def _parse_rule(rule: str, where: str) -> Callable[[float], bool]:
    """A range rule (``"> 0"``, ``">= 1"``, ``"in (0, 1]"``) as a test of a number."""
    text = str(rule).strip()
    try:
        m = _COMPARE.match(text)
        if m:
            op, bound = _OPS[m.group(1)], float(m.group(2))
            return lambda v: op(v, bound)
        m = _INTERVAL.match(text)
        if m:
            lo, hi = float(m.group(2)), float(m.group(3))
            lo_op = _OPS[">=" if m.group(1) == "[" else ">"]
            hi_op = _OPS["<=" if m.group(4) == "]" else "<"]
            return lambda v: lo_op(v, lo) and hi_op(v, hi)
    except ValueError:
        pass
    raise ValueError(
        f"{where}: malformed range rule {rule!r}; expected '> a', '>= a', '< a', '<= a' "
        "or 'in [a, b]' (round brackets for open ends)"
    )


def check_config(config: ml_collections.ConfigDict, checks: dict[str, str]) -> list[str]:
    """What in ``config`` breaks the range rules ``checks`` (empty when nothing).

    A rule is ``"> a"``, ``">= a"``, ``"< a"``, ``"<= a"`` or an interval
    ``"in [a, b]"`` (round brackets for open ends). It applies to a number, to
    every entry of a list or tuple, and never to ``None`` (an "off" value);
    anything else (a string, a bool, NaN) breaks it. Rules of keys the config
    lacks (another preset's) are skipped.

    Returns:
      one message per broken rule, naming the key (and entry), the rule and the value.
    """
    keys = flatten(config)
    problems = []
    for key, rule in checks.items():
        if key not in keys or keys[key] is None:
            continue
        ok = _parse_rule(rule, f"CHECKS[{key!r}]")
        value = keys[key]
        entries = list(enumerate(value)) if isinstance(value, list | tuple) else [(None, value)]
        for i, v in entries:
            number = isinstance(v, int | float) and not isinstance(v, bool)
            if v is None or (number and ok(float(v))):
                continue
            where = repr(key) if i is None else f"{key!r} (entry {i} of {value!r})"
            problems.append(f"config key {where} must be {rule.strip()}, got {v!r}")
    return problems


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for every leaf of a ConfigDict."""
    out = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, ml_collections.ConfigDict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def parse_value(text: str) -> Any:
    """``text`` as a Python literal (``"1e-3"`` -> 0.001), or the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_override(config: ml_collections.ConfigDict, key: str, text: str) -> None:
    """Sets ``config.<key>`` from ``text`` (a Python literal), type-checked.

    Raises:
      KeyError: for a key that does not exist, listing the closest keys.
      TypeError: when the value's type differs from the key's.
    """
    keys = flatten(config)
    if key not in keys:
        close = difflib.get_close_matches(key, list(keys), n=5, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise KeyError(f"unknown config key {key!r}{hint} (--help lists all keys)")
    old = keys[key]
    value = parse_value(text)
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(old, tuple) and isinstance(value, list):
        value = tuple(value)
    if isinstance(old, list) and isinstance(value, tuple):
        value = list(value)
    if old is not None and type(value) is not type(old):
        raise TypeError(
            f"config key {key!r} is {type(old).__name__} (default {old!r}); "
            f"got {text!r} ({type(value).__name__})"
        )
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
        node = node[p]
    node[leaf] = value


def undocumented_keys(config: ml_collections.ConfigDict, descriptions: dict[str, str]) -> dict:
    """Keys of ``config`` whose description is missing or malformed (empty when none).

    Returns:
      ``{"missing": [...], "malformed": [...]}`` (only the non-empty ones): keys
      without a description, and descriptions that are not one line ending in
      ``[unit]``. Descriptions of keys this config lacks (another preset's) are
      allowed.
    """
    keys = flatten(config)
    out = {
        "missing": sorted(k for k in keys if k not in descriptions),
        "malformed": sorted(
            k for k in keys if k in descriptions and not _DESCRIPTION.match(descriptions[k])
        ),
    }
    return {k: v for k, v in out.items() if v}


def help_lines(config: ml_collections.ConfigDict, descriptions: dict[str, str]) -> list[str]:
    """One ``--config.KEY=DEFAULT  meaning [unit]`` line per key, aligned."""
    items = [(f"--config.{k}={v!r}", descriptions.get(k, "")) for k, v in flatten(config).items()]
    width = max((len(a) for a, _ in items), default=0)
    return [f"  {a.ljust(width)}  {d}".rstrip() for a, d in items]


def json_ready(x: Any) -> Any:
    """``x`` with numpy/jax arrays and scalars turned into lists and floats; NaN -> None."""
    if isinstance(x, dict):
        return {str(k): json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_ready(v) for v in x]
    if isinstance(x, ml_collections.ConfigDict):
        return json_ready(x.to_dict())
    if isinstance(x, np.ndarray | jax.Array):
        return json_ready(np.asarray(x).tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, str | int | float | bool) or x is None:
        return x
    return str(x)


def write_json(path: str, data: Any, *, indent: int | None = 2) -> None:
    """Writes ``json_ready(data)`` atomically: a crash never leaves a half-written file.

    The data goes to a temporary file beside ``path`` that replaces ``path`` when
    complete; on any failure (a full disk, data that is not JSON) the temporary
    file is removed and ``path`` keeps its old content.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(json_ready(data), f, indent=indent)
        _faults.point(f"{os.path.basename(path)}: temporary file written")
        os.replace(tmp, path)
        _faults.point(f"{os.path.basename(path)}: replaced")
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
