import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials, testing


def test_contract(system2):
    R, species, box = system2
    term = potentials.ExponentialRepulsion(
        n_species=2, e0=[500.0, 800.0], a=[20.0, 25.0], cutoff=0.6
    )
    report = testing.check_potential(term, positions=R, species=species, box=box)
    assert report["forces_fd"] < 1e-6


def test_closed_form_value():
    term = potentials.ExponentialRepulsion(e0=700.0, a=22.0, cutoff=1.0, r_onset=0.9)
    params = {"e0": jnp.full((1, 1), 700.0), "a": jnp.full((1, 1), 22.0)}
    for r in (0.15, 0.3, 0.6):
        np.testing.assert_allclose(term.pair_energy(params, r), 700 * np.exp(-22 * r), rtol=1e-12)


def test_parameters_from_data_statistics():
    # Paper 003 SI eq. 2: force s at t - d, p s at t.
    t, d, s, p = 0.25, 0.05, 300.0, 0.01
    e0, a = potentials.exponential_repulsion_parameters(t, d, s, p)
    force = lambda r: a * e0 * np.exp(-a * r)
    assert force(t - d) == pytest.approx(s, rel=1e-12)
    assert force(t) == pytest.approx(p * s, rel=1e-12)
    term = potentials.ExponentialRepulsion(e0=e0, a=a, cutoff=0.6)
    params = {"e0": jnp.full((1, 1), e0), "a": jnp.full((1, 1), a)}
    np.testing.assert_allclose(-jax.grad(term.pair_energy, 1)(params, t - d), s, rtol=1e-10)
    with pytest.raises(ValueError, match="0 < p < 1"):
        potentials.exponential_repulsion_parameters(t, d, s, 1.5)
