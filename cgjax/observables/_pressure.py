"""Pressure from the virial, with the potential's own derivative, for any potential.

The virial of a configuration is the strain derivative of its energy:
scale positions and box by ``1 + eps`` and take ``W = -dU/deps`` at
``eps = 0`` with ``jax.grad``. For a pair potential this is
``W = -sum_{i<j} r_ij U'(r_ij)`` (the textbook ``sum r . F``), but the strain
derivative needs no pair decomposition, so it holds for many-body terms and
message-passing networks alike. The pressure is

    P = (2 K + W) / (3 V)

with ``K`` the kinetic energy (or its equipartition value ``3/2 N kT`` for
configurations sampled without velocities). Energies kJ/mol, lengths nm;
``P`` is returned in **bar** (``units.bar`` = 0.0602214076 kJ/mol/nm^3).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from cgjax import units
from cgjax._space import box_matrix

__all__ = ["Pressure", "instantaneous_pressure", "lj_tail_pressure", "pressure", "virial"]


def _box_of(box: Any, dtype) -> jax.Array:
    """The box as a ``[3, 3]`` matrix (nm); a jax ``[3, 3]`` array (maybe traced) passes as is."""
    if box is None:
        raise ValueError("pressure: box is None, but a pressure needs a periodic box (nm)")
    if isinstance(box, jax.Array) and box.shape == (3, 3):
        return jnp.asarray(box, dtype)
    return jnp.asarray(box_matrix(box), dtype)


def virial(
    energy: Any, R: Float[Array, "N 3"], box: Any, *, neighbor: Any = None
) -> Float[Array, ""]:
    """The virial ``W = -dU/deps`` of one configuration (kJ/mol), for any potential.

    ``U(eps) = energy((1 + eps) R, box=(1 + eps) box)``: an isotropic strain
    of positions and box together, differentiated by ``jax.grad`` at
    ``eps = 0``. For a pair potential ``W = -sum_{i<j} r_ij dU/dr(r_ij)``.
    Differentiable in the potential's parameters (DiffTRe's pressure).

    Args:
      energy: an energy function ``E(R, *, neighbor=None, box=None)`` (kJ/mol),
        e.g. ``model.energy_fn(params)``; it must use the per-call ``box``
        for its minimum images (every cgjax model does).
      R: ``[N, 3]`` positions (nm).
      box: the periodic box (nm): scalar, ``[3]`` or ``[3, 3]`` (columns are
        box vectors); a traced ``[3, 3]`` matrix is accepted.
      neighbor: a neighbor list for ``R`` (its pairs do not change under
        the infinitesimal strain), or None for all pairs.

    Returns:
      ``W`` (kJ/mol), a scalar.
    """
    R = jnp.asarray(R)
    B = _box_of(box, R.dtype)

    def strained(eps):
        s = 1.0 + eps
        return energy(R * s, neighbor=neighbor, box=B * s)

    return -jax.grad(strained)(jnp.zeros((), R.dtype))


def instantaneous_pressure(
    energy: Any,
    R: Float[Array, "N 3"],
    box: Any,
    *,
    kT: float | None = None,
    kinetic_energy: Any = None,
    neighbor: Any = None,
) -> Float[Array, ""]:
    """Pressure of one configuration, ``P = (2 K + W) / (3 V)``, in bar.

    Args:
      energy, R, box, neighbor: as :func:`virial`.
      kT: ``k_B T`` (kJ/mol) for the equipartition kinetic term
        ``2 K = 3 N kT`` (configurations without velocities).
      kinetic_energy: ``K`` (kJ/mol) of the configuration's velocities,
        instead of ``kT`` (give exactly one).

    Returns:
      ``P`` (bar), a scalar, differentiable in the energy's parameters.

    Raises:
      ValueError: neither or both of ``kT`` and ``kinetic_energy``.
    """
    if (kT is None) == (kinetic_energy is None):
        raise ValueError("instantaneous_pressure: give exactly one of kT= and kinetic_energy=")
    R = jnp.asarray(R)
    B = _box_of(box, R.dtype)
    volume = jnp.abs(jnp.linalg.det(B))
    two_k = 3.0 * R.shape[0] * kT if kinetic_energy is None else 2.0 * kinetic_energy
    W = virial(energy, R, B, neighbor=neighbor)
    return (two_k + W) / (3.0 * volume) / units.bar


class Pressure(NamedTuple):
    """A trajectory's pressure.

    Attributes:
      mean: time average (bar).
      sem: its standard error from ``n_blocks`` contiguous block means (bar).
      per_frame: ``[T]`` instantaneous pressures (bar).
      virial: ``[T]`` virials ``W`` (kJ/mol).
    """

    mean: float
    sem: float
    per_frame: np.ndarray
    virial: np.ndarray


def pressure(
    model: Any,
    params: Any,
    positions: Float[Array, "T N 3"],
    *,
    kT: float,
    box: Any = None,
    n_blocks: int = 5,
) -> Pressure:
    """Mean pressure of configurations sampled at ``kT`` (bar), with the model's own virial.

    The kinetic term is the equipartition value ``N kT / V`` (the trajectory
    carries no velocities; for an NVT sample its average is exact). The
    virial is :func:`virial` per frame, on a neighbor list of fixed capacity
    rebuilt per frame (grown and recompiled when a frame overflows it). No
    long-range (tail) correction is added: the pressure is that of the model
    as it stands, truncated where its terms end (see :func:`lj_tail_pressure`).

    Args:
      model: an :class:`~cgjax.potentials.EnergyModel` (kJ/mol, nm).
      params: its parameters.
      positions: ``[T, N, 3]`` or ``[N, 3]`` positions (nm).
      kT: ``k_B T`` (kJ/mol) of the sample.
      box: the box (nm); default the model's.
      n_blocks: blocks for the standard error (at most ``T``).

    Returns:
      :class:`Pressure`.

    Raises:
      ValueError: no box, non-finite or misshapen positions.
    """
    from cgjax._neighbor_list import allocate_neighbor_list, grow_neighbor_list

    X = jnp.asarray(positions)
    X = X[None] if X.ndim == 2 else X
    n = int(model.species.shape[0])
    if X.ndim != 3 or X.shape[1:] != (n, 3):
        raise ValueError(f"pressure: positions must be [T, {n}, 3] (nm), got {X.shape}")
    if not bool(jnp.all(jnp.isfinite(X))):
        raise ValueError("pressure: positions have non-finite values")
    box = model.box if box is None else box
    B = _box_of(box, X.dtype)
    nb = None if model.cutoff is None else allocate_neighbor_list(model, X)
    for _ in range(8):
        W, overflow = _virials(model.energy_fn, params, X, B, nb)
        if not bool(overflow):
            break
        nb = grow_neighbor_list(model, nb, X)
    else:
        raise RuntimeError("pressure: the frame neighbor list kept overflowing")
    W = np.asarray(W, np.float64)
    volume = float(abs(np.linalg.det(np.asarray(B, np.float64))))
    P = (3.0 * n * kT + W) / (3.0 * volume) / units.bar
    k = max(1, min(int(n_blocks), len(P)))
    blocks = np.array([b.mean() for b in np.array_split(P, k)])
    sem = float(blocks.std(ddof=1) / np.sqrt(k)) if k > 1 else float("nan")
    return Pressure(float(P.mean()), sem, P, W)


@functools.partial(jax.jit, static_argnums=0)
def _virials(energy_fn, params, X, B, nb):
    """``([T] virials, any overflow)``; one compilation per model (the parameters are traced)."""
    energy = energy_fn(params)

    def one(R):
        if nb is None:
            return virial(energy, R, B), jnp.asarray(False)
        nbr = nb.update(R)
        return virial(energy, R, B, neighbor=nbr), nbr.did_buffer_overflow

    W, overflow = jax.lax.map(one, X, batch_size=8)
    return W, jnp.any(overflow)


def lj_tail_pressure(sigma: float, epsilon: float, cutoff: float, density: float) -> float:
    """The long-range correction of a Lennard-Jones pressure truncated at ``cutoff`` (bar).

    ``P_tail = 16/3 pi rho^2 eps sigma^3 [2/3 (sigma/rc)^9 - (sigma/rc)^3]``,
    assuming ``g(r) = 1`` beyond ``rc``: what the plain LJ beyond the cutoff
    adds. cgjax's :class:`~cgjax.potentials.LennardJones` is switched to zero
    at its cutoff and :func:`pressure` reports that model's pressure without
    this term; add it to compare with an untruncated LJ (or an OpenMM run
    with its dispersion correction on).

    Args:
      sigma: nm; epsilon: kJ/mol; cutoff: ``rc`` (nm); density: ``N / V`` (nm^-3).

    Returns:
      ``P_tail`` (bar), negative for ``rc`` beyond ~1.4 sigma.

    References:
      M. P. Allen and D. J. Tildesley, Computer Simulation of Liquids (2017), eq. 2.144.
    """
    x3 = (sigma / cutoff) ** 3
    p = 16.0 / 3.0 * np.pi * density**2 * epsilon * sigma**3 * (2.0 / 3.0 * x3**3 - x3)
    return float(p / units.bar)
