import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials, testing

SIGMA = np.array([0.30, 0.34])  # nm, per species (Lorentz rule for the mixed pair)
EPS = np.array([0.8, 1.2])  # kJ/mol, per species (Berthelot rule)


@pytest.fixture(scope="module")
def lj():
    return potentials.LennardJones(n_species=2, sigma=SIGMA, epsilon=EPS, cutoff=0.6, r_onset=0.5)


def test_contract(lj, system2):
    R, species, box = system2
    report = testing.check_potential(lj, positions=R, species=species, box=box)
    assert report["forces_fd"] < 1e-6


@pytest.mark.parametrize("a,b", [(0, 0), (0, 1), (1, 1)])
def test_minimum_is_closed_form(lj, a, b):
    params = {
        "sigma": jnp.asarray(0.5 * (SIGMA[:, None] + SIGMA[None])),
        "epsilon": jnp.asarray(np.sqrt(EPS[:, None] * EPS[None])),
    }
    sigma = 0.5 * (SIGMA[a] + SIGMA[b])
    eps = np.sqrt(EPS[a] * EPS[b])
    r_min = 2 ** (1 / 6) * sigma
    u = lambda r: lj.pair_energy(params, r, a, b)
    np.testing.assert_allclose(u(r_min), -eps, rtol=1e-12)
    np.testing.assert_allclose(jax.grad(u)(r_min), 0.0, atol=1e-10)
    # a minimum, not a saddle: curvature 72 eps / (2^(1/3) sigma^2)
    np.testing.assert_allclose(
        jax.grad(jax.grad(u))(r_min), 72 * eps / (2 ** (1 / 3) * sigma**2), rtol=1e-10
    )
    # zero crossing at r = sigma
    np.testing.assert_allclose(u(sigma), 0.0, atol=1e-12)


def test_params_are_per_pair_and_named(lj, system2):
    R, species, box = system2
    model = potentials.energy_model(lj, species=species, box=box)
    params = model.init_fn(jax.random.key(0), jnp.asarray(R))
    assert set(params) == {"sigma", "epsilon"}
    np.testing.assert_allclose(params["sigma"], 0.5 * (SIGMA[:, None] + SIGMA[None]), rtol=1e-6)
    np.testing.assert_allclose(params["epsilon"], np.sqrt(EPS[:, None] * EPS[None]), rtol=1e-6)
    # Every pair term of the sum is reachable by its name.
    both = potentials.energy_model(
        lj + potentials.HighFrequency(n_species=2, cutoff=0.6), species=species, box=box
    )
    assert set(both.init_fn(jax.random.key(0), jnp.asarray(R))) == {"lj", "hf"}
