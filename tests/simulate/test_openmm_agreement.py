"""cgjax's switched LJ equals OpenMM's NonbondedForce (same switching polynomial)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import EPSILON, MASS, SIGMA, argon

from cgjax import reference

openmm = pytest.importorskip("openmm", reason="OpenMM (the 'reference' extra) is not installed")


def test_energy_and_forces_match_openmm_reference_platform():
    model, params, system, R = argon(4, dtype=jnp.float64)  # 256 atoms, 2.31 nm box
    rng = np.random.default_rng(0)
    R = jnp.asarray(np.asarray(R) + 0.03 * rng.normal(size=R.shape))
    L = float(system.box[0, 0])
    cutoff = 2.5 * SIGMA
    ctx, _ = reference.lj_fluid_context(
        np.asarray(R),
        L,
        sigma=SIGMA,
        epsilon=EPSILON,
        mass=MASS,
        cutoff=cutoff,
        switch=cutoff - 0.2 * SIGMA,
        platform="Reference",
    )
    st = ctx.getState(getEnergy=True, getForces=True)
    e_omm = st.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
    f_omm = np.asarray(
        st.getForces(asNumpy=True).value_in_unit(
            openmm.unit.kilojoule_per_mole / openmm.unit.nanometer
        )
    )
    energy = model.energy_fn(params)
    nbrs = model.neighbor_fn(skin=0.1).allocate(R)
    e, g = jax.value_and_grad(energy)(R, neighbor=nbrs)
    np.testing.assert_allclose(e, e_omm, rtol=1e-9)
    np.testing.assert_allclose(-g, f_omm, rtol=1e-7, atol=1e-7 * np.abs(f_omm).max())
