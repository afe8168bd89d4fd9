"""Liquid argon, the reference LJ system (Rahman 1964): 94.4 K, 1.374 g/cm^3."""

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import potentials, simulate, units

SIGMA = 3.405 * units.angstrom  # nm
EPSILON = 119.8 * units.kB  # kJ/mol
MASS = 39.948  # amu
TEMPERATURE = 94.4  # K
DENSITY = 1.374 * units.g_per_cm3 / MASS  # 1/nm^3


def argon(n_cells: int, *, cutoff: float = 2.5 * SIGMA, dtype=jnp.float32):
    """``(model, params, system, R)`` for ``4 n_cells^3`` argon atoms on an FCC lattice."""
    R, L = simulate.fcc_lattice(n_cells, DENSITY)
    species = np.zeros(len(R), np.int32)
    pot = potentials.LennardJones(
        sigma=SIGMA,
        epsilon=EPSILON,
        cutoff=cutoff,
        r_onset=cutoff - 0.2 * SIGMA,
        param_dtype=dtype,
    )
    system = simulate.System.create(box=L, species=species, masses=MASS)
    model = potentials.energy_model(pot, system=system)  # bound to its system: it can run
    R = jnp.asarray(R, dtype)
    params = model.init_fn(jax.random.key(0), R)
    return model, params, system, R
