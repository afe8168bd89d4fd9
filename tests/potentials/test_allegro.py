import dataclasses

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_md import space

from cgjax import potentials, testing

SMALL = dict(
    n_species=2,
    cutoff=0.6,
    l_max=1,
    n_features=2,
    n_layers=2,
    n_rbf=6,
    two_body_features=(8,),
    latent_features=(8,),
    edge_features=(4,),
    avg_num_neighbors=10.0,
)


@pytest.fixture(scope="module")
def allegro():
    return potentials.Allegro(**SMALL)


def test_contract(allegro, system2):
    R, species, box = system2
    report = testing.check_potential(allegro, positions=R, species=species, box=box)
    assert report["forces_fd"] < 1e-6
    assert report["invariance"]["rotation"] < 1e-12
    assert report["float32"] < 1e-4


def test_edge_features_are_equivariant(allegro, system2):
    R, species, _ = system2
    displacement, _ = space.free()
    Q = jnp.asarray(testing.random_rotation(np.random.default_rng(3)))

    @jax.jit
    def features(params, R):
        graph = potentials.build_graph(R, jnp.asarray(species), displacement)
        _, state = allegro.apply({"params": params}, graph, mutable=["intermediates"])
        return state["intermediates"]

    graph = potentials.build_graph(jnp.asarray(R), jnp.asarray(species), displacement)
    params = testing.to_float64(allegro.init(jax.random.key(0), graph)["params"])
    f0 = features(params, jnp.asarray(R))
    f1 = features(params, jnp.asarray(R) @ Q.T)
    for t in range(SMALL["n_layers"]):
        (a,), (b,) = f0[f"layer_{t}"], f1[f"layer_{t}"]  # [E, C, 3]
        assert a.shape == (len(R) * (len(R) - 1), SMALL["n_features"], 3)
        assert np.max(np.abs(a)) > 1e-3  # populated
        rotated = e3nn.IrrepsArray("1o", a).transform_by_matrix(Q).array
        np.testing.assert_allclose(b, rotated, atol=1e-12)
        assert np.max(np.abs(b - a)) > 1e-3  # not trivially invariant


def test_strictly_local(allegro):
    """A chain A-B-C-D with only neighbours in range: no centre sees both A and D.

    Allegro's energy is a sum over centres of functions of their own
    neighbourhoods, so d2E / dR_A dR_D vanishes exactly (a 2-layer message-passing
    model would couple them through B and C), while A and C meet in B's sphere.
    """
    R = jnp.array([[0.0, 0.0, 0.0], [0.4, 0.1, 0.0], [0.8, 0.0, 0.1], [1.2, 0.1, 0.05]])
    d = np.linalg.norm(np.asarray(R)[:, None] - np.asarray(R)[None], axis=-1)
    assert d[0, 2] > SMALL["cutoff"] and d[1, 3] > SMALL["cutoff"] and d[0, 1] < SMALL["cutoff"]
    model = potentials.energy_model(allegro, species=np.array([0, 1, 0, 1]))
    params = testing.to_float64(model.init_fn(jax.random.key(1), R))
    H = jax.jit(jax.hessian(model.energy_fn(params)))(R)
    assert np.max(np.abs(H[0, :, 3, :])) < 1e-14
    assert np.max(np.abs(H[0, :, 2, :])) > 1e-6


def test_default_config_builds(system2):
    R, _, _ = system2
    config = potentials.Allegro.default_config()
    fields = {f.name for f in dataclasses.fields(potentials.Allegro)} - {"parent", "name"}
    assert set(config) == fields
    allegro = potentials.Allegro(**config)
    model = potentials.energy_model(allegro, species=np.zeros(len(R), np.int32))
    shapes = jax.eval_shape(model.init_fn, jax.random.key(0), jnp.asarray(R))
    assert shapes["two_body"]["dense_0"]["kernel"].shape == (2 + config.n_rbf, 8)
    assert shapes["two_body"]["dense_2"]["kernel"].shape == (16, 32)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(shapes))
    energy = lambda p, R: model.energy_fn(p)(R)
    e = jax.eval_shape(energy, shapes, jnp.asarray(R, jnp.float32))
    assert e.shape == () and e.dtype == jnp.float32
    assert potentials.sum_of(allegro).terms[0][0] == "allegro"
