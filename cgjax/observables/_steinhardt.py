"""Steinhardt bond-orientational order parameters q_l, and Lechner-Dellago averages."""

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

_SQRT2 = float(np.sqrt(2.0))


class Steinhardt(NamedTuple):
    """Per-particle and mean order parameters for the requested degrees ``l``.

    Attributes:
      q: ``[T, N, len(l)]`` (or ``[N, len(l)]`` for one frame) per-particle
        ``q_l(i)`` (or ``q̄_l(i)`` with ``average=True``); 0 for a particle
        without neighbours.
      mean: ``[T, len(l)]`` (or ``[len(l)]``) average over particles.
      n_neighbors_max: most neighbours any particle had within the cutoff
        (``n_neighbors`` in fixed-count mode).
    """

    q: Float[Array, "*T N L"]
    mean: Float[Array, "*T L"]
    n_neighbors_max: Int[Array, ""]


def _harmonics(u: jax.Array, l: int) -> jax.Array:
    """Real spherical harmonics of degree ``l`` at unit vectors ``u [..., 3]``: ``[..., 2l + 1]``.

    ``Y_lm = N_lm P_l^(m)(z) (x + i y)^m`` for ``m >= 0`` (``P_l^(m)`` the
    m-th derivative of the Legendre polynomial, ``(x + iy)^m = sin^m(theta)
    e^(i m phi)``), returned as ``[Y_l0, sqrt2 Re Y_l1, sqrt2 Im Y_l1, ...]``:
    an orthonormal real basis (up to signs) of the complex ``Y_lm``, so
    ``sum`` of squares is ``(2l + 1) / (4 pi)`` and ``q_l`` is unchanged.
    """
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    legendre = np.polynomial.legendre.leg2poly(np.eye(l + 1)[l])[::-1]  # highest power first
    out, re, im = [], jnp.ones_like(x), jnp.zeros_like(x)
    for m in range(l + 1):
        # Python floats, not numpy scalars, so float32 inputs stay float32
        norm = float(
            np.sqrt((2 * l + 1) / (4 * np.pi) / np.prod(np.arange(l - m + 1, l + m + 1.0)))
        )
        radial = jnp.zeros_like(z)
        for c in np.polyder(legendre, m):  # Horner, unrolled (jnp.polyval scans)
            radial = radial * z + float(c) * norm
        out += [radial] if m == 0 else [_SQRT2 * radial * re, _SQRT2 * radial * im]
        re, im = re * x - im * y, im * x + re * y
    return jnp.stack(out, axis=-1)


def _switch(d, cutoff, r_switch):
    """Paper 002 eq. A3: 1 below ``r_switch``, cosine to 0 at ``cutoff``."""
    if r_switch is None:
        return (d < cutoff).astype(d.dtype)
    x = jnp.clip((d - r_switch) / (cutoff - r_switch), 0.0, 1.0)
    return 0.5 + 0.5 * jnp.cos(jnp.pi * x)


@functools.partial(
    jax.jit, static_argnames=("ls", "k", "cutoff", "r_switch", "average", "batch_size")
)
def _order(R, box_mat, *, ls, k, cutoff, r_switch, average, batch_size):
    def frame(Rt):
        dR, d, idx, n_within = nearest_neighbors(Rt, box_mat, k, cutoff)
        w = jnp.ones_like(d) if cutoff is None else _switch(d, cutoff, r_switch)
        u = dR / d[..., None]
        w_sum = jnp.sum(w, axis=1)
        q2 = []
        for l in ls:
            qlm = jnp.einsum("nk,nkm->nm", w, _harmonics(u, l))
            qlm = qlm / jnp.where(w_sum > 0, w_sum, 1.0)[:, None]
            if average:  # paper 002 eq. A5: the particle itself and its neighbours
                qlm = (qlm + jnp.einsum("nk,nkm->nm", w, qlm[idx])) / (1.0 + w_sum)[:, None]
            q2.append(4.0 * jnp.pi / (2 * l + 1) * jnp.sum(qlm**2, axis=1))
        q2 = jnp.stack(q2, axis=-1)
        positive = q2 > 0  # sqrt'(0) is infinite; keep gradients finite
        q = jnp.where(positive, jnp.sqrt(jnp.where(positive, q2, 1.0)), 0.0)
        return q, jnp.max(n_within), jnp.max(d[:, -1])

    q, n_max, d_max = map_frames(frame, R, batch_size)
    return q, n_max.max(), d_max.max()


