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

# Nodes added below r_min (see _padded): the natural spline's end condition
# U'' = 0 sits there, where its error has decayed ~0.27 per node by r_min.
_PAD = 8


def _padded(table: PairTable) -> np.ndarray:
    """``[P, _PAD + M]`` energies with ``_PAD`` nodes below ``r_min``.

    OpenMM's splines are natural (``U'' = 0`` at both ends). At the cutoff
    that holds (the switch and splines end with ``U'' = 0``); at ``r_min``
    it does not, and pairs just above ``r_min`` would see the error. The
    extra nodes continue the smooth function below ``r_min`` by its cubic
    Taylor polynomial (first to third derivative from the table's forces);
    the expression uses them only for the spline's shape above ``r_min``.
    """
    h = table.dr
    f = table.force  # -U'
    d1 = -f[:, 0]
    d2 = -(-3 * f[:, 0] + 4 * f[:, 1] - f[:, 2]) / (2 * h)
    d3 = -(2 * f[:, 0] - 5 * f[:, 1] + 4 * f[:, 2] - f[:, 3]) / h**2
    x = -h * np.arange(_PAD, 0, -1)[None]  # r - r_min < 0
    below = table.energy[:, :1] + d1[:, None] * x + d2[:, None] * x**2 / 2 + d3[:, None] * x**3 / 6
    return np.concatenate([below, table.energy], axis=1)


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
    values = _padded(table)
    r_start = table.r_min - _PAD * table.dr
    below = "u0 + f0 * (rmin - r)"
    rmin = f"rmin = {float(table.r_min)!r}"
    if s == 1:
        expr = f"select(step(r - rmin), u(r), {below}); u0 = {u0[0]!r}; f0 = {f0[0]!r}; {rmin}"
        force = openmm.CustomNonbondedForce(expr)
        force.addTabulatedFunction(
            "u", openmm.Continuous1DFunction(values[0].tolist(), r_start, table.r_max)
        )
    else:
        # row (i * S + j) of a [S * S] grid, both orders, so the expression is symmetric
        full = np.zeros((s * s, values.shape[1]))
        ends = np.zeros((2, s * s))
        for k, (i, j) in enumerate(table.pairs):
            for a, b in ((i, j), (j, i)):
                full[a * s + b] = values[k]
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
                values.shape[1], s * s, full.reshape(-1).tolist(),
                r_start, table.r_max, 0.0, float(s * s - 1),
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
