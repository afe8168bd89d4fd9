"""K-fold cross-validated force-matching ensembles, trained in one vmapped computation.

>>> stacked, metrics = train.fit_kfold_force_matching(model, frames, settings, n_folds=5,
...                                                   workdir="runs/kfold")
>>> energy = train.ensemble_energy_fn(model, stacked)   # the mean force drives MD

References:
  paper 001: B. E. Husic et al., J. Chem. Phys. 153, 194101 (2020), Sec. IV A:
  five-fold cross-validation; the five models' mean force drives the simulation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from cgjax import units
from cgjax.train._ensemble import ensemble, init_ensemble_params, kfold_indices
from cgjax.train._fit_force_matching import FMSettings
from cgjax.train._force_matching import force_matching
from cgjax.train._loop import evaluate, fit, frame_arrays

__all__ = ["fit_kfold_force_matching"]


def fit_kfold_force_matching(
    model: Any,
    frames: Any,
    settings: FMSettings,
    *,
    n_folds: int = 5,
    workdir: str | None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> tuple[Any, dict]:
    """Trains ``n_folds`` members, member ``k`` on all folds but ``k``, validated on ``k``.

    Folds are contiguous blocks of ``frames`` (:func:`kfold_indices`, seeded by
    ``settings.seed``); members are vmapped (:func:`ensemble` with one batch per
    member) and driven by :func:`fit`, so a rerun with the same ``workdir``
    resumes. Terms in ``settings.frozen`` (fitted priors) keep their values.

    Args:
      model: the :class:`~cgjax.potentials.EnergyModel` (no neighbor list: all pairs).
      frames: :class:`~cgjax.data.Frames` with forces (nm, kJ/mol/nm).
      settings: :class:`FMSettings`.
      n_folds: members and folds ``K``.
      workdir: checkpoints and ``metrics.jsonl`` (``None``: in memory).
      progress: a progress bar; log: called with a summary line.

    Returns:
      ``(stacked_params [K, ...], metrics)``; ``metrics`` has per-fold
      ``val_force_rmse`` (kJ/mol/nm) and ``..._kcal_per_mol_per_A``, their mean
      and standard deviation over folds, ``n_params`` per member and ``train_wall_s``.
    """
    if not isinstance(settings, FMSettings):
        raise TypeError(f"settings must be a train.FMSettings, got {type(settings).__name__}")
    folds = kfold_indices(frames.n_frames, n_folds, seed=settings.seed)
    train_sets = [frames.select(tr) for tr, _ in folds]
    val_sets = [frames.select(va) for _, va in folds]
    single = force_matching(model, settings.optimizer(), batch_size=settings.batch_size,
                            frozen=settings.frozen)  # fmt: skip
    trainer = ensemble(single, n_folds, same_batches=False)
    key = jax.random.key(settings.seed)
    params0 = init_ensemble_params(model, key, frames.positions[0], n_folds)
    state = trainer.init_fn(key, params0)
    t0 = time.perf_counter()
    state = fit(trainer, state, train_sets, val_sets, settings.schedule(), workdir=workdir,
                progress=progress)  # fmt: skip
    wall = time.perf_counter() - t0
    arrays = [frame_arrays(v, f"fold {k}") for k, v in enumerate(val_sets)]
    # every member on its own fold, in one vmapped evaluation
    rmse = np.asarray(evaluate(trainer, state.best_params, arrays)["rmse"], np.float64)
    kcal = rmse / units.kcal_per_mol_per_angstrom
    metrics = {
        "val_force_rmse": rmse.tolist(),
        "val_force_rmse_kcal_per_mol_per_A": kcal.tolist(),
        "val_force_rmse_mean_kcal_per_mol_per_A": float(kcal.mean()),
        "val_force_rmse_std_kcal_per_mol_per_A": float(kcal.std(ddof=1)) if n_folds > 1 else 0.0,
        "n_params": int(sum(np.size(x) for x in jax.tree.leaves(params0))) // n_folds,
        "train_wall_s": wall,
        "n_steps": int(np.max(np.asarray(state.step))),
    }
    if log is not None:
        std = metrics["val_force_rmse_std_kcal_per_mol_per_A"]
        log(f"{n_folds}-fold validation force RMSE {np.round(kcal, 3).tolist()} kcal/mol/Å "
            f"(mean {kcal.mean():.3f} ± {std:.3f})")  # fmt: skip
    return state.best_params, metrics
