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

__all__ = ["Loss"]

Batch = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Loss:
    """A weighted sum of loss terms ``fn(params, batch) -> scalar``.

    ``Loss(fn)`` wraps one term; ``a + b``, ``0.1 * a`` and ``a * 0.1`` build
    new losses (a plain callable is accepted on either side of ``+``).

    Trajectory terms (objects with ``simulate`` and ``from_trajectory``, see
    :func:`~cgjax.losses.rdf_loss`) are evaluated as ``from_trajectory(traj)``:
    each distinct ``simulate`` (by identity) runs once per call and its
    trajectory is shared by all terms that hold it.

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
        total = 0.0
        trajectories: dict[int, Any] = {}  # id(simulate) -> trajectory, for this call
        for weight, fn in self.terms:
            simulate = getattr(fn, "simulate", None)
            if simulate is not None and hasattr(fn, "from_trajectory"):
                if id(simulate) not in trajectories:
                    trajectories[id(simulate)] = simulate(params)
                value = fn.from_trajectory(trajectories[id(simulate)])
            else:
                value = fn(params, batch)
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
