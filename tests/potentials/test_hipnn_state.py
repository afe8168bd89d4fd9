"""StateAwareHIPNN: HIP-NN-TS conditioned on the state point (T in K, rho in g/cm^3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import losses, potentials, testing, train

# as tests/potentials/test_hipnn.py (2 species, a width change in block 1), one block
SMALL = dict(n_species=2, n_features=8, n_interactions=1, n_atom_layers=1, n_sensitivities=4,
             sensitivity_min=0.25, sensitivity_max=0.5, cutoff=0.6)  # fmt: skip
COLD, HOT = (200.0, 0.77), (400.0, 0.77)  # (K, g/cm^3)


def perturbed_params(model, R, seed=1, scale=0.3):
    """Init params plus noise, float64, so every weight (the state rows too) is non-zero."""
    params = testing.to_float64(model.init_fn(jax.random.key(seed), jnp.asarray(R)))
    rng = np.random.default_rng(seed)

    def perturb(path, x):
        noise = jnp.asarray(rng.normal(size=x.shape))
        return x * (1.0 + 0.1 * noise) if path[-1].key == "mu" else x + scale * noise

    return jax.tree_util.tree_map_with_path(perturb, params)


@pytest.fixture(scope="module")
def net():
    # the state in every layer ("inputs"); the default "readout" is tested at the end
    return potentials.StateAwareHIPNN(**SMALL, state_center=(300.0, 0.8), state_width=(100.0, 0.2),
                                      conditioning="inputs")  # fmt: skip


@pytest.fixture(scope="module")
def setup(net, system2):
    R, species, box = system2
    model = potentials.energy_model(net, species=species, box=box)
    params = perturbed_params(model, R)
    return model, params, jnp.asarray(R)


def test_energy_and_forces_depend_on_the_state(setup):
    # the same configuration has a different energy and forces at 200 and 400 K
    model, params, R = setup
    e = jax.jit(model.energy_fn(params))
    e_cold, e_hot = float(e(R, state=jnp.asarray(COLD))), float(e(R, state=jnp.asarray(HOT)))
    assert abs(e_cold - e_hot) > 1e-3 * abs(e_cold)
    f = jax.jit(model.force_fn(params))
    f_cold, f_hot = f(R, state=jnp.asarray(COLD)), f(R, state=jnp.asarray(HOT))
    assert float(jnp.max(jnp.abs(f_cold - f_hot))) > 1e-3 * float(jnp.max(jnp.abs(f_cold)))
    # forces at a given state are -grad E at that state (central differences, float64)
    testing.assert_forces_match_finite_differences(
        lambda X: e(X, state=jnp.asarray(HOT)), np.asarray(R), rtol=1e-6
    )
    # bound with at_state (as for simulation), the model needs no per-call state; a
    # call's state wins over the bound one
    bound = potentials.energy_model(model.potential.at_state(*HOT), species=model.species,
                                    box=model.box).energy_fn(params)  # fmt: skip
    np.testing.assert_allclose(float(bound(R)), e_hot, rtol=1e-12)
    np.testing.assert_allclose(float(bound(R, state=jnp.asarray(COLD))), e_cold, rtol=1e-12)


def _without_state_weights(params, n_species, n_features):
    """HIPNN parameters: the state-aware ones less the rows that read the state."""

    def cut(path, x):
        keys = [getattr(k, "key", None) for k in path]
        if "int_weights" in keys:
            return x[:, :n_species, :] if x.shape[1] == n_species + 2 else x
        if ("selfint" in keys or "interaction_adjust" in keys) and keys[-1] == "kernel":
            return x[:n_species] if x.shape[0] == n_species + 2 else x
        if any(k and k.startswith("atom_") and not k.endswith("_res") for k in keys):
            return x[:n_features] if keys[-1] == "kernel" else x
        return x

    return jax.tree_util.tree_map_with_path(cut, params)


def _zero_state_weights(params, n_species, n_features):
    """The same parameters with the rows that read the state set to zero."""

    def zero(path, x):
        keys = [getattr(k, "key", None) for k in path]
        if "int_weights" in keys:
            return x.at[:, n_species:, :].set(0.0) if x.shape[1] == n_species + 2 else x
        if ("selfint" in keys or "interaction_adjust" in keys) and keys[-1] == "kernel":
            return x.at[n_species:].set(0.0) if x.shape[0] == n_species + 2 else x
        if any(k and k.startswith("atom_") and not k.endswith("_res") for k in keys):
            return x.at[n_features:].set(0.0) if keys[-1] == "kernel" else x
        return x

    return jax.tree_util.tree_map_with_path(zero, params)


def test_state_enters_only_through_the_conditioning(setup):
    # with the weights that read s = (T - Tc)/Tw, (rho - rhoc)/rhow zeroed, the energy
    # no longer depends on the state and equals plain HIPNN with the other weights
    model, params, R = setup
    S, F = SMALL["n_species"], SMALL["n_features"]
    assert params["block_1"]["interaction"]["int_weights"].shape[1] == S + 2
    assert params["block_1"]["atom_0"]["kernel"].shape[0] == F + 2
    zeroed = _zero_state_weights(params, S, F)
    e = jax.jit(model.energy_fn(zeroed))
    plain = potentials.energy_model(potentials.HIPNN(**SMALL), species=model.species,
                                    box=model.box)  # fmt: skip
    e_plain = float(plain.energy_fn(_without_state_weights(params, S, F))(R))
    for state in (COLD, HOT, (350.0, 1.1)):
        np.testing.assert_allclose(float(e(R, state=jnp.asarray(state))), e_plain, rtol=1e-12)


def test_missing_or_malformed_state_is_a_named_error(setup):
    model, params, R = setup
    e = model.energy_fn(params)
    with pytest.raises(potentials.StateMissingError, match=r"at_state\(T, rho\)"):
        e(R)
    with pytest.raises(ValueError, match=r"state must be \[2\].*got shape \[3\]"):
        e(R, state=jnp.asarray([300.0, 0.77, 1.0]))
    with pytest.raises(ValueError, match=r"val.state must have shape \[T, 2\] = \[2, 2\]"):
        train.frame_arrays(
            {"positions": np.zeros((2, 27, 3)), "forces": np.zeros((2, 27, 3)),
             "state": np.zeros((2, 3))}, "val")  # fmt: skip


def test_batched_states_give_per_frame_forces(setup):
    # predict_forces with a [B, 2] state (the force-matching batches' "state") equals
    # frame-by-frame force calls at each frame's state
    model, params, R = setup
    X = jnp.stack([R, R + 0.01])
    states = jnp.asarray([COLD, HOT])
    batched = jax.jit(lambda X, s: losses.predict_forces(model, params, X, state=s))(X, states)
    f = jax.jit(model.force_fn(params))
    for k in range(2):
        np.testing.assert_allclose(batched[k], f(X[k], state=states[k]), rtol=1e-10, atol=1e-10)


def test_readout_conditioning_is_linear_in_the_state(system2):
    # the default: U(R; s) = U_0(R) + s . U_s(R) on one HIPNN's features; midway between
    # two state points the energy is exactly their mean, forces too, and with the state
    # readouts zeroed the model is the plain HIPNN with the remaining weights
    R, species, box = system2
    net = potentials.StateAwareHIPNN(**SMALL, state_center=(300.0, 0.8), state_width=(100.0, 0.2))
    assert net.conditioning == "readout"
    model = potentials.energy_model(net, species=species, box=box)
    fresh = model.init_fn(jax.random.key(0), jnp.asarray(R))
    # zero at initialisation: training starts from a plain HIPNN
    assert float(jnp.max(jnp.abs(fresh["state_energy_1"]["kernel"]))) == 0.0
    params = perturbed_params(model, R)
    assert params["state_energy_1"]["kernel"].shape == (SMALL["n_features"], 2)
    R = jnp.asarray(R)
    e, f = jax.jit(model.energy_fn(params)), jax.jit(model.force_fn(params))
    at = lambda fn, T, rho: fn(R, state=jnp.asarray([T, rho]))  # noqa: E731
    mid, cold, hot = (at(e, T, 0.77) for T in (300.0, 200.0, 400.0))
    assert abs(float(cold - hot)) > 1e-3 * abs(float(mid))
    np.testing.assert_allclose(float(mid), 0.5 * float(cold + hot), rtol=1e-12)
    np.testing.assert_allclose(at(f, 300.0, 0.9), 0.5 * (at(f, 250.0, 0.8) + at(f, 350.0, 1.0)),
                               rtol=1e-10, atol=1e-10)  # fmt: skip
    testing.assert_forces_match_finite_differences(
        lambda X: e(X, state=jnp.asarray(HOT)), np.asarray(R), rtol=1e-6
    )
    plain = potentials.energy_model(potentials.HIPNN(**SMALL), species=species, box=box)
    base = {k: v for k, v in params.items() if k != "state_energy_1"}
    zeroed = {**params, "state_energy_1": {"kernel": 0.0 * params["state_energy_1"]["kernel"]}}
    np.testing.assert_allclose(float(model.energy_fn(zeroed)(R, state=jnp.asarray(HOT))),
                               float(plain.energy_fn(base)(R)), rtol=1e-12)  # fmt: skip
    with pytest.raises(ValueError, match="conditioning must be 'readout' or 'inputs'"):
        potentials.energy_model(net.clone(conditioning="film"), species=species,
                                box=box).init_fn(jax.random.key(0), R)  # fmt: skip
