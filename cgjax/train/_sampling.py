"""Trainers that make their own samples, and the loop that drives them.

Force matching draws minibatches of stored frames, and :func:`cgjax.train.fit`
drives it. Relative entropy minimisation and trajectory matching sample the
model at its current parameters instead: each update simulates, measures and
steps. They share one shape, an optax-style pair

    state = trainer.init(params)
    state, metrics = trainer.update(state)

and one driver, :func:`fit_sampling`, that logs each update with the time
left, keeps the best measured parameters (when the method has a loss), and
stops when the trainer says it has converged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from cgjax._types import Params

__all__ = ["SamplingFit", "SamplingTrainer", "fit_sampling"]


class SamplingTrainer(NamedTuple):
    """An ``(init, update)`` pair whose updates sample the model themselves.

    Attributes:
      init: ``init(params) -> state``; every state has ``params`` (the current
        parameters) and ``update`` (updates done).
      update: ``update(state) -> (state, metrics)``. ``metrics`` holds
        ``loss`` (a float measured on this update's samples at the parameters
        *before* the update, or ``None`` for a method without a loss value,
        as REM), ``summary`` (one line for the log), ``wall_s`` and
        optionally ``converged`` (stop after this update), ``end_positions``
        (``[N, 3]`` nm, end of the samples that measured the loss) and any
        method-specific scalars (they go into the history).
      name: what the log calls an update (``"REM"``, ``"trajectory"``).
      state_type: the class of the states (so :func:`fit_sampling` can go on
        from one).
      has_loss: whether ``metrics["loss"]`` is a number (``keep_best`` needs one).
    """

    init: Callable[[Params], Any]
    update: Callable[[Any], tuple[Any, dict]]
    name: str
    state_type: type
    has_loss: bool


class SamplingFit(NamedTuple):
    """What :func:`fit_sampling` returns.

    Attributes:
      params: the kept parameters (the best measured with ``keep_best``, else the last).
      history: one dict per update: ``update`` and the update's metrics
        (without ``summary`` and ``end_positions``).
      kept_update: the update whose loss measured the kept parameters (None: the last).
      kept_loss: that loss.
      end_positions: ``[N, 3]`` end of the samples that measured them (nm), or
        None when the trainer reports no positions.
      converged: True when the trainer reported convergence.
      state: the final state (pass it to :func:`fit_sampling` to go on).
    """

    params: Params
    history: list
    kept_update: int | None
    kept_loss: float | None
    end_positions: Any
    converged: bool
    state: Any


def fit_sampling(
    trainer: SamplingTrainer,
    start: Any,
    n_updates: int,
    *,
    keep_best: bool = False,
    log: Callable[[str], None] | None = None,
) -> SamplingFit:
    """Runs up to ``n_updates`` updates of a sampling trainer, logging each with the time left.

    With ``keep_best`` the parameters with the lowest measured loss are kept
    (each loss is one noisy sample and a step can overshoot; the parameters
    after the last update are never measured). The run stops early when an
    update reports ``converged``.

    Args:
      trainer: a :class:`SamplingTrainer` (:func:`cgjax.train.relative_entropy_trainer`,
        :func:`cgjax.train.trajectory_matching`).
      start: the initial parameters, or a state of this trainer to go on from.
      n_updates: updates to run at most (>= 1).
      keep_best: keep the best measured parameters (trainers with a loss only).
      log: called with one line per update.

    Returns:
      :class:`SamplingFit`.

    Raises:
      ValueError: ``n_updates < 1``; ``keep_best`` with a trainer that reports no loss.
      TrainingDiverged: from the trainer's update (the state before it unchanged).
    """
    if int(n_updates) < 1:
        raise ValueError(f"n_updates must be >= 1, got {n_updates}")
    if keep_best and not trainer.has_loss:
        raise ValueError(f"keep_best: the {trainer.name} trainer reports no loss")
    log = log or (lambda msg: None)
    state = start if isinstance(start, trainer.state_type) else trainer.init(start)
    history: list[dict] = []
    best = (np.inf, state.params, None, None)
    converged = False
    t_start = time.perf_counter()
    for it in range(int(n_updates)):
        before = state.params
        state, m = trainer.update(state)
        # the loss measures the parameters before the update
        if keep_best and m["loss"] < best[0]:
            best = (m["loss"], before, state.update - 1, m.get("end_positions"))
        record = {"update": state.update - 1}
        record.update((k, v) for k, v in m.items() if k not in ("summary", "end_positions"))
        history.append(record)
        left = ""
        if it >= 1:  # the first update's time is mostly compilation
            per = (time.perf_counter() - t_start - history[0]["wall_s"]) / it
            left = f", about {per * (n_updates - it - 1) / 60:.1f} min left in this stage"
        log(f"{trainer.name} update {it + 1}/{n_updates}: {m['summary']}, "
            f"{m['wall_s']:.1f} s{left}")  # fmt: skip
        if m.get("converged", False):
            converged = True
            log(f"{trainer.name}: converged after update {it + 1}")
            break
    if keep_best:
        log(f"{trainer.name}: kept the parameters measured at update {best[2]} "
            f"(loss {best[0]:.4g})")  # fmt: skip
        return SamplingFit(best[1], history, best[2], best[0], best[3], converged, state)
    end = getattr(state, "positions", None)
    return SamplingFit(state.params, history, None, None, end, converged, state)
