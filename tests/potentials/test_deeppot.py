import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials, testing

CUTOFF, ONSET = 0.6, 0.2  # nm
# (4, 8): the embedding's second layer doubles its width (DeePMD's concat skip);
# (8, 8): the fitting net's second layer adds a dt-scaled residual.
SMALL = dict(
    n_species=2,
    cutoff=CUTOFF,
    r_onset=ONSET,
    embedding_features=(4, 8),
    axis_features=2,
    fitting_features=(8, 8),
    neighbor_norm=10.0,
)


@pytest.fixture(scope="module")
def deeppot():
    return potentials.DeepPotSE(**SMALL)


@pytest.fixture(scope="module")
def params(deeppot, system2):
    R, species, box = system2
    return perturbed_params(potentials.energy_model(deeppot, species=species, box=box), R)


def perturbed_params(model, R, seed=1, scale=0.3):
    """Init params plus noise, float64, so biases and every weight are non-zero."""
    params = testing.to_float64(model.init_fn(jax.random.key(seed), jnp.asarray(R)))
    leaves, treedef = jax.tree.flatten(params)
    rng = np.random.default_rng(seed)
    return treedef.unflatten([x + scale * jnp.asarray(rng.normal(size=x.shape)) for x in leaves])


def cluster(n=6, seed=3):
    """A free-space cluster ``(R [n, 3], species [n])`` with all pairs in 0.25-0.55 nm."""
    rng = np.random.default_rng(seed)
    while True:
        R = rng.uniform(0.0, 0.4, size=(n, 3))
        d = np.linalg.norm(R[:, None] - R[None], axis=-1)[np.triu_indices(n, 1)]
        if d.min() > 0.25 and d.max() < 0.55:
            return R, np.arange(n, dtype=np.int32) % 2


def reference_energy(params, R, species, box, *, type_one_side=False):
    """Paper 000 eqs. 3-4 with DeePMD's padded environment matrix, in numpy (float64).

    Each bead gets ``R~_i`` of fixed size ``[N - 1, 4]``: neighbours sorted by
    distance (as DeePMD's ``sel``), zero rows past the cutoff.
    """
    p = jax.tree.map(np.asarray, params)
    S, m2, nc = SMALL["n_species"], SMALL["axis_features"], SMALL["neighbor_norm"]

    def dense(name, t, x):
        return x @ p[name]["kernel"][t] + p[name]["bias"][t]

    def embedding(t, s):
        x = np.array([s])
        for k in range(len(SMALL["embedding_features"])):
            h = np.tanh(dense(f"embedding_{k}", t, x))
            x = np.concatenate([x, x]) + h if h.size == 2 * x.size else h
        return x

    def fitting(t, d):
        x = np.tanh(dense("fitting_0", t, d))
        x = x + p["fitting_dt_1"][t] * np.tanh(dense("fitting_1", t, x))
        return dense("fitting_out", t, x)[0]

    def switch(r):
        if r < ONSET:
            return 1.0 / r
        if r >= CUTOFF:
            return 0.0
        u = (r - ONSET) / (CUTOFF - ONSET)
        return (u**3 * (-6 * u**2 + 15 * u - 10) + 1) / r

    n = len(R)
    total = 0.0
    for i in range(n):
        dR = R - R[i]
        dR = dR - box * np.round(dR / box)
        r = np.linalg.norm(dR, axis=-1)
        order = [j for j in np.argsort(r) if j != i]
        Rt = np.zeros((n - 1, 4))
        G = np.zeros((n - 1, SMALL["embedding_features"][-1]))
        for row, j in enumerate(order):
            s = switch(r[j])
            if s == 0.0:
                continue
            Rt[row] = [s, s * dR[j, 0] / r[j], s * dR[j, 1] / r[j], s * dR[j, 2] / r[j]]
            t = species[j] if type_one_side else species[i] * S + species[j]
            G[row] = embedding(t, s)
        D = (G.T @ Rt) @ (Rt.T @ G[:, :m2]) / nc**2
        total += fitting(species[i], D.reshape(-1))
    return total


def test_contract(deeppot, params, system2):
    R, species, box = system2
    report = testing.check_potential(deeppot, positions=R, species=species, box=box, params=params)
    assert report["forces_fd"] < 1e-6


@pytest.mark.parametrize("type_one_side", [False, True])
def test_matches_padded_matrix_reference(params, system2, type_one_side):
    R, species, box = system2
    pot = potentials.DeepPotSE(**SMALL, type_one_side=type_one_side)
    model = potentials.energy_model(pot, species=species, box=box)
    if type_one_side:  # one embedding net per neighbour species: S of the S^2 nets
        params = {
            **params,
            **{
                k: jax.tree.map(lambda x: x[:2], v)
                for k, v in params.items()
                if k.startswith("embedding")
            },
        }
    e = jax.jit(model.energy_fn(params))(jnp.asarray(R))
    e_ref = reference_energy(params, R, species, box, type_one_side=type_one_side)
    np.testing.assert_allclose(float(e), e_ref, rtol=1e-10)


