"""Trajectory matching: gradient steps on losses of differentiable simulations (paper 004 §2.1).

A trainer is an ``(init, update)`` pair, as an optax transformation is: the
:class:`~cgjax.losses.Loss` says *what* (RDF and MSD terms sharing one
:class:`~cgjax.simulate.TrajectorySpec`: model, protocol, adjoint), the optax
optimizer *how to step*; :func:`fit_trajectory` drives the updates, logs them
and keeps the best parameters.

Each update simulates from where the previous trajectory ended (its last
positions and velocities; a Nose-Hoover friction restarts at 0), so the
updates walk along one long, piecewise-differentiated trajectory, and reuses
its neighbor list (no reallocation, no recompilation).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from cgjax._types import Params

__all__ = ["TrajectoryFit", "TrajectoryState", "TrajectoryTrainer", "fit_trajectory",
           "trajectory_matching"]  # fmt: skip


class TrajectoryState(NamedTuple):
    """Where trajectory matching stands.

    Attributes:
      params: the current parameters.
      opt_state: the optimizer's state.
      positions, velocities: ``[N, 3]`` start of the next trajectory (nm, nm/ps).
      neighbor: the neighbor-list template of the next trajectory (or None).
      update: updates done.
    """

    params: Params
    opt_state: Any
    positions: Any
    velocities: Any
    neighbor: Any
    update: int


class TrajectoryTrainer(NamedTuple):
    """``init(params) -> state``; ``update(state) -> (state, metrics)``.

    ``metrics``: ``loss`` (of the parameters *before* the update, measured on
    this update's trajectory), ``grad_norm``, ``wall_s``, ``end_positions`` (nm).
    """

    init: Callable[[Params], TrajectoryState]
    update: Callable[[TrajectoryState], tuple[TrajectoryState, dict]]


def _spec_of(loss: Any) -> Any:
    specs = {id(getattr(fn, "simulate", None)): getattr(fn, "simulate", None)
             for _, fn in loss.terms}  # fmt: skip
    if (
        len(specs) != 1
        or None in specs.values()
        or not all(hasattr(fn, "from_trajectory") for _, fn in loss.terms)
    ):
        raise ValueError(
            "trajectory_matching needs a Loss whose terms are all trajectory terms "
            "(losses.rdf_loss / msd_loss) sharing one simulate.TrajectorySpec; got "
            f"{len(loss.terms)} terms with {len(specs)} distinct simulate objects"
        )
    spec = next(iter(specs.values()))
    for name in ("model", "protocol", "adjoint"):
        if not hasattr(spec, name):
            raise ValueError(
                f"trajectory_matching: the terms' simulate must be a simulate.TrajectorySpec "
                f"(it has no {name!r})"
            )
    return spec


def trajectory_matching(
    loss: Any, optimizer: optax.GradientTransformation, *, frozen: tuple[str, ...] = ()
) -> TrajectoryTrainer:
    """Gradient steps on a loss of one differentiable trajectory per update.

    Args:
      loss: a :class:`~cgjax.losses.Loss` of trajectory terms (e.g.
        ``losses.rdf_loss(..., simulate=spec) + losses.msd_loss(..., simulate=spec)``)
        sharing one :class:`~cgjax.simulate.TrajectorySpec`; the spec's start
        (``R0``, ``V0``) is the first trajectory's, its protocol and adjoint
        every trajectory's.
      optimizer: an optax transformation of the parameter gradients.
      frozen: top-level parameter subtrees (e.g. the priors ``("lj", "hf")``)
        left unchanged; ``grad_norm`` is the norm over the others.

    Returns:
      a :class:`TrajectoryTrainer`.

    Raises:
      ValueError: a loss with terms that are not trajectory terms of one spec.
      TrainingDiverged: (from ``update``) a non-finite loss or gradient.
    """
    from cgjax.train._force_matching import _freeze, tree_all_finite
    from cgjax.train._state import TrainingDiverged

    spec = _spec_of(loss)
    terms = loss.terms
    frozen = tuple(frozen)
    if frozen:
        optimizer = _freeze(optimizer, frozen)

    def trained(tree):
        return {k: v for k, v in tree.items() if k not in frozen} if frozen else tree

    def value(params, start_spec):
        traj = start_spec(params)
        total = sum(w * fn.from_trajectory(traj) for w, fn in terms)
        last = jax.lax.stop_gradient((traj.positions[-1], traj.velocities[-1]))
        return total, (last, traj.neighbor)

    grad_fn = jax.value_and_grad(value, has_aux=True)

    def init(params: Params) -> TrajectoryState:
        return TrajectoryState(params, optimizer.init(params), spec.R0, spec.V0, spec.neighbor, 0)

    def update(state: TrajectoryState) -> tuple[TrajectoryState, dict]:
        t0 = time.perf_counter()
        start = dataclasses.replace(spec, R0=state.positions, V0=state.velocities,
                                    neighbor=state.neighbor)  # fmt: skip
        (v, ((R, V), neighbor)), grads = grad_fn(state.params, start)
        if not (np.isfinite(float(v)) and bool(tree_all_finite(grads))):
            raise TrainingDiverged(
                f"trajectory matching, update {state.update + 1}: the loss ({float(v)}) or its "
                "gradient is not finite; the state before it is unchanged (lower the learning "
                "rate or check the loss weights)",
                step=state.update + 1,
            )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": float(v), "grad_norm": float(optax.tree.norm(trained(grads))),
                   "wall_s": time.perf_counter() - t0, "end_positions": R}  # fmt: skip
        return TrajectoryState(params, opt_state, R, V, neighbor, state.update + 1), metrics

    return TrajectoryTrainer(init, update)


class TrajectoryFit(NamedTuple):
    """What :func:`fit_trajectory` returns.

    Attributes:
      params: the kept parameters (the best measured with ``keep_best``, else the last).
      history: one dict per update: ``update``, ``loss``, ``grad_norm``, ``wall_s``.
      kept_update: the update whose loss measured the kept parameters (None: the last).
      kept_loss: that loss.
      end_positions: ``[N, 3]`` end of the trajectory that measured them (nm).
      state: the final :class:`TrajectoryState`.
    """

    params: Params
    history: list
    kept_update: int | None
    kept_loss: float | None
    end_positions: Any
    state: TrajectoryState


def fit_trajectory(
    trainer: TrajectoryTrainer,
    params: Params,
    n_updates: int,
    *,
    keep_best: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrajectoryFit:
    """Runs ``n_updates`` updates of a trajectory trainer, logging each with the time left.

    Each loss is one short, noisy trajectory and Adam can overshoot, so with
    ``keep_best`` the parameters with the lowest measured loss are kept (the
    parameters after the last update are never measured); the later stages
    should start from the end of *their* trajectory, returned as ``end_positions``.

    Args:
      trainer: from :func:`trajectory_matching`.
      params: the start.
      n_updates: updates to run (>= 1).
      keep_best: keep the best measured parameters, not the last.
      log: one line per update.

    Returns:
      :class:`TrajectoryFit`.
    """
    if int(n_updates) < 1:
        raise ValueError(f"n_updates must be >= 1, got {n_updates}")
    log = log or (lambda msg: None)
    state = trainer.init(params)
    history: list[dict] = []
    best = (np.inf, params, -1, state.positions)
    t_start = time.perf_counter()
    for it in range(int(n_updates)):
        before = state.params
        state, m = trainer.update(state)
        if m["loss"] < best[0]:  # the loss measures the parameters before this update
            best = (m["loss"], before, it, m["end_positions"])
        history.append({"update": it, "loss": m["loss"], "grad_norm": m["grad_norm"],
                        "wall_s": m["wall_s"]})  # fmt: skip
        left = ""
        if it >= 1:  # the first update's time is mostly compilation
            per = (time.perf_counter() - t_start - history[0]["wall_s"]) / it
            left = f", about {per * (n_updates - it - 1) / 60:.1f} min left in this stage"
        log(f"trajectory update {it + 1}/{n_updates}: loss {m['loss']:.4g}, |grad| "
            f"{m['grad_norm']:.3g}, {m['wall_s']:.1f} s{left}")  # fmt: skip
    if keep_best:
        log(f"trajectory matching: kept the parameters measured at update {best[2]} "
            f"(loss {best[0]:.4g})")  # fmt: skip
        return TrajectoryFit(best[1], history, best[2], best[0], best[3], state)
    return TrajectoryFit(state.params, history, None, None, state.positions, state)
