"""Inverting a pair potential from an RDF: iterative Boltzmann inversion, inverse Monte Carlo.

Both fit the pair spline (:class:`~cgjax.potentials.SplinePair`) of a model
to a target RDF ``g*(r)``; both start from the potential of mean force
``-kT ln g*(r)`` (:func:`potential_of_mean_force`) and each update samples the
model (:func:`cgjax.simulate.sample`, continuing the previous run) and
histograms its pair distances on the target's bins.

* IBI: ``U <- U + alpha kT ln(g_cg / g*)`` on the bins, optionally plus
  VOTCA's linear pressure ramp ``A (1 - r / r_c)``, projected onto the spline
  coefficients by least squares. Optionally accelerated by Anderson mixing
  over the last few updates (:class:`IBISettings` ``acceleration``): in a
  dense liquid a broad, smooth change of ``U`` barely changes ``g``, so the
  plain update removes such an error only a few per cent per update; the
  mixing estimates that slow response from the history of updates (a secant,
  or GMRES on the linearised map) and takes the larger step it needs. The
  iterative-HNC update (``IBISettings(update="hnc")``) instead takes that
  response from the hypernetted-chain closure and the Ornstein-Zernike
  relation (:func:`hnc_correction`); on the 256-atom LJ argon of
  ``scripts/henderson_inversion.py`` it recovers the potential to the
  acceptance tolerance in 7-24 updates, where plain IBI needs ~160 (``docs/results``).
* IMC (Lyubartsev-Laaksonen): with ``S_a`` the number of pairs in bin ``a``
  in one frame, ``d<S_a>/dU_b = -beta (<S_a S_b> - <S_a><S_b>)``; with the
  potential on the spline basis (``U_b = sum_j B_j(r_b) c_j``) the Newton
  step solves ``J dc = S* - <S>``, ``J = -beta Cov(S, S) B``, regularised
  (Tikhonov); with a target pressure the system gains the row
  ``d<P>/dc dc = P* - <P>`` (:func:`imc_pressure_row`). Without it, from
  500-ps samplings of the LJ argon above, IMC's steps wandered along the
  broad mode g hardly sees (0.04 or 0.20 kJ/mol after 8 updates, by draw);
  with it, 0.026 kJ/mol in 8 updates, or, where the first steps left an
  error neither g nor P sees, 0.05-0.06 from update 32 on and 0.044 after 60
  (the last 12 sampling 2 ns each; ``docs/results``).

By Henderson's theorem the pair potential that gives a pair system's RDF is
unique (up to a constant, fixed here by ``U(r_c) = 0``), so both recover the
potential that made the target. Units: nm, kJ/mol, K; pressure in bar.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import units
from cgjax._space import box_matrix
from cgjax._types import Params
from cgjax.train._state import TrainingDiverged

__all__ = [
    "IBISettings",
    "IMCSettings",
    "InversionState",
    "anderson_step",
    "hnc_correction",
    "ibi_trainer",
    "imc_pressure_row",
    "imc_trainer",
    "potential_of_mean_force",
]


@dataclasses.dataclass(frozen=True)
class IBISettings:
    """Iterative Boltzmann inversion.

    Attributes:
      alpha: damping of the update ``alpha kT ln(g_cg / g*)`` (0 < alpha <= 1).
      g_min: bins where the target or the model's RDF is at most this take
        no logarithm: the update there is interpolated from the bins around,
        and held constant below the first sampled bin (the core).
      pressure: target pressure (bar), or None: no pressure correction.
      pressure_factor: VOTCA's ramp scale ``f`` (1/bar): the ramp amplitude is
        ``A = -sign(dP) * pressure_max_kT * kT * min(1, f |dP|)``.
      pressure_max_kT: the largest ramp amplitude (units of kT).
      tol: converged when the RDF TAE (nm) falls below this (0: never).
      acceleration: ``None`` (plain IBI, the default) or ``"anderson"``:
        Anderson mixing of the last ``history`` updates
        (:func:`anderson_step`, mixing parameter ``alpha``).
      history: updates Anderson mixing remembers (>= 1).
      mixing_start: plain (``alpha``-damped) updates before the mixing starts:
        far from the answer the map is nonlinear (the core's ``ln g`` moves a
        lot) and its secants mislead the mixing; it starts with the last
        plain step in its history.
      mixing_regularization: Tikhonov ``lambda`` of the mixing's least
        squares, relative to the largest squared singular value of the
        residual differences (noise in nearly parallel differences stays bounded).
      max_step_kT: the largest change of ``U`` one update may make on the
        fitted bins where the target has pairs (``g* > g_min``), in kT (the
        step is scaled down to it); None (the default): no limit.
      update: ``"boltzmann"`` (the default: ``kT ln(g_cg / g*)``, Reith et al.)
        or ``"hnc"``: the iterative-HNC update of Bernhardt, Hanke and van der
        Vegt, ``kT [ln(g_cg / g*) - (h_cg - h*) + (c_cg - c*)]``
        (:func:`hnc_correction`). Its fixed point is IBI's (``g_cg = g*``);
        the added terms are the hypernetted-chain closure's estimate of how
        the rest of the liquid carries a change of ``U`` into ``g``, which
        plain IBI ignores: they give the broad, smooth part of an error the
        large step it needs (in a dense liquid IBI removes it a few per cent
        per update).
      s_min: ``"hnc"``: the target's structure factor is floored at this in
        the step's ``1 / S*(k)^2`` (the RDF ends at ``r_max``, so ``S*(k)`` at
        small ``k`` is not known better than this). On LJ argon with the RDF to
        1 nm (S*(0) computed as -0.42) 0.05 made the step oscillate and 0.3
        converged (``docs/results/henderson_inversion``).
    """

    alpha: float = 1.0
    g_min: float = 1e-3
    pressure: float | None = None
    pressure_factor: float = 3e-3
    pressure_max_kT: float = 0.1
    tol: float = 0.0
    acceleration: str | None = None
    history: int = 5
    mixing_start: int = 0
    mixing_regularization: float = 1e-6
    max_step_kT: float | None = None
    update: str = "boltzmann"
    s_min: float = 0.3

    def __post_init__(self):
        if self.update not in ("boltzmann", "hnc"):
            raise ValueError(f"IBISettings.update must be 'boltzmann' or 'hnc', "
                             f"got {self.update!r}")  # fmt: skip
        if not self.s_min > 0:
            raise ValueError(f"IBISettings.s_min must be > 0, got {self.s_min}")
        if self.acceleration not in (None, "anderson"):
            raise ValueError(f"IBISettings.acceleration must be None or 'anderson', "
                             f"got {self.acceleration!r}")  # fmt: skip
        if int(self.mixing_start) < 0:
            raise ValueError(f"IBISettings.mixing_start must be >= 0, got {self.mixing_start}")
        if int(self.history) < 1:
            raise ValueError(f"IBISettings.history must be >= 1, got {self.history}")
        if self.max_step_kT is not None and not self.max_step_kT > 0:
            raise ValueError(f"IBISettings.max_step_kT must be > 0 or None, got {self.max_step_kT}")


@dataclasses.dataclass(frozen=True)
class IMCSettings:
    """Inverse Monte Carlo.

    Attributes:
      regularization: Tikhonov ``lambda`` relative to the mean eigenvalue of
        ``J^T J`` (the step solves ``(J^T J + lambda I) dc = J^T dS``).
      alpha: scale of the Newton step (1: full step).
      g_min: as :class:`IBISettings` (used for the first update's checks only).
      tol: converged when the RDF TAE (nm) falls below this (0: never).
      max_step_kT: the largest change of ``U`` one step may make on the bins
        the target samples (``g* > g_min``), in kT: the Newton step is scaled
        down to it (a trust region); None (the default): no limit. From short
        samplings the covariance is noise in its weak (broad, pressure-like)
        directions and the Newton step there is far too long.
      pressure: target pressure (bar), or None: no pressure row. With it the
        Newton system gains one row, the response of the mean virial
        pressure to the coefficients (:func:`imc_pressure_row`), with the
        residual ``P* - <P>``: the broad mode the RDF hardly sees is the one
        the pressure sees most, and the row holds it (a thermodynamic
        constraint in IMC, as Murtola et al., J. Chem. Phys. 126, 075101
        (2007), constrained theirs). An error that changes neither g nor P
        it does not hold: that decays as slowly as under IBI.
      pressure_weight: the row's weight. The row is scaled so that a
        pressure residual of one per-frame standard deviation of ``P`` weighs
        as much as pair-count residuals of one per-frame standard deviation
        in every bin together (``w = pressure_weight sqrt(sum_a Var S_a) /
        std P``).
    """

    regularization: float = 1e-3
    alpha: float = 1.0
    g_min: float = 1e-3
    tol: float = 0.0
    max_step_kT: float | None = None
    pressure: float | None = None
    pressure_weight: float = 1.0

    def __post_init__(self):
        if self.max_step_kT is not None and not self.max_step_kT > 0:
            raise ValueError(f"IMCSettings.max_step_kT must be > 0 or None, got {self.max_step_kT}")
        if not (np.isfinite(self.pressure_weight) and self.pressure_weight > 0):
            raise ValueError(f"IMCSettings.pressure_weight must be > 0, got {self.pressure_weight}")
        if self.pressure is not None and not np.isfinite(self.pressure):
            raise ValueError(f"IMCSettings.pressure must be finite (bar) or None, "
                             f"got {self.pressure}")  # fmt: skip


class InversionState(NamedTuple):
    """State of an IBI or IMC run.

    Attributes:
      params: the model's parameters (the spline's coefficients updated).
      start: where the next sampling continues (positions ``[N, 3]`` nm or a
        :class:`~cgjax.simulate.Sample`).
      update: updates done.
      simulated_ps: production time sampled so far (ps).
      context: the run's fixed pieces (target, basis, histogram function).
      memory: Anderson mixing's history, ``((coefficients [K], residual [K]), ...)``
        oldest first (empty without acceleration).
    """

    params: Params
    start: Any
    update: int
    simulated_ps: float
    context: Any
    memory: tuple = ()


class _Context(NamedTuple):
    model: Any
    protocol: Any
    path: tuple  # where the coefficients sit in params
    spline: Any
    r: np.ndarray  # target bin centres [B] (nm)
    g: np.ndarray  # target RDF [B]
    dr: float
    norm: np.ndarray  # ideal-gas pair counts per bin and frame [B]
    fit: np.ndarray  # bins inside the cutoff (bool [B])
    basis: np.ndarray  # [B_fit, K] spline basis at the fitted bin centres
    pairs: tuple
    box: np.ndarray


def _spline_path(model: Any, term: str | None) -> tuple[tuple, Any]:
    """``(path of the coefficients in params, the SplinePair)``."""
    from cgjax.potentials import SplinePair
    from cgjax.potentials._base import Sum

    pot = model.potential
    if isinstance(pot, SplinePair) and term is None:
        found = [((), pot)]
    elif isinstance(pot, Sum):
        found = [((k,), t) for k, t in pot.terms if isinstance(t, SplinePair)
                 and (term is None or k == term)]  # fmt: skip
    else:
        found = []
    if len(found) != 1:
        raise ValueError(
            f"IBI/IMC fit one SplinePair term; the model's potential {type(pot).__name__} has "
            f"{len(found)} matching (term={term!r}): name it with term=..."
        )
    path, spline = found[0]
    if spline.n_species != 1:
        raise ValueError(f"IBI/IMC: the SplinePair must have n_species=1, got {spline.n_species}")
    return path, spline


def _coefficients(params: Params, path: tuple) -> np.ndarray:
    p = params
    for k in path:
        p = p[k]
    return np.asarray(p["coefficients"], np.float64).reshape(-1)


def _with_coefficients(params: Params, path: tuple, c: np.ndarray) -> Params:
    def put(p, keys):
        if not keys:
            old = p["coefficients"]
            return {**p, "coefficients": jnp.asarray(c.reshape(old.shape), old.dtype)}
        return {**p, keys[0]: put(p[keys[0]], keys[1:])}

    return put(params, path)


def _checked_target(target: Any) -> tuple[np.ndarray, np.ndarray, float]:
    if hasattr(target, "r") and hasattr(target, "g"):
        r, g = target.r, target.g
    elif isinstance(target, tuple | list) and len(target) == 2:
        r, g = target
    else:
        raise ValueError("target must be an observables.RDF or an (r, g) pair of [B] arrays")
    r, g = np.asarray(r, np.float64), np.asarray(g, np.float64)
    if r.ndim != 1 or r.shape != g.shape or len(r) < 2:
        raise ValueError(f"target: r and g must be [B] arrays, got {r.shape} and {g.shape}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(g))):
        raise ValueError("target: r and g must be finite (a target RDF with NaN/inf)")
    if np.any(g < 0):
        raise ValueError(f"target: g must be >= 0, got {g.min()} at r = {r[np.argmin(g)]} nm")
    dr = r[1] - r[0]
    if not (np.allclose(np.diff(r), dr, rtol=1e-5) and abs(2 * r[0] / dr - 1) < 1e-4):
        raise ValueError("target: r must be the centres of uniform bins starting at 0 (nm), "
                         "as observables.rdf returns")  # fmt: skip
    return r, g, float(dr)


def _context(model: Any, target: Any, protocol: Any, term: str | None) -> _Context:
    from cgjax import simulate
    from cgjax._system import system_of

    system = system_of(model, "IBI/IMC")
    if not isinstance(protocol, simulate.Protocol):
        raise TypeError(f"protocol must be a simulate.Protocol, got {type(protocol).__name__}")
    path, spline = _spline_path(model, term)
    r, g, dr = _checked_target(target)
    r_max = r[-1] + 0.5 * dr
    from cgjax.observables._neighbors import check_range

    check_range(system.box, r_max, "the target RDF's r_max")
    if r_max < spline.cutoff - 1e-9:
        raise ValueError(f"target: its bins end at {r_max:.4g} nm, before the spline's cutoff "
                         f"{spline.cutoff} nm: the RDF is needed up to the cutoff")  # fmt: skip
    n = system.n_particles
    i, j = np.triu_indices(n, 1)
    edges = np.arange(len(r) + 1) * dr
    norm = i.size * 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3) / system.volume
    fit = r < spline.cutoff
    basis = np.asarray(spline.basis(jnp.asarray(r[fit])), np.float64)
    pairs = (jnp.asarray(i, jnp.int32), jnp.asarray(j, jnp.int32))
    return _Context(model, protocol, path, spline, r, g, dr, norm, fit, basis, pairs,
                    np.asarray(system.box))  # fmt: skip


@functools.partial(jax.jit, static_argnames=("n_bins", "dr"))
def _frame_counts(X, box, pairs, *, n_bins, dr):
    """``[T, n_bins]`` pair counts per frame on bins of width ``dr`` from 0."""
    from cgjax.observables._neighbors import pair_distances

    i, j = pairs

    def one(R):
        k = jnp.floor(pair_distances(R, box, i, j) / dr).astype(jnp.int32)
        inside = k < n_bins
        return (
            jnp.zeros(n_bins, jnp.float32)
            .at[jnp.where(inside, k, 0)]
            .add(jnp.where(inside, 1.0, 0.0))
        )

    return jax.lax.map(one, X, batch_size=8)


def _sample(state: InversionState, progress: Any) -> tuple[Any, np.ndarray]:
    from cgjax import simulate

    ctx = state.context
    out = simulate.sample(ctx.model, state.params, state.start, ctx.protocol, progress=progress)
    X = jnp.asarray(out.trajectory.positions)
    counts = _frame_counts(X, jnp.asarray(ctx.box, X.dtype), ctx.pairs, n_bins=len(ctx.r),
                           dr=ctx.dr)  # fmt: skip
    return out, np.asarray(counts, np.float64)


def _table_fill(values: np.ndarray, valid: np.ndarray, r: np.ndarray, what: str) -> np.ndarray:
    """``values`` with invalid bins interpolated from valid ones (constant past the ends)."""
    if not np.any(valid):
        raise ValueError(f"{what}: no bin inside the cutoff has g > g_min in both the target "
                         "and the model: nothing to invert")  # fmt: skip
    return np.interp(r, r[valid], values[valid])


def potential_of_mean_force(
    model: Any, params: Params, target: Any, temperature: float, *, term: str | None = None,
    g_min: float = 1e-3,
) -> Params:  # fmt: skip
    """``params`` with the spline set to the potential of mean force ``-kT ln g*(r)`` (kJ/mol).

    The PMF is taken on the target's bins inside the spline's cutoff, shifted
    so its last bin before the cutoff is 0 (the spline vanishes there).
    Bins where ``g* <= g_min`` (the core, where the logarithm is undefined)
    get the PMF continued linearly with the slope of the first five sampled
    bins (never decreasing inwards); then the table is projected onto the
    spline basis by least squares.

    Args:
      model: an :class:`~cgjax.potentials.EnergyModel` with one
        :class:`~cgjax.potentials.SplinePair` (``n_species=1``) term.
      params: its parameters (the other terms are kept).
      target: the target RDF, :class:`~cgjax.observables.RDF` or ``(r, g)``
        on uniform bins from 0 (nm), reaching the cutoff.
      temperature: K.
      term: the spline's name in a sum (None: the only SplinePair).
      g_min: the smallest ``g*`` whose logarithm is taken.

    Returns:
      the parameters with the spline's coefficients replaced.

    Raises:
      ValueError: a malformed target (shape, NaN, negative g, non-uniform
        bins, too short), no sampled bin, a model without one SplinePair.
    """
    path, spline = _spline_path(model, term)
    r, g, _ = _checked_target(target)
    fit = r < spline.cutoff
    r, g = r[fit], g[fit]
    kT = units.kB * float(temperature)
    valid = g > g_min
    U = -kT * np.log(np.where(valid, g, 1.0))
    U = _table_fill(U, valid, r, "potential_of_mean_force")
    first = int(np.argmax(valid))
    nxt = min(first + 5, len(r) - 1)
    slope = min(0.0, (U[nxt] - U[first]) / max(r[nxt] - r[first], 1e-12))
    core = r < r[first]
    U[core] = U[first] + slope * (r[core] - r[first])
    U = U - U[-1]
    basis = np.asarray(spline.basis(jnp.asarray(r)), np.float64)
    c = np.linalg.lstsq(basis, U, rcond=None)[0]
    return _with_coefficients(params, path, c)


def _measure(ctx: _Context, counts: np.ndarray) -> tuple[np.ndarray, float]:
    g_cg = counts.mean(0) / ctx.norm
    tae = float(np.sum(np.abs(g_cg - ctx.g)) * ctx.dr)
    return g_cg, tae


def _pressure(ctx: _Context, params: Params, out: Any) -> Any:
    from cgjax import observables

    X = jnp.asarray(out.trajectory.positions)
    return observables.pressure(ctx.model, params, X, kT=ctx.protocol.kT)


def _pressure_bar(ctx: _Context, params: Params, out: Any) -> float:
    return _pressure(ctx, params, out).mean


def _finish(state, ctx, c_new, metrics, out, t0):
    if not np.all(np.isfinite(c_new)):
        raise TrainingDiverged(f"IBI/IMC: update {state.update + 1} produced non-finite "
                               "spline coefficients", step=state.update + 1)  # fmt: skip
    p = ctx.protocol
    ps = state.simulated_ps + (p.production_steps + p.equilibration_steps) * p.dt
    params = _with_coefficients(state.params, ctx.path, c_new)
    metrics.update(wall_s=time.perf_counter() - t0, simulated_ps=ps,
                   end_positions=np.asarray(out.trajectory.positions[-1]))  # fmt: skip
    return state._replace(params=params, start=out, update=state.update + 1, simulated_ps=ps)


def _radial_transforms(r: np.ndarray, dr: float, pad: int = 4):
    """``(F [M, B], F_inv [B, M])``: the 3-D Fourier transform of a radial function on
    bin centres ``r`` (nm) and its inverse, ``f(k) = 4 pi int r^2 f(r) sinc(kr) dr`` on
    ``M = pad B`` wavenumbers ``k_j = (j + 1) pi / (pad B dr)`` (1/nm). On these
    grids the pair is exact: ``F_inv @ F`` is the identity (a discrete sine transform
    of the function zero-padded to ``pad`` times its range)."""
    M = pad * len(r)
    k = (np.arange(M) + 1.0) * np.pi / (M * dr)
    kr = k[:, None] * r[None, :]
    sinc = np.sin(kr) / kr
    F = 4.0 * np.pi * dr * r[None, :] ** 2 * sinc
    weight = np.ones(M)
    weight[-1] = 0.5  # the Nyquist term of the sine-transform pair (DST-II / DST-III)
    F_inv = (weight * k**2 * (k[1] - k[0]) / (2.0 * np.pi**2))[None, :] * sinc.T
    return F, F_inv


def hnc_correction(
    r: np.ndarray, g: np.ndarray, g_target: np.ndarray, density: float, *, s_min: float = 0.3
) -> np.ndarray:
    """``-(h - h*) + (c - c*)`` on the bins ``r`` (dimensionless; times ``kT`` it is what
    the iterative-HNC update adds to IBI's ``kT ln(g / g*)``).

    The hypernetted-chain closure ``ln g = -beta U + h - c`` with the
    Ornstein-Zernike relation ``c(k) = h(k) / (1 + rho h(k))`` gives a
    potential for any RDF, ``beta U_HNC[g] = -ln g + h - c``; the iterative-HNC
    update ``U + U_HNC[g*] - U_HNC[g]`` is exact where the closure is, and
    closure errors largely cancel in the difference. Linearised about the
    target, ``c - c* = F^-1[(h - h*)(k) / S*(k)^2]`` with ``S* = 1 + rho h*(k)``
    floored at ``s_min``; ``h = g - 1``, zero beyond the last bin.

    Args:
      r: ``[B]`` bin centres from 0 (nm), uniform.
      g: ``[B]`` the model's RDF; g_target: ``[B]`` the target's.
      density: number density (1/nm^3).
      s_min: floor of the target's structure factor.

    Returns:
      ``[B]`` the correction.

    References:
      M. P. Bernhardt, M. Hanke, N. F. A. van der Vegt, J. Chem. Phys. 154,
      084118 (2021) (iterative integral equation methods, in VOTCA).
    """
    r, g, gt = (np.asarray(a, np.float64) for a in (r, g, g_target))
    dr = float(r[1] - r[0])
    F, F_inv = _radial_transforms(r, dr)
    S = np.maximum(1.0 + density * (F @ (gt - 1.0)), s_min)
    dh = g - gt
    dc = F_inv @ ((F @ dh) / S**2)
    return -dh + dc


def anderson_step(
    xs: Any, fs: Any, *, alpha: float = 1.0, regularization: float = 1e-6, metric: Any = None
) -> np.ndarray:
    """The next iterate of a fixed-point iteration ``x <- x + alpha f(x)`` by Anderson mixing.

    With the iterates ``x_0 .. x_k`` and their residuals ``f_i = f(x_i)``
    (for IBI ``f`` is the full update ``kT ln(g_cg / g*)`` on the spline basis,
    so ``x`` and ``f`` are in kJ/mol), the differences ``dX_i = x_{i+1} - x_i``
    and ``dF_i = f_{i+1} - f_i`` estimate how the residual responds to a step;
    the mixing takes the combination of past steps that best cancels the
    current residual (Walker and Ni's type-II form)::

        gamma = argmin |M (f_k - dF gamma)|^2 + lambda |gamma|^2
        x_{k+1} = x_k + alpha f_k - (dX + alpha dF) gamma

    ``lambda = regularization x`` the largest squared singular value of
    ``M dF``. For a linear ``f(x) = -A (x - x*)`` in ``n`` dimensions it is
    GMRES: exact after at most ``n + 1`` residuals, however small the
    slowest eigenvalue of ``A``. With one iterate it is the plain step
    ``x_k + alpha f_k``.

    Args:
      xs: ``[m + 1, K]`` iterates, oldest first (the last is the current one).
      fs: ``[m + 1, K]`` their residuals.
      alpha: mixing parameter (the plain iteration's damping).
      regularization: relative Tikhonov ``lambda`` (>= 0).
      metric: ``[B, K]`` matrix whose image measures the residual (for IBI
        the spline basis at the bins: residuals compared as ``U(r)``); None:
        the identity.

    Returns:
      ``[K]`` the next iterate.

    Raises:
      ValueError: ``xs`` and ``fs`` of different or non-2-D shapes, none given.

    References:
      D. G. Anderson, J. ACM 12, 547 (1965); H. F. Walker and P. Ni,
      SIAM J. Numer. Anal. 49, 1715 (2011).
    """
    X, F = np.asarray(xs, np.float64), np.asarray(fs, np.float64)
    if X.ndim != 2 or X.shape != F.shape or len(X) < 1:
        raise ValueError(f"anderson_step: xs and fs must be [m + 1, K] arrays of one shape, "
                         f"got {X.shape} and {F.shape}")  # fmt: skip
    x, f = X[-1], F[-1]
    if len(X) == 1:
        return x + alpha * f
    dX, dF = np.diff(X, axis=0).T, np.diff(F, axis=0).T  # [K, m]
    M = np.eye(len(x)) if metric is None else np.asarray(metric, np.float64)
    A, b = M @ dF, M @ f
    s = np.linalg.svd(A, compute_uv=False)
    lam = regularization * float(s[0] ** 2) if s.size and s[0] > 0 else 1.0
    m = A.shape[1]  # least squares on [A; sqrt(lam) I] (not the normal equations: their
    # condition number is squared)
    gamma = np.linalg.lstsq(np.vstack([A, np.sqrt(lam) * np.eye(m)]),
                            np.concatenate([b, np.zeros(m)]), rcond=None)[0]  # fmt: skip
    return x + alpha * f - (dX + alpha * dF) @ gamma


def _capped(dc: np.ndarray, basis: np.ndarray, limit: float | None) -> tuple[np.ndarray, float]:
    """``(dc scaled so max |basis @ dc| <= limit, the scale)``; ``limit`` None: unscaled."""
    top = float(np.max(np.abs(basis @ dc))) if len(basis) else 0.0
    if limit is None or top <= limit:
        return dc, 1.0
    return dc * (limit / top), limit / top


def ibi_trainer(
    model: Any, target: Any, protocol: Any, *, term: str | None = None,
    settings: IBISettings = IBISettings(), R0: Any = None, progress: bool | None = False,
) -> Any:  # fmt: skip
    """Iterative Boltzmann inversion of the model's pair spline as an ``(init, update)`` trainer.

    Each update samples the model (``protocol``; one compilation for all
    updates, the sampling continues the previous one), histograms its pair
    distances on the target's bins, and sets, on the bins inside the
    cutoff, ``dU(r) = alpha kT ln(g_cg(r) / g*(r))`` (kJ/mol); bins with
    ``g <= g_min`` in either RDF take no logarithm (their ``dU`` is
    interpolated, and held constant into the core below the first sampled
    bin: never NaN); with ``settings.update = "hnc"`` it is the
    iterative-HNC update ``kT [ln(g_cg / g*) - (h_cg - h*) + (c_cg - c*)]``
    (:func:`hnc_correction`). With ``settings.pressure`` the linear ramp
    ``A (1 - r / r_c)`` is added, ``A = -sign(P - P*) pressure_max_kT kT
    min(1, f |P - P*|)`` (VOTCA's "simple" correction), with ``P`` the
    model's virial pressure over the samples (bar). ``dU`` is then projected
    onto the spline basis (least squares) and added to the coefficients:
    plain IBI adds ``alpha`` times it; with ``settings.acceleration =
    "anderson"`` the step is :func:`anderson_step` over the last
    ``settings.history`` updates (the full updates as residuals, compared as
    ``g*(r) kT ln(g_cg / g*)``, about ``kT (g_cg - g*)``, on the bins),
    from update ``settings.mixing_start`` on. ``settings.max_step_kT`` scales
    a step whose largest change of ``U`` on the bins exceeds that many kT
    down to it.
    Start from :func:`potential_of_mean_force`.

    Args:
      model: an :class:`~cgjax.potentials.EnergyModel` on its
        :class:`~cgjax.simulate.System`, with one
        :class:`~cgjax.potentials.SplinePair` (``n_species=1``) term; other
        terms stay fixed.
      target: the target RDF (:class:`~cgjax.observables.RDF` or ``(r, g)``),
        uniform bins from 0 (nm) reaching the cutoff, ``r_max`` at most half the box.
      protocol: the :class:`~cgjax.simulate.Protocol` of each sampling.
      term: the spline's name in a sum (None: the only SplinePair).
      settings: :class:`IBISettings`.
      R0: ``[N, 3]`` start of the first sampling (nm).
      progress: progress bars of the MD runs.

    Returns:
      a :class:`~cgjax.train.SamplingTrainer` (``init(params) ->``
      :class:`InversionState`); metrics: ``loss`` and ``tae`` (the RDF TAE of
      the samples, nm, at the parameters before the update), ``pressure``
      (bar), ``max_du`` (the largest ``|kT ln(g_cg / g*)|``, or of the
      iterative-HNC update, kJ/mol),
      ``max_step`` (the largest change of ``U`` made, kJ/mol), ``step_scale``
      (1 unless ``max_step_kT`` cut the step), ``simulated_ps``, ``converged``.

    Raises:
      ValueError: a malformed target, no SplinePair, ``R0`` missing.
      TypeError: ``protocol`` is not a Protocol.

    References:
      D. Reith, M. Puetz, F. Mueller-Plathe, J. Comput. Chem. 24, 1624 (2003);
      V. Ruehle et al., J. Chem. Theory Comput. 5, 3211 (2009) (VOTCA, pressure ramp);
      Anderson mixing: see :func:`anderson_step`.
    """
    from cgjax._system import system_of
    from cgjax.train._sampling import SamplingTrainer

    ctx = _context(model, target, protocol, term)
    kT = protocol.kT
    system = system_of(model, "IBI")
    density = system.n_particles / system.volume

    def init(params: Params) -> InversionState:
        if R0 is None:
            raise ValueError("ibi_trainer needs R0= (start positions [N, 3], nm)")
        return InversionState(params, jnp.asarray(R0), 0, 0.0, ctx)

    def update(state: InversionState) -> tuple[InversionState, dict]:
        t0 = time.perf_counter()
        out, counts = _sample(state, progress)
        g_cg, tae = _measure(ctx, counts)
        r, gt, gc = ctx.r[ctx.fit], ctx.g[ctx.fit], g_cg[ctx.fit]
        valid = (gt > settings.g_min) & (gc > settings.g_min)
        du = kT * np.log(np.where(valid, gc, 1.0) / np.where(valid, gt, 1.0))
        if settings.update == "hnc":
            du = (
                du + kT * hnc_correction(ctx.r, g_cg, ctx.g, density, s_min=settings.s_min)[ctx.fit]
            )
        du = _table_fill(du, valid, r, "ibi_trainer")
        P = _pressure_bar(ctx, state.params, out)
        ramp = 0.0
        if settings.pressure is not None:
            dP = P - settings.pressure
            ramp = -np.sign(dP) * settings.pressure_max_kT * kT * min(
                1.0, settings.pressure_factor * abs(dP))  # fmt: skip
            du = du + ramp * (1.0 - r / ctx.spline.cutoff)
        f = np.linalg.lstsq(ctx.basis, du, rcond=None)[0]  # the full (alpha 1) update
        c = _coefficients(state.params, ctx.path)
        memory = ()
        mixing = settings.acceleration == "anderson" and state.update >= settings.mixing_start
        if settings.acceleration == "anderson":  # before mixing_start only the last pair
            memory = (*state.memory, (c, f))[-(int(settings.history) + 1 if mixing else 1) :]
        if mixing:
            xs, fs = zip(*memory, strict=True)
            dc = anderson_step(xs, fs, alpha=settings.alpha, metric=gt[:, None] * ctx.basis,
                               regularization=settings.mixing_regularization) - c  # fmt: skip
        else:
            dc = settings.alpha * f
        sampled = gt > settings.g_min  # the cap is measured where the target has pairs
        limit = None if settings.max_step_kT is None else settings.max_step_kT * kT
        dc, scale = _capped(dc, ctx.basis[sampled], limit)
        step = float(np.max(np.abs(ctx.basis[sampled] @ dc)))
        metrics = dict(loss=tae, tae=tae, pressure=P, ramp=float(ramp),
                       max_du=float(np.max(np.abs(du))), max_step=step, step_scale=scale,
                       converged=bool(settings.tol > 0 and tae < settings.tol),
                       summary=f"TAE {tae / units.angstrom:.4f} A, P {P:.0f} bar, "
                       f"max |{'kT ln(g/g*)' if settings.update == 'boltzmann' else 'IHNC dU'}| "
                       f"{np.max(np.abs(du)):.3g}, "
                       f"max |step| {step:.3g} kJ/mol")  # fmt: skip
        new = _finish(state, ctx, c + dc, metrics, out, t0)
        return new._replace(memory=memory), metrics

    return SamplingTrainer(init, update, "IBI", InversionState, has_loss=True)


@functools.partial(jax.jit, static_argnames=("n_basis", "r_min", "cutoff", "batch"))
def _frame_basis_sums(X, box, pairs, *, n_basis, r_min, cutoff, batch):
    """``(E [T, K], V [T, K])``: per frame, ``sum_pairs B_k(r)`` and ``sum_pairs r B_k'(r)``
    over the pairs ``(i, j)`` of the spline basis (dimensionless; ``B'`` in 1/nm, times r)."""
    from cgjax.observables._neighbors import pair_distances
    from cgjax.potentials._spline import cubic_bspline_basis

    i, j = pairs
    basis = functools.partial(cubic_bspline_basis, n_basis=n_basis, r_min=r_min, cutoff=cutoff)

    def one(R):
        r = pair_distances(R, box, i, j)
        b, db = jax.jvp(basis, (r,), (jnp.ones_like(r),))  # each B_k(r_p) depends on r_p only
        return b.sum(0), (r[:, None] * db).sum(0)

    return jax.lax.map(one, X, batch_size=batch)


def imc_pressure_row(
    spline: Any, positions: Any, box: Any, pressures: Any, kT: float
) -> np.ndarray:  # fmt: skip
    """``d<P>/dc`` (bar per kJ/mol, ``[K]``): how the canonical mean pressure responds to the
    coefficients of a single-species :class:`~cgjax.potentials.SplinePair`.

    With ``U = sum_k c_k sum_pairs B_k(r)`` and the virial pressure ``P = (3 N kT
    + W) / 3V``, ``W = -sum_pairs r U'(r)``, differentiating the canonical average
    gives an explicit and a fluctuation term::

        d<P>/dc_k = -<sum_pairs r B_k'(r)> / 3V - beta Cov(P, sum_pairs B_k(r))

    both over the frames (every pair, minimum image; bar). Memory per frame
    is ``[pairs, K]``: frames go through a few at a time, at most ~2e7 values.

    Args:
      spline: the SplinePair (``n_species=1``).
      positions: ``[T, N, 3]`` frames sampled at ``kT`` (nm).
      box: the periodic box (nm): scalar, ``[3]`` or ``[3, 3]`` (columns are box vectors).
      pressures: ``[T]`` their instantaneous pressures (bar), as
        :func:`cgjax.observables.pressure` returns them (``per_frame``).
      kT: kJ/mol.

    Returns:
      ``[K]`` the row.

    Raises:
      ValueError: a spline with several species, positions not ``[T, N, 3]``,
        pressures not ``[T]``, non-finite values.
    """
    if int(getattr(spline, "n_species", 1)) != 1:
        raise ValueError(f"imc_pressure_row: the SplinePair must have n_species=1, "
                         f"got {spline.n_species}")  # fmt: skip
    X = jnp.asarray(positions)
    P = np.asarray(pressures, np.float64)
    if X.ndim != 3 or X.shape[-1] != 3:
        raise ValueError(f"imc_pressure_row: positions must be [T, N, 3] (nm), got {X.shape}")
    if P.shape != (X.shape[0],):
        raise ValueError(f"imc_pressure_row: pressures must be [T] = [{X.shape[0]}] (bar), "
                         f"one per frame, got {P.shape}")  # fmt: skip
    if not (np.all(np.isfinite(P)) and bool(jnp.all(jnp.isfinite(X)))):
        raise ValueError("imc_pressure_row: positions and pressures must be finite")
    n = X.shape[1]
    i, j = np.triu_indices(n, 1)
    B = np.asarray(box_matrix(box), np.float64)
    batch = max(1, min(4, int(2e7 // (max(i.size, 1) * int(spline.n_basis)))))
    E, V = _frame_basis_sums(X, jnp.asarray(B, X.dtype), (jnp.asarray(i), jnp.asarray(j)),
                             n_basis=int(spline.n_basis), r_min=float(spline.r_min),
                             cutoff=float(spline.cutoff), batch=batch)  # fmt: skip
    E, V = np.asarray(E, np.float64), np.asarray(V, np.float64)
    volume = abs(float(np.linalg.det(B)))
    explicit = -V.mean(0) / (3.0 * volume) / units.bar
    fluct = (P - P.mean()) @ (E - E.mean(0)) / len(P)  # the derivative of the frames' mean
    return explicit - fluct / kT


def _imc_step(ctx: _Context, counts: np.ndarray, settings: IMCSettings, beta: float,
              pressure_row: tuple | None = None):  # fmt: skip
    """``(dc [K], scale the trust region applied, max |dU| on the sampled bins (kJ/mol))``
    of one IMC step from ``[T, B]`` per-frame pair counts; ``pressure_row``:
    ``(d<P>/dc [K], P* - <P>, std of the per-frame P)`` (bar) adds the pressure's row."""
    S = counts[:, ctx.fit]
    dS = ctx.g[ctx.fit] * ctx.norm[ctx.fit] - S.mean(0)
    d = S - S.mean(0)
    cov = d.T @ d / max(len(S) - 1, 1)
    J = -beta * cov @ ctx.basis
    if pressure_row is not None:
        row, dP, sd = pressure_row
        w = settings.pressure_weight * np.sqrt(np.trace(cov)) / max(sd, 1e-12)
        J, dS = np.vstack([J, w * row[None]]), np.append(dS, w * dP)
    JtJ = J.T @ J
    lam = settings.regularization * np.trace(JtJ) / len(JtJ)
    dc = settings.alpha * np.linalg.solve(JtJ + lam * np.eye(len(JtJ)), J.T @ dS)
    sampled = ctx.g[ctx.fit] > settings.g_min
    limit = None if settings.max_step_kT is None else settings.max_step_kT / beta
    dc, scale = _capped(dc, ctx.basis[sampled], limit)
    return dc, scale, float(np.max(np.abs(ctx.basis[sampled] @ dc)))


def imc_trainer(
    model: Any, target: Any, protocol: Any, *, term: str | None = None,
    settings: IMCSettings = IMCSettings(), R0: Any = None, progress: bool | None = False,
) -> Any:  # fmt: skip
    """Inverse Monte Carlo of the model's pair spline as an ``(init, update)`` trainer.

    Each update samples the model as :func:`ibi_trainer` does and counts,
    per frame, the pairs ``S_a`` in every target bin inside the cutoff. The
    cross-correlation matrix of these histograms gives the response of the
    mean counts to the tabulated potential, ``d<S_a>/dU_b = -beta Cov(S_a,
    S_b)``; through the spline basis (``U_b = sum_j B_j(r_b) c_j``, ``B``
    at the bin centres) ``J = -beta Cov(S, S) B`` (pairs per kJ/mol), and the
    step solves ``(J^T J + lambda I) dc = J^T (S* - <S>)`` with
    ``S* = g* x`` (ideal counts) and ``lambda = regularization x mean
    eigenvalue of J^T J`` (Tikhonov), scaled by ``settings.alpha``. Bins
    no pair visits have zero rows: the regularisation keeps the step finite.
    With ``settings.pressure`` (bar) the system gains the row
    ``w d<P>/dc dc = w (P* - <P>)`` (:func:`imc_pressure_row`; ``w`` as
    :class:`IMCSettings` says): from one update's samples the counts'
    covariance is noise along the broad, pressure-like mode, and without the
    row the steps drift along it (``docs/results/henderson_inversion``).
    Start from :func:`potential_of_mean_force`.

    Args:
      model, target, protocol, term, R0, progress: as :func:`ibi_trainer`.
      settings: :class:`IMCSettings`.

    Returns:
      a :class:`~cgjax.train.SamplingTrainer`; metrics ``loss``/``tae``
      (nm), ``pressure`` (bar), ``max_dc`` (kJ/mol), ``max_step`` (the
      largest change of ``U`` on the sampled bins, kJ/mol), ``step_scale``
      (1 unless ``max_step_kT`` cut the step), ``frames`` (samples in the
      covariance), ``simulated_ps``, ``converged``.

    Raises:
      as :func:`ibi_trainer`.

    References:
      A. P. Lyubartsev and A. Laaksonen, Phys. Rev. E 52, 3730 (1995).
    """
    from cgjax.train._sampling import SamplingTrainer

    ctx = _context(model, target, protocol, term)
    beta = 1.0 / protocol.kT

    def init(params: Params) -> InversionState:
        if R0 is None:
            raise ValueError("imc_trainer needs R0= (start positions [N, 3], nm)")
        return InversionState(params, jnp.asarray(R0), 0, 0.0, ctx)

    def update(state: InversionState) -> tuple[InversionState, dict]:
        t0 = time.perf_counter()
        out, counts = _sample(state, progress)
        _, tae = _measure(ctx, counts)
        pressure = _pressure(ctx, state.params, out)
        P, row = pressure.mean, None
        if settings.pressure is not None:
            grad = imc_pressure_row(ctx.spline, out.trajectory.positions, ctx.box,
                                    pressure.per_frame, protocol.kT)  # fmt: skip
            row = (grad, settings.pressure - P, float(np.std(pressure.per_frame)))
        dc, scale, step = _imc_step(ctx, counts, settings, beta, row)
        c_new = _coefficients(state.params, ctx.path) + dc
        metrics = dict(loss=tae, tae=tae, pressure=P, max_dc=float(np.max(np.abs(dc))),
                       max_step=step, step_scale=scale, frames=len(counts),
                       converged=bool(settings.tol > 0 and tae < settings.tol),
                       summary=f"TAE {tae / units.angstrom:.4f} A, P {P:.0f} bar, "
                       f"max |dU| {step:.3g} kJ/mol (scaled {scale:.2g})")  # fmt: skip
        return _finish(state, ctx, c_new, metrics, out, t0), metrics

    return SamplingTrainer(init, update, "IMC", InversionState, has_loss=True)
