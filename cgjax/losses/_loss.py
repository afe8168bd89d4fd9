"""The composable :class:`Loss`: a weighted sum of ``fn(params, batch) -> scalar`` terms.

Losses compose as ``fm + 0.1 * rdf + msd``; the value's unit is that of its
terms (e.g. (kJ/mol/nm)^2 for :func:`~cgjax.losses.force_mse`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from cgjax._types import Params

__all__ = ["Loss", "evaluate_trajectory_terms"]

Batch = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Loss:
    """A weighted sum of loss terms ``fn(params, batch) -> scalar``.

    ``Loss(fn)`` wraps one term; ``a + b``, ``0.1 * a`` and ``a * 0.1`` build
    new losses (a plain callable is accepted on either side of ``+``).

    Trajectory terms (objects with ``simulate`` and ``from_trajectory``, see
    :func:`~cgjax.losses.rdf_loss`) are evaluated by
    :func:`evaluate_trajectory_terms`: each distinct ``simulate`` (by
    identity) runs once per call and its trajectory is shared by all terms
    that hold it (streamed, keeping no frames, when every such term can be).

    Attributes:
      terms: ``((weight, fn), ...)``.
    """

    terms: tuple[tuple[float, Callable[[Params, Batch], jax.Array]], ...]

    def __init__(self, fn: Any = None, *, terms: Any = None):
        if terms is None:
            if fn is None or not callable(fn):
                raise ValueError(f"Loss needs a callable fn(params, batch), got {fn!r}")
            terms = ((1.0, fn),)
        object.__setattr__(self, "terms", tuple(terms))

    def __call__(self, params: Params, batch: Batch) -> jax.Array:
        groups: dict[int, list] = {}  # id(simulate) -> its terms, for this call
        for _, fn in self.terms:
            if _is_trajectory_term(fn):
                groups.setdefault(id(fn.simulate), []).append(fn)
        values: dict[int, Any] = {}  # id(term) -> value
        for fns in groups.values():
            vals, _ = evaluate_trajectory_terms(fns, params)
            values.update(zip(map(id, fns), vals, strict=True))
        total = 0.0
        for weight, fn in self.terms:
            value = values[id(fn)] if id(fn) in values else fn(params, batch)
            total = total + weight * value
        return total

    def __add__(self, other: Any) -> Loss:
        if isinstance(other, Loss):
            return Loss(terms=self.terms + other.terms)
        if callable(other):
            return Loss(terms=self.terms + ((1.0, other),))
        return NotImplemented

    def __radd__(self, other: Any) -> Loss:
        if isinstance(other, int) and other == 0:  # so builtins.sum works
            return self
        if callable(other):
            return Loss(terms=((1.0, other),) + self.terms)
        return NotImplemented

    def __mul__(self, scale: Any) -> Loss:
        if isinstance(scale, Loss) or callable(scale):
            return NotImplemented
        return Loss(terms=tuple((scale * w, fn) for w, fn in self.terms))

    __rmul__ = __mul__


def _is_trajectory_term(fn: Any) -> bool:
    return getattr(fn, "simulate", None) is not None and hasattr(fn, "from_trajectory")


@dataclasses.dataclass(frozen=True)
class _Joint:
    """Several terms' frame sums evaluated together in one segment (hashable by value)."""

    observers: tuple

    def __call__(self, frames: Any) -> tuple:
        return tuple(o(frames) for o in self.observers)


def evaluate_trajectory_terms(terms: Any, params: Params) -> tuple[list, Any]:
    """Values of trajectory terms that share one ``simulate``, from one run of it.

    If every term has a frame sum (``term.observe`` and ``term.from_observed``,
    e.g. :func:`~cgjax.losses.rdf_loss`'s) and ``simulate`` takes ``observe=``
    (:class:`~cgjax.simulate.TrajectorySpec` does: ``simulate.streams``), the
    sums are taken inside the compiled segments and no frame is kept (memory
    flat in the trajectory's length); otherwise the frames are recorded and each
    term's ``from_trajectory`` reads them. Both give the same value up to
    float round-off.

    Args:
      terms: trajectory terms (``simulate``, ``from_trajectory``), all holding
        the same ``simulate``.
      params: the potential's parameters.

    Returns:
      ``(values, trajectory)``: one scalar per term, and the
      :class:`~cgjax.simulate.DiffTrajectory` (its frame fields hold only the
      last frame when streamed).
    """
    terms = list(terms)
    simulate = terms[0].simulate
    if any(t.simulate is not simulate for t in terms):
        raise ValueError("evaluate_trajectory_terms: the terms hold different simulate objects")
    observers = [getattr(t, "observe", None) for t in terms]
    if getattr(simulate, "streams", False) and all(o is not None for o in observers):
        traj = simulate(params, observe=_Joint(tuple(observers)))
        return [t.from_observed(o) for t, o in zip(terms, traj.observed, strict=True)], traj
    traj = simulate(params)
    return [t.from_trajectory(traj) for t in terms], traj
