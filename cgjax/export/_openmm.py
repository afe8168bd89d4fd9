"""An OpenMM ``CustomNonbondedForce`` tabulating a :class:`PairTable`.

OpenMM works in cgjax's units (nm, kJ/mol), so values go in unchanged. The
energy of a pair is a cubic spline through the table's energies
(``Continuous1DFunction`` for one species; ``Continuous2DFunction`` over
``(r, pair index)`` for several, with a per-particle parameter ``s``, the
species); OpenMM differentiates the spline for forces. Below the table's
``r_min`` the energy continues linearly with the force at ``r_min``; the
periodic cutoff is the table's cutoff, with no switching function and no
long-range correction (the cgjax term's own switch is in the table).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cgjax.export._table import PairTable

__all__ = ["openmm_force"]


def openmm_force(table: PairTable, species: Any, *, periodic: bool = True) -> Any:
    """``openmm.CustomNonbondedForce`` of the table, with one particle per species entry.

    Serialize it with ``openmm.XmlSerializer.serialize(force)``.

    Args:
      table: the :class:`PairTable` (nm, kJ/mol); ``r_max`` must reach its cutoff.
      species: ``[N]`` int species of the particles (each a species of the table).
      periodic: ``CutoffPeriodic`` (True) or ``CutoffNonPeriodic``.

    Returns:
      The force (add it to an ``openmm.System`` with the same ``N`` particles).

    Raises:
      ImportError: without OpenMM (the ``reference`` extra).
      ValueError: when the table stops short of its cutoff, or a species is
        not in the table.
    """
    import openmm

    species = np.asarray(species, np.int64).reshape(-1)
    s = table.n_species
    if table.r_max < table.cutoff - 1e-9:
        raise ValueError(
            f"the table ends at {table.r_max} nm, short of its cutoff {table.cutoff} nm"
        )
    if species.size and (species.min() < 0 or species.max() >= s):
        raise ValueError(f"species must lie in [0, {s}) for this table, got {species.max()}")
    f0 = {k: float(table.force[k, 0]) for k in range(len(table.pairs))}
    u0 = {k: float(table.energy[k, 0]) for k in range(len(table.pairs))}
    below = "u0 + f0 * (rmin - r)"
    rmin = f"rmin = {float(table.r_min)!r}"
    if s == 1:
        expr = f"select(step(r - rmin), u(r), {below}); u0 = {u0[0]!r}; f0 = {f0[0]!r}; {rmin}"
        force = openmm.CustomNonbondedForce(expr)
        force.addTabulatedFunction(
            "u", openmm.Continuous1DFunction(table.energy[0].tolist(), table.r_min, table.r_max)
        )
    else:
        # row (i * S + j) of a [S * S] grid, both orders, so the expression is symmetric
        full = np.zeros((s * s, len(table.r)))
        ends = np.zeros((2, s * s))
        for k, (i, j) in enumerate(table.pairs):
            for a, b in ((i, j), (j, i)):
                full[a * s + b] = table.energy[k]
                ends[:, a * s + b] = u0[k], f0[k]
        index = f"(s1 * {s} + s2)"
        expr = (
            f"select(step(r - rmin), u(r, {index}), {below}); "
            f"u0 = e0({index}); f0 = e1({index}); {rmin}"
        )
        force = openmm.CustomNonbondedForce(expr)
        # Continuous2DFunction values are x-fastest: values[ix + nx * iy]
        force.addTabulatedFunction(
            "u",
            openmm.Continuous2DFunction(
                len(table.r), s * s, full.reshape(-1).tolist(),
                table.r_min, table.r_max, 0.0, float(s * s - 1),
            ),
        )  # fmt: skip
        force.addTabulatedFunction("e0", openmm.Discrete1DFunction(ends[0].tolist()))
        force.addTabulatedFunction("e1", openmm.Discrete1DFunction(ends[1].tolist()))
        force.addPerParticleParameter("s")
    method = openmm.CustomNonbondedForce
    force.setNonbondedMethod(method.CutoffPeriodic if periodic else method.CutoffNonPeriodic)
    force.setCutoffDistance(table.cutoff)
    force.setUseSwitchingFunction(False)
    force.setUseLongRangeCorrection(False)
    for x in species:
        force.addParticle([float(x)] if s > 1 else [])
    return force
