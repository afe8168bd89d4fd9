"""Trajectory matching (train.trajectory_matching + fit_sampling) against the same steps by hand.

32 LJ argon atoms, all pairs, float64: the trainer's first update is
``value_and_grad`` of the loss on the spec's trajectory followed by the
optimizer's step; the next update starts where that trajectory ended; frozen
subtrees do not move; ``fit_sampling`` keeps the parameters with the lowest
measured loss and the end of the trajectory that measured them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cgjax import losses, potentials, simulate, train, units

jax.config.update("jax_enable_x64", True)

KT = 0.785  # kJ/mol
R_MAX, N_BINS = 0.55, 20  # nm
CENTRES = (np.arange(N_BINS) + 0.5) * R_MAX / N_BINS


@pytest.fixture(scope="module")
def setup():
    sigma, mass = 3.405 * units.angstrom, 39.948
    R, L = simulate.fcc_lattice(2, 1.374 * units.g_per_cm3 / mass)
    species = np.zeros(len(R), np.int32)
    lj = potentials.LennardJones(sigma=sigma, epsilon=119.8 * units.kB, cutoff=0.5,
                                 r_onset=0.5 - 0.2 * sigma, param_dtype=jnp.float64)  # fmt: skip
    prior = potentials.SoftRepulsion(sigma=0.25, cutoff=0.5, param_dtype=jnp.float64)
    system = simulate.System.create(box=L, species=species, masses=mass)
    model = potentials.energy_model(potentials.sum_of(lj=lj, prior=prior), system=system)
    R = jnp.asarray(R, jnp.float64)
    params = model.init_fn(jax.random.key(0), R)
    V0 = simulate.maxwell_boltzmann(jax.random.key(1), system, KT, jnp.float64)
    protocol = simulate.Protocol(temperature=KT / units.kB, dt=0.002, production_steps=40,
                                 record_every=10, thermostat="nose_hoover", tau=0.1,
                                 skin=None)  # fmt: skip
    spec = simulate.TrajectorySpec(model, R, V0, protocol)
    loss = losses.rdf_loss(CENTRES, np.full(N_BINS, 1.0), simulate=spec, sigma=0.02)
    return model, params, spec, loss


def test_updates_equal_the_steps_by_hand(setup):
    model, params, spec, loss = setup
    opt = optax.adam(1e-3)
    trainer = train.trajectory_matching(loss, opt, frozen=("prior",))
    state = trainer.init(params)
    state1, m1 = trainer.update(state)
    # by hand: the loss of the spec's trajectory, its gradient, Adam on "lj" only
    value, grads = jax.value_and_grad(lambda p: loss(p, None))(params)
    assert m1["loss"] == pytest.approx(float(value), rel=1e-12)
    assert m1["grad_norm"] == pytest.approx(float(optax.tree.norm(grads["lj"])), rel=1e-10)
    upd, _ = opt.update(grads["lj"], opt.init(params["lj"]), params["lj"])
    lj = optax.apply_updates(params["lj"], upd)
    for k in lj:
        np.testing.assert_allclose(state1.params["lj"][k], lj[k], rtol=1e-10)
    for k in params["prior"]:  # frozen
        np.testing.assert_array_equal(state1.params["prior"][k], params["prior"][k])
    # the next trajectory starts where this one ended
    traj = spec(params)
    np.testing.assert_allclose(state1.positions, traj.positions[-1], atol=1e-12)
    np.testing.assert_allclose(state1.velocities, traj.velocities[-1], atol=1e-12)
    state2, m2 = trainer.update(state1)
    nxt = simulate.TrajectorySpec(model, traj.positions[-1], traj.velocities[-1], spec.protocol)
    again = losses.rdf_loss(CENTRES, np.full(N_BINS, 1.0), simulate=nxt, sigma=0.02)
    assert m2["loss"] == pytest.approx(float(again(state1.params, None)), rel=1e-12)
    assert state2.update == 2


def test_fit_keeps_the_best_measured_parameters(setup):
    _, params, _, loss = setup
    lines = []
    fit = train.fit_sampling(train.trajectory_matching(loss, optax.adam(3e-2)), params, 3,
                             keep_best=True, log=lines.append)  # fmt: skip
    losses_ = [h["loss"] for h in fit.history]
    k = int(np.argmin(losses_))
    assert fit.kept_update == k and fit.kept_loss == losses_[k]
    assert len(lines) == 4 and lines[0].startswith("trajectory update 1/3: loss")
    assert "min left" in lines[1] and lines[-1].startswith("trajectory: kept")
    last = train.fit_sampling(train.trajectory_matching(loss, optax.adam(3e-2)), params, 3)
    assert last.kept_update is None
    np.testing.assert_allclose(last.params["lj"]["sigma"], fit.state.params["lj"]["sigma"])


def test_a_loss_without_one_trajectory_spec_is_refused(setup):
    model, _, spec, loss = setup
    fm = losses.force_matching_loss(model)
    with pytest.raises(ValueError, match="needs a Loss whose terms are all trajectory terms"):
        train.trajectory_matching(fm + loss, optax.adam(1e-3))
    broken = train.trajectory_matching(loss * float("nan"), optax.adam(1e-3))
    with pytest.raises(train.TrainingDiverged, match=r"update 1: the loss \(nan\) or its"):
        broken.update(broken.init(setup[1]))
    with pytest.raises(ValueError, match="n_updates must be >= 1"):
        train.fit_sampling(train.trajectory_matching(loss, optax.adam(1e-3)), {}, 0)
