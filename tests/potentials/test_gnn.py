import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials, testing

CUTOFF = 0.6  # nm
SMALL = dict(n_species=2, embed_dim=8, message_dim=8, n_rbf=8, cutoff=CUTOFF)


@pytest.fixture(scope="module")
def gnn():
    return potentials.GNN(**SMALL)


def perturbed_params(model, R, seed=1, scale=0.3):
    """Init params plus noise, float64, so biases and every weight are non-zero."""
    params = testing.to_float64(model.init_fn(jax.random.key(seed), jnp.asarray(R)))
    leaves, treedef = jax.tree.flatten(params)
    rng = np.random.default_rng(seed)
    return treedef.unflatten([x + scale * jnp.asarray(rng.normal(size=x.shape)) for x in leaves])


def ssp(x):
    return np.logaddexp(0.0, x) - np.log(2.0)


def reference_energy(params, R, species, box, *, cutoff, n_rbf):
    """Paper 004 eqs. 2-7 written out pair by pair in numpy (float64)."""
    p = jax.tree.map(np.asarray, params)
    dense = lambda q, x: x @ q["kernel"] + q["bias"]
    centers = np.linspace(0.0, cutoff, n_rbf)
    width = cutoff / (n_rbf - 1)
    h = p["embedding"]["embedding"][species]
    n = len(R)
    layer = 0
    while f"layer_{layer}" in p:
        q = p[f"layer_{layer}"]
        x = dense(q["subnet1"], h)
        msg = np.zeros_like(x)
        for i in range(n):
            for j in range(n):
                d = R[j] - R[i]
                d = d - box * np.round(d / box)
                r = np.linalg.norm(d)
                if i == j or r >= cutoff:
                    continue
                rho = np.exp(-0.5 * ((r - centers) / width) ** 2)
                filt = dense(q["subnet2"]["dense_1"], ssp(dense(q["subnet2"]["dense_0"], rho)))
                s = r / cutoff
                envelope = 1 - 10 * s**3 + 15 * s**4 - 6 * s**5
                msg[i] += x[j] * filt * envelope  # message j -> i carries h_j
        h = h + dense(q["subnet3"], msg)
        layer += 1
    return h.sum()


def test_contract(gnn, system2):
    R, species, box = system2
    report = testing.check_potential(gnn, positions=R, species=species, box=box)
    assert report["forces_fd"] < 1e-6


def test_matches_pairwise_reference(gnn, system2):
    R, species, box = system2
    model = potentials.energy_model(gnn, species=species, box=box)
    params = perturbed_params(model, R)
    e = model.energy_fn(params)(jnp.asarray(R))
    e_ref = reference_energy(params, R, species, box, cutoff=CUTOFF, n_rbf=SMALL["n_rbf"])
    np.testing.assert_allclose(float(e), e_ref, rtol=1e-12)


def test_zero_subnet3_gives_sum_of_embeddings(gnn, system2):
    R, species, box = system2
    model = potentials.energy_model(gnn, species=species, box=box)
    params = perturbed_params(model, R)
    for layer in ("layer_0", "layer_1"):
        params[layer]["subnet3"] = jax.tree.map(jnp.zeros_like, params[layer]["subnet3"])
    emb = np.asarray(params["embedding"]["embedding"])
    e = model.energy_fn(params)(jnp.asarray(R))
    np.testing.assert_allclose(float(e), emb[species].sum(), rtol=1e-13)


@pytest.mark.parametrize("a,b", [(0, 0), (0, 1)])
def test_particles_beyond_cutoff_are_isolated(gnn, system2, a, b):
    R, species, box = system2
    params = perturbed_params(potentials.energy_model(gnn, species=species, box=box), R)
    emb = np.asarray(params["embedding"]["embedding"])
    bias3 = sum(np.asarray(params[f"layer_{k}"]["subnet3"]["bias"]) for k in range(2))

    def isolated(s):  # no neighbours: every message is zero, h <- h + bias of SubNet3
        return (emb[s] + bias3).sum()

    one = potentials.energy_model(gnn, species=np.array([a]))
    np.testing.assert_allclose(
        float(one.energy_fn(params)(jnp.zeros((1, 3)))), isolated(a), rtol=1e-13
    )
    pair = potentials.energy_model(gnn, species=np.array([a, b]))
    e_pair = pair.energy_fn(params)
    far = jnp.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.001 * CUTOFF]])
    np.testing.assert_allclose(float(e_pair(far)), isolated(a) + isolated(b), rtol=1e-13)
    near = jnp.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.5 * CUTOFF]])
    assert abs(float(e_pair(near)) - (isolated(a) + isolated(b))) > 1e-6


