"""The whole sweep: expand, group, this process's share of each group, gather, CSV and plot."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections

from cgjax.config import flatten
from cgjax.sweep._distributed import gather_rows, process_shard
from cgjax.sweep._expand import expand, group_by_structure, parse_sweep
from cgjax.sweep._report import _scalar, plot_sweep, write_sweep_csv

__all__ = ["member_rows", "run_sweep"]


def member_rows(
    configs: Sequence[ml_collections.ConfigDict],
    results: Sequence[dict],
    keys: Sequence[str],
    indices: Sequence[int],
) -> list[dict]:
    """CSV-ready rows: ``index``, the swept ``keys`` and ``seed``, then scalar metrics.

    A ``train_loss`` curve becomes ``train_loss_final`` (its last value);
    other non-scalar entries (curves, parameters) are dropped.
    """
    rows = []
    for i, config, res in zip(indices, configs, results, strict=True):
        flat = flatten(config)
        row: dict[str, Any] = {"index": int(i)}
        row.update({k: flat[k] for k in keys})
        if "seed" in flat:
            row["seed"] = flat["seed"]
        for k, v in res.items():
            if k in row or k in ("lr", "lr_final_fraction", "clip_norm"):
                continue  # already there under their config keys
            if k == "train_loss" and isinstance(v, list | tuple) and v:
                row["train_loss_final"] = float(v[-1])
            elif _scalar(v):
                row[k] = v
        rows.append(row)
    return rows


def run_sweep(
    group_fn: Callable[[list[ml_collections.ConfigDict]], Sequence[dict]],
    base_config: ml_collections.ConfigDict,
    sweeps: Sequence[str | tuple[str, Sequence[Any]]],
    workdir: str | None,
    *,
    dynamic: Any = None,
    x: str | None = None,
    y: str = "val_force_rmse",
) -> list[dict]:
    """Runs every member of a sweep; this process takes its share of each group.

    ``group_fn(configs)`` trains one structural group (or this process's
    share of it) and returns one dict of metrics per config, e.g.
    ``lambda cs: sweep_force_matching(model, tr, va, cs).members``. After all
    groups the rows of all processes are gathered (:func:`gather_rows`) and
    process 0 writes ``sweep.csv`` and ``sweep.png`` to ``workdir``.

    Args:
      group_fn: trains a list of configs of one group.
      base_config: the config the sweeps modify.
      sweeps: ``"key=[...]"`` strings or ``(key, values)`` (:func:`expand`).
      workdir: where the CSV and plot go (``None``: nowhere).
      dynamic: which leaves are traced (:func:`group_by_structure`).
      x: the plot's x key; default the first swept key with numeric values
        other than ``seed``.
      y: the plotted metric.

    Returns:
      one row per member (:func:`member_rows`), in expansion order, on every
      process.

    Raises:
      ValueError, KeyError, TypeError: from :func:`expand` on a bad sweep.
    """
    parsed = [parse_sweep(s) if isinstance(s, str) else (s[0], list(s[1])) for s in sweeps]
    configs = expand(base_config, parsed)
    keys = [k for k, _ in parsed if k != "seed"]
    rows = []
    for group in group_by_structure(configs, dynamic):
        mine = process_shard(group)
        if not mine:
            continue
        chosen = [configs[i] for i in mine]
        results = list(group_fn(chosen))
        if len(results) != len(chosen):
            raise ValueError(f"group_fn returned {len(results)} results for {len(chosen)} configs")
        rows += member_rows(chosen, results, keys, mine)
    rows = sorted(gather_rows(rows), key=lambda r: r["index"])
    if workdir is not None and jax.process_index() == 0:
        write_sweep_csv(rows, os.path.join(workdir, "sweep.csv"))
        if x is None:
            numeric = [
                k for k, values in parsed
                if k != "seed" and all(isinstance(v, int | float) for v in values)
            ]  # fmt: skip
            x = numeric[0] if numeric else None
        if x is not None and rows and y in rows[0]:
            plot_sweep(rows, os.path.join(workdir, "sweep.png"), x=x, y=y)
    return rows
