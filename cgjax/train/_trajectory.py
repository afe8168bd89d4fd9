"""Trajectory matching: gradient steps on losses of differentiable simulations (paper 004 §2.1).

A trainer is an ``(init, update)`` pair, as an optax transformation is: the
:class:`~cgjax.losses.Loss` says *what* (RDF and MSD terms sharing one
:class:`~cgjax.simulate.TrajectorySpec`: model, protocol, adjoint), the optax
optimizer *how to step*; :func:`cgjax.train.fit_sampling` drives the updates
(as it drives relative entropy minimisation), logs them and keeps the best
parameters.

Each update simulates from where the previous trajectory ended (its last
positions and velocities; a Nose-Hoover friction restarts at 0), so the
updates walk along one long, piecewise-differentiated trajectory, and reuses
its neighbor list (no reallocation, no recompilation).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from cgjax._types import Params
from cgjax.losses import TrajectoryTerm, evaluate_trajectory_terms
from cgjax.train._sampling import SamplingTrainer

__all__ = ["TrajectoryState", "trajectory_matching"]


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
) -> SamplingTrainer:
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
      a :class:`~cgjax.train.SamplingTrainer` (drive it with
      :func:`~cgjax.train.fit_sampling`); ``update``'s metrics: ``loss`` (of the
      parameters *before* the update, measured on this update's trajectory),
      ``grad_norm``, ``wall_s``, ``end_positions`` (nm).

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
        fns = [TrajectoryTerm(start_spec, fn.from_trajectory, getattr(fn, "name", "trajectory"),
                              getattr(fn, "observe", None), getattr(fn, "from_observed", None))
               for _, fn in terms]  # fmt: skip
        values, traj = evaluate_trajectory_terms(fns, params)
        total = sum(w * v for (w, _), v in zip(terms, values, strict=True))
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
        norm = float(optax.tree.norm(trained(grads)))
        metrics = {"loss": float(v), "grad_norm": norm, "wall_s": time.perf_counter() - t0,
                   "end_positions": R,
                   "summary": f"loss {float(v):.4g}, |grad| {norm:.3g}"}  # fmt: skip
        return TrajectoryState(params, opt_state, R, V, neighbor, state.update + 1), metrics

    return SamplingTrainer(init, update, "trajectory", TrajectoryState, has_loss=True)
