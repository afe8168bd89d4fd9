import dataclasses

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_md import space

from cgjax import potentials, testing
from cgjax.potentials._nequip import natural_irreps

SMALL = dict(
    n_species=2,
    cutoff=0.6,
    l_max=1,
    n_features=4,
    n_layers=2,
    n_rbf=6,
    radial_features=(8,),
    avg_num_neighbors=10.0,
)


@pytest.fixture(scope="module")
def nequip():
    return potentials.NequIP(**SMALL)


def test_contract(nequip, system2):
    R, species, box = system2
    report = testing.check_potential(nequip, positions=R, species=species, box=box)
    assert report["forces_fd"] < 1e-6
    assert report["invariance"]["rotation"] < 1e-12
    assert report["float32"] < 1e-4


def test_hidden_features_are_equivariant(nequip, system2):
    R, species, _ = system2
    displacement, _ = space.free()
    Q = testing.random_rotation(np.random.default_rng(3))

    @jax.jit
    def features(params, R):
        graph = potentials.build_graph(R, jnp.asarray(species), displacement)
        _, state = nequip.apply({"params": params}, graph, mutable=["intermediates"])
        return state["intermediates"]

    graph = potentials.build_graph(jnp.asarray(R), jnp.asarray(species), displacement)
    params = testing.to_float64(nequip.init(jax.random.key(0), graph)["params"])
    f0 = features(params, jnp.asarray(R))
    f1 = features(params, jnp.asarray(R @ Q.T))
    irreps = natural_irreps(SMALL["n_features"], SMALL["l_max"])
    for t in range(SMALL["n_layers"]):
        (a,), (b,) = f0[f"layer_{t}"], f1[f"layer_{t}"]
        rotated = e3nn.IrrepsArray(irreps, a).transform_by_matrix(jnp.asarray(Q))
        vec = e3nn.IrrepsArray(irreps, b).filter(keep="1o").array
        assert np.max(np.abs(vec)) > 1e-3  # the l = 1 channels are populated
        np.testing.assert_allclose(b, rotated.array, atol=1e-12)
        # and they are not invariant: the check would pass trivially otherwise
        assert np.max(np.abs(vec - e3nn.IrrepsArray(irreps, a).filter(keep="1o").array)) > 1e-3


def test_default_config_builds(system2):
    R, _, _ = system2
    config = potentials.NequIP.default_config()
    fields = {f.name for f in dataclasses.fields(potentials.NequIP)} - {"parent", "name"}
    assert set(config) == fields
    nequip = potentials.NequIP(**config)
    species = np.zeros(len(R), np.int32)
    model = potentials.energy_model(nequip, species=species)
    shapes = jax.eval_shape(model.init_fn, jax.random.key(0), jnp.asarray(R))
    assert {f"radial_{t}" for t in range(config.n_layers)} <= set(shapes)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(shapes))
    energy = lambda p, R: model.energy_fn(p)(R)
    e = jax.eval_shape(energy, shapes, jnp.asarray(R, jnp.float32))
    assert e.shape == () and e.dtype == jnp.float32
    assert potentials.sum_of(nequip).terms[0][0] == "nequip"


def test_message_passing_reaches_beyond_one_cutoff(nequip):
    """A chain A-B-C-D-E-F with only neighbours in range: two layers reach four hops.

    After two layers ``h_C`` depends on everything within two hops of C, so
    ``d2E / dR_A dR_E`` is non-zero (Allegro's counterpart in test_allegro.py
    is exactly zero already at three hops), while A and F, five hops apart,
    share no centre's receptive field.
    """
    R = jnp.array([[0.4 * k, 0.1 * (k % 2), 0.05 * (k % 3)] for k in range(6)])
    d = np.linalg.norm(np.asarray(R)[:, None] - np.asarray(R)[None], axis=-1)
    assert np.all(d[np.triu_indices(6, 2)] > SMALL["cutoff"])  # only chain neighbours
    assert np.all(np.diag(d, 1) < SMALL["cutoff"])
    model = potentials.energy_model(nequip, species=np.arange(6) % 2)
    params = testing.to_float64(model.init_fn(jax.random.key(1), R))
    H = jax.jit(jax.hessian(model.energy_fn(params)))(R)
    assert np.max(np.abs(H[0, :, 4, :])) > 1e-8  # A -> B -> C <- D <- E
    assert np.max(np.abs(H[0, :, 5, :])) < 1e-14  # out of reach
