"""Differentiable MD through diffrax: gradients vs finite differences, adjoints, physics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import MASS, argon
from jax_md import simulate as jmd_simulate

from cgjax import observables, potentials, simulate, units
from cgjax.simulate import _differentiable

jax.config.update("jax_enable_x64", True)

KT = 0.785  # kJ/mol, 94.4 K
DT = 0.001  # ps
CUTOFF = 0.5  # nm; 32 atoms fill a 1.156 nm box


@pytest.fixture(scope="module")
def lj():
    model, params, system, R = argon(2, cutoff=CUTOFF, dtype=jnp.float64)
    V0 = simulate.maxwell_boltzmann(jax.random.key(1), system, KT, jnp.float64)
    return model, params, system, R, V0


def _run(model, params, R, V, *, dt=DT, n_steps=100, record_every=10, ensemble="nve",
         kT=KT, tau=0.5, adjoint="checkpoint", window=None, segment_steps=None, skin=None,
         remat=False, neighbor=None):  # fmt: skip
    """simulate_differentiable with its protocol and adjoint objects built from keywords."""
    protocol = simulate.Protocol(
        temperature=kT / units.kB, dt=dt, production_steps=n_steps, record_every=record_every,
        thermostat=ensemble, tau=tau, skin=skin,
    )  # fmt: skip
    adj = {
        "checkpoint": simulate.Checkpoint(segment_steps=segment_steps, remat=remat),
        "backsolve": simulate.Backsolve(segment_steps=segment_steps),
        "truncated": simulate.Truncated(window=window, segment_steps=segment_steps),
    }[adjoint]
    return simulate.simulate_differentiable(model, params, R, V, protocol, adj, neighbor=neighbor)


def _loss_fn(lj, **options):
    """A smooth scalar of the trajectory: the smeared-RDF MSE against g = 1."""
    model, _, system, R, V0 = lj

    def loss(params):
        traj = _run(model, params, R, V0, **options)
        g = observables.rdf_smooth(traj.positions, system.box, r_max=0.55, n_bins=20, sigma=0.02)
        return jnp.mean((g.g - 1.0) ** 2)

    return loss


def _fd(loss, params, name, rel=1e-5):
    h = rel * float(params[name][0, 0])
    shift = lambda d: {**params, name: params[name] + d}
    return (loss(shift(h)) - loss(shift(-h))) / (2 * h)


def _rel(a, b):
    return abs(float(a) - float(b)) / abs(float(b))


# The backsolve adjoint is the gradient of the continuous trajectory, re-integrated
# backwards; the finite differences are of the discrete (Verlet) trajectory. They
# differ by Verlet's O(dt^2) error: over a fixed 0.1 ps the relative difference
# falls from 1.65e-4 (100 steps of 1 fs) to 4.3e-5 (200 steps of 0.5 fs), a factor
# 3.8. These runs are far shorter than an argon vibration period, where positions
# are low-order polynomials in t, so at a fixed number of steps n the difference
# depends on dt / T = 1 / n alone: about 1.6 / n^2 (5.8e-4 at 50 steps, 1.6e-4 at
# 100, 3.5e-5 at 200; test_backsolve_error_vs_length), the same for dt = 1, 0.5
# and 0.25 fs. Backsolve is therefore checked against 1e-4 over 200 steps.
N_BACKSOLVE = 200


@pytest.fixture(scope="module")
def gradients(lj):
    params = lj[1]
    out = {}
    for adjoint, n in (("checkpoint", 100), ("backsolve", N_BACKSOLVE)):
        out[adjoint] = jax.grad(_loss_fn(lj, adjoint=adjoint, n_steps=n))(params)
        loss = _loss_fn(lj, n_steps=n)
        out[adjoint, "fd"] = {name: _fd(loss, params, name) for name in ("sigma", "epsilon")}
    out["checkpoint", N_BACKSOLVE] = jax.grad(_loss_fn(lj, n_steps=N_BACKSOLVE))(params)
    return out


@pytest.mark.parametrize("adjoint", ["checkpoint", "backsolve"])
@pytest.mark.parametrize("name", ["sigma", "epsilon"])
def test_gradient_matches_finite_differences(gradients, adjoint, name):
    g, fd = gradients[adjoint][name][0, 0], gradients[adjoint, "fd"][name]
    print(f"\n{adjoint} d loss/d {name}: {float(g):.8g}, FD {float(fd):.8g}, rel {_rel(g, fd):.2e}")
    assert _rel(g, fd) < 1e-4


def test_adjoints_agree(gradients):
    for name in ("sigma", "epsilon"):
        a, b = gradients["checkpoint", N_BACKSOLVE][name], gradients["backsolve"][name]
        print(f"\nbacksolve vs checkpoint ({N_BACKSOLVE} steps), {name}: rel "
              f"{_rel(b[0, 0], a[0, 0]):.2e}")  # fmt: skip
        np.testing.assert_allclose(b, a, rtol=1e-4)


def test_nose_hoover_gradient_matches_finite_differences(lj):
    loss = _loss_fn(lj, ensemble="nose_hoover", tau=0.05, n_steps=60)
    params = lj[1]
    g = jax.grad(loss)(params)
    for name in ("sigma", "epsilon"):
        fd = _fd(loss, params, name)
        print(f"\nnose_hoover d loss/d {name}: rel {_rel(g[name][0, 0], fd):.2e}")
        assert _rel(g[name][0, 0], fd) < 1e-4


def test_truncated_cuts_gradient_before_window(lj):
    params = lj[1]
    full = jax.grad(_loss_fn(lj, adjoint="truncated"))(params)
    ckpt = jax.grad(_loss_fn(lj))(params)
    cut = jax.grad(_loss_fn(lj, adjoint="truncated", segment_steps=50, window=20))(params)
    # window == segment == whole run: the exact gradient
    np.testing.assert_allclose(full["sigma"], ckpt["sigma"], rtol=1e-10)
    assert np.isfinite(cut["sigma"]).all()
    assert _rel(cut["sigma"][0, 0], ckpt["sigma"][0, 0]) > 1e-3


def test_nve_conserves_energy(lj):
    model, params, system, R, V0 = lj
    traj = _run(model, params, R, V0, n_steps=400)
    energy = model.energy_fn(params)
    pe = jax.vmap(energy)(traj.positions)
    ke = 0.5 * jnp.sum(system.mass_array(jnp.float64)[:, None] * traj.velocities**2, axis=(1, 2))
    total = np.asarray(pe + ke)
    E0 = float(energy(R) + 0.5 * jnp.sum(system.mass_array(jnp.float64)[:, None] * V0**2))
    # Verlet fluctuations scale with dt^2; relative to the kinetic energy (~N kT)
    spread = np.max(np.abs(total - E0)) / float(np.mean(ke))
    print(f"\nNVE max |E - E0| / <KE> over 400 steps: {spread:.2e}")
    assert spread < 1e-3


def test_nve_equals_jax_md(lj):
    model, params, system, R, V0 = lj
    traj = _run(model, params, R, V0, n_steps=50, record_every=1)
    energy = model.energy_fn(params)
    init, step = jmd_simulate.nve(energy, system.shift_fn, DT)
    m = system.mass_array(jnp.float64)
    state = init(jax.random.key(0), R, KT, mass=m)
    state = state.set(momentum=V0 * state.mass)
    step = jax.jit(step)
    L = float(system.box[0, 0])
    worst_R, worst_V = 0.0, 0.0
    for k in range(50):
        state = step(state)
        dR = np.asarray(traj.positions[k]) - np.asarray(state.position)
        dR -= L * np.round(dR / L)  # the same point modulo the box
        worst_R = max(worst_R, float(np.max(np.abs(dR))))
        dV = np.asarray(traj.velocities[k]) - np.asarray(state.momentum / state.mass)
        worst_V = max(worst_V, float(np.max(np.abs(dV))))
    print(f"\nvs jax-md nve over 50 steps: max |dR| {worst_R:.1e} nm, max |dV| {worst_V:.1e} nm/ps")
    assert worst_R < 1e-8 and worst_V < 1e-8  # float64 rounding (jax-md wraps each step)


def test_neighbor_list_segments_match_all_pairs(lj):
    model, params, system, R, V0 = lj
    kw = dict(n_steps=100, record_every=10)
    ref = _run(model, params, R, V0, **kw)
    seg = _run(model, params, R, V0, skin=0.07, segment_steps=20, **kw)
    np.testing.assert_allclose(seg.positions, ref.positions, atol=1e-10)
    np.testing.assert_allclose(seg.time, ref.time)
    # Starting from the last run's list (updated, not allocated again) gives the same
    # trajectory and reuses the compiled segments: no new trace of any of them.
    compiled = list(_differentiable._SEGMENT_CACHE.values())
    sizes = [f._cache_size() for f in compiled]
    n_segments = len(compiled)
    again = _run(model, params, R, V0, skin=0.07, neighbor=seg.neighbor, segment_steps=20, **kw)
    np.testing.assert_allclose(again.positions, seg.positions, atol=1e-12)
    assert [f._cache_size() for f in compiled] == sizes
    assert len(_differentiable._SEGMENT_CACHE) == n_segments  # no new segment function
    with pytest.raises(ValueError, match="neighbor= needs a neighbor list, but protocol.skin"):
        _run(model, params, R, V0, neighbor=seg.neighbor, **kw)
    loss = _loss_fn(lj, skin=0.07, segment_steps=20)
    g_seg = jax.grad(loss)(params)
    g_ref = jax.grad(_loss_fn(lj))(params)
    np.testing.assert_allclose(g_seg["epsilon"], g_ref["epsilon"], rtol=1e-8)
    # segments recomputed in the backward pass = kept residuals (the default)
    remat = _loss_fn(lj, skin=0.07, segment_steps=20, remat=True)
    g_remat = jax.grad(remat)(params)
    np.testing.assert_allclose(g_remat["epsilon"], g_seg["epsilon"], rtol=1e-12)


def test_each_segment_builds_its_own_list():
    """A pair that enters the cutoff two segments after a list was built is not missed.

    Two argon atoms 0.56 nm apart (outside the 0.5 + 0.05 nm list range) close
    in at 2 nm/ps each: 0.02 nm per 10-step segment, inside skin / 2 = 0.025.
    A list updated the lazy (jax-md) way, rebuilt only once an atom has moved
    skin / 2 from where it was built, is not rebuilt before segment 3, and in
    segment 2 the pair reaches 0.48 nm, inside the cutoff, unlisted. Each
    segment builds its list at its start instead, so the trajectory is the
    all-pairs one.
    """
    model32, params, _, _ = argon(2, cutoff=CUTOFF, dtype=jnp.float64)
    L = float(np.asarray(model32.box).reshape(-1)[0])  # 1.156 nm (a cube)
    pot = model32.potential
    system = simulate.System.create(box=L, species=np.zeros(2, np.int32), masses=MASS)
    model = potentials.energy_model(pot, system=system)
    R = jnp.asarray([[0.3, 0.5, 0.5], [0.86, 0.5, 0.5]], jnp.float64)
    V = jnp.asarray([[2.0, 0.0, 0.0], [-2.0, 0.0, 0.0]], jnp.float64)
    kw = dict(n_steps=40, record_every=10)
    ref = _run(model, params, R, V, **kw)
    seg = _run(model, params, R, V, skin=0.05, segment_steps=10, **kw)
    gap = ref.positions[:, 1, 0] - ref.positions[:, 0, 0]
    assert float(gap[1]) < CUTOFF - 0.015  # the pair interacts in segment 2
    assert float(jnp.abs(ref.velocities[1, 0, 0] - 2.0)) > 1e-4  # and it matters
    np.testing.assert_allclose(seg.positions, ref.positions, atol=1e-12)
    np.testing.assert_allclose(seg.velocities, ref.velocities, atol=1e-10)
    # the returned list is the last segment's, built at its start (step 30)
    np.testing.assert_allclose(seg.neighbor.reference_position, ref.positions[2], atol=1e-12)


def test_neighbor_list_overflow_is_reallocated(lj):
    model, params, system, R, V0 = lj
    # no head-room: the list allocated on the lattice overflows once the crystal melts
    tight = model.neighbor_fn(skin=0.07, capacity_multiplier=1.0).allocate(R)
    kw = dict(n_steps=200, record_every=10)
    ref = _run(model, params, R, V0, **kw)
    traj = _run(model, params, R, V0, skin=0.07, neighbor=tight, segment_steps=10, **kw)
    assert traj.reallocations, "the test should provoke an overflow"
    assert all(new > old for _, old, new in traj.reallocations)
    np.testing.assert_allclose(traj.positions, ref.positions, atol=1e-10)


def test_exploding_trajectory_names_the_step(lj):
    model, params, system, R, V0 = lj
    R_bad = R.at[1].set(R[0])  # two atoms on top of each other: infinite force

    def loss(p):
        traj = _run(model, p, R_bad, V0, dt=0.01, n_steps=100)
        return jnp.sum(traj.positions**2)

    with pytest.raises(simulate.SimulationError, match=r"non-finite positions .* by step \d+") as e:
        jax.grad(loss)(params)
    assert e.value.step == 10  # the first recorded frame


@pytest.mark.slow
def test_backsolve_error_vs_length(lj):
    params = lj[1]
    rows = []
    for n in (50, 100, 200, 400):
        a = jax.grad(_loss_fn(lj, n_steps=n))(params)
        b = jax.grad(_loss_fn(lj, n_steps=n, adjoint="backsolve"))(params)
        rows.append(
            (
                n,
                _rel(b["sigma"][0, 0], a["sigma"][0, 0]),
                _rel(b["epsilon"][0, 0], a["epsilon"][0, 0]),
            )
        )
    print("\nsteps  t (ps)  rel err sigma  rel err epsilon  (backsolve vs checkpoint)")
    for n, es, ee in rows:
        print(f"{n:5d}  {n * DT:6.3f}  {es:13.2e}  {ee:15.2e}")
    assert all(max(es, ee) < 1e-3 for _, es, ee in rows)


def test_protocol_and_adjoint_errors_are_named(lj):
    model, params, system, R, V0 = lj
    p = simulate.Protocol(temperature=94.4, dt=DT, production_steps=20, record_every=10, skin=None)
    def run(prot, adj=None):
        adj = simulate.Checkpoint() if adj is None else adj
        return simulate.simulate_differentiable(model, params, R, V0, prot, adj)

    with pytest.raises(ValueError, match="deterministic: protocol.thermostat must be 'nve' or"):
        run(p.replace(thermostat="langevin"))
    with pytest.raises(ValueError, match="production only, but protocol.equilibration_steps = 10"):
        run(p.replace(equilibration_steps=10))
    with pytest.raises(ValueError, match=r"Checkpoint.segment_steps \(15\) must be a positive "
                                         r"multiple of protocol.record_every \(10\)"):  # fmt: skip
        run(p, simulate.Checkpoint(segment_steps=15))
    with pytest.raises(ValueError, match=r"Truncated.window \(30\) must be"):
        run(p, simulate.Truncated(window=30, segment_steps=20))
    with pytest.raises(TypeError, match="adjoint must be simulate.Checkpoint"):
        run(p, "checkpoint")


def test_sample_with_an_adjoint_equilibrates_then_differentiates(lj):
    """sample(adjoint=...): the equilibration is the jax-md run (not differentiated), the
    production is simulate_differentiable from its end; continuing from a Sample
    equals one longer differentiable run."""
    model, params, system, R, _ = lj
    p = simulate.Protocol(temperature=94.4, dt=DT, equilibration_steps=20, production_steps=20,
                          record_every=10, thermostat="nve", skin=None, seed=5)  # fmt: skip
    out = simulate.sample(model, params, R, p, adjoint=simulate.Checkpoint(),
                          progress=False)  # fmt: skip
    eq = simulate.sample(model, params, R, p.replace(equilibration_steps=0, production_steps=20),
                         progress=False)  # fmt: skip
    V_eq = eq.state.momentum / eq.state.mass
    direct = _run(model, params, eq.state.position, V_eq, n_steps=40,
                  record_every=10)  # fmt: skip
    np.testing.assert_allclose(out.trajectory.positions, direct.positions[:2], atol=1e-10)
    more = simulate.sample(model, params, out, p.replace(equilibration_steps=0),
                           adjoint=simulate.Checkpoint())  # fmt: skip
    np.testing.assert_allclose(more.trajectory.positions, direct.positions[2:], atol=1e-10)
    assert isinstance(out.trajectory, simulate.DiffTrajectory) and out.simulator is None

    def loss(q):
        s = simulate.sample(model, q, R, p, adjoint=simulate.Checkpoint(),
                            progress=False)  # fmt: skip
        return jnp.sum(s.trajectory.positions[-1] ** 2)

    def production_only(q):  # the equilibrated start held fixed
        traj = _run(model, q, eq.state.position, V_eq, n_steps=20)
        return jnp.sum(traj.positions[-1] ** 2)

    # the gradient is the production's: the equilibration is not differentiated
    g = jax.grad(loss)(params)
    fd = _fd(production_only, params, "epsilon")
    assert _rel(g["epsilon"][0, 0], fd) < 1e-4
    fd_all = _fd(loss, params, "epsilon")  # moves the equilibrated start too
    assert _rel(g["epsilon"][0, 0], fd_all) > 1e-2
