"""Trajectory losses: structure (smeared RDF) and dynamics (MSD) of a simulated trajectory.

A trajectory term holds a ``simulate(params) -> DiffTrajectory`` callable (e.g.
a :class:`~cgjax.simulate.TrajectorySpec`). Alone it is a loss term
``term(params, batch)``; inside a :class:`~cgjax.losses.Loss` every distinct
``simulate`` (by identity) runs once per call and all its terms share the
trajectory, so ``fm + 0.5 * rdf + msd`` simulates once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from cgjax.losses._loss import Loss
from cgjax.observables._msd import msd as msd_curve
from cgjax.observables._rdf import rdf_smooth, rdf_smooth_frame_sum

__all__ = ["TrajectoryTerm", "msd_loss", "rdf_loss"]


@dataclasses.dataclass(frozen=True, eq=False)
class TrajectoryTerm:
    """A loss term that is a function of one simulated trajectory.

    Attributes:
      simulate: ``simulate(params) -> DiffTrajectory``; terms sharing this
        object share one simulation inside a :class:`Loss`.
      from_trajectory: ``DiffTrajectory -> scalar``.
      name: for messages.
      observe: optional frame sum (see ``simulate_differentiable(observe=)``):
        with it and ``from_observed`` the term can be evaluated without
        keeping the frames (:func:`~cgjax.losses.evaluate_trajectory_terms`).
      from_observed: ``observe``'s sum over the trajectory ``-> scalar``.
    """

    simulate: Callable[[Any], Any]
    from_trajectory: Callable[[Any], jax.Array]
    name: str = "trajectory"
    observe: Callable | None = None
    from_observed: Callable | None = None

    def __call__(self, params: Any, batch: Any = None) -> jax.Array:
        del batch
        return self.from_trajectory(self.simulate(params))


def _frames(traj, start_frame: int):
    if not 0 <= start_frame < traj.positions.shape[0]:
        raise ValueError(
            f"start_frame ({start_frame}) must lie in [0, {traj.positions.shape[0] - 1}]"
        )
    return traj.positions[start_frame:]


def rdf_loss(
    target_r: Float[Array, " n_bins"],
    target_g: Float[Array, " n_bins"],
    *,
    simulate: Callable[[Any], Any],
    sigma: float,
    r_max: float | None = None,
    n_bins: int | None = None,
    box: Any = None,
    start_frame: int = 0,
    species: Any = None,
    pair: tuple[int, int] | None = None,
) -> Loss:
    """MSE between the Gaussian-smeared RDF of the simulated frames and a target.

    ``L = mean_k (g(r_k) - g_target(r_k))^2`` with ``g`` from
    :func:`~cgjax.observables.rdf_smooth` over frames ``start_frame:``.

    Args:
      target_r: ``[n_bins]`` bin centres of the target (nm), uniform on ``[0, r_max)``.
      target_g: ``[n_bins]`` target ``g(r)``.
      simulate: ``simulate(params) -> DiffTrajectory``, e.g. a
        :class:`~cgjax.simulate.TrajectorySpec`.
      sigma: Gaussian smearing width (nm).
      r_max: upper edge of the last bin (nm); default from ``target_r``.
      n_bins: number of bins; default ``len(target_r)``.
      box: the periodic box (nm); default ``simulate.system.box``.
      start_frame: frames before it (equilibration) are left out.
      species, pair: as in :func:`~cgjax.observables.rdf_smooth`.

    Returns:
      a :class:`Loss` (one :class:`TrajectoryTerm`), dimensionless.

    Raises:
      ValueError: a target on a different grid than ``(r_max, n_bins)`` (bin
        centres ``(k + 1/2) r_max / n_bins``), mismatched shapes, no box.

    References:
      Papers/004 Sec. 2 (L_Str, the RDF MSE with Gaussian smearing).
    """
    r = np.asarray(target_r, np.float64)
    g_target = np.asarray(target_g, np.float64)
    if r.ndim != 1 or r.shape != g_target.shape or r.size < 2:
        raise ValueError(
            f"target_r and target_g must be [n_bins] arrays of the same length (>= 2), got "
            f"{r.shape} and {g_target.shape}"
        )
    n_bins = r.size if n_bins is None else int(n_bins)
    r_max = (r[1] - r[0]) * r.size if r_max is None else float(r_max)
    centres = (np.arange(n_bins) + 0.5) * r_max / n_bins
    if centres.shape != r.shape or not np.allclose(r, centres, rtol=1e-6, atol=1e-9):
        raise ValueError(
            f"RDF target on a different grid: target_r has {r.size} points from {r[0]:.6g} to "
            f"{r[-1]:.6g} nm, the loss bins [0, {r_max:.6g}) nm into {n_bins} bins with centres "
            f"{centres[0]:.6g} .. {centres[-1]:.6g} nm; resample the target onto those centres "
            "(e.g. np.interp) or pass matching r_max / n_bins"
        )
    if box is None:
        box = getattr(getattr(simulate, "system", None), "box", None)
    if box is None:
        raise ValueError("rdf_loss needs the periodic box (nm): pass box=...")
    sigma = float(sigma)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive (nm), got {sigma}")

    def from_trajectory(traj) -> jax.Array:
        R = _frames(traj, start_frame)
        g = rdf_smooth(
            R, box, r_max=r_max, n_bins=n_bins, sigma=sigma, species=species, pair=pair
        ).g
        return jnp.mean((g - jnp.asarray(g_target, g.dtype)) ** 2)

    n_frames = getattr(simulate, "n_frames", None)
    if n_frames is not None and not 0 <= start_frame < n_frames:
        raise ValueError(f"start_frame ({start_frame}) must lie in [0, {n_frames - 1}]")
    observe = from_observed = None
    if pair is None:  # streamed: the frames' g summed inside the trajectory's segments
        observe = _RDFFrameSum(_box_key(box), r_max, n_bins, sigma, int(start_frame))

        def from_observed(sums) -> jax.Array:
            g_sum, weight = sums
            g = g_sum / weight
            return jnp.mean((g - jnp.asarray(g_target, g.dtype)) ** 2)

    return Loss(TrajectoryTerm(simulate, from_trajectory, "rdf", observe, from_observed))


def _box_key(box: Any) -> tuple:
    """A hashable copy of a concrete box (nm)."""
    b = np.asarray(box, np.float64)
    return (b.shape, tuple(b.ravel().tolist()))


@dataclasses.dataclass(frozen=True)
class _RDFFrameSum:
    """The RDF term's frame sum: ``(sum_t w_t g_t, sum_t w_t)`` with ``w_t = [t >= start_frame]``.

    Hashable by value, so every loss built with the same settings shares the
    compiled segments. Frames before ``start_frame`` cost nothing (a segment
    with none past it skips the histogram).
    """

    box: tuple
    r_max: float
    n_bins: int
    sigma: float
    start_frame: int

    def __call__(self, frames: Any) -> tuple:
        R = frames.positions
        w = (frames.index >= self.start_frame).astype(R.dtype)
        box = np.asarray(self.box[1], np.float64).reshape(self.box[0])

        def g_sum():
            return rdf_smooth_frame_sum(R, w, box, r_max=self.r_max, n_bins=self.n_bins,
                                        sigma=self.sigma)  # fmt: skip

        g = jax.lax.cond(jnp.any(w > 0), g_sum, lambda: jnp.zeros(self.n_bins, R.dtype))
        return g, jnp.sum(w)


def msd_loss(
    target_t: Float[Array, " L"],
    target_msd: Float[Array, " L"],
    *,
    simulate: Callable[[Any], Any],
    frame_interval: float | None = None,
    start_frame: int = 0,
    remove_com: bool = True,
    masses: Any = None,
) -> Loss:
    """MSE between the MSD curve of the simulated (unwrapped) frames and a target.

    The MSD at lag ``t`` averages over all time origins (FFT algorithm,
    :func:`~cgjax.observables.msd`); ``L = mean_i (MSD(t_i) - MSD_target(t_i))^2``.

    Args:
      target_t: ``[L]`` lag times (ps), integer multiples of the frame interval,
        strictly increasing (0 allowed).
      target_msd: ``[L]`` target MSD (nm^2).
      simulate: ``simulate(params) -> DiffTrajectory``.
      frame_interval: time between frames (ps); default
        ``simulate.frame_interval`` (a :class:`~cgjax.simulate.TrajectorySpec`),
        else read from the trajectory's ``time``.
      start_frame: frames before it are left out.
      remove_com, masses: as in :func:`~cgjax.observables.msd`.

    Returns:
      a :class:`Loss` (one :class:`TrajectoryTerm`) in nm^4.

    Raises:
      ValueError: target times that are not multiples of the frame interval,
        not increasing, longer than the trajectory, or mismatched shapes.

    References:
      Papers/004 Sec. 2 (O_Dyn, the MSD MSE, Einstein relation).
    """
    t = np.asarray(target_t, np.float64)
    m_target = np.asarray(target_msd, np.float64)
    if t.ndim != 1 or t.shape != m_target.shape or t.size < 1:
        raise ValueError(
            f"target_t and target_msd must be [L] arrays of the same length, got {t.shape} "
            f"and {m_target.shape}"
        )
    if t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ValueError("target_t must be non-negative and strictly increasing (ps)")
    if frame_interval is None:
        frame_interval = getattr(simulate, "frame_interval", None)

    def lags_for(interval: float) -> np.ndarray:
        lags = np.rint(t / interval)
        if not np.allclose(lags * interval, t, rtol=1e-6, atol=1e-9 * interval):
            raise ValueError(
                f"MSD target times {t[:4]}... (ps) do not match the trajectory's lag times: "
                f"they must be integer multiples of the frame interval {interval:.6g} ps"
            )
        return lags.astype(np.int64)

    fixed = None if frame_interval is None else lags_for(float(frame_interval))

    def from_trajectory(traj) -> jax.Array:
        lags = fixed
        if lags is None:
            time = np.asarray(traj.time)
            lags = lags_for(float(time[1] - time[0]) if time.size > 1 else float(time[0]))
        R = _frames(traj, start_frame)
        if lags[-1] >= R.shape[0]:
            raise ValueError(
                f"MSD target reaches lag {lags[-1]} frames but the trajectory has only "
                f"{R.shape[0]} frames from start_frame {start_frame}"
            )
        curve = msd_curve(R, max_lag=int(lags[-1]), remove_com=remove_com, masses=masses).msd
        return jnp.mean((curve[lags] - jnp.asarray(m_target, curve.dtype)) ** 2)

    return Loss(TrajectoryTerm(simulate, from_trajectory, "msd"))
