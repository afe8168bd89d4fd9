"""Shared pieces of the structural observables: input checks, pair distances, k-nearest.

Every structural observable works on dense per-frame geometry (``O(N^2)``
memory per frame, fine to a few thousand particles) and maps over frames in
batches with ``lax.map``. The box is static data (concrete, one box for the
whole trajectory): it is checked with numpy and enters the kernels as a
``[3, 3]`` matrix in the positions' dtype.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax_md import space

from cgjax._space import box_matrix, box_widths, min_image_in
from cgjax._validation import check_finite, check_positions


def as_trajectory(positions: Any, name: str = "positions") -> jax.Array:
    """Returns positions as ``[T, N, 3]`` (a single ``[N, 3]`` frame gets ``T = 1``)."""
    R = jnp.asarray(positions)
    if not jnp.issubdtype(R.dtype, jnp.floating):
        raise ValueError(f"{name} must be floating point (nm), got dtype {R.dtype}")
    if R.ndim == 2:
        check_positions(R, name=name)
        return R[None]
    if R.ndim != 3 or R.shape[-1] != 3:
        raise ValueError(f"{name} must have shape [N, 3] or [T, N, 3] (nm), got shape {R.shape}")
    check_finite(R, name)
    return R


def box_array(box: Any, dtype: Any) -> jax.Array | None:
    """The box as a ``[3, 3]`` matrix (columns are box vectors) in ``dtype``, or ``None``."""
    return None if box is None else jnp.asarray(box_matrix(box), dtype=dtype)


def check_range(box: Any, value: float, name: str) -> float:
    """Checks ``0 < value <= half the smallest perpendicular box width``; returns it as float."""
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive length (nm), got {value}")
    if box is not None:
        half = 0.5 * float(np.min(box_widths(box)))
        if value > half * (1.0 + 1e-9):  # box_widths rounds in the last digit
            raise ValueError(
                f"{name} = {value:.6g} nm is larger than half the smallest perpendicular "
                f"box width ({half:.6g} nm), beyond which the minimum-image convention "
                f"miscounts pairs. Use {name} <= {half:.6g} nm or a larger box."
            )
    return value


def check_count(value: Any, name: str) -> int:
    """Checks a positive Python integer (a static size such as ``n_bins``)."""
    if isinstance(value, bool) or int(value) != value or int(value) <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def frame_batch(batch_size: int | None, n_frames: int, n_particles: int) -> int:
    """Frames per ``lax.map`` batch: about 4M pair entries unless the caller says."""
    if batch_size is None:
        batch_size = max(1, 2**22 // max(1, n_particles * n_particles))
    return max(1, min(check_count(batch_size, "batch_size"), n_frames))


def map_frames(f, R: jax.Array, batch_size: int):
    """``lax.map(f, R, batch_size=...)`` over frames; a plain ``vmap`` when one batch holds all."""
    if batch_size >= R.shape[0]:
        return jax.vmap(f)(R)  # no scan: compiles faster
    return jax.lax.map(f, R, batch_size=batch_size)


def _displacement_fn(box_mat: jax.Array | None):
    # make_space needs a concrete box; inside jit the matrix is traced
    if box_mat is None:
        return space.free()[0]
    return lambda Ra, Rb: min_image_in(Ra - Rb, box_mat)


def pair_distances(R: jax.Array, box_mat: jax.Array | None, i: jax.Array, j: jax.Array):
    """Minimum-image distances ``|R_i - R_j|`` (nm) for index arrays ``i, j`` of shape ``[P]``."""
    dR = jax.vmap(_displacement_fn(box_mat))(R[i], R[j])
    return jnp.sqrt(jnp.sum(dR * dR, axis=-1))


def nearest_neighbors(R: jax.Array, box_mat: jax.Array | None, k: int, cutoff: float | None):
    """The ``k`` nearest neighbours of every particle in one frame ``R [N, 3]``.

    Returns:
      ``(dR [N, k, 3], d [N, k], idx [N, k], n_within [N])``: displacement
      ``R_j - R_i`` and distance (nm) to each neighbour, sorted nearest first,
      its index, and how many particles lie within ``cutoff`` (all ``N - 1``
      when ``cutoff`` is None), counted over all particles, not only ``k``.
    """
    n = R.shape[0]
    disp = _displacement_fn(box_mat)
    dR = jax.vmap(jax.vmap(disp, (None, 0)), (0, None))(R, R)  # R_i - R_j
    self_pair = jnp.eye(n, dtype=bool)
    d2 = jnp.where(self_pair, 1.0, jnp.sum(dR * dR, axis=-1))
    d = jnp.where(self_pair, jnp.inf, jnp.sqrt(d2))
    neg_d, idx = jax.lax.top_k(-d, k)
    rows = jnp.arange(n)[:, None]
    if cutoff is None:
        n_within = jnp.full(n, n - 1)
    else:
        n_within = jnp.sum(d < cutoff, axis=1)
    return -dR[rows, idx], -neg_d, idx, n_within
