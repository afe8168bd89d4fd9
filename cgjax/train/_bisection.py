"""Bisection on one scalar knob of a monotone response, with every evaluation recorded.

Paper 004 tunes the amplitude ``A`` of ``A sin(omega r) / r^2`` by bisection so
that the CG diffusion coefficient matches the AA one: each evaluation is a
simulation, so the driver is a host-side loop that keeps every point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["BisectionResult", "BracketError", "bisect"]


class BracketError(ValueError):
    """The bracket ``[lo, hi]`` does not contain a sign change of ``f(x) - target``.

    Attributes:
      history: the evaluations made (``{"x", "f"}`` dicts).
    """

    def __init__(self, message: str, history: list[dict]):
        super().__init__(message)
        self.history = history


class BisectionResult(NamedTuple):
    """What :func:`bisect` found.

    Attributes:
      x: the root estimate (midpoint of the final bracket).
      bracket: the final ``(lo, hi)``; the root lies inside.
      history: every evaluation in order: ``{"x", "f", "lo", "hi"}`` (the
        bracket after it), plus whatever ``fn`` returned in ``extra`` form.
      converged: True when the bracket width fell below ``xtol`` or
        ``|f - target| <= ftol``.
    """

    x: float
    bracket: tuple[float, float]
    history: list[dict]
    converged: bool


def bisect(
    fn: Callable[[float], Any],
    lo: float,
    hi: float,
    *,
    target: float = 0.0,
    xtol: float,
    ftol: float | None = None,
    max_evals: int = 30,
    log: Callable[[str], None] | None = None,
) -> BisectionResult:
    """Finds ``x`` in ``[lo, hi]`` with ``fn(x) = target`` for a monotone ``fn``.

    Both ends are evaluated first; their values must lie on opposite sides
    of ``target`` (either direction of monotonicity works). Then the
    bracket is halved until it is narrower than ``xtol`` or a midpoint is
    within ``ftol`` of the target.

    Args:
      fn: ``fn(x) -> value`` or ``fn(x) -> (value, extra_dict)``; ``extra``
        (e.g. the RDF TAE of that simulation) is stored in the history.
      lo, hi: the bracket (``lo < hi``), in ``x``'s units.
      target: the value sought (e.g. ``D_AA``).
      xtol: stop when ``hi - lo < xtol`` (``x``'s units).
      ftol: also stop when ``|fn(x) - target| <= ftol``.
      max_evals: evaluations at most, the two ends included.
      log: called with one line per evaluation.

    Returns:
      a :class:`BisectionResult`.

    Raises:
      BracketError: when ``fn(lo) - target`` and ``fn(hi) - target`` have the
        same sign (no root inside), with both values in the message.
      ValueError: on ``lo >= hi``, ``xtol <= 0`` or a non-finite ``fn`` value.
    """
    lo, hi, xtol = float(lo), float(hi), float(xtol)
    if not lo < hi:
        raise ValueError(f"the bracket needs lo < hi, got [{lo}, {hi}]")
    if not xtol > 0:
        raise ValueError(f"xtol must be positive, got {xtol}")
    history: list[dict] = []

    def evaluate(x: float) -> float:
        out = fn(x)
        value, extra = out if isinstance(out, tuple) else (out, {})
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"fn({x:.6g}) = {value}: bisection needs finite values")
        history.append({"x": x, "f": value, **dict(extra)})
        if log is not None:
            log(f"bisection: f({x:.6g}) = {value:.6g} (target {target:.6g})")
        return value - target

    f_lo, f_hi = evaluate(lo), evaluate(hi)
    history[0].update(lo=lo, hi=hi)
    history[1].update(lo=lo, hi=hi)
    if f_lo == 0.0:
        return BisectionResult(lo, (lo, lo), history, True)
    if f_hi == 0.0:
        return BisectionResult(hi, (hi, hi), history, True)
    if (f_lo > 0) == (f_hi > 0):
        raise BracketError(
            f"no sign change in [{lo:.6g}, {hi:.6g}]: f(lo) = {f_lo + target:.6g} and "
            f"f(hi) = {f_hi + target:.6g} are both {'above' if f_lo > 0 else 'below'} the "
            f"target {target:.6g}; widen the bracket or check that the response is monotone",
            history,
        )
    while len(history) < max_evals and hi - lo >= xtol:
        mid = 0.5 * (lo + hi)
        f_mid = evaluate(mid)
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
        history[-1].update(lo=lo, hi=hi)
        if ftol is not None and abs(f_mid) <= ftol:
            return BisectionResult(mid, (lo, hi), history, True)
    converged = hi - lo < xtol
    return BisectionResult(0.5 * (lo + hi), (lo, hi), history, converged)
