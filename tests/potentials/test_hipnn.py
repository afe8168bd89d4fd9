import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials, testing

CUTOFF = 0.6  # nm
# Two blocks: the second sees the first's output (message passing, hierarchy);
# block 1 changes width (2 one-hot -> 8), so its residual needs the adjust layer.
SMALL = dict(
    n_species=2,
    n_features=8,
    n_interactions=2,
    n_atom_layers=1,
    n_sensitivities=4,
    sensitivity_min=0.25,
    sensitivity_max=0.5,
    cutoff=CUTOFF,
)


@pytest.fixture(scope="module")
def hipnn():
    return potentials.HIPNN(**SMALL)


@pytest.fixture(scope="module")
def params(hipnn, system2):
    R, species, box = system2
    return perturbed_params(potentials.energy_model(hipnn, species=species, box=box), R)


def perturbed_params(model, R, seed=1, scale=0.3):
    """Init params plus noise, float64, so biases and every weight are non-zero.

    The sensitivity centres ``mu`` (nm) get 10 % relative noise, so that they
    stay inside the range of distances.
    """
    params = testing.to_float64(model.init_fn(jax.random.key(seed), jnp.asarray(R)))
    rng = np.random.default_rng(seed)

    def perturb(path, x):
        noise = jnp.asarray(rng.normal(size=x.shape))
        if path[-1].key == "mu":
            return x * (1.0 + 0.1 * noise)
        return x + scale * noise

    return jax.tree_util.tree_map_with_path(perturb, params)


def cluster(n=6, seed=3):
    """A free-space cluster ``(R [n, 3], species [n])`` with all pairs in 0.25-0.55 nm."""
    rng = np.random.default_rng(seed)
    while True:
        R = rng.uniform(0.0, 0.4, size=(n, 3))
        d = np.linalg.norm(R[:, None] - R[None], axis=-1)[np.triu_indices(n, 1)]
        if d.min() > 0.25 and d.max() < 0.55:
            return R, np.arange(n, dtype=np.int32) % 2


def softplus(x):
    return np.logaddexp(0.0, x)


def reference_energy(params, R, species, box, *, n_atom_layers=1, cusp=1e-6):
    """HIP-NN-TS (l = 2) as hippynn computes it, pair by pair in numpy (float64).

    Environment sums first (``E = S Z``, then ``V E``, hippynn's order), the
    quadrupole in hippynn's 5-component form with its norm
    ``2 (sum q_k^2 + q_xx q_yy)``, and hippynn's ResNetWrapper.
    """
    p = jax.tree.map(np.asarray, params)
    dense = lambda q, x: x @ q["kernel"] + q.get("bias", 0.0)
    n = len(R)
    z = np.eye(SMALL["n_species"])[species]
    total = dense(p["energy_0"], z).sum()
    block = 1
    while f"block_{block}" in p:
        b = p[f"block_{block}"]
        q = b["interaction"]
        nu, f_in = q["int_weights"].shape[:2]
        env0 = np.zeros((n, nu, f_in))
        env1 = np.zeros((n, 3, nu, f_in))
        env2 = np.zeros((n, 5, nu, f_in))
        for i in range(n):
            for j in range(n):
                d = R[j] - R[i]
                d = d - box * np.round(d / box)
                r = np.linalg.norm(d)
                if i == j or r >= CUTOFF:
                    continue
                x = r / CUTOFF
                switch = 1 - 10 * x**3 + 15 * x**4 - 6 * x**5
                s = np.exp(-0.5 * (1 / r - 1 / q["mu"]) ** 2 / q["sigma"] ** -2) * switch
                u = d / r
                quad = np.outer(u, u) - np.eye(3) / 3
                env0[i] += np.outer(s, z[j])
                env1[i] += u[:, None, None] * np.outer(s, z[j])
                env2[i] += quad.reshape(9)[[0, 1, 2, 4, 5], None, None] * np.outer(s, z[j])
        w = q["int_weights"].reshape(nu * f_in, -1)
        out0 = env0.reshape(n, -1) @ w
        vec = (env1.reshape(n, 3, -1) @ w) ** 2
        quad = env2.reshape(n, 5, -1) @ w
        quad_norm2 = 2 * ((quad**2).sum(1) + quad[:, 0] * quad[:, 3])
        pre = (
            out0
            + q["vecscales"] * np.sqrt(vec.sum(1) + cusp)
            + q["quadscales"] * np.sqrt(quad_norm2 + cusp)
            + dense(q["selfint"], z)
        )
        z_new = dense(b["interaction_res"], softplus(pre))
        z = z_new + (dense(b["interaction_adjust"], z) if "interaction_adjust" in b else z)
        for k in range(n_atom_layers):
            z = z + dense(b[f"atom_{k}_res"], softplus(dense(b[f"atom_{k}"], z)))
        total += dense(p[f"energy_{block}"], z).sum()
        block += 1
    return total


def test_contract(hipnn, params, system2):
    R, species, box = system2
    report = testing.check_potential(hipnn, positions=R, species=species, box=box, params=params)
    assert report["forces_fd"] < 1e-6


def test_matches_pairwise_reference(hipnn, params, system2):
    R, species, box = system2
    model = potentials.energy_model(hipnn, species=species, box=box)
    e = jax.jit(model.energy_fn(params))(jnp.asarray(R))
    np.testing.assert_allclose(float(e), reference_energy(params, R, species, box), rtol=1e-10)


