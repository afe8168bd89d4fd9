"""Bracketing root search on one scalar knob of a monotone response, every evaluation recorded.

Paper 004 tunes the amplitude ``A`` of ``A sin(omega r) / r^2`` by bisection so
that the CG diffusion coefficient matches the AA one: each evaluation is a
simulation, so the driver is a host-side loop that keeps every point. Besides
plain bisection, :func:`bisect` offers the Illinois variant of regula falsi
(interpolation inside the bracket, optionally of a transformed response such
as ``ln D``): the bracket still always contains the root, but for a smooth
response the points gather near it in fewer evaluations.
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
      x: the root estimate: the final bracket's midpoint (``"bisection"``) or
      the (transformed) linear interpolation between its ends (``"illinois"``).
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
    method: str = "bisection",
    transform: Callable[[float], float] | None = None,
    log: Callable[[str], None] | None = None,
) -> BisectionResult:
    """Finds ``x`` in ``[lo, hi]`` with ``fn(x) = target`` for a monotone ``fn``.

    Both ends are evaluated first; their values must lie on opposite sides
    of ``target`` (either direction of monotonicity works). Then the
    bracket is narrowed until it is narrower than ``xtol`` or a new point is
    within ``ftol`` of the target: by halving (``method="bisection"``, paper
    004), or by the Illinois method (``"illinois"``), which puts the next
    point where the straight line through the bracket's ends crosses the
    target, in ``transform``-ed values (``math.log`` for a response that
    falls exponentially), and halves the weight of an end that has been kept
    twice in a row so the bracket closes from both sides. Its points are
    held at least 5 % of the bracket width inside the ends.

    Args:
      fn: ``fn(x) -> value`` or ``fn(x) -> (value, extra_dict)``; ``extra``
        (e.g. the RDF TAE of that simulation) is stored in the history.
      lo, hi: the bracket (``lo < hi``), in ``x``'s units.
      target: the value sought (e.g. ``D_AA``).
      xtol: stop when ``hi - lo < xtol`` (``x``'s units).
      ftol: also stop when ``|fn(x) - target| <= ftol``.
      max_evals: evaluations at most, the two ends included.
      method: ``"bisection"`` or ``"illinois"``.
      transform: a monotone map applied to values and target before the
        Illinois interpolation (e.g. ``math.log``; values must be in its domain).
      log: called with one line per evaluation.

    Returns:
      a :class:`BisectionResult`.

    Raises:
      BracketError: when ``fn(lo) - target`` and ``fn(hi) - target`` have the
        same sign (no root inside), with both values in the message.
      ValueError: on ``lo >= hi``, ``xtol <= 0``, an unknown ``method``, or a
        non-finite (or, under ``transform``, out-of-domain) ``fn`` value.
    """
    lo, hi, xtol = float(lo), float(hi), float(xtol)
    if method not in ("bisection", "illinois"):
        raise ValueError(f"method must be 'bisection' or 'illinois', got {method!r}")
    tf = transform or (lambda v: v)
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
            log(f"{method}: f({x:.6g}) = {value:.6g} (target {target:.6g})")
        return value - target

    def g(value_minus_target: float) -> float:
        """The transformed distance from the target (the Illinois interpolant)."""
        try:
            out = float(tf(value_minus_target + target)) - float(tf(target))
        except (ValueError, ZeroDivisionError) as err:
            raise ValueError(
                f"transform failed on the value {value_minus_target + target:.6g} "
                f"(target {target:.6g}): {err}"
            ) from err
        if not math.isfinite(out):
            raise ValueError(
                f"transform of the value {value_minus_target + target:.6g} is not finite"
            )
        return out

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
    g_lo, g_hi = (g(f_lo), g(f_hi)) if method == "illinois" else (0.0, 0.0)
    kept = 0  # +k: the lower end kept k times in a row; -k: the upper end

    def secant() -> float:
        return lo + (hi - lo) * g_lo / (g_lo - g_hi)

    while len(history) < max_evals and hi - lo >= xtol:
        if method == "bisection":
            x = 0.5 * (lo + hi)
        else:
            width = hi - lo
            x = min(max(secant(), lo + 0.05 * width), hi - 0.05 * width)
        f_x = evaluate(x)
        if (f_x > 0) == (f_lo > 0):
            lo, f_lo = x, f_x
            if method == "illinois":
                g_lo = g(f_x)
                kept = kept - 1 if kept < 0 else -1  # the upper end kept once more
                if kept <= -2:
                    g_hi *= 0.5
        else:
            hi, f_hi = x, f_x
            if method == "illinois":
                g_hi = g(f_x)
                kept = kept + 1 if kept > 0 else 1
                if kept >= 2:
                    g_lo *= 0.5
        history[-1].update(lo=lo, hi=hi)
        if ftol is not None and abs(f_x) <= ftol:
            return BisectionResult(x, (lo, hi), history, True)
    converged = hi - lo < xtol
    if method == "illinois":
        g_lo, g_hi = g(f_lo), g(f_hi)  # the unweighted line through the final ends
        return BisectionResult(secant(), (lo, hi), history, converged)
    return BisectionResult(0.5 * (lo + hi), (lo, hi), history, converged)
