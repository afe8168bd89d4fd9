"""Liquid argon physics: NVE conservation, thermostats, and Rahman's diffusion coefficient.

One equilibrated 864-atom state is shared by all tests (module fixture), in
float32 with a 2 fs step, as the acceptance criteria state.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TEMPERATURE, argon

from cgjax import observables, simulate, units

pytestmark = pytest.mark.slow

KT = units.kT(TEMPERATURE)
DT = 0.002  # ps


@pytest.fixture(scope="module")
def equilibrated():
    model, params, system, R = argon(6)  # 864 atoms
    nf = model.neighbor_fn(skin=0.1)
    nbrs = nf.allocate(R)
    energy_fn = model.energy_fn(params)
    sim = simulate.nvt_langevin(energy_fn, system, dt=DT, kT=KT, friction=5.0)
    state = sim.init_fn(jax.random.key(0), R, neighbor=nbrs)
    res = simulate.run(sim, state, n_steps=5000, record_every=100, neighbor_fn=nf, neighbor=nbrs)
    return energy_fn, system, nf, res


@pytest.fixture(scope="module")
def nve_run(equilibrated):
    energy_fn, system, nf, eq = equilibrated
    sim = simulate.nve(energy_fn, system, dt=DT, kT=KT)
    s = eq.state
    state = sim.init_fn(jax.random.key(1), s.position, neighbor=eq.neighbor)
    state = state.set(momentum=s.momentum)  # continue the equilibrated velocities
    return simulate.run(
        sim, state, n_steps=30000, record_every=50, neighbor_fn=nf, neighbor=eq.neighbor
    )


def test_nve_energy_drift(nve_run):
    """Total-energy drift below 0.005 kT per atom per ns (linear fit over 60 ps)."""
    traj = nve_run.trajectory
    slope = np.polyfit(traj.time, traj.total_energy, 1)[0]  # kJ/mol/ps
    drift = abs(slope) * 1e3 / 864 / KT  # kT per atom per ns
    print(f"NVE drift {drift:.2e} kT/atom/ns over {traj.time[-1] - traj.time[0]:.0f} ps")
    assert traj.time[-1] - traj.time[0] >= 50.0
    assert drift < 0.005


def test_argon_diffusion_matches_rahman(nve_run):
    """D within 10 % of 2.43e-5 cm^2/s (Rahman 1964), Einstein fit over 2-10 ps."""
    traj = nve_run.trajectory
    dt_frame = traj.time[1] - traj.time[0]
    res = observables.diffusion_from_trajectory(
        traj.unwrapped, dt_frame, fit_window=(2.0, 10.0), n_blocks=3
    )
    D = res.D / units.cm2_per_s
    print(f"D = {D:.3e} +- {res.D_err / units.cm2_per_s:.1e} cm^2/s (Rahman: 2.43e-5)")
    assert D == pytest.approx(2.43e-5, rel=0.10)


@pytest.mark.parametrize("ensemble", ["nose_hoover", "langevin"])
def test_thermostat_mean_temperature(equilibrated, ensemble):
    """Mean temperature within 1 % of the target over 50 ps."""
    energy_fn, system, nf, eq = equilibrated
    if ensemble == "nose_hoover":
        sim = simulate.nvt_nose_hoover(energy_fn, system, dt=DT, kT=KT, tau=0.2)
    else:
        sim = simulate.nvt_langevin(energy_fn, system, dt=DT, kT=KT, friction=1.0)
    state = sim.init_fn(jax.random.key(2), eq.state.position, neighbor=eq.neighbor)
    res = simulate.run(
        sim, state, n_steps=25000, record_every=50, neighbor_fn=nf, neighbor=eq.neighbor
    )
    T = res.trajectory.temperature
    print(f"{ensemble}: <T> = {T.mean():.2f} K (target {TEMPERATURE})")
    assert T.mean() == pytest.approx(TEMPERATURE, rel=0.01)
    assert jnp.isfinite(res.steps_per_second)
