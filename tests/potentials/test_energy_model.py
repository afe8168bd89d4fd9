"""The adapter: input validation, sums of terms, jit/vmap/grad, neighbor lists."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials


@pytest.fixture(scope="module")
def model(system2):
    R, species, box = system2
    pot = potentials.LennardJones(n_species=2, sigma=0.3, epsilon=1.0, cutoff=0.6)
    return potentials.energy_model(
        pot + potentials.HighFrequency(n_species=2, cutoff=0.6), species=species, box=box
    )


def test_nan_positions_named(model, system2):
    R = np.array(system2[0])
    R[4, 1] = np.nan
    params = model.init_fn(jax.random.key(0), jnp.asarray(system2[0]))
    with pytest.raises(ValueError, match=r"positions R has 1 non-finite.*\(4, 1\)"):
        model.energy_fn(params)(jnp.asarray(R))


def test_wrong_trailing_shape_named(model, system2):
    params = model.init_fn(jax.random.key(0), jnp.asarray(system2[0]))
    with pytest.raises(ValueError, match=r"positions R must have shape \[N, 3\]"):
        model.energy_fn(params)(jnp.zeros((27, 2)))
    with pytest.raises(ValueError, match="has 26 particles but the system has 27"):
        model.energy_fn(params)(jnp.zeros((26, 3)))
    # shape errors are raised under jit too
    with pytest.raises(ValueError, match=r"must have shape \[N, 3\]"):
        jax.jit(model.energy_fn(params))(jnp.zeros((27, 4)))


def test_species_out_of_range_named(system2):
    R, species, box = system2
    pot = potentials.LennardJones(n_species=2, cutoff=0.6)
    with pytest.raises(ValueError, match="species has index 2 out of range.*n_species = 2"):
        potentials.energy_model(pot, species=species + 1, box=box)
    with pytest.raises(ValueError, match="species has negative entries"):
        potentials.energy_model(pot, species=species - 1, box=box)


def test_box_shorter_than_twice_cutoff(system2):
    R, species, box = system2
    pot = potentials.LennardJones(n_species=2, cutoff=0.7)
    with pytest.raises(ValueError, match=r"box is too small for the cutoff.*2 \* cutoff = 1.4"):
        potentials.energy_model(pot, species=species, box=box)
    # triclinic: the perpendicular width, not the edge length, is what counts
    tilted = np.array([[1.5, 1.2, 0.0], [0.0, 1.5, 0.0], [0.0, 0.0, 1.5]])
    with pytest.raises(ValueError, match="too small"):
        potentials.energy_model(
            potentials.LennardJones(n_species=2, cutoff=0.6), species=species, box=tilted
        )
    # the neighbor list's skin counts too
    model = potentials.energy_model(
        potentials.LennardJones(n_species=2, cutoff=0.6), species=species, box=box
    )
    with pytest.raises(ValueError, match="cutoff \\+ skin"):
        model.neighbor_fn(skin=0.1)


def test_jit_vmap_grad_over_params_and_positions(model, system2):
    R, _, _ = system2
    R = jnp.asarray(R)
    params = model.init_fn(jax.random.key(0), R)
    assert set(params) == {"lj", "hf"}
    energy_of = lambda p, R: model.energy_fn(p)(R)
    g_params, g_R = jax.jit(jax.grad(energy_of, argnums=(0, 1)))(params, R)
    assert g_R.shape == R.shape and np.all(np.isfinite(g_R))
    assert g_params["lj"]["sigma"].shape == (2, 2)
    # the sigma gradient is symmetric because tables are symmetrised on use
    np.testing.assert_allclose(g_params["lj"]["sigma"], g_params["lj"]["sigma"].T, rtol=1e-12)
    frames = R[None] + 0.01 * jax.random.normal(jax.random.key(1), (4, *R.shape))
    e = jax.jit(jax.vmap(model.energy_fn(params)))(frames)
    assert e.shape == (4,)


def test_sum_names_and_errors():
    lj = potentials.LennardJones()
    with pytest.raises(ValueError, match="share the name"):
        lj + potentials.LennardJones()
    s = potentials.sum_of(lj, lj_wall=potentials.LennardJones(sigma=0.2))
    assert [k for k, _ in s.terms] == ["lj", "lj_wall"]
    assert (lj + potentials.HighFrequency(cutoff=0.5)).max_cutoff() == 1.0
    with pytest.raises(ValueError, match="can only add"):
        lj + 3.0
    assert sum([lj]) is lj


def test_triclinic_box_against_brute_force_images():
    # A sheared (reduced) cell: the energy equals a sum over explicit periodic images.
    rng = np.random.default_rng(3)
    box = np.array([[1.5, 0.4, 0.3], [0.0, 1.45, -0.35], [0.0, 0.0, 1.4]])  # columns a, b, c
    R = rng.uniform(0, 1, size=(20, 3)) @ box.T
    pot = potentials.SoftRepulsion(sigma=0.2, exponent=6.0, cutoff=0.6)
    model = potentials.energy_model(pot, species=np.zeros(20, int), box=box)
    params = {"sigma": jnp.full((1, 1), 0.2)}
    e = model.energy_fn(params)(jnp.asarray(R))
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    images = shifts @ box.T  # [27, 3]
    iu, ju = np.triu_indices(20, 1)
    d = R[ju][:, None, :] - R[iu][:, None, :] + images[None]
    r = np.linalg.norm(d, axis=-1)  # [pairs, 27]
    e_ref = float(np.sum(pot.pair_energy(params, jnp.asarray(r))))
    assert e_ref > 0
    np.testing.assert_allclose(e, e_ref, rtol=1e-10)
    # the same energy through a neighbor list (no cell list for triclinic cells)
    nbrs = model.neighbor_fn(skin=0.05).allocate(jnp.asarray(R))
    np.testing.assert_allclose(
        model.energy_fn(params)(jnp.asarray(R), neighbor=nbrs), e_ref, rtol=1e-10
    )
