"""Pressure from the strain derivative: the pair-virial formula, dU/dV by finite
differences of scaled coordinates (for LJ and a message-passing network), the
ideal gas, and the trajectory average against the per-frame values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import observables, potentials, units
from cgjax.potentials._cutoff import smooth_switch

SIGMA, EPS, RC, ONSET = 0.3405, 0.996, 0.8, 0.7  # argon-like LJ (nm, kJ/mol)


def _fcc(n_cells, density, jitter, seed):
    from cgjax import simulate

    R, L = simulate.fcc_lattice(n_cells, density)
    rng = np.random.default_rng(seed)
    return R + jitter * rng.uniform(-1, 1, R.shape), L


@pytest.fixture(scope="module")
def lj():
    R, L = _fcc(3, 20.7, 0.03, 0)  # 108 atoms, argon's liquid density (nm^-3)
    term = potentials.LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=RC, r_onset=ONSET,
                                   param_dtype=jnp.float64)  # fmt: skip
    model = potentials.energy_model(term, species=np.zeros(len(R), np.int32), box=np.full(3, L))
    params = model.init_fn(jax.random.key(0), jnp.asarray(R))
    return model, params, jnp.asarray(R, jnp.float64), L


def _scaled_energy_fd(energy, R, L, h=1e-5):
    """``W = -3 V dU/dV`` by central differences of ``U`` under scaled coordinates (float64)."""
    up = energy(R * (1 + h), box=jnp.eye(3) * L * (1 + h))
    dn = energy(R * (1 - h), box=jnp.eye(3) * L * (1 - h))
    V = L**3
    dUdV = (up - dn) / (V * ((1 + h) ** 3 - (1 - h) ** 3))
    return float(-3.0 * V * dUdV)


def test_lj_virial_equals_pair_formula_and_volume_derivative(lj):
    model, params, R, L = lj
    energy = model.energy_fn(params)
    W = float(observables.virial(energy, R, L))
    # -sum_{i<j} r U'(r), U' of the switched LJ kernel by jax.grad of the scalar pair function
    i, j = np.triu_indices(len(R), 1)
    d = np.asarray(R)[j] - np.asarray(R)[i]
    d -= L * np.round(d / L)
    r = np.linalg.norm(d, axis=1)
    r = r[r < RC]
    u = lambda x: potentials.lennard_jones(x, SIGMA, EPS) * smooth_switch(x, ONSET, RC)  # noqa: E731
    W_pair = float(-np.sum(r * np.asarray(jax.vmap(jax.grad(u))(jnp.asarray(r)))))
    assert W == pytest.approx(W_pair, rel=1e-10)
    assert W == pytest.approx(_scaled_energy_fd(energy, R, L), rel=1e-7)
    # the neighbor-list path gives the same
    nb = model.neighbor_fn(skin=0.0).allocate(R)
    assert float(observables.virial(energy, R, L, neighbor=nb)) == pytest.approx(W, rel=1e-10)


def test_message_passing_virial_equals_volume_derivative():
    R, L = _fcc(2, 20.7, 0.03, 1)  # 32 atoms
    net = potentials.SchNet(n_species=1, embed_dim=8, n_filters=6, n_interactions=2, n_rbf=8,
                            cutoff=0.5, output_features=(5,), param_dtype=jnp.float64)  # fmt: skip
    model = potentials.energy_model(net, species=np.zeros(len(R), np.int32), box=np.full(3, L))
    R = jnp.asarray(R, jnp.float64)
    params = model.init_fn(jax.random.key(3), R)
    params = jax.tree.map(lambda x: x * 1.5 + 0.05, params)  # no zero biases
    energy = model.energy_fn(params)
    W = float(observables.virial(energy, R, L))
    assert abs(W) > 1e-3
    assert W == pytest.approx(_scaled_energy_fd(energy, R, L, h=1e-6), rel=1e-6)


def test_ideal_gas_and_kinetic_term(lj):
    model, params, R, L = lj
    zero = jax.tree.map(jnp.zeros_like, params)  # epsilon = 0: no interactions
    kT = units.kB * 94.4
    P = float(observables.instantaneous_pressure(model.energy_fn(zero), R, L, kT=kT))
    assert P == pytest.approx(len(R) * kT / L**3 / units.bar, rel=1e-12)
    K = 1.5 * len(R) * kT
    P_k = float(observables.instantaneous_pressure(model.energy_fn(zero), R, L, kinetic_energy=K))
    assert P_k == pytest.approx(P, rel=1e-12)
    with pytest.raises(ValueError, match="exactly one of kT= and kinetic_energy="):
        observables.instantaneous_pressure(model.energy_fn(zero), R, L)
    with pytest.raises(ValueError, match="box is None"):
        observables.virial(model.energy_fn(zero), R, None)


def test_trajectory_average_and_gradient(lj):
    model, params, R, L = lj
    rng = np.random.default_rng(5)
    X = np.asarray(R)[None] + 0.01 * rng.normal(size=(6,) + R.shape)
    kT = units.kB * 94.4
    res = observables.pressure(model, params, X, kT=kT, n_blocks=3)
    energy = model.energy_fn(params)
    each = [float(observables.instantaneous_pressure(energy, x, L, kT=kT)) for x in X]
    np.testing.assert_allclose(res.per_frame, each, rtol=1e-9)
    assert res.mean == pytest.approx(np.mean(each), rel=1e-9)
    assert np.isfinite(res.sem) and res.sem > 0
    # d P / d epsilon: the virial is linear in epsilon
    g = jax.grad(lambda p: observables.instantaneous_pressure(model.energy_fn(p), R, L, kT=kT))(
        params
    )
    P_virial = float(observables.virial(energy, R, L)) / (3 * L**3) / units.bar
    assert float(g["epsilon"].sum()) == pytest.approx(P_virial / EPS, rel=1e-8)
    with pytest.raises(ValueError, match=r"positions must be \[T, 108, 3\]"):
        observables.pressure(model, params, X[:, :10], kT=kT)


def test_lj_tail_correction_closed_form():
    # at rc = 2.5 sigma, rho* = 0.8, eps = 1, sigma = 1: P* = 16/3 pi 0.64 (2/3 x^9 - x^3)
    x3 = 1 / 2.5**3
    expected = 16 / 3 * np.pi * 0.64 * (2 / 3 * x3**3 - x3)
    assert observables.lj_tail_pressure(1.0, 1.0, 2.5, 0.8) * units.bar == pytest.approx(expected)


def test_shipped_argon_virial_equals_openmm_volume_derivative():
    """The shipped argon frames with their own force field (3.3 sigma cutoff switched from
    3.0 sigma): cgjax's strain-derivative virial equals ``-3 V dU/dV`` of OpenMM's energy
    (Reference platform, double precision) by central differences of scaled coordinates."""
    pytest.importorskip("openmm", reason="OpenMM (the 'reference' extra) is not installed")
    from openmm import Vec3, unit

    from cgjax import datasets, reference
    from cgjax._space import wrap

    with np.load(str(datasets.path("argon_864"))) as d:  # one frame; Frames.load wraps all 500
        box = np.asarray(d["box"], np.float64)
        R = wrap(np.asarray(d["positions"][-1], np.float64), box)
    L = float(box[0, 0])
    sigma, eps = 3.405 * units.angstrom, 119.8 * units.kB
    rc, rs = 3.3 * sigma, 3.0 * sigma
    ctx, _ = reference.lj_fluid_context(R, L, sigma=sigma, epsilon=eps, mass=39.948, cutoff=rc,
                                        switch=rs, platform="Reference")  # fmt: skip

    def u_omm(s):
        ctx.setPeriodicBoxVectors(Vec3(L * s, 0, 0), Vec3(0, L * s, 0), Vec3(0, 0, L * s))
        ctx.setPositions(R * s * unit.nanometer)
        e = ctx.getState(getEnergy=True).getPotentialEnergy()
        return e.value_in_unit(unit.kilojoule_per_mole)

    h = 1e-5
    W_omm = -(u_omm(1 + h) - u_omm(1 - h)) / (2 * h)
    term = potentials.LennardJones(sigma=sigma, epsilon=eps, cutoff=rc, r_onset=rs,
                                   param_dtype=jnp.float64)  # fmt: skip
    model = potentials.energy_model(term, species=np.zeros(len(R), np.int32), box=np.full(3, L))
    R = jnp.asarray(R)
    nb = model.neighbor_fn(skin=0.0).allocate(R)
    params = model.init_fn(jax.random.key(0), R, neighbor=nb)
    W = float(observables.virial(model.energy_fn(params), R, L, neighbor=nb))
    assert abs(W) > 100.0
    assert W == pytest.approx(W_omm, rel=1e-6)
