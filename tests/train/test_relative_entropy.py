"""Relative entropy minimisation: recovers an LJ fluid's sigma and epsilon from its own samples.

In a dense liquid the structure is set mostly by the repulsive wall, so REM
pins sigma far better than epsilon. In (ln eps, ln sigma) the Fisher
information of one frame is beta^2 Cov(U, W) with W = dU/dln sigma; U and W
are 95 % correlated here (a "strongly correlating" liquid), so epsilon is
informed only by the part of U that W does not explain:
Var(ln eps) = (1/I_ref + 1/I_CG), I = beta^2 Var(U) (1 - rho^2) x independent
frames. Measured on this system (256 atoms, 94.4 K, 20.71 nm^-3; 60000-step
Langevin runs, ``scripts/rem_information.py``): beta^2 Var(U) (1 - rho^2) =
25-26 per frame, decorrelating in 0.49 ps at friction 1/ps (1.0 ps at 5/ps,
1.9 ps at 20/ps), i.e. 26 per ps of sampling, independent of dt from 10 to 20 fs.
The earlier version of this test (64 ps of reference, 4 x 32 ps of CG
samples) therefore had sd(ln eps) ~3 %, and its results (-0.7 %, -6.7 %,
+2.4 % on different machines) were within that noise.

Here: 2000 ps of reference (a frame every 1 ps) and, after a cheap approach
from 8 % / 20 % off, the mean of 4 Newton roots on fresh 500-ps samples:
predicted sd(ln eps) = sqrt(2 / (26 x 2000)) = 0.62 %, so the 2 % bound is ~3.2
standard errors. With 1600 ps and 4 x 400 ps (sd 0.7 %) four references
(different seeds) gave epsilon -1.18 %, +0.69 %, -0.41 % and +0.59 %; sigma
stayed within 0.1 %. This version gave sigma -0.00 %, epsilon -0.07 % (the
file took 286 s on 2 CPU cores). The MD step is 20 fs (dt* = 0.009, twice the usual argon
step): both the reference and the CG model are sampled by the same BAOAB
Langevin integrator, so its discretisation error is the same distribution at
the true parameters and REM's fixed point stays exact.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials, simulate, train, units

QUIET = simulate.Monitor(progress=False)  # runs without progress bars

SIGMA, EPSILON, T = 0.3405, 0.996, 94.4  # argon (nm, kJ/mol, K)
DT, FRICTION = 0.02, 1.0  # ps, 1/ps


@pytest.fixture(scope="module")
def lj_fluid():
    """256 LJ atoms at argon's liquid state point (20.71 nm^-3) and 2000 ps of Langevin samples."""
    R, L = simulate.fcc_lattice(4, 20.71)
    n = R.shape[0]
    box = np.eye(3) * L
    species = np.zeros(n, np.int32)
    lj = potentials.LennardJones(n_species=1, sigma=SIGMA, epsilon=EPSILON, cutoff=0.85,
                                 r_onset=0.8)  # fmt: skip
    system = simulate.System.create(box=box, species=species, masses=np.full(n, 39.948))
    model = potentials.energy_model(lj, system=system)
    R = jnp.asarray(R, jnp.float32)
    p_true = model.init_fn(jax.random.key(0), R)
    nf = model.neighbor_fn(skin=0.1)
    nb = nf.allocate(R)
    # melt the lattice at 4 T (a superheated crystal can survive 100 ps at T)
    hot = simulate.nvt_langevin(model.energy_fn(p_true), system, dt=0.004, kT=4 * units.kB * T,
                                friction=5.0)  # fmt: skip
    out = simulate.run(hot, hot.init_fn(jax.random.key(2), R, neighbor=nb), n_steps=2000,
                       record_every=100, neighbor_fn=nf, neighbor=nb, monitor=QUIET)  # fmt: skip
    sim = simulate.nvt_langevin(model.energy_fn(p_true), system, dt=DT, kT=units.kB * T,
                                friction=FRICTION)  # fmt: skip
    state = sim.init_fn(jax.random.key(1), out.state.position, neighbor=out.neighbor)
    out = simulate.run(sim, state, n_steps=1000, record_every=100, neighbor_fn=nf,
                       neighbor=out.neighbor, monitor=QUIET)  # fmt: skip
    out = simulate.run(sim, out.state, n_steps=100000, record_every=50, neighbor_fn=nf,
                       neighbor=out.neighbor, monitor=QUIET)  # fmt: skip
    assert abs(out.trajectory.temperature.mean() / T - 1) < 0.01  # the 20 fs step holds T
    return model, system, p_true, np.asarray(out.trajectory.positions)


