"""Hyperparameter and seed sweeps: expansion, grouping, vmapped and sharded training, hosts.

A sweep ``train.lr=[1e-3,3e-4] seed=range(8)`` expands to configs
(:func:`expand`); configs that differ only in traced values share a group
(:func:`group_by_structure`) trained as one ``jax.jit(jax.vmap(update))`` with the
member axis sharded over a device mesh (:func:`sweep_force_matching`); several
processes each take a share of the members (:func:`init_distributed`,
:func:`process_shard`) and the rows are gathered (:func:`gather_rows`) into
``sweep.csv`` and a plot (:func:`write_sweep_csv`, :func:`plot_sweep`).
"""

from cgjax.sweep._distributed import gather_rows, init_distributed, process_shard
from cgjax.sweep._engine import (
    TRACED_KEYS,
    SweepResult,
    member_mesh,
    sweep_force_matching,
    sweep_optimizer,
)
from cgjax.sweep._expand import expand, group_by_structure, is_dynamic, parse_sweep
from cgjax.sweep._report import plot_sweep, write_sweep_csv
from cgjax.sweep._run import member_rows, run_sweep

__all__ = [
    "TRACED_KEYS",
    "SweepResult",
    "expand",
    "gather_rows",
    "group_by_structure",
    "init_distributed",
    "is_dynamic",
    "member_mesh",
    "member_rows",
    "parse_sweep",
    "plot_sweep",
    "process_shard",
    "run_sweep",
    "sweep_force_matching",
    "sweep_optimizer",
    "write_sweep_csv",
]
