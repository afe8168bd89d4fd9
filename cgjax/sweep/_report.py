"""Sweep results on disk: ``sweep.csv`` (one row per member) and a metric-vs-key plot."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["plot_sweep", "write_sweep_csv"]


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def write_sweep_csv(
    rows: Sequence[dict], path: str, *, columns: Sequence[str] | None = None
) -> str:
    """Writes one CSV row per member; returns ``path``.

    Args:
      rows: dicts (e.g. the swept keys, ``seed`` and metrics such as
        ``val_force_rmse`` in kJ/mol/nm). Non-scalar values (curves,
        parameters) are left out.
      path: the CSV file (directories are created).
      columns: column order; default every scalar key, in order of first
        appearance. A missing value is an empty cell.
    """
    if columns is None:
        columns = []
        for r in rows:
            columns += [k for k, v in r.items() if _scalar(v) and k not in columns]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return path


def plot_sweep(
    rows: Sequence[dict],
    path: str,
    *,
    x: str,
    y: str = "val_force_rmse",
    by: Sequence[str] | None = None,
    ylabel: str | None = None,
) -> str:
    """Plots metric ``y`` against the swept numeric key ``x``, one line per other setting.

    Members that agree in ``x`` and every ``by`` key (e.g. several seeds) are
    drawn as points and joined by their mean, with a min-max band. A positive
    ``x`` spanning more than a decade gets a log axis. Needs matplotlib.

    Args:
      rows: dicts holding ``x``, ``y`` and the ``by`` keys.
      path: the PNG file (directories are created).
      x: the swept numeric key (e.g. ``"train.lr"``).
      y: the metric (default ``val_force_rmse``, kJ/mol/nm).
      by: keys whose combinations get their own line; default every scalar
        key except ``x``, ``y``, ``seed`` and the metrics named
        ``val_*``/``train_*``/``*_s`` that takes several values.
      ylabel: the y-axis label (default ``y``).

    Returns:
      ``path``.

    Raises:
      KeyError: a row lacks ``x`` or ``y``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(rows)
    for i, r in enumerate(rows):
        for k in (x, y):
            if k not in r:
                raise KeyError(f"row {i} has no {k!r}; it has {sorted(r)}")
    if by is None:
        skip = {x, y, "seed"}
        keys = [k for k, v in rows[0].items() if _scalar(v) and k not in skip] if rows else []
        keys = [k for k in keys if not k.startswith(("val_", "train_")) and not k.endswith("_s")]
        by = [k for k in keys if len({repr(r.get(k)) for r in rows}) > 1]
    lines: dict[tuple, list[dict]] = {}
    for r in rows:
        lines.setdefault(tuple(r.get(k) for k in by), []).append(r)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, members in lines.items():
        xs = sorted({float(r[x]) for r in members})
        ys = [[float(r[y]) for r in members if float(r[x]) == v] for v in xs]
        name = ", ".join(f"{k}={v}" for k, v in zip(by, label, strict=True)) or y
        (line,) = ax.plot(xs, [np.nanmean(v) for v in ys], "o-", label=name)
        ax.fill_between(xs, [min(v) for v in ys], [max(v) for v in ys], alpha=0.2,
                        color=line.get_color())  # fmt: skip
        for v, vals in zip(xs, ys, strict=True):
            ax.plot([v] * len(vals), vals, ".", color=line.get_color(), alpha=0.6)
    all_x = [float(r[x]) for r in rows if math.isfinite(float(r[x]))]
    if all_x and min(all_x) > 0 and max(all_x) > 10 * min(all_x):
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel or y)
    if len(lines) > 1 or by:
        ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