@pytest.mark.slow
def test_recovers_lennard_jones_from_its_own_samples(lj_fluid):
    model, system, p_true, X = lj_fluid
    protocol = simulate.Protocol(temperature=T, dt=DT, thermostat="langevin", friction=FRICTION,
                                 record_every=50, equilibration_steps=500,
                                 production_steps=5000)  # fmt: skip
    # the approach: 8 % and 20 % off, short samplings reused by reweighting
    start = {"sigma": p_true["sigma"] * 1.08, "epsilon": p_true["epsilon"] * 0.8}
    settings = train.REMSettings(n_iterations=8, ess_threshold=0.9, tol=1e-3)
    res = train.relative_entropy(model, start, X, protocol, settings=settings)
    h = res.history
    assert h[0]["values"]["/sigma"] == pytest.approx(SIGMA * 1.08, rel=1e-5)
    # the first iterations resample; near the answer, samples are reused by reweighting
    assert h[0]["resampled"] and h[0]["ess"] == 1.0
    assert any(not it["resampled"] for it in h), [it["ess"] for it in h]
    assert all(it["ess"] >= 0.9 for it in h if not it["resampled"])
    assert res.n_samplings == sum(it["resampled"] for it in h) < len(h)
    # the gradient at the end is small next to the first one
    g0, g1 = (np.abs(list(h[i]["gradient"].values())) for i in (0, -1))
    assert np.all(g1 < 1e-2 * g0)
    # the precision: the mean of 4 Newton roots, each on fresh 500-ps samples
    fine = train.relative_entropy(
        model, res.params, X, protocol.replace(production_steps=25000, seed=1),
        settings=train.REMSettings(n_iterations=1, average_last=4),
    )  # fmt: skip
    assert fine.n_samplings == 4
    sigma = float(fine.params["sigma"][0, 0])
    epsilon = float(fine.params["epsilon"][0, 0])
    coarse = {k: float(res.params[k][0, 0]) for k in ("sigma", "epsilon")}
    print(f"\nREM approach: sigma {coarse['sigma'] / SIGMA - 1:+.2%}, epsilon "
          f"{coarse['epsilon'] / EPSILON - 1:+.2%}; final: sigma {sigma / SIGMA - 1:+.2%}, "
          f"epsilon {epsilon / EPSILON - 1:+.2%}")  # fmt: skip
    assert abs(sigma / SIGMA - 1) < 0.02, sigma
    assert abs(epsilon / EPSILON - 1) < 0.02, epsilon  # ~3.2 standard errors (docstring)


def test_bad_input_is_named(lj_fluid):
    model, system, p_true, X = lj_fluid
    protocol = simulate.Protocol(temperature=T, dt=DT, production_steps=100, record_every=10)
    with pytest.raises(ValueError, match="trainable 'lj'"):
        train.relative_entropy(model, p_true, X, protocol, trainable=("lj",))
    bad = X[:5].copy()
    bad[3, 7, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite values \\(first in frame 3\\)"):
        train.relative_entropy(model, p_true, bad, protocol)
    with pytest.raises(ValueError, match=r"reference_positions must be \[T, 256, 3\]"):
        train.relative_entropy(model, p_true, X[:, :10], protocol)
    with pytest.raises(ValueError, match=r"REMSettings.ess_threshold must be in \(0, 1\]"):
        train.REMSettings(ess_threshold=0.0)


def test_the_trainer_driven_by_fit_sampling_is_relative_entropy(lj_fluid):
    """``relative_entropy`` is its ``(init, update)`` trainer driven by ``fit_sampling``:
    the same updates give the same parameters, and a state goes on where it stopped."""
    model, system, p_true, X = lj_fluid
    protocol = simulate.Protocol(temperature=T, dt=DT, thermostat="langevin", friction=FRICTION,
                                 record_every=20, equilibration_steps=40,
                                 production_steps=200)  # fmt: skip
    start = {"sigma": p_true["sigma"] * 1.05, "epsilon": p_true["epsilon"] * 0.9}
    settings = train.REMSettings(n_iterations=2, ess_threshold=0.5)
    X = X[::20]
    res = train.relative_entropy(model, start, X, protocol, settings=settings)
    trainer = train.relative_entropy_trainer(model, X, protocol, settings=settings)
    lines = []
    first = train.fit_sampling(trainer, start, 1, log=lines.append)
    assert first.state.update == 1 and first.state.n_samplings == 1
    assert lines[0].startswith("REM update 1/1: /epsilon 0.8964") and "(sampled)" in lines[0]
    more = train.fit_sampling(trainer, first.state, 1)  # goes on from the state
    assert more.history[0]["update"] == 1
    for k in ("sigma", "epsilon"):
        np.testing.assert_array_equal(more.params[k], res.params[k])
    assert [h["values"] for h in first.history + more.history] == [h["values"] for h in res.history]
    with pytest.raises(ValueError, match="keep_best: the REM trainer reports no loss"):
        train.fit_sampling(trainer, start, 1, keep_best=True)
