import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials, testing

CUTOFF = 0.6  # nm
SMALL = dict(
    n_species=2,
    embed_dim=8,
    n_filters=6,
    n_interactions=2,
    n_rbf=8,
    cutoff=CUTOFF,
    output_features=(5,),
)


@pytest.fixture(scope="module")
def schnet():
    return potentials.SchNet(**SMALL)


def perturbed_params(model, R, seed=1, scale=0.3):
    """Init params plus noise, float64, so biases and every weight are non-zero."""
    params = testing.to_float64(model.init_fn(jax.random.key(seed), jnp.asarray(R)))
    leaves, treedef = jax.tree.flatten(params)
    rng = np.random.default_rng(seed)
    return treedef.unflatten([x + scale * jnp.asarray(rng.normal(size=x.shape)) for x in leaves])


def dense(q, x):
    return x @ q["kernel"] + q.get("bias", 0.0)


def mlp(q, x):
    """Dense layers with tanh between them, as numpy."""
    n = len(q)
    for k in range(n):
        x = dense(q[f"dense_{k}"], x)
        if k < n - 1:
            x = np.tanh(x)
    return x


def reference_energy(params, R, species, box, *, cutoff, n_rbf, exclude=(), normalization=1.0):
    """Paper 001 eqs. 9-11 and the beadwise output network, pair by pair in numpy;
    pairs in ``exclude`` send no message; each convolution's sum is divided by
    ``normalization``."""
    excluded = {frozenset(e) for e in exclude}
    p = jax.tree.map(np.asarray, params)
    centers = np.linspace(0.0, cutoff, n_rbf)
    width = cutoff / (n_rbf - 1)
    h = p["embedding"]["embedding"][species]  # eq. 9
    n = len(R)
    t = 0
    while f"interaction_{t}" in p:
        q = p[f"interaction_{t}"]
        b = dense(q["node_net"], h)
        z = np.zeros_like(b)
        for i in range(n):
            for j in range(n):
                d = R[j] - R[i]
                d = d - box * np.round(d / box)
                r = np.linalg.norm(d)
                if i == j or r >= cutoff or frozenset((i, j)) in excluded:
                    continue
                e = np.exp(-0.5 * ((r - centers) / width) ** 2)
                s = r / cutoff
                envelope = 1 - 10 * s**3 + 15 * s**4 - 6 * s**5
                z[i] += mlp(q["filter_net"], e) * envelope * b[j]  # eq. 10
        h = h + mlp(q["update_net"], z / normalization)  # eq. 11
        t += 1
    return mlp(p["output"], h).sum()


def test_contract(schnet, system2):
    R, species, box = system2
    report = testing.check_potential(schnet, positions=R, species=species, box=box)
    assert report["forces_fd"] < 1e-6


def test_matches_pairwise_reference(schnet, system2):
    R, species, box = system2
    model = potentials.energy_model(schnet, species=species, box=box)
    params = perturbed_params(model, R)
    e = model.energy_fn(params)(jnp.asarray(R))
    e_ref = reference_energy(params, R, species, box, cutoff=CUTOFF, n_rbf=SMALL["n_rbf"])
    np.testing.assert_allclose(float(e), e_ref, rtol=1e-12)


def test_normalization_divides_each_convolution(system2):
    """``normalization = c`` equals the pairwise reference with ``z / c``, and equals
    plain sums with every node_net kernel (linear, no bias) divided by ``c``."""
    R, species, box = system2
    c = 6.0
    model = potentials.energy_model(potentials.SchNet(**SMALL, normalization=c),
                                    species=species, box=box)  # fmt: skip
    params = perturbed_params(model, R)
    e = float(model.energy_fn(params)(jnp.asarray(R)))
    e_ref = reference_energy(params, R, species, box, cutoff=CUTOFF, n_rbf=SMALL["n_rbf"],
                             normalization=c)  # fmt: skip
    np.testing.assert_allclose(e, e_ref, rtol=1e-12)
    plain = potentials.energy_model(potentials.SchNet(**SMALL), species=species, box=box)
    scaled = jax.tree_util.tree_map_with_path(
        lambda path, x: x / c if "node_net" in jax.tree_util.keystr(path) else x, params
    )
    np.testing.assert_allclose(float(plain.energy_fn(scaled)(jnp.asarray(R))), e, rtol=1e-12)
    unnormalized = reference_energy(params, R, species, box, cutoff=CUTOFF, n_rbf=SMALL["n_rbf"])
    assert abs(unnormalized - e) > 1e-3 * abs(e)
    for bad in (0.0, -1.0, "beads", True):
        m = potentials.energy_model(potentials.SchNet(**SMALL, normalization=bad),
                                    species=species, box=box)  # fmt: skip
        with pytest.raises(ValueError, match="SchNet.normalization must be a number > 0"):
            m.energy_fn(params)(jnp.asarray(R))


