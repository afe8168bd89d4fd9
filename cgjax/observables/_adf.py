"""Three-body angle distribution within a cutoff."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from cgjax.observables._neighbors import (
    as_trajectory,
    box_array,
    check_count,
    check_range,
    frame_batch,
    map_frames,
    nearest_neighbors,
)


class ADF(NamedTuple):
    """A three-body angle distribution on ``n_bins`` uniform bins of ``[0, 180]`` degrees.

    Attributes:
      theta: bin centres ``[n_bins]`` (degrees).
      p: ``P(theta)`` ``[n_bins]``: a density in 1/degree (``sum(p) * dtheta = 1``),
        or scaled to a maximum of 1 with ``normalize="peak"``.
      n_neighbors_max: most neighbours any particle had within the cutoff.
    """

    theta: Float[Array, " n_bins"]
    p: Float[Array, " n_bins"]
    n_neighbors_max: Int[Array, ""]


@functools.partial(jax.jit, static_argnames=("cutoff", "n_bins", "k", "batch_size"))
def _counts(R, box_mat, *, cutoff, n_bins, k, batch_size):
    jj, kk = np.triu_indices(k, 1)
    dtheta = 180.0 / n_bins

    def frame(Rt):
        dR, d, _, n_within = nearest_neighbors(Rt, box_mat, k, cutoff)
        u = dR / d[..., None]
        cos = jnp.sum(u[:, jj] * u[:, kk], axis=-1)  # [N, k (k - 1) / 2]
        valid = (d[:, jj] < cutoff) & (d[:, kk] < cutoff)
        theta = jnp.degrees(jnp.arccos(jnp.clip(cos, -1.0, 1.0)))
        b = jnp.clip(jnp.floor(theta / dtheta).astype(jnp.int32), 0, n_bins - 1)
        counts = jnp.zeros(n_bins, Rt.dtype).at[b].add(valid.astype(Rt.dtype))
        return counts, jnp.max(n_within)

    counts, n_max = map_frames(frame, R, batch_size)
    return counts.sum(0), n_max.max()


def adf(
    positions: Float[Array, "T N 3"] | Float[Array, "N 3"],
    box: Any,
    *,
    cutoff: float,
    n_bins: int = 180,
    max_neighbors: int = 16,
    normalize: str = "density",
) -> ADF:
    """Three-body angle distribution ``P(theta)``, averaged over frames.

    For every central particle ``i`` and every pair ``j < k`` of its
    neighbours within ``cutoff``, the angle ``theta_jik`` between
    ``R_j - R_i`` and ``R_k - R_i`` (minimum image) enters the histogram
    (paper 000 eq. 5). Neighbours are the ``max_neighbors`` nearest particles
    of each centre, masked to the cutoff, so the cost is
    ``O(N^2 + N max_neighbors^2)`` per frame; if any particle has more than
    ``max_neighbors`` particles within the cutoff this raises rather than drop
    angles. For one species of a mixture (e.g. O-O-O), pass only its positions.

    Args:
      positions: ``[T, N, 3]`` or ``[N, 3]`` positions (nm).
      box: one periodic box (nm; scalar, ``[3]`` or ``[3, 3]`` columns), or
        ``None`` for free space. Concrete.
      cutoff: neighbour cutoff (nm), at most half the box width. Static.
      n_bins: uniform bins on ``[0, 180]`` degrees. Static.
      max_neighbors: neighbour slots per particle. Static.
      normalize: ``"density"`` (integrates to 1 over degrees) or ``"peak"``
        (largest bin = 1, the normalisation of paper 000 eq. 5).

    Returns:
      :class:`ADF` with ``theta`` in degrees and ``p`` of shape ``[n_bins]``;
      ``p`` is all zeros when no particle has two neighbours.

    Raises:
      ValueError: on non-finite positions, a cutoff beyond half the box, or a
        particle with more than ``max_neighbors`` neighbours within the cutoff
        (checked when the arrays are concrete; under ``jit`` compare
        ``n_neighbors_max`` with ``max_neighbors`` yourself).

    References:
      Loose et al., Coarse-graining with equivariant neural networks
      (papers/000), eq. 5.
    """
    R = as_trajectory(positions)
    cutoff = check_range(box, cutoff, "cutoff")
    n_bins = check_count(n_bins, "n_bins")
    k = min(check_count(max_neighbors, "max_neighbors"), R.shape[1] - 1)
    if normalize not in ("density", "peak"):
        raise ValueError(f"normalize must be 'density' or 'peak', got {normalize!r}")
    if k < 2:
        raise ValueError(f"an angle needs three particles, positions have {R.shape[1]}")
    batch = frame_batch(None, R.shape[0], R.shape[1])
    counts, n_max = _counts(
        R, box_array(box, R.dtype), cutoff=cutoff, n_bins=n_bins, k=k, batch_size=batch
    )
    if not isinstance(n_max, jax.core.Tracer) and int(n_max) > k:
        raise ValueError(
            f"a particle has {int(n_max)} neighbours within cutoff = {cutoff} nm but "
            f"max_neighbors = {max_neighbors}; raise max_neighbors to at least {int(n_max)}"
        )
    dtheta = 180.0 / n_bins
    theta = jnp.asarray((np.arange(n_bins) + 0.5) * dtheta, R.dtype)
    scale = counts.max() if normalize == "peak" else counts.sum() * dtheta
    p = jnp.where(scale > 0, counts / jnp.where(scale > 0, scale, 1.0), 0.0)
    return ADF(theta, p, n_max)
