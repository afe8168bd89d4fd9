"""Mean-squared displacement over all time origins, and the Einstein diffusion coefficient."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from cgjax.observables._neighbors import as_trajectory, check_count


class MSD(NamedTuple):
    """Mean-squared displacement.

    Attributes:
      lags: lag times ``[L]`` in frames, ``0 .. max_lag``.
      msd: ``[L]`` (nm^2), averaged over particles and all time origins.
    """

    lags: Int[Array, " L"]
    msd: Float[Array, " L"]


class Diffusion(NamedTuple):
    """An Einstein fit ``MSD(t) = 2 dim D t + c``.

    Attributes:
      D: diffusion coefficient (nm^2/ps; divide by ``units.cm2_per_s`` for cm^2/s).
      D_err: standard error of ``D`` from independent blocks (nm^2/ps); NaN
        when fitted to a single curve.
      D_blocks: ``[n_blocks]`` per-block coefficients (nm^2/ps), empty without blocks.
      fit_window: ``(t0, t1)`` (ps), the fitted time range.
    """

    D: Float[Array, ""]
    D_err: Float[Array, ""]
    D_blocks: Float[Array, " B"]
    fit_window: tuple[float, float]


@functools.partial(jax.jit, static_argnames=("max_lag", "remove_com"))
def _msd(x, masses, *, max_lag, remove_com):
    n_frames = x.shape[0]
    if remove_com:
        com = jnp.einsum("n,tnd->td", masses / jnp.sum(masses), x)
        x = x - com[:, None, :]
    # MSD is blind to a constant shift per particle; centring keeps |x|^2 small
    # next to the displacements, which the FFT route below needs in float32.
    x = x - jnp.mean(x, axis=0)
    # MSD(m) = S1(m) - 2 S2(m) over the T - m origins (Calandrini et al. 2011):
    # S1 from prefix sums of |x_t|^2, S2 the autocorrelation by zero-padded FFT.
    sq = jnp.sum(x * x, axis=(1, 2))
    prefix = jnp.concatenate([jnp.zeros(1, sq.dtype), jnp.cumsum(sq)])
    m = jnp.arange(max_lag + 1)
    origins = (n_frames - m).astype(x.dtype)
    s1 = (prefix[n_frames - m] + prefix[n_frames] - prefix[m]) / origins
    n_fft = 1 << int(np.ceil(np.log2(2 * n_frames)))
    f = jnp.fft.rfft(x, n=n_fft, axis=0)
    acf = jnp.fft.irfft(jnp.sum(f * jnp.conj(f), axis=(1, 2)), n=n_fft)[: max_lag + 1]
    values = (s1 - 2.0 * acf.astype(x.dtype) / origins) / x.shape[1]
    return values.at[0].set(0.0)  # exact; the FFT leaves rounding noise there


def msd(
    unwrapped: Float[Array, "T N 3"],
    *,
    max_lag: int | None = None,
    remove_com: bool = True,
    masses: Any = None,
) -> MSD:
    """Mean-squared displacement ``<|r_i(t0 + m) - r_i(t0)|^2>`` over particles and origins.

    Every origin ``t0 = 0 .. T - 1 - m`` is used for every lag ``m`` (FFT
    algorithm, ``O(T log T)``). With ``remove_com`` the centre-of-mass
    trajectory is subtracted first, so a drift of the whole system does not
    count; for ``N`` equal Brownian particles this leaves ``(1 - 1/N) 2 dim D t``.

    Args:
      unwrapped: ``[T, N, 3]`` unwrapped positions (nm), equally spaced frames.
      max_lag: largest lag (frames), default ``T - 1``; large lags have few
        origins and are noisy. Static.
      remove_com: subtract the (mass-weighted) centre of mass of all particles.
      masses: ``[N]`` masses (amu) for the centre of mass; default equal.

    Returns:
      :class:`MSD` with ``lags [max_lag + 1]`` (frames) and ``msd`` (nm^2).

    Raises:
      ValueError: on non-finite positions, a bad shape or lag, or bad masses.

    References:
      Achieving dynamic accuracy in machine-learned CG potentials (papers/004),
      Sec. 2 (MSD via the Einstein relation); V. Calandrini et al., nMoldyn,
      Collection SFN 12, 201 (2011) (FFT algorithm).
    """
    x = as_trajectory(unwrapped, "unwrapped")
    if jnp.ndim(unwrapped) != 3:
        raise ValueError(f"unwrapped must be a trajectory [T, N, 3], got {jnp.shape(unwrapped)}")
    n_frames, n = x.shape[:2]
    max_lag = n_frames - 1 if max_lag is None else int(max_lag)
    if not 0 <= max_lag < n_frames:
        raise ValueError(f"max_lag must lie in [0, T - 1 = {n_frames - 1}], got {max_lag}")
    if masses is None:
        masses = jnp.ones(n, x.dtype)
    else:
        masses = jnp.asarray(masses, x.dtype)
        if masses.shape != (n,):
            raise ValueError(f"masses must have shape [N] = [{n}], got {masses.shape}")
        if not isinstance(masses, jax.core.Tracer) and not bool(jnp.all(masses > 0)):
            raise ValueError("masses must be positive (amu)")
    values = _msd(x, masses, max_lag=max_lag, remove_com=bool(remove_com))
    return MSD(jnp.arange(max_lag + 1), values)


def _fit(t, y, t0, t1, dim):
    """Least-squares slope of ``y(t)`` on ``t0 <= t <= t1``, over ``2 dim``; last axis."""
    w = ((t >= t0) & (t <= t1)).astype(y.dtype)
    n = jnp.sum(w)
    tm = jnp.sum(w * t) / n
    ym = jnp.sum(w * y, axis=-1, keepdims=True) / n
    slope = jnp.sum(w * (t - tm) * (y - ym), axis=-1) / jnp.sum(w * (t - tm) ** 2)
    return slope / (2.0 * dim)


def _check_window(t, fit_window):
    t0, t1 = (float(v) for v in fit_window)
    if not t1 > t0:
        raise ValueError(f"fit_window must be (t0, t1) with t1 > t0 (ps), got {fit_window}")
    if not isinstance(t, jax.core.Tracer):
        inside = int(np.sum((np.asarray(t) >= t0) & (np.asarray(t) <= t1)))
        if inside < 2:
            raise ValueError(
                f"fit_window = {fit_window} ps holds {inside} MSD points; the fit needs 2 "
                f"(t spans {float(np.min(t)):.6g} to {float(np.max(t)):.6g} ps)"
            )
    return t0, t1


def diffusion_coefficient(
    t: Float[Array, " L"],
    msd: Float[Array, "*B L"],
    *,
    fit_window: tuple[float, float],
    dim: int = 3,
) -> Diffusion:
    """Einstein diffusion coefficient ``D = slope / (2 dim)`` of an MSD curve.

    Fits ``MSD = 2 dim D t + c`` by least squares on ``t0 <= t <= t1`` (the
    intercept absorbs the ballistic start). Given ``[B, L]`` curves from ``B``
    independent blocks, ``D`` is their mean and ``D_err`` the standard error
    ``std(D_b, ddof=1) / sqrt(B)``. A single curve gets ``D_err = NaN``: its
    points are strongly correlated, so a least-squares error would mislead;
    use :func:`diffusion_from_trajectory` for an error bar.

    Args:
      t: lag times ``[L]`` (ps), e.g. ``lags * dt_frame``.
      msd: ``[L]`` or ``[B, L]`` MSD (nm^2).
      fit_window: ``(t0, t1)`` in ps. Static.
      dim: dimensionality of the displacements.

    Returns:
      :class:`Diffusion` (nm^2/ps; 1 cm^2/s = 100 nm^2/ps = ``units.cm2_per_s``).

    References:
      Papers/004, Sec. 2 (Einstein relation).
    """
    t, y = jnp.asarray(t), jnp.asarray(msd)
    t0, t1 = _check_window(t, fit_window)
    if y.ndim not in (1, 2) or y.shape[-1] != t.shape[0]:
        raise ValueError(f"msd must be [L] or [B, L] with L = len(t) = {t.shape[0]}, got {y.shape}")
    t = t.astype(y.dtype)
    D = _fit(t, y, t0, t1, dim)
    if y.ndim == 1:
        return Diffusion(D, jnp.asarray(jnp.nan, y.dtype), jnp.zeros(0, y.dtype), (t0, t1))
    err = jnp.std(D, ddof=1) / float(np.sqrt(D.shape[0])) if D.shape[0] > 1 else jnp.nan
    return Diffusion(jnp.mean(D), jnp.asarray(err, y.dtype), D, (t0, t1))


def diffusion_from_trajectory(
    unwrapped: Float[Array, "T N 3"],
    dt_frame: float,
    *,
    fit_window: tuple[float, float],
    n_blocks: int = 5,
    dim: int = 3,
    remove_com: bool = True,
    masses: Any = None,
) -> Diffusion:
    """Diffusion coefficient of a trajectory, with a block-averaged error bar.

    ``D`` is fitted to the MSD of the whole trajectory; the trajectory is also
    cut into ``n_blocks`` consecutive blocks of ``T // n_blocks`` frames, each
    block's MSD is fitted on the same window, and ``D_err`` is the standard
    error of those block values. Blocks must be long enough to hold the window.

    Args:
      unwrapped: ``[T, N, 3]`` unwrapped positions (nm).
      dt_frame: time between frames (ps).
      fit_window: ``(t0, t1)`` in ps, with ``t1 <= (T // n_blocks - 1) dt_frame``.
      n_blocks: number of blocks (at least 2).
      dim: dimensionality (3 for the full displacement).
      remove_com: subtract the centre of mass (per block).
      masses: ``[N]`` masses (amu) for the centre of mass; default equal.

    Returns:
      :class:`Diffusion` with ``D``, ``D_err`` and ``D_blocks [n_blocks]`` (nm^2/ps).

    References:
      Papers/004, Sec. 2; H. Flyvbjerg and H. G. Petersen, J. Chem. Phys. 91,
      461 (1989) (block averaging).
    """
    x = as_trajectory(unwrapped, "unwrapped")
    n_blocks = check_count(n_blocks, "n_blocks")
    if n_blocks < 2:
        raise ValueError(f"n_blocks must be at least 2 for an error bar, got {n_blocks}")
    dt_frame = float(dt_frame)
    if not dt_frame > 0:
        raise ValueError(f"dt_frame must be positive (ps), got {dt_frame}")
    t0, t1 = (float(v) for v in fit_window)
    block = x.shape[0] // n_blocks
    max_lag = int(np.floor(t1 / dt_frame + 1e-9))
    if max_lag > block - 1:
        raise ValueError(
            f"fit_window ends at {t1} ps = {max_lag} frames, but each of the {n_blocks} "
            f"blocks has only {block} frames; shorten the window or use fewer blocks"
        )
    t = jnp.arange(max_lag + 1) * dt_frame
    kw = {"max_lag": max_lag, "remove_com": remove_com, "masses": masses}
    full = diffusion_coefficient(t, msd(x, **kw).msd, fit_window=(t0, t1), dim=dim)
    blocks = x[: block * n_blocks].reshape(n_blocks, block, *x.shape[1:])
    curves = jax.vmap(lambda xb: msd(xb, **kw).msd)(blocks)
    per_block = diffusion_coefficient(t, curves, fit_window=(t0, t1), dim=dim)
    return Diffusion(full.D, per_block.D_err, per_block.D_blocks, (t0, t1))