def steinhardt(
    positions: Float[Array, "T N 3"] | Float[Array, "N 3"],
    box: Any,
    *,
    l: tuple[int, ...] = (4, 6),
    cutoff: float | None = None,
    n_neighbors: int | None = None,
    r_switch: float | None = None,
    max_neighbors: int = 16,
    average: bool = False,
) -> Steinhardt:
    """Steinhardt order parameters ``q_l(i)`` of every particle (paper 002 App. A).

    ``q_lm(i) = sum_j s(r_ij) Y_lm(r̂_ij) / sum_j s(r_ij)`` over neighbours
    ``j`` and ``q_l(i) = sqrt(4 pi / (2l + 1) sum_m |q_lm(i)|^2)`` (eqs. A1-A2).
    Neighbours are either those within ``cutoff`` (``s = 1``, or the cosine
    switch of eq. A3 from ``r_switch`` to ``cutoff``) or the ``n_neighbors``
    nearest (``s = 1``). ``average=True`` gives the Lechner-Dellago ``q̄_l``
    (eqs. A4-A5), averaging ``q_lm`` over the particle and its neighbours.
    Perfect crystals with a cutoff between shells: FCC and HCP (12 neighbours)
    ``(q4, q6) = (0.191, 0.575)`` and ``(0.097, 0.485)``; BCC ``(0.036, 0.511)``
    with the 14 neighbours of its two close shells (8 + 6), but
    ``(sqrt(7/27), sqrt(32/81)) = (0.509, 0.629)`` with only the 8 nearest.

    Args:
      positions: ``[T, N, 3]`` or ``[N, 3]`` positions (nm).
      box: one periodic box (nm; scalar, ``[3]`` or ``[3, 3]`` columns), or
        ``None`` for free space. Concrete.
      l: degrees to compute, e.g. ``(4, 6)``. Static.
      cutoff: neighbour cutoff (nm), at most half the box width. Static.
      n_neighbors: use this many nearest neighbours instead of a cutoff. Static.
      r_switch: start of the cosine switch (nm), below ``cutoff``; ``None`` for
        a hard cutoff. Static.
      max_neighbors: neighbour slots per particle in cutoff mode. Static.
      average: return the locally averaged ``q̄_l``. Static.

    Returns:
      :class:`Steinhardt` with per-particle ``q`` and the particle mean.

    Raises:
      ValueError: unless exactly one of ``cutoff`` and ``n_neighbors`` is
        given; on non-finite positions; if the cutoff, or the distance to the
        ``n_neighbors``-th neighbour, exceeds half the box width; or if a
        particle has more than ``max_neighbors`` neighbours within the cutoff
        (checked on concrete arrays; under ``jit`` inspect ``n_neighbors_max``).

    References:
      Zhang et al., DeePCG (papers/002), App. A, eqs. A1-A5; P. J. Steinhardt,
      D. R. Nelson, M. Ronchetti, Phys. Rev. B 28, 784 (1983); W. Lechner and
      C. Dellago, J. Chem. Phys. 129, 114707 (2008).
    """
    R = as_trajectory(positions)
    single = jnp.ndim(positions) == 2
    ls = tuple(int(x) for x in np.atleast_1d(l))
    if not ls or min(ls) < 0:
        raise ValueError(f"l must hold non-negative integers, got {l!r}")
    if (cutoff is None) == (n_neighbors is None):
        raise ValueError("give exactly one of cutoff (nm) and n_neighbors")
    if cutoff is not None:
        cutoff = check_range(box, cutoff, "cutoff")
        k = min(check_count(max_neighbors, "max_neighbors"), R.shape[1] - 1)
        if r_switch is not None and not 0.0 <= float(r_switch) < cutoff:
            raise ValueError(f"r_switch must lie in [0, cutoff = {cutoff}) nm, got {r_switch}")
        r_switch = None if r_switch is None else float(r_switch)
    else:
        k = check_count(n_neighbors, "n_neighbors")
        if k > R.shape[1] - 1:
            raise ValueError(f"n_neighbors = {k} but positions have only {R.shape[1]} particles")
    batch = frame_batch(None, R.shape[0], R.shape[1])
    q, n_max, d_max = _order(
        R,
        box_array(box, R.dtype),
        ls=ls,
        k=k,
        cutoff=cutoff,
        r_switch=r_switch,
        average=bool(average),
        batch_size=batch,
    )
    if not isinstance(n_max, jax.core.Tracer):
        if cutoff is not None and int(n_max) > k:
            raise ValueError(
                f"a particle has {int(n_max)} neighbours within cutoff = {cutoff} nm but "
                f"max_neighbors = {max_neighbors}; raise max_neighbors to at least {int(n_max)}"
            )
        if cutoff is None and box is not None:
            check_range(box, float(d_max), f"the distance to the {k}-th nearest neighbour")
    if cutoff is None:
        n_max = jnp.asarray(k)
    q = q[0] if single else q
    return Steinhardt(q, jnp.mean(q, axis=-2), n_max)
