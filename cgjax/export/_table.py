"""Pair terms evaluated on a grid: the one table every engine's file is written from.

:func:`pair_table` evaluates ``U(r)`` of every species pair of a pair
potential (any :class:`~cgjax.potentials.PairTerm`, or a sum of them: LJ,
splines, repulsions, the high-frequency term) with the term's own
``pair_energy``, and ``F(r) = -dU/dr`` by ``jax.grad`` of it, on a uniform
grid ``r_k = k dr`` (nm). The writers (GROMACS, LAMMPS, OpenMM) and readers
only convert units and layout.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cgjax.potentials import PairTerm, Sum, Term

__all__ = ["NotAPairTermError", "PairTable", "TableRangeError", "pair_table"]


class TableRangeError(ValueError):
    """A table was asked for distances outside the range it was exported on."""


class NotAPairTermError(ValueError):
    """A potential with a term that is no species-pair term cannot be tabulated."""


@dataclasses.dataclass(frozen=True)
class PairTable:
    """``U(r)`` and ``F(r) = -dU/dr`` of each species pair on a uniform grid.

    Attributes:
      r: ``[M]`` grid (nm), ``r_k = r_min + k dr``, uniform.
      energy: ``[P, M]`` pair energies (kJ/mol), one row per entry of ``pairs``.
      force: ``[P, M]`` ``-dU/dr`` (kJ/mol/nm); positive is repulsive.
      pairs: ``((i, j), ...)`` species pairs, ``i <= j``, in row order.
      cutoff: distance (nm) at and beyond which the energy is zero.
      source: what was tabulated (for file headers).
    """

    r: np.ndarray
    energy: np.ndarray
    force: np.ndarray
    pairs: tuple[tuple[int, int], ...]
    cutoff: float
    source: str = ""

    @property
    def dr(self) -> float:
        """Grid spacing (nm)."""
        return float((self.r[-1] - self.r[0]) / (len(self.r) - 1))

    @property
    def r_min(self) -> float:
        """First grid point (nm)."""
        return float(self.r[0])

    @property
    def r_max(self) -> float:
        """Last grid point (nm)."""
        return float(self.r[-1])

    @property
    def n_species(self) -> int:
        return 1 + max(max(p) for p in self.pairs)

    def row(self, pair: tuple[int, int]) -> int:
        """Row of species pair ``(i, j)`` (either order) in ``energy``/``force``.

        Raises:
          KeyError: naming the pairs the table holds.
        """
        key = (min(pair), max(pair))
        if key not in self.pairs:
            raise KeyError(f"species pair {tuple(pair)} is not in the table; it has {self.pairs}")
        return self.pairs.index(key)

    def __call__(self, r: Any, pair: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
        """``(U, F)`` (kJ/mol, kJ/mol/nm) at distances ``r`` (nm), cubic Hermite in between.

        Between grid points ``U`` is the cubic matching ``U`` and ``dU/dr`` at
        both ends (so exact for cubics) and ``F`` its negative derivative.

        Raises:
          TableRangeError: for any ``r`` outside ``[r_min, r_max]``.
        """
        r = np.asarray(r, np.float64)
        tol = 1e-9 * max(1.0, self.r_max)
        if r.size and (np.min(r) < self.r_min - tol or np.max(r) > self.r_max + tol):
            raise TableRangeError(
                f"distances [{np.min(r):.6g}, {np.max(r):.6g}] nm are outside the exported "
                f"range [{self.r_min:.6g}, {self.r_max:.6g}] nm of this table ({self.source})"
            )
        k = self.row(pair)
        h = self.dr
        x = np.clip((r - self.r_min) / h, 0.0, len(self.r) - 1)
        i = np.minimum(np.floor(x).astype(int), len(self.r) - 2)
        t = x - i
        u0, u1 = self.energy[k, i], self.energy[k, i + 1]
        d0, d1 = -self.force[k, i] * h, -self.force[k, i + 1] * h  # dU/dt
        t2, t3 = t * t, t * t * t
        u = (2 * t3 - 3 * t2 + 1) * u0 + (t3 - 2 * t2 + t) * d0 + (-2 * t3 + 3 * t2) * u1
        u = u + (t3 - t2) * d1
        du = (6 * t2 - 6 * t) * u0 + (3 * t2 - 4 * t + 1) * d0 + (-6 * t2 + 6 * t) * u1
        du = du + (3 * t2 - 2 * t) * d1
        return u, -du / h


def _pair_terms(potential: Term, params: dict) -> list[tuple[PairTerm, dict]]:
    if isinstance(potential, Sum):
        out = []
        for name, term in potential.terms:
            if name not in params:
                raise KeyError(f"params has no entry {name!r} for term {type(term).__name__}")
            out.extend(_pair_terms(term, params[name]))
        return out
    if not isinstance(potential, PairTerm):
        raise NotAPairTermError(
            f"{type(potential).__name__} is not a species-pair term (potentials.PairTerm), so "
            f"it has no table U(r); export the whole potential with export.export_potential"
        )
    return [(potential, params)]


def _default_r_min(terms: list[tuple[PairTerm, dict]]) -> float:
    starts = {getattr(t, "r_min", None) for t, _ in terms}
    if len(starts) != 1 or None in starts:
        raise ValueError(
            "pair_table needs r_min= (nm) unless every term is a spline with one r_min "
            f"(terms: {[type(t).__name__ for t, _ in terms]})"
        )
    return float(starts.pop())


def pair_table(
    potential: Term,
    params: dict,
    *,
    r_min: float | None = None,
    dr: float = 0.0005,
    r_max: float | None = None,
) -> PairTable:
    """Tabulates a pair potential: ``U`` and ``F = -dU/dr`` per species pair.

    The grid is ``r_k = r_min + k dr`` (nm) up to the first point at or
    beyond ``r_max``; values are computed
    in float64 when ``jax_enable_x64`` is on (else float32). ``U`` is the
    sum of the terms' switched pair energies (``PairTerm.pair_energy``), so
    it is zero at and beyond the cutoff.

    Args:
      potential: a :class:`~cgjax.potentials.PairTerm` (e.g. ``LennardJones``,
        ``SplinePair``) or a :class:`~cgjax.potentials.Sum` of them.
      params: that potential's parameters: the term's own dict for a single
        term (``params["spline"]`` of a model's params), ``{name: dict}`` for a sum.
      r_min: smallest tabulated distance (nm), > 0; default the spline's
        ``r_min`` for :class:`~cgjax.potentials.SplinePair` terms. Below it
        the writers continue ``U`` linearly with the force at ``r_min``
        (LAMMPS stops instead), which is exactly what a spline does below its
        ``r_min``: export a spline from its own ``r_min``, so that its kink
        there (``U''`` jumps) falls on the table's end and no engine
        interpolates across it.
      dr: grid spacing (nm). GROMACS expects 0.002 (single precision) or
        0.0005 (double).
      r_max: largest tabulated distance (nm); default the potential's cutoff.

    Returns:
      The :class:`PairTable` (pairs ``(i, j)``, ``i <= j``, of all species).

    Raises:
      NotAPairTermError: for a term that is no species-pair term (a GNN, a
        bonded prior, :class:`~cgjax.potentials.PairRepulsion`'s listed pairs).
      ValueError: on ``r_min <= 0``, ``dr <= 0`` or ``r_max <= r_min``, or no
        ``r_min`` for terms other than splines.
    """
    terms = _pair_terms(potential, params)
    r_min = _default_r_min(terms) if r_min is None else r_min
    cutoff = potential.max_cutoff()
    r_max = cutoff if r_max is None else r_max
    if not (r_min > 0 and dr > 0 and r_max > r_min):
        raise ValueError(
            f"pair_table needs 0 < r_min < r_max and dr > 0 (nm), got r_min={r_min}, "
            f"r_max={r_max}, dr={dr}"
        )
    r = r_min + np.arange(int(np.ceil((r_max - r_min) / dr - 1e-9)) + 1) * dr
    n_species = potential.species_count() or 1
    pairs = tuple((i, j) for i in range(n_species) for j in range(i, n_species))
    rj = jnp.asarray(r, jnp.result_type(float))

    def u(x, si, sj):
        return sum(t.pair_energy(p, x, si, sj) for t, p in terms)

    # one compiled program for every species pair (the pair is an argument)
    both = jax.jit(jax.vmap(jax.value_and_grad(u), in_axes=(0, None, None)))
    energy, force = [], []
    for si, sj in pairs:
        e, g = both(rj, jnp.int32(si), jnp.int32(sj))
        energy.append(np.asarray(e, np.float64))
        force.append(-np.asarray(g, np.float64))
    names = " + ".join(type(t).__name__ for t, _ in terms)
    return PairTable(
        r=r,
        energy=np.stack(energy),
        force=np.stack(force),
        pairs=pairs,
        cutoff=float(cutoff),
        source=f"cgjax {names}",
    )
