"""OpenMM systems for reference data and cross-checks.

OpenMM works in the same units as cgjax (nm, ps, kJ/mol, amu, K), so values
pass through unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["lj_fluid_context", "require_openmm"]


def require_openmm():
    """Imports OpenMM or raises ``ImportError`` saying how to install it."""
    try:
        import openmm
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "OpenMM is needed for reference data: pip install 'cgjax[reference]'"
        ) from e
    return openmm


def lj_fluid_context(
    R: Any,
    box: float,
    *,
    sigma: float,
    epsilon: float,
    mass: float,
    cutoff: float,
    switch: float | None = None,
    dt: float = 0.002,
    platform: str = "CPU",
    threads: int | None = None,
):
    """An OpenMM context of a one-species LJ fluid in a cubic box.

    The potential is cgjax's :class:`~cgjax.potentials.LennardJones` with
    ``r_onset = switch``: OpenMM's switching function is the same quintic
    ``1 - 10x^3 + 15x^4 - 6x^5``; no dispersion correction.

    Args:
      R: ``[N, 3]`` positions (nm).
      box: cube edge (nm).
      sigma, epsilon, mass, cutoff, switch: nm, kJ/mol, amu, nm, nm.
      dt: Verlet time step (ps).
      platform: ``"CPU"`` or ``"Reference"`` (double precision).
      threads: CPU threads (default: OpenMM's choice).

    Returns:
      ``(context, integrator)``.
    """
    openmm = require_openmm()
    from openmm import unit

    R = np.asarray(R, np.float64)
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(
        openmm.Vec3(box, 0, 0), openmm.Vec3(0, box, 0), openmm.Vec3(0, 0, box)
    )
    nb = openmm.NonbondedForce()
    nb.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
    nb.setCutoffDistance(cutoff)
    if switch is not None:
        nb.setUseSwitchingFunction(True)
        nb.setSwitchingDistance(switch)
    nb.setUseDispersionCorrection(False)
    for _ in range(len(R)):
        system.addParticle(mass)
        nb.addParticle(0.0, sigma, epsilon)
    system.addForce(nb)
    integrator = openmm.VerletIntegrator(dt * unit.picoseconds)
    props = {"Threads": str(threads)} if (threads and platform == "CPU") else {}
    ctx = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform), props)
    ctx.setPositions(R * unit.nanometer)
    return ctx, integrator
