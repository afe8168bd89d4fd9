"""The trajectory runner: recording, overflow-safe neighbor lists, replicas, failures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SIGMA, TEMPERATURE, argon

from cgjax import simulate, units

KT = units.kT(TEMPERATURE)


@pytest.fixture(scope="module")
def small():
    # 108 atoms, 1.73 nm box: a 2 sigma cutoff fits twice with a 0.1 nm skin
    return argon(3, cutoff=2.0 * SIGMA, dtype=jnp.float64)


def test_records_frames_and_unwrapped_positions(small):
    model, params, system, R = small
    nf = model.neighbor_fn(skin=0.1)
    nbrs = nf.allocate(R)
    sim = simulate.nvt_langevin(model.energy_fn(params), system, dt=0.004, kT=4 * KT, friction=1.0)
    state = sim.init_fn(jax.random.key(0), R, neighbor=nbrs)
    res = simulate.run(
        sim,
        state,
        n_steps=600,
        record_every=20,
        monitor=simulate.Monitor(chunk_steps=200),
        neighbor_fn=nf,
        neighbor=nbrs,
    )
    traj = res.trajectory
    assert traj.positions.shape == (30, 108, 3) and traj.unwrapped.shape == (30, 108, 3)
    np.testing.assert_allclose(traj.time, 0.004 * 20 * np.arange(1, 31))
    # wrapped = unwrapped modulo the box
    L = system.box[0, 0]
    d = (traj.unwrapped - traj.positions) / L
    np.testing.assert_allclose(d, np.round(d), atol=1e-9)
    # some atoms crossed the boundary, so the two differ
    assert np.any(np.abs(np.round(d)) > 0)
    # the recorded energy is the potential's energy of the recorded frame
    e = model.energy_fn(params)(jnp.asarray(traj.positions[-1]))
    np.testing.assert_allclose(traj.potential_energy[-1], e, rtol=1e-10)
    # temperature from the recorded velocities (3N - 3 degrees of freedom)
    ke = 0.5 * np.sum(system.masses[:, None] * traj.velocities[-1] ** 2)
    np.testing.assert_allclose(traj.temperature[-1], 2 * ke / ((3 * 108 - 3) * units.kB))


def test_overflow_reallocates_and_reruns(small):
    """A too-small neighbor capacity gives the same trajectory as an ample one."""
    model, params, system, R = small
    energy_fn = model.energy_fn(params)
    # melt the lattice first so the neighbor count grows during the test run
    sim = simulate.nve(energy_fn, system, dt=0.004, kT=2 * KT)
    R0 = R + 0.0  # perfect FCC: every atom has the same, small, neighbor count
    outs = {}
    for name, mult in (("tight", 1.0), ("ample", 3.0)):
        nf = model.neighbor_fn(skin=0.1, capacity_multiplier=mult)
        nbrs = nf.allocate(R0)
        state = sim.init_fn(jax.random.key(3), R0, neighbor=nbrs)
        logs = []
        outs[name] = (
            simulate.run(
                sim,
                state,
                n_steps=300,
                record_every=10,
                monitor=simulate.Monitor(chunk_steps=100, log=logs.append),
                neighbor_fn=nf,
                neighbor=nbrs,
            ),
            logs,
        )
    (tight, logs), (ample, ample_logs) = outs["tight"], outs["ample"]
    assert tight.reallocations, "the tight list should have overflowed"
    assert not ample.reallocations and not ample_logs
    assert "overflowed" in logs[0] and "chunk rerun" in logs[0]
    step, old, new = tight.reallocations[0]
    assert new > old
    np.testing.assert_allclose(tight.trajectory.positions, ample.trajectory.positions, atol=1e-9)
    np.testing.assert_allclose(
        tight.trajectory.potential_energy, ample.trajectory.potential_energy, rtol=1e-9
    )


def test_state_initialised_with_an_overflowed_list_gets_the_full_force(small):
    """``init_fn`` with an overflowed list stores a force that misses pairs; the
    runner reallocates the list and recomputes that force before the first step,
    so the run equals, bit for bit, one initialised with the reallocated list
    (and all pairs to 1e-9 nm; before: off by ~1e-3 nm within 30 frames)."""
    model, params, system, R = small
    sim = simulate.nve(model.energy_fn(params), system, dt=0.004, kT=2 * KT)
    nf = model.neighbor_fn(skin=0.1, capacity_multiplier=0.5)  # overflows at once
    short = nf.allocate(R)
    assert bool(short.did_buffer_overflow)
    key = jax.random.key(3)
    kw = dict(n_steps=300, record_every=10, neighbor_fn=nf)
    logs = []
    monitor = simulate.Monitor(chunk_steps=100, log=logs.append)
    out = simulate.run(sim, sim.init_fn(key, R, neighbor=short), neighbor=short,
                       monitor=monitor, **kw)  # fmt: skip
    full = short
    while bool(full.did_buffer_overflow):  # the runner's rule: +25 % until it fits
        full = nf.allocate(R, at_least=full)
    ref = simulate.run(sim, sim.init_fn(key, R, neighbor=full), neighbor=full,
                       monitor=simulate.Monitor(chunk_steps=100), **kw)  # fmt: skip
    first = len(out.reallocations) - len(ref.reallocations)  # those before the first step
    assert [r[0] for r in out.reallocations[:first]] == [0] * first
    assert out.reallocations[first - 1][2] == full.idx.shape[-1]
    assert out.reallocations[first:] == ref.reallocations
    for name in ("positions", "velocities", "potential_energy"):
        np.testing.assert_array_equal(getattr(out.trajectory, name), getattr(ref.trajectory, name))
    every = simulate.run(sim, sim.init_fn(key, R), n_steps=300, record_every=10)
    np.testing.assert_allclose(out.trajectory.positions, every.trajectory.positions, atol=1e-9)
    assert "had overflowed" in logs[0] and "force recomputed" in logs[0]


def test_replicas_run_vmapped_and_match_single_runs(small):
    model, params, system, R = small
    nf = model.neighbor_fn(skin=0.1)
    sim = simulate.nve(model.energy_fn(params), system, dt=0.004, kT=KT)
    Rb = jnp.stack([R, R])
    states, nbrs = simulate.init_replicas(sim, jax.random.key(7), Rb, neighbor_fn=nf)
    res = simulate.run(sim, states, n_steps=100, record_every=10, neighbor_fn=nf, neighbor=nbrs)
    assert res.trajectory.positions.shape == (2, 10, 108, 3)
    # velocities differ between replicas
    assert not np.allclose(res.trajectory.velocities[0], res.trajectory.velocities[1])
    keys = jax.random.split(jax.random.key(7), 2)
    nb1 = nf.allocate(R)
    one = simulate.run(
        sim,
        sim.init_fn(keys[1], R, neighbor=nb1),
        n_steps=100,
        record_every=10,
        neighbor_fn=nf,
        neighbor=nb1,
    )
    np.testing.assert_allclose(res.trajectory.positions[1], one.trajectory.positions, atol=1e-9)


def test_explosion_stops_with_the_step(small):
    model, params, system, R = small
    nf = model.neighbor_fn(skin=0.1)
    nbrs = nf.allocate(R)
    sim = simulate.nve(model.energy_fn(params), system, dt=0.2, kT=KT)  # 100x too large
    state = sim.init_fn(jax.random.key(0), R, neighbor=nbrs)
    with pytest.raises(simulate.SimulationError, match=r"stopped at step \d+") as info:
        simulate.run(
            sim,
            state,
            n_steps=200,
            record_every=10,
            monitor=simulate.Monitor(chunk_steps=50),
            neighbor_fn=nf,
            neighbor=nbrs,
        )
    err = info.value
    assert 1 <= err.step <= 200
    assert err.last_good_state is not None
    assert np.all(np.isfinite(np.asarray(err.last_good_state.position)))
    assert err.trajectory.n_frames == 50 * ((err.step - 1) // 50) // 10


def test_bad_inputs_are_named(small):
    model, params, system, R = small
    with pytest.raises(ValueError, match=r"masses must have shape \[N\] = \[108\]"):
        simulate.System.create(box=system.box, species=system.species, masses=np.ones(107))
    with pytest.raises(ValueError, match="masses must be positive"):
        simulate.System.create(box=system.box, species=system.species, masses=np.zeros(108))
    sim = simulate.nve(model.energy_fn(params), system, dt=0.004, kT=KT)
    bad = np.array(R)
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        sim.init_fn(jax.random.key(0), jnp.asarray(bad))
    with pytest.raises(ValueError, match="too small for the cutoff"):
        model.neighbor_fn(skin=0.5)
    with pytest.raises(ValueError, match="dt must be positive"):
        simulate.nve(model.energy_fn(params), system, dt=0.0, kT=KT)
    state = sim.init_fn(jax.random.key(0), R)
    with pytest.raises(ValueError, match="multiple of record_every"):
        simulate.run(sim, state, n_steps=105, record_every=10)
    with pytest.raises(ValueError, match=r"chunk_steps \(15\) must be a multiple of record_every"):
        simulate.run(sim, state, n_steps=100, record_every=10,
                     monitor=simulate.Monitor(chunk_steps=15))  # fmt: skip
    with pytest.raises(TypeError, match="monitor must be a simulate.Monitor"):
        simulate.run(sim, state, n_steps=100, record_every=10, monitor={"progress": False})
    with pytest.raises(ValueError, match="Monitor.chunk_steps must be a positive integer"):
        simulate.Monitor(chunk_steps=0)
    with pytest.raises(ValueError, match=r"Monitor.max_step_displacement must be > 0 \(nm\)"):
        simulate.Monitor(max_step_displacement=-0.1)
    with pytest.raises(ValueError, match="Monitor.max_temperature_factor must be > 0"):
        simulate.Monitor(max_temperature_factor=0.0)


def test_brownian_free_particles_diffuse_at_kT_over_m_gamma():
    """Free Brownian particles: MSD = 6 D t with D = kT / (m gamma), within 3 %."""
    n, mass, gamma, kT, dt = 20000, 10.0, 5.0, 2.5, 0.01
    system = simulate.System.create(box=5.0, species=np.zeros(n, int), masses=mass)
    energy_fn = lambda R, **kw: jnp.zeros((), R.dtype)
    sim = simulate.brownian(energy_fn, system, dt=dt, kT=kT, friction=gamma)
    R = jnp.asarray(np.random.default_rng(0).uniform(0, 5.0, (n, 3)))
    res = simulate.run(sim, sim.init_fn(jax.random.key(0), R), n_steps=400, record_every=100)
    disp = res.trajectory.unwrapped - np.asarray(R)[None]
    msd = np.mean(np.sum(disp**2, -1), -1)
    D = kT / (mass * gamma)
    # 20000 particles: the relative standard error of each MSD point is sqrt(2/3/n) = 0.6 %
    np.testing.assert_allclose(msd / (6 * res.trajectory.time), D, rtol=0.03)


def test_step_kwargs_are_traced_so_one_compile_serves_all_parameters(small):
    """Parameters passed as ``step_kwargs`` give the closure's trajectory, compiled once."""
    model, params, system, R = small
    nf = model.neighbor_fn(skin=0.1)

    def energy(R, *, params=None, neighbor=None, **kw):
        return model.energy_fn(params)(R, neighbor=neighbor)

    traced = simulate.nve(energy, system, dt=0.004, kT=KT)
    n_cached = None
    for scale in (1.0, 1.05):
        p = {**params, "sigma": params["sigma"] * scale}
        nbrs = nf.allocate(R)
        kw = {"params": p}
        out = simulate.run(
            traced, traced.init_fn(jax.random.key(0), R, neighbor=nbrs, **kw), n_steps=100,
            record_every=20, neighbor_fn=nf, neighbor=nbrs, step_kwargs=kw,
        )  # fmt: skip
        closed = simulate.nve(model.energy_fn(p), system, dt=0.004, kT=KT)
        ref = simulate.run(
            closed, closed.init_fn(jax.random.key(0), R, neighbor=nbrs), n_steps=100,
            record_every=20, neighbor_fn=nf, neighbor=nbrs,
        )  # fmt: skip
        np.testing.assert_allclose(out.trajectory.positions, ref.trajectory.positions, atol=1e-12)
        np.testing.assert_allclose(
            out.trajectory.potential_energy, ref.trajectory.potential_energy, rtol=1e-12
        )
        cached = [k for k in simulate._runner._CHUNK_CACHE if k[0] is traced.step_fn]
        if n_cached is None:
            n_cached = len(cached)
        assert len(cached) == n_cached == 1  # the second parameter set reused the chunk