def zero_scales(params, which):
    """``params`` with the ``vecscales`` or ``quadscales`` of every block set to zero."""
    out = jax.tree.map(lambda x: x, params)
    for k in (1, 2):
        layer = dict(out[f"block_{k}"]["interaction"])
        layer[which] = jnp.zeros_like(layer[which])
        out[f"block_{k}"] = {**out[f"block_{k}"], "interaction": layer}
    return out


def test_tensor_channels_contribute_and_are_invariant(hipnn, params):
    R, species = cluster()
    energy = jax.jit(lambda p, R: potentials.energy_model(hipnn, species=species).energy_fn(p)(R))
    no_vec, no_quad = zero_scales(params, "vecscales"), zero_scales(params, "quadscales")
    scalar = zero_scales(no_vec, "quadscales")

    def parts(R):
        R = jnp.asarray(R)
        e, e_no_vec, e_no_quad, e_scalar = (
            float(energy(p, R)) for p in (params, no_vec, no_quad, scalar)
        )
        return np.array([e, e - e_no_vec, e - e_no_quad, e_scalar])

    ref = parts(R)
    # the l = 1 and l = 2 channels each change the energy
    assert abs(ref[1]) > 1e-3 * abs(ref[0]) and abs(ref[2]) > 1e-3 * abs(ref[0])
    Q = testing.random_rotation(np.random.default_rng(0))
    np.testing.assert_allclose(parts(R @ Q.T), ref, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(parts(R * [1, -1, 1] + 0.2), ref, rtol=1e-11, atol=1e-12)
    # with both scales zero, HIP-NN-TS is plain HIP-NN (tensor_order = 0, same weights)
    plain = potentials.HIPNN(**SMALL, tensor_order=0)
    strip = lambda p: {
        k: {**v, "interaction": {n: w for n, w in v["interaction"].items() if "scales" not in n}}
        if k.startswith("block")
        else v
        for k, v in p.items()
    }
    e_plain = potentials.energy_model(plain, species=species).energy_fn(strip(params))
    np.testing.assert_allclose(float(jax.jit(e_plain)(jnp.asarray(R))), ref[3], rtol=1e-12)


def test_energy_is_hierarchical(hipnn, params, system2):
    R, species, box = system2
    model = potentials.energy_model(hipnn, species=species, box=box)
    graph = potentials.build_graph(jnp.asarray(R), model.species, model.displacement_fn, box=None)
    e, state = jax.jit(lambda p: hipnn.apply({"params": p}, graph, mutable=["intermediates"]))(
        params
    )
    blocks = np.asarray(state["intermediates"]["block_energies"][0])
    assert blocks.shape == (3,)
    np.testing.assert_allclose(float(e), blocks.sum(), rtol=1e-13)
    # E^0 is the per-species read-out of the one-hot input
    np.testing.assert_allclose(
        blocks[0], np.asarray(params["energy_0"]["kernel"])[species, 0].sum(), rtol=1e-13
    )
    # the first block alone, with the same weights, is the model truncated after it
    one = potentials.HIPNN(**{**SMALL, "n_interactions": 1})
    truncated = {k: v for k, v in params.items() if k not in ("block_2", "energy_2")}
    e_one = jax.jit(potentials.energy_model(one, species=species, box=box).energy_fn(truncated))
    np.testing.assert_allclose(float(e_one(jnp.asarray(R))), blocks[0] + blocks[1], rtol=1e-12)
    assert abs(blocks[2]) > 1e-6


def test_paper_default_parameters(system2):
    R, species, box = system2
    config = potentials.HIPNN.default_config()
    fields = {f.name for f in dataclasses.fields(potentials.HIPNN)} - {"parent", "name"}
    assert set(config) == fields
    pot = potentials.HIPNN(**{**config, "n_species": 2})
    assert (pot.tensor_order, pot.n_interactions, pot.n_atom_layers) == (2, 1, 3)
    assert (pot.n_sensitivities, pot.n_features, pot.cutoff) == (20, 32, 1.2)
    # the paper's 1.2 nm cutoff needs a box of at least 2.4 nm: free space here
    model = potentials.energy_model(pot + potentials.LennardJones(n_species=2), species=species)
    params = jax.eval_shape(model.init_fn, jax.random.key(0), jnp.asarray(R))
    assert set(params) == {"hipnn", "lj"}
    shapes = jax.tree.map(jnp.shape, params["hipnn"])
    assert set(shapes) == {"block_1", "energy_0", "energy_1"}
    assert shapes["energy_0"] == {"kernel": (2, 1)}
    layer = shapes["block_1"]["interaction"]
    assert layer["int_weights"] == (20, 2, 32) and layer["mu"] == layer["sigma"] == (20,)
    assert layer["vecscales"] == layer["quadscales"] == (32,)
    assert {f"atom_{k}" for k in range(3)} < set(shapes["block_1"])
    # float32 stays float32 (weights made up: initialising this size is slow on CPU)
    weights = jax.tree.map(lambda x: jnp.full(x.shape, 0.1, x.dtype), params["hipnn"])
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(weights))
    free = potentials.energy_model(pot, species=species)
    e = jax.jit(free.energy_fn(weights))(jnp.asarray(R, jnp.float32))
    assert e.dtype == jnp.float32 and np.isfinite(float(e))