def test_exclude_drops_listed_pairs_and_names_bad_indices(system2):
    R, species, box = system2
    exclude = ((0, 1), (3, 2), (5, 9))  # (3, 2): either order
    schnet = potentials.SchNet(**SMALL, exclude=exclude)
    model = potentials.energy_model(schnet, species=species, box=box)
    params = perturbed_params(model, R)
    e = model.energy_fn(params)(jnp.asarray(R))
    e_ref = reference_energy(params, R, species, box, cutoff=CUTOFF, n_rbf=SMALL["n_rbf"],
                             exclude=exclude)  # fmt: skip
    np.testing.assert_allclose(float(e), e_ref, rtol=1e-12)
    e_all = reference_energy(params, R, species, box, cutoff=CUTOFF, n_rbf=SMALL["n_rbf"])
    assert abs(e_ref - e_all) > 1e-6  # the listed pairs were within the cutoff
    # a particle whose every pair is excluded feels no force
    n = len(R)
    lone = potentials.SchNet(**SMALL, exclude=tuple((0, j) for j in range(1, n)))
    lone_model = potentials.energy_model(lone, species=species, box=box)
    f = -jax.grad(lone_model.energy_fn(params))(jnp.asarray(R))
    assert float(jnp.abs(f[0]).max()) == 0.0 and float(jnp.abs(f[1:]).max()) > 1e-6
    bad = potentials.SchNet(**SMALL, exclude=((0, n),))
    with pytest.raises(ValueError, match=r"SchNet.exclude: pair indices must be in \[0, 27\)"):
        potentials.energy_model(bad, species=species, box=box).energy_fn(params)(jnp.asarray(R))


def test_isolated_bead_is_output_network_of_its_embedding(schnet, system2):
    R, species, box = system2
    model = potentials.energy_model(schnet, species=species, box=box)
    one = lambda s, p: float(
        potentials.energy_model(schnet, species=np.array([s])).energy_fn(p)(jnp.zeros((1, 3)))
    )
    # At init every bias is zero, so g(0) = 0 and E = out(a_k).
    params = testing.to_float64(model.init_fn(jax.random.key(0), jnp.asarray(R)))
    emb = np.asarray(params["embedding"]["embedding"])
    out = jax.tree.map(np.asarray, params["output"])
    for s in (0, 1):
        np.testing.assert_allclose(one(s, params), mlp(out, emb[s]).sum(), rtol=1e-13)
    # With biases, each block adds g(0) = W2 tanh(b1) + b2 to an isolated bead.
    params = perturbed_params(model, R)
    p = jax.tree.map(np.asarray, params)
    shift = sum(
        mlp(p[f"interaction_{t}"]["update_net"], np.zeros(SMALL["n_filters"]))
        for t in range(SMALL["n_interactions"])
    )
    for s in (0, 1):
        expected = mlp(p["output"], p["embedding"]["embedding"][s] + shift).sum()
        np.testing.assert_allclose(one(s, params), expected, rtol=1e-13)
    # Two beads beyond the cutoff are two isolated beads; inside it they are not.
    pair = potentials.energy_model(schnet, species=np.array([0, 1])).energy_fn(params)
    isolated = one(0, params) + one(1, params)
    far = jnp.array([[0.0, 0.0, 0.0], [1.001 * CUTOFF, 0.0, 0.0]])
    np.testing.assert_allclose(float(pair(far)), isolated, rtol=1e-13)
    near = jnp.array([[0.0, 0.0, 0.0], [0.5 * CUTOFF, 0.0, 0.0]])
    assert abs(float(pair(near)) - isolated) > 1e-6


def test_default_config_and_parameter_names(system2):
    R, species, box = system2
    config = potentials.SchNet.default_config()
    assert set(config) == {f.name for f in dataclasses.fields(potentials.SchNet)} - {
        "parent",
        "name",
    }
    schnet = potentials.SchNet(**config)
    model = potentials.energy_model(schnet, species=species, box=box)
    params = model.init_fn(jax.random.key(0), jnp.asarray(R))
    d, f, k = config.embed_dim, config.n_filters, config.n_rbf
    block = {
        "filter_net": {
            "dense_0": {"kernel": (k, f), "bias": (f,)},
            "dense_1": {"kernel": (f, f), "bias": (f,)},
        },
        "node_net": {"kernel": (d, f)},
        "update_net": {
            "dense_0": {"kernel": (f, d), "bias": (d,)},
            "dense_1": {"kernel": (d, d), "bias": (d,)},
        },
    }
    hidden = config.output_features[0]
    expected = {
        "embedding": {"embedding": (config.n_species, d)},
        **{f"interaction_{t}": block for t in range(config.n_interactions)},
        "output": {
            "dense_0": {"kernel": (d, hidden), "bias": (hidden,)},
            "dense_1": {"kernel": (hidden, 1), "bias": (1,)},
        },
    }
    assert jax.tree.map(jnp.shape, params) == expected
    # float32 stays float32 (free space: a float64 periodic box would promote the graph)
    free = potentials.energy_model(schnet, species=species)
    e = jax.jit(free.energy_fn(params))(jnp.asarray(R, jnp.float32))
    assert e.dtype == jnp.float32 and np.isfinite(float(e))
    assert potentials.sum_of(schnet).terms[0][0] == "schnet"
