import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials, testing, units

A = 0.15  # kJ/mol nm^2
OMEGA = 1000.0  # 1/nm (paper 004: 100 1/A)


def test_contract(system2):
    R, species, box = system2
    hf = potentials.HighFrequency(n_species=2, amplitude=A, omega=OMEGA, cutoff=0.6, r_onset=0.5)
    report = testing.check_potential(hf, positions=R, species=species, box=box)
    assert report["forces_fd"] < 1e-6


@pytest.mark.parametrize("r", [0.25, 0.3166, 0.45])
def test_value_and_derivative_closed_form(r):
    hf = potentials.HighFrequency(amplitude=A, omega=OMEGA, cutoff=0.6, r_onset=0.5)
    params = {"amplitude": jnp.asarray(A), "omega": jnp.asarray(OMEGA)}
    u = lambda r: hf.pair_energy(params, r)
    np.testing.assert_allclose(u(r), A * np.sin(OMEGA * r) / r**2, rtol=1e-10)
    du = A * (OMEGA * np.cos(OMEGA * r) / r**2 - 2 * np.sin(OMEGA * r) / r**3)
    np.testing.assert_allclose(jax.grad(u)(r), du, rtol=1e-9)
    # derivatives with respect to the trainable parameters
    g = jax.grad(lambda p: hf.pair_energy(p, r))(params)
    np.testing.assert_allclose(g["amplitude"], np.sin(OMEGA * r) / r**2, rtol=1e-10)
    np.testing.assert_allclose(g["omega"], A * np.cos(OMEGA * r) / r, rtol=1e-9)


def test_species_pair_selection(system2):
    R, species, box = system2
    only_11 = potentials.HighFrequency(n_species=2, amplitude=A, cutoff=0.6, pairs=((1, 1),))
    params = {"amplitude": jnp.asarray(A), "omega": jnp.asarray(OMEGA)}
    assert float(only_11.pair_energy(params, 0.3, 0, 1)) == 0.0
    assert float(only_11.pair_energy(params, 0.3, 1, 1)) != 0.0
    # only 1-1 pairs contribute to the system energy
    model = potentials.energy_model(only_11, species=species, box=box)
    e = model.energy_fn(params)(jnp.asarray(R))
    ones = np.flatnonzero(species == 1)
    sub = potentials.energy_model(
        potentials.HighFrequency(amplitude=A, cutoff=0.6), species=np.zeros(len(ones), int), box=box
    )
    np.testing.assert_allclose(e, sub.energy_fn(params)(jnp.asarray(R[ones])), rtol=1e-10)


def test_paper_bracket_in_cgjax_units():
    # Paper 004 brackets A in [0, 0.2 eV A^2]
    assert 0.2 * units.eV * units.angstrom**2 == pytest.approx(0.193, rel=1e-3)
