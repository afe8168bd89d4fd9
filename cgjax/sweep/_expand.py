"""Sweep specifications: parsing ``key=[...]``, the cartesian expansion, grouping by structure."""

from __future__ import annotations

import ast
import copy
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import ml_collections

from cgjax.config import apply_override, flatten

__all__ = ["expand", "group_by_structure", "is_dynamic", "parse_sweep"]


def _range_values(node: ast.Call, text: str) -> list[int]:
    if node.keywords or not 1 <= len(node.args) <= 3:
        raise ValueError(f"sweep {text!r}: range() takes 1 to 3 positional integers")
    args = []
    for a in node.args:
        try:
            v = ast.literal_eval(a)
        except ValueError:
            v = None
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"sweep {text!r}: range() arguments must be integer literals")
        args.append(v)
    return list(range(*args))


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """``"train.lr=[1e-3,3e-4]"`` -> ``("train.lr", [1e-3, 3e-4])``.

    The value is a list of Python literals, ``range(a[, b[, c]])`` with
    integer literals, or one literal (a sweep of one value; a tuple is one
    value, since tuples are config values themselves). Nothing else is
    evaluated: the text goes through :mod:`ast`, never ``eval``.

    Args:
      text: ``KEY=VALUES`` with a dotted config key (a leading ``--config.``
        is accepted and dropped).

    Returns:
      ``(key, values)`` with at least one value.

    Raises:
      ValueError: on a missing ``=``, an empty key or list, or a value that
        is not a literal or ``range(...)``.
    """
    text = text.strip()
    key, eq, value = text.partition("=")
    key = key.strip().removeprefix("--config.")
    if not eq or not key:
        raise ValueError(f"sweep {text!r}: expected KEY=[v1, v2, ...] or KEY=range(n)")
    try:
        node = ast.parse(value.strip(), mode="eval").body
    except SyntaxError as e:
        raise ValueError(f"sweep {text!r}: {value!r} is not a Python literal ({e.msg})") from None
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id == "range"):
            raise ValueError(f"sweep {text!r}: the only call allowed is range(...)")
        values = _range_values(node, text)
    else:
        try:
            literal = ast.literal_eval(node)
        except ValueError:
            raise ValueError(
                f"sweep {text!r}: {value!r} is not a Python literal (quote strings: "
                f"{key}=['a', 'b'])"
            ) from None
        values = list(literal) if isinstance(literal, list) else [literal]
    if not values:
        raise ValueError(f"sweep {text!r}: no values")
    return key, values


def expand(
    base: ml_collections.ConfigDict, sweeps: Sequence[str | tuple[str, Sequence[Any]]]
) -> list[ml_collections.ConfigDict]:
    """The cartesian product of ``sweeps`` applied to copies of ``base``.

    The first sweep varies slowest (``itertools.product`` order). Every value
    goes through :func:`cgjax.config.apply_override`, so it must have the type of
    the key's default (an int is accepted for a float key, a list for a tuple).

    Args:
      base: the base config (not modified).
      sweeps: ``"key=[...]"`` strings (:func:`parse_sweep`) or ``(key, values)``.

    Returns:
      one config per combination; ``len = prod(len(values))``.

    Raises:
      KeyError: an unknown key, naming the closest existing keys.
      TypeError: a value whose type differs from the key's default.
      ValueError: a key swept twice, or a malformed sweep string.
    """
    parsed = [parse_sweep(s) if isinstance(s, str) else (s[0], list(s[1])) for s in sweeps]
    keys = [k for k, _ in parsed]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"keys swept more than once: {dup}")
    probe = copy.deepcopy(base)
    for key, values in parsed:  # every value checked before any work is done
        for v in values:
            apply_override(probe, key, repr(v))
    out = []
    for combo in itertools.product(*(values for _, values in parsed)):
        config = copy.deepcopy(base)
        for key, v in zip(keys, combo, strict=True):
            apply_override(config, key, repr(v))
        out.append(config)
    return out


def is_dynamic(key: str, value: Any) -> bool:
    """The default rule of :func:`group_by_structure`: ``seed`` and float leaves are traced."""
    return key.rsplit(".", 1)[-1] == "seed" or isinstance(value, float)


def group_by_structure(
    configs: Sequence[ml_collections.ConfigDict],
    dynamic: Callable[[str, Any], bool] | Sequence[str] | None = None,
) -> list[list[int]]:
    """Indices of ``configs`` grouped so that each group is one vmapped, jitted computation.

    Two configs share a group when they have the same keys and differ only in
    *dynamic* leaves: values that can be traced arrays with a member axis
    (the seed, learning rates, ...). Any other difference (ints that set
    shapes or step counts, strings, tuples, bools, ``None`` vs a float) starts
    a new group.

    Args:
      configs: configs from :func:`expand`.
      dynamic: which leaves are dynamic: ``None`` (default, :func:`is_dynamic`:
        ``seed`` and every float), a list of dotted keys, or a predicate
        ``dynamic(key, value) -> bool``.

    Returns:
      lists of indices into ``configs``, groups in order of first appearance,
      indices ascending.
    """
    if dynamic is None:
        rule = is_dynamic
    elif callable(dynamic):
        rule = dynamic
    else:
        names = frozenset(dynamic)
        rule = lambda key, value: key in names  # noqa: E731

    groups: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        signature = tuple(
            (k, f"<{type(v).__name__}>" if rule(k, v) else repr(v))
            for k, v in sorted(flatten(config).items())
        )
        groups.setdefault(signature, []).append(i)
    return list(groups.values())