def descriptor_fn(pot, species):
    """Jitted ``R -> D [N, M1, M2]`` in free space, read from the sown intermediates."""
    displacement_fn = potentials.energy_model(pot, species=species).displacement_fn

    def descriptor(params, R):
        graph = potentials.build_graph(R, jnp.asarray(species), displacement_fn)
        _, state = pot.apply({"params": params}, graph, mutable=["intermediates"])
        return state["intermediates"]["descriptor"][0]

    return jax.jit(descriptor)


def test_descriptor_is_invariant(deeppot, params):
    R, species = cluster()
    descriptor = lambda R: np.asarray(descriptor_fn(deeppot, species)(params, jnp.asarray(R)))
    d = descriptor(R)
    m1, m2 = SMALL["embedding_features"][-1], SMALL["axis_features"]
    assert d.shape == (len(R), m1, m2) and np.abs(d).max() > 1e-3
    Q = testing.random_rotation(np.random.default_rng(0))
    np.testing.assert_allclose(descriptor(R @ Q.T), d, atol=1e-13)
    np.testing.assert_allclose(descriptor(R + 0.3), d, atol=1e-13)
    # a reflection too: D_i is quadratic in the coordinates
    np.testing.assert_allclose(descriptor(R * [1, 1, -1]), d, atol=1e-13)
    perm = np.array([2, 5, 4, 1, 0, 3])  # keeps species (even, odd) in place
    assert (species[perm] == species).all()
    np.testing.assert_allclose(descriptor(R[perm]), d[perm], atol=1e-13)
    # moving one bead changes every descriptor within the cutoff of it
    moved = R.copy()
    moved[0] += 0.02
    assert np.abs(descriptor(moved) - d).max() > 1e-6


@pytest.mark.parametrize("a,b", [(0, 0), (0, 1)])
def test_isolated_bead_is_fitting_net_of_zero(deeppot, params, a, b):
    p = jax.tree.map(np.asarray, params)
    m = SMALL["embedding_features"][-1] * SMALL["axis_features"]

    def isolated(t):  # the fitting net of species t at D = 0, written out
        x = np.tanh(p["fitting_0"]["bias"][t] + np.zeros(m) @ p["fitting_0"]["kernel"][t])
        x = x + p["fitting_dt_1"][t] * np.tanh(
            x @ p["fitting_1"]["kernel"][t] + p["fitting_1"]["bias"][t]
        )
        return (x @ p["fitting_out"]["kernel"][t] + p["fitting_out"]["bias"][t])[0]

    one = potentials.energy_model(deeppot, species=np.array([a]))
    np.testing.assert_allclose(
        float(jax.jit(one.energy_fn(params))(jnp.zeros((1, 3)))), isolated(a), rtol=1e-13
    )
    e_pair = jax.jit(potentials.energy_model(deeppot, species=np.array([a, b])).energy_fn(params))
    far = jnp.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.001 * CUTOFF]])
    np.testing.assert_allclose(float(e_pair(far)), isolated(a) + isolated(b), rtol=1e-13)
    near = jnp.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.5 * CUTOFF]])
    assert abs(float(e_pair(near)) - (isolated(a) + isolated(b))) > 1e-6


def test_rejects_bad_axis_features(system2):
    R, species, box = system2
    pot = potentials.DeepPotSE(**{**SMALL, "axis_features": 9})
    with pytest.raises(ValueError, match="axis_features"):
        potentials.energy_model(pot, species=species, box=box).init_fn(
            jax.random.key(0), jnp.asarray(R)
        )


def test_paper_default_parameters(system2):
    R, species, box = system2
    config = potentials.DeepPotSE.default_config()
    fields = {f.name for f in dataclasses.fields(potentials.DeepPotSE)} - {"parent", "name"}
    assert set(config) == fields
    pot = potentials.DeepPotSE(**{**config, "n_species": 2})
    assert (pot.cutoff, pot.r_onset, tuple(pot.embedding_features)) == (0.7, 0.1, (8, 16, 32))
    assert tuple(pot.fitting_features) == (32, 32, 32) and pot.neighbor_norm == 60
    # the paper's 0.7 nm cutoff needs a box of at least 1.4 nm: free space here
    model = potentials.energy_model(pot + potentials.LennardJones(n_species=2), species=species)
    params = jax.eval_shape(model.init_fn, jax.random.key(0), jnp.asarray(R))
    assert set(params) == {"deeppot", "lj"}
    shapes = jax.tree.map(jnp.shape, params["deeppot"])
    assert shapes["embedding_0"] == {"kernel": (4, 1, 8), "bias": (4, 8)}
    assert shapes["embedding_2"] == {"kernel": (4, 16, 32), "bias": (4, 32)}
    assert shapes["fitting_0"] == {"kernel": (2, 32 * 4, 32), "bias": (2, 32)}
    assert shapes["fitting_dt_1"] == shapes["fitting_dt_2"] == (2, 32)
    assert "fitting_dt_0" not in shapes
    # float32 stays float32 (weights made up: initialising this size is slow on CPU)
    weights = jax.tree.map(lambda x: jnp.full(x.shape, 0.1, x.dtype), params["deeppot"])
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(weights))
    free = potentials.energy_model(pot, species=species)
    e = jax.jit(free.energy_fn(weights))(jnp.asarray(R, jnp.float32))
    assert e.dtype == jnp.float32 and np.isfinite(float(e))
