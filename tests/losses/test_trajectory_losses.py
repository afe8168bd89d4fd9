"""Trajectory losses (smeared RDF, MSD) combined with force matching in one Loss."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import losses, potentials, simulate, units

jax.config.update("jax_enable_x64", True)

KT = 0.785  # kJ/mol
R_MAX, N_BINS = 0.55, 20  # nm
CENTRES = (np.arange(N_BINS) + 0.5) * R_MAX / N_BINS


def argon32():
    """32 LJ argon atoms on an FCC lattice (as tests/simulate/conftest.py, smaller cutoff)."""
    sigma, mass = 3.405 * units.angstrom, 39.948
    R, L = simulate.fcc_lattice(2, 1.374 * units.g_per_cm3 / mass)
    species = np.zeros(len(R), np.int32)
    pot = potentials.LennardJones(
        sigma=sigma, epsilon=119.8 * units.kB, cutoff=0.5, r_onset=0.5 - 0.2 * sigma,
        param_dtype=jnp.float64,
    )  # fmt: skip
    system = simulate.System.create(box=L, species=species, masses=mass)
    model = potentials.energy_model(pot, system=system)
    R = jnp.asarray(R, jnp.float64)
    params = model.init_fn(jax.random.key(0), R)
    return model, params, system, R


class CountingSimulate:
    """A TrajectorySpec that counts how often it runs."""

    def __init__(self, spec):
        self.spec, self.calls = spec, 0
        self.system, self.frame_interval = spec.system, spec.frame_interval

    def __call__(self, params):
        self.calls += 1
        return self.spec(params)


@pytest.fixture(scope="module")
def setup():
    model, params, system, R = argon32()
    V0 = simulate.maxwell_boltzmann(jax.random.key(1), system, KT, jnp.float64)
    protocol = simulate.Protocol(temperature=KT / units.kB, dt=0.001, production_steps=100,
                                 record_every=10, thermostat="nve", skin=None)  # fmt: skip
    spec = simulate.TrajectorySpec(model, R, V0, protocol)
    frames = R[None] + 0.01 * jax.random.normal(jax.random.key(2), (2, *R.shape), R.dtype)
    ref = {**params, "epsilon": params["epsilon"] * 1.1}
    forces = losses.predict_forces(model, ref, frames)
    batch = {"positions": frames, "forces": forces}
    return model, params, spec, batch


def _parts(model, sim):
    fm = losses.force_matching_loss(model)
    rdf = losses.rdf_loss(CENTRES, np.ones(N_BINS), simulate=sim, sigma=0.02)
    t = np.arange(6) * sim.frame_interval
    msd = losses.msd_loss(t, 0.05 * t, simulate=sim)
    return fm, rdf, msd


def test_sum_simulates_once_and_matches_parts(setup):
    model, params, spec, batch = setup
    sim = CountingSimulate(spec)
    fm, rdf, msd = _parts(model, sim)
    total = fm + 0.5 * rdf + msd
    value, grads = jax.value_and_grad(total)(params, batch)
    assert sim.calls == 1  # one simulation shared by the RDF and MSD terms
    parts = fm(params, batch) + 0.5 * rdf(params, batch) + msd(params, batch)
    assert sim.calls == 3  # each part alone simulates
    np.testing.assert_allclose(value, parts, rtol=1e-12)
    for leaf in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(leaf))
    loss = lambda p: total(p, batch)
    h = 1e-5 * float(params["epsilon"][0, 0])
    shift = lambda d: {**params, "epsilon": params["epsilon"] + d}
    fd = (loss(shift(h)) - loss(shift(-h))) / (2 * h)
    g = grads["epsilon"][0, 0]
    rel = abs(float(g - fd)) / abs(float(fd))
    print(f"\nfm + 0.5 rdf + msd: d/d epsilon {float(g):.8g}, FD {float(fd):.8g}, rel {rel:.1e}")
    assert rel < 1e-4


def test_rdf_target_on_a_different_grid(setup):
    spec = setup[2]
    with pytest.raises(ValueError, match="RDF target on a different grid"):
        losses.rdf_loss(CENTRES + 0.003, np.ones(N_BINS), simulate=spec, sigma=0.02)
    with pytest.raises(ValueError, match="RDF target on a different grid"):
        losses.rdf_loss(CENTRES, np.ones(N_BINS), simulate=spec, sigma=0.02, n_bins=40)


def test_msd_target_times_mismatched(setup):
    spec = setup[2]
    t = np.arange(6) * spec.frame_interval
    with pytest.raises(ValueError, match="do not match the trajectory's lag times"):
        losses.msd_loss(t * 1.5, t, simulate=spec)
    with pytest.raises(ValueError, match="same length"):
        losses.msd_loss(t, t[:-1], simulate=spec)
    too_long = losses.msd_loss(np.arange(20) * spec.frame_interval, np.zeros(20), simulate=spec)
    with pytest.raises(ValueError, match="trajectory has only 10 frames"):
        too_long(setup[1], None)


def test_streamed_rdf_equals_recorded_frames(setup):
    """The RDF term summed inside the segments (no frames kept) equals the one read from
    the recorded frames: value and gradient (float64). start_frame = 3 lies inside the
    second 20-step segment, so a mask that ignored it would not match the recorded frames."""
    model, params, spec, _ = setup
    seg = dataclasses.replace(spec, adjoint=simulate.Checkpoint(segment_steps=20))
    loss = losses.rdf_loss(CENTRES, np.ones(N_BINS), simulate=seg, sigma=0.02, start_frame=3)
    term = loss.terms[0][1]
    assert term.observe is not None and seg.streams

    def recorded(p):
        traj = seg(p)
        return term.from_trajectory(traj), traj.positions

    def streamed(p):
        values, traj = losses.evaluate_trajectory_terms([term], p)
        return values[0], (traj.positions, traj.observed)

    (v0, frames), g0 = jax.value_and_grad(recorded, has_aux=True)(params)
    (v1, (last, observed)), g1 = jax.value_and_grad(streamed, has_aux=True)(params)
    print(f"\nrecorded {float(v0):.12g}, streamed {float(v1):.12g}")
    np.testing.assert_allclose(v1, v0, rtol=1e-12)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    # the streamed run keeps only the last frame, the recorded run's last; 7 frames counted
    assert last.shape == (1, *frames.shape[1:])
    np.testing.assert_allclose(last[0], frames[-1], rtol=0, atol=1e-12)
    assert float(observed[0][1]) == frames.shape[0] - 3
    with pytest.raises(ValueError, match=r"start_frame \(10\) must lie in \[0, 9\]"):
        losses.rdf_loss(CENTRES, np.ones(N_BINS), simulate=seg, sigma=0.02, start_frame=10)


def test_streamed_remat_in_groups_equals_per_segment_checkpoints(setup, monkeypatch):
    """Streamed remat (one custom_vjp keeping every g-th segment start, the groups rerun
    in the backward pass) gives the per-segment checkpoint path's value and gradient
    (float64). Five 20-step segments in groups of 3 (at most 2 kept starts): the
    backward pass reruns a full and a partial group."""
    from cgjax.simulate import _differentiable

    model, params, spec, _ = setup
    kw = dict(sigma=0.02, start_frame=3)

    def value_and_grad(adjoint):
        seg = dataclasses.replace(spec, adjoint=adjoint)
        loss = losses.rdf_loss(CENTRES, np.ones(N_BINS), simulate=seg, **kw)
        return jax.value_and_grad(lambda p: loss(p, None))(params)

    v0, g0 = value_and_grad(simulate.Checkpoint(segment_steps=20))  # per-segment path
    calls = []
    grouped = _differentiable._streamed_group_checkpoints
    monkeypatch.setattr(_differentiable, "_SNAPSHOTS", 2)
    monkeypatch.setattr(_differentiable, "_streamed_group_checkpoints",
                        lambda *a: calls.append(1) or grouped(*a))  # fmt: skip
    v1, g1 = value_and_grad(simulate.Checkpoint(segment_steps=20, remat=True))
    assert calls, "the streamed remat run should take the grouped path"
    np.testing.assert_allclose(v1, v0, rtol=1e-12)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_rdf_frame_sum_in_blocks_equals_rdf_smooth():
    """Summing rdf_smooth_frame_sum over blocks and dividing by the weights is rdf_smooth."""
    from cgjax import observables

    R = jax.random.uniform(jax.random.key(3), (5, 40, 3), jnp.float64) * 1.2
    kw = dict(r_max=0.6, n_bins=12, sigma=0.03)
    whole = observables.rdf_smooth(R[1:], 1.2, **kw).g
    w = jnp.asarray([0.0, 1.0, 1.0, 1.0, 1.0])
    blocks = observables.rdf_smooth_frame_sum(R[:2], w[:2], 1.2, **kw) + \
        observables.rdf_smooth_frame_sum(R[2:], w[2:], 1.2, **kw)  # fmt: skip
    np.testing.assert_allclose(blocks / w.sum(), whole, rtol=1e-12)
    with pytest.raises(ValueError, match=r"frame_weights must have shape \[2\]"):
        observables.rdf_smooth_frame_sum(R[:2], w, 1.2, **kw)