def test_paper_default_parameters(system2):
    R, species, box = system2
    config = potentials.GNN.default_config()
    assert set(config) == {f.name for f in dataclasses.fields(potentials.GNN)} - {"parent", "name"}
    gnn = potentials.GNN(**config)
    assert (gnn.n_species, gnn.embed_dim, gnn.n_layers, gnn.cutoff) == (100, 16, 2, 0.6)
    # in a sum, next to the LJ prior of paper 004, under its default name
    model = potentials.energy_model(
        gnn + potentials.LennardJones(n_species=2, cutoff=0.6), species=species, box=box
    )
    params = model.init_fn(jax.random.key(0), jnp.asarray(R))
    assert set(params) == {"gnn", "lj"}
    shapes = jax.tree.map(jnp.shape, params["gnn"])
    assert shapes["embedding"] == {"embedding": (100, 16)}
    m, d, k = config.message_dim, config.embed_dim, config.n_rbf
    layer = {
        "subnet1": {"kernel": (d, m), "bias": (m,)},
        "subnet2": {
            "dense_0": {"kernel": (k, m), "bias": (m,)},
            "dense_1": {"kernel": (m, m), "bias": (m,)},
        },
        "subnet3": {"kernel": (m, d), "bias": (d,)},
    }
    assert shapes == {"embedding": {"embedding": (100, 16)}, "layer_0": layer, "layer_1": layer}
    # float32 stays float32 (free space: a float64 periodic box would promote the graph)
    free = potentials.energy_model(gnn, species=species)
    e = jax.jit(free.energy_fn(params["gnn"]))(jnp.asarray(R, jnp.float32))
    assert e.dtype == jnp.float32 and np.isfinite(float(e))


@pytest.mark.parametrize(
    "term",
    [
        potentials.GNN(**SMALL),
        potentials.SchNet(
            n_species=2,
            embed_dim=8,
            n_filters=8,
            n_interactions=2,
            n_rbf=8,
            cutoff=CUTOFF,
            output_features=(8,),
        ),  # fmt: skip
    ],
    ids=["gnn", "schnet"],
)
def test_one_species_first_layer_without_gathers(term, system2):
    """On a one-species graph the first layer sums filters instead of gathering
    identical node rows (``convolve(uniform=True)``): same energy and forces as
    the general path to float64 round-off, and the numpy reference for the GNN."""
    from cgjax.potentials._graph import build_graph

    R, species, box = system2
    one = np.zeros_like(species)
    model = potentials.energy_model(term, species=one, box=box)
    params = perturbed_params(model, R)
    Rj = jnp.asarray(R)

    def energy(R, uniform):
        g = build_graph(R, model.species, model.displacement_fn, directed=False)
        assert g.uniform_species  # species known at trace time, all equal
        return term.apply({"params": params}, g.replace(uniform_species=uniform))

    e_fast, f_fast = energy(Rj, True), -jax.grad(energy)(Rj, True)
    e_gen, f_gen = energy(Rj, False), -jax.grad(energy)(Rj, False)
    np.testing.assert_allclose(float(e_fast), float(e_gen), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(f_fast), np.asarray(f_gen), rtol=1e-11, atol=1e-11)
    assert np.abs(np.asarray(f_gen)).max() > 1e-3  # the forces compared are not trivial
    if isinstance(term, potentials.GNN):
        e_ref = reference_energy(params, R, one, box, cutoff=CUTOFF, n_rbf=SMALL["n_rbf"])
        np.testing.assert_allclose(float(model.energy_fn(params)(Rj)), e_ref, rtol=1e-12)
    # two species, or species traced (not known when the graph is built): general path
    assert not build_graph(Rj, jnp.asarray(species), model.displacement_fn).uniform_species
    traced = jax.jit(lambda s: build_graph(Rj, s, model.displacement_fn).uniform_species * 1.0)
    assert float(traced(jnp.asarray(one))) == 0.0


@pytest.mark.parametrize("fmt", ["all_pairs", "sparse", "ordered_sparse", "dense"])
@pytest.mark.parametrize("uniform", [False, True])
def test_message_total_equals_summed_convolution(fmt, uniform, system2):
    """The last layer's readout sums messages over edges (``message_total``)
    instead of aggregating them onto nodes: equal to ``convolve(...).sum(0)``
    to float64 round-off on every list format, padding included."""
    from cgjax import neighbor_list_fn
    from cgjax.potentials._graph import build_graph
    from cgjax.potentials._nn import convolve, message_total

    R, species, box = system2
    Rj = jnp.asarray(R)
    model = potentials.energy_model(potentials.GNN(**SMALL), species=species, box=box)
    nb = None
    if fmt != "all_pairs":
        nb = neighbor_list_fn(box, 0.5, skin=0.05, format=fmt).allocate(Rj)
    g = build_graph(Rj, model.species, model.displacement_fn, neighbor=nb, directed=fmt == "sparse")
    if nb is not None:  # padding present, so the mask is exercised
        assert not bool(jnp.all(g.edge_mask))
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(len(R), 5)))
    if uniform:
        x = jnp.broadcast_to(x[:1], x.shape)
    filters = jnp.asarray(rng.normal(size=(g.senders.shape[0], 5)))
    total = message_total(g, x, filters, uniform=uniform)
    expect = convolve(g, x, filters).sum(0)
    np.testing.assert_allclose(np.asarray(total), np.asarray(expect), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_layers", [1, 3])
def test_layer_counts_match_pairwise_reference(n_layers, system2):
    """The summed last layer for one layer (also the uniform first layer) and three."""
    R, species, box = system2
    gnn = potentials.GNN(**{**SMALL, "n_layers": n_layers})
    for s in (species, np.zeros_like(species)):
        model = potentials.energy_model(gnn, species=s, box=box)
        params = perturbed_params(model, R)
        e = model.energy_fn(params)(jnp.asarray(R))
        e_ref = reference_energy(params, R, s, box, cutoff=CUTOFF, n_rbf=SMALL["n_rbf"])
        np.testing.assert_allclose(float(e), e_ref, rtol=1e-12)
