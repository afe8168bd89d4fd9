"""Force matching from a config section, resumable: the stage the experiments share.

>>> settings = train.FMSettings.from_config(config.train, seed=config.seed)
>>> params, trainer, metrics = train.fit_force_matching(model, tr, va, settings,
...                                                     workdir="runs/fm")
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax

from cgjax import units
from cgjax._neighbor_list import allocate_neighbor_list
from cgjax._validation import settings_from_config
from cgjax.losses import force_mse, force_rmse_mae
from cgjax.train._ensemble import ensemble, init_ensemble_params
from cgjax.train._force_matching import force_matching
from cgjax.train._loop import Schedule, evaluate, fit, frame_arrays
from cgjax.train._state import Trainer

__all__ = ["FMSettings", "fit_force_matching"]

_ERRORS = {"mse": force_mse, "rmse_mae": force_rmse_mae}


@dataclasses.dataclass(frozen=True)
class FMSettings:
    """How :func:`fit_force_matching` trains. Frozen; validated on construction.

    Attributes:
      lr: Adam's initial learning rate (parameter units per update).
      n_steps: updates; the cosine decay runs over them.
      batch_size: frames per update.
      eval_every: updates between evaluations.
      checkpoint_every: updates between checkpoints.
      lr_final_fraction: the cosine decay ends at ``lr * lr_final_fraction`` [-].
      clip_norm: gradients clipped to this global norm before Adam; ``None``: no
        clipping.
      patience: early stop after this many evaluations without a lower
        validation loss; ``None``: never.
      seed: initialisation and batch order; ensemble member ``k`` is
        initialised from ``fold_in(key(seed), k)``.
      frozen: top-level terms kept fixed (e.g. a prior fitted before).
      loss: force error minimised: ``"mse"`` (:func:`~cgjax.losses.force_mse`) or
        ``"rmse_mae"`` (RMSE + MAE, paper 003; :func:`~cgjax.losses.force_rmse_mae`).

    Raises:
      ValueError: naming the field and the value.
    """

    lr: float
    n_steps: int
    batch_size: int
    eval_every: int
    checkpoint_every: int
    lr_final_fraction: float = 0.01
    clip_norm: float | None = None
    patience: int | None = None
    seed: int = 0
    frozen: tuple[str, ...] = ()
    loss: str = "mse"

    def __post_init__(self) -> None:
        def number(name, ok, what):
            v = getattr(self, name)
            try:
                good = math.isfinite(float(v)) and ok(float(v))
            except (TypeError, ValueError):
                good = False
            if not good:
                raise ValueError(f"FMSettings.{name} must be {what}, got {v!r}")
            object.__setattr__(self, name, float(v))

        number("lr", lambda v: v > 0, "a positive learning rate")
        number("lr_final_fraction", lambda v: v >= 0, "a fraction >= 0")
        if self.clip_norm is not None:
            number("clip_norm", lambda v: v > 0, "a positive gradient norm or None")
        if isinstance(self.batch_size, bool) or int(self.batch_size) < 1:
            raise ValueError(f"FMSettings.batch_size must be >= 1 frames, got {self.batch_size!r}")
        object.__setattr__(self, "batch_size", int(self.batch_size))
        if isinstance(self.frozen, str):
            raise ValueError(
                f"FMSettings.frozen must be a tuple of term names, got {self.frozen!r}"
            )
        object.__setattr__(self, "frozen", tuple(self.frozen))
        if self.loss not in _ERRORS:
            raise ValueError(f"FMSettings.loss must be one of {sorted(_ERRORS)}, got {self.loss!r}")
        schedule = self.schedule()  # validates the loop's fields
        for name in ("n_steps", "eval_every", "checkpoint_every", "seed"):
            object.__setattr__(self, name, getattr(schedule, name))
        object.__setattr__(self, "patience", schedule.early_stopping_patience)

    @classmethod
    def from_config(cls, section: Mapping | Any, **fixed: Any) -> FMSettings:
        """From a config section (e.g. ``config.train``); its other keys are ignored.

        ``fixed`` supplies fields the section does not hold (e.g. ``seed``); a
        field given in both is an error.
        """
        return settings_from_config(cls, section, fixed)

    def schedule(self) -> Schedule:
        """The :class:`~cgjax.train.Schedule` of :func:`~cgjax.train.fit`."""
        return Schedule(
            n_steps=self.n_steps,
            eval_every=self.eval_every,
            checkpoint_every=self.checkpoint_every,
            early_stopping_patience=self.patience,
            seed=self.seed,
        )

    def optimizer(self) -> optax.GradientTransformation:
        """Adam with a cosine decay from ``lr`` to ``lr * lr_final_fraction`` over ``n_steps``."""
        lr = optax.cosine_decay_schedule(self.lr, self.n_steps, alpha=self.lr_final_fraction)
        adam = optax.adam(lr)
        if self.clip_norm is None:
            return adam
        return optax.chain(optax.clip_by_global_norm(self.clip_norm), adam)


def fit_force_matching(
    model: Any,
    train_frames: Any,
    val_frames: Any,
    settings: FMSettings,
    *,
    workdir: str | None,
    n_members: int | None = None,
    params0: Any = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> tuple[Any, Trainer, dict]:
    """Force matching of ``model`` as ``settings`` say, resumable in ``workdir``.

    The neighbor list is allocated over the training and validation frames
    (frames with per-frame boxes, ``"box"`` ``[T, 3, 3]``, use all pairs: a
    neighbor list holds one box);
    the trainer is :func:`~cgjax.train.force_matching` (an
    :func:`~cgjax.train.ensemble` of ``n_members``), driven by
    :func:`~cgjax.train.fit`.

    Args:
      model: the :class:`~cgjax.potentials.EnergyModel`.
      train_frames, val_frames: :class:`~cgjax.data.Frames` with forces
        (positions nm, forces kJ/mol/nm), or dicts of arrays as
        :func:`~cgjax.train.frame_arrays` takes (e.g. with per-frame ``"state"``).
      settings: the :class:`FMSettings`.
      workdir: checkpoints and ``metrics.jsonl`` (``None``: in memory).
      n_members: ``None`` for one model; ``K`` trains a vmapped ensemble.
      params0: starting parameters (one model); default ``model.init_fn``.
      progress: show a progress bar; log: called with a summary line.

    Returns:
      ``(best_params, trainer, metrics)`` with ``metrics`` holding the
      validation force RMSE/MAE of the best parameters in kJ/mol/nm and
      kcal/mol/Å (lists for an ensemble), the parameter count and the
      training time (s).

    Raises:
      TypeError: ``settings`` is not an :class:`FMSettings`.
      ValueError: ``params0`` with ``n_members``; bad data (see
        :func:`~cgjax.train.fit`).
    """
    if not isinstance(settings, FMSettings):
        raise TypeError(f"settings must be a train.FMSettings, got {type(settings).__name__}")
    tr_arrays, va_arrays = (
        frame_arrays(train_frames, "train_frames"),
        frame_arrays(val_frames, "val_frames"),
    )
    train_R = tr_arrays["positions"]
    positions = np.concatenate([train_R, va_arrays["positions"]])
    # a neighbor list holds one box: frames with their own boxes (several densities
    # pooled) are trained on all pairs, each frame's displacements in its own box
    per_frame_box = "box" in tr_arrays or "box" in va_arrays
    nb = None if per_frame_box else allocate_neighbor_list(model, positions)
    R0 = train_R[0]
    key = jax.random.key(settings.seed)
    trainer = force_matching(model, settings.optimizer(), batch_size=settings.batch_size,
                             neighbor=nb, frozen=settings.frozen,
                             error_fn=_ERRORS[settings.loss])  # fmt: skip
    if params0 is not None:
        if n_members is not None:
            raise ValueError("params0 is for one model, not an ensemble (n_members)")
    elif n_members is None:
        params0 = model.init_fn(key, R0, neighbor=nb)
    else:
        params0 = init_ensemble_params(model, key, R0, int(n_members), neighbor=nb)
        trainer = ensemble(trainer, int(n_members))
    state = trainer.init_fn(key, params0)
    t0 = time.perf_counter()
    state = fit(trainer, state, train_frames, val_frames, settings.schedule(), workdir=workdir,
                progress=progress)  # fmt: skip
    wall = time.perf_counter() - t0
    err = evaluate(trainer, state.best_params, frame_arrays(val_frames, "val_frames"))
    rmse = np.asarray(err["rmse"])
    metrics = {
        "val_force_rmse": err["rmse"],
        "val_force_mae": err["mae"],
        "val_force_rmse_kcal_per_mol_per_A": (rmse / units.kcal_per_mol_per_angstrom).tolist(),
        "n_params": int(sum(np.size(x) for x in jax.tree.leaves(params0)))
        // (1 if n_members is None else int(n_members)),
        "train_wall_s": wall,
        "n_steps": int(np.max(np.asarray(state.step))),
    }
    if log is not None:
        log(f"validation force RMSE {np.round(metrics['val_force_rmse_kcal_per_mol_per_A'], 3)} "
            f"kcal/mol/Å")  # fmt: skip
    return state.best_params, trainer, metrics
