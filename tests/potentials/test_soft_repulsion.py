import jax
import jax.numpy as jnp
import numpy as np

from cgjax import potentials, testing


def test_contract(system2):
    R, species, box = system2
    term = potentials.SoftRepulsion(n_species=2, sigma=[0.25, 0.3], exponent=6.0, cutoff=0.6)
    report = testing.check_potential(term, positions=R, species=species, box=box)
    assert report["forces_fd"] < 1e-6


def test_closed_form_value_and_force():
    term = potentials.SoftRepulsion(sigma=0.3, exponent=12.0, cutoff=1.0, r_onset=0.9)
    params = {"sigma": jnp.full((1, 1), 0.3)}
    for r in (0.2, 0.3, 0.5):
        np.testing.assert_allclose(term.pair_energy(params, r), (0.3 / r) ** 12, rtol=1e-12)
        np.testing.assert_allclose(
            jax.grad(term.pair_energy, 1)(params, r), -12 * (0.3 / r) ** 12 / r, rtol=1e-12
        )


def test_per_species_sigma_uses_lorentz_mixing():
    term = potentials.SoftRepulsion(n_species=2, sigma=[0.2, 0.4], exponent=6.0, cutoff=1.0)
    model = potentials.energy_model(term, species=np.array([0, 1]))
    params = model.init_fn(jax.random.key(0), jnp.array([[0.0, 0, 0], [0.5, 0, 0]]))
    np.testing.assert_allclose(params["sigma"], [[0.2, 0.3], [0.3, 0.4]], rtol=1e-6)
    e = model.energy_fn(params)(jnp.array([[0.0, 0, 0], [0.5, 0, 0]]))
    np.testing.assert_allclose(e, (0.3 / 0.5) ** 6, rtol=1e-6)
