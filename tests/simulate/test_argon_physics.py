"""Liquid argon physics: NVE conservation, thermostats, and Rahman's diffusion coefficient.

One equilibrated 864-atom liquid is shared by all tests (module fixture), in
float32 with a 2 fs step, as the acceptance criteria state. The FCC start is
melted at 2T before equilibrating at T: without it a 10 ps equilibration
leaves crystalline order and D comes out ~10 % low.
"""

import jax
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
    hot = simulate.nvt_langevin(energy_fn, system, dt=DT, kT=2 * KT, friction=5.0)
    melt = simulate.run(
        hot,
        hot.init_fn(jax.random.key(0), R, neighbor=nbrs),
        n_steps=2500,
        record_every=100,
        neighbor_fn=nf,
        neighbor=nbrs,
    )
    sim = simulate.nvt_langevin(energy_fn, system, dt=DT, kT=KT, friction=5.0)
    res = simulate.run(
        sim, melt.state, n_steps=5000, record_every=100, neighbor_fn=nf, neighbor=melt.neighbor
    )
    return energy_fn, system, nf, res


@pytest.fixture(scope="module")
def nose_hoover_run(equilibrated):
    """80 ps of Nose-Hoover chain NVT (tau = 0.5 ps), used for <T> and for D."""
    energy_fn, system, nf, eq = equilibrated
    sim = simulate.nvt_nose_hoover(energy_fn, system, dt=DT, kT=KT, tau=0.5)
    state = sim.init_fn(jax.random.key(2), eq.state.position, neighbor=eq.neighbor)
    return simulate.run(
        sim, state, n_steps=40000, record_every=50, neighbor_fn=nf, neighbor=eq.neighbor
    )


def test_nve_energy_drift(equilibrated):
    """Total-energy drift below 0.005 kT per atom per ns (linear fit over 52 ps)."""
    energy_fn, system, nf, eq = equilibrated
    sim = simulate.nve(energy_fn, system, dt=DT, kT=KT)
    state = sim.init_fn(jax.random.key(1), eq.state.position, neighbor=eq.neighbor)
    state = state.set(momentum=eq.state.momentum)  # continue the equilibrated velocities
    res = simulate.run(
        sim, state, n_steps=26000, record_every=50, neighbor_fn=nf, neighbor=eq.neighbor
    )
    traj = res.trajectory
    slope = np.polyfit(traj.time, traj.total_energy, 1)[0]  # kJ/mol/ps
    drift = abs(slope) * 1e3 / 864 / KT  # kT per atom per ns
    print(
        f"NVE drift {drift:.2e} kT/atom/ns over {traj.time[-1] - traj.time[0]:.0f} ps, "
        f"{res.steps_per_second:.0f} steps/s"
    )
    assert traj.time[-1] - traj.time[0] >= 50.0
    assert drift < 0.005


def test_argon_diffusion_matches_rahman(nose_hoover_run):
    """D within 10 % of 2.43e-5 cm^2/s (Rahman 1964), Einstein fit over 2-10 ps, NVT."""
    traj = nose_hoover_run.trajectory
    dt_frame = traj.time[1] - traj.time[0]
    res = observables.diffusion_from_trajectory(
        traj.unwrapped, dt_frame, fit_window=(2.0, 10.0), n_blocks=4
    )
    D = float(res.D) / units.cm2_per_s
    err = float(res.D_err) / units.cm2_per_s
    print(
        f"D = {D:.3e} +- {err:.1e} cm^2/s at <T> = {traj.temperature.mean():.2f} K "
        "(Rahman: 2.43e-5)"
    )
    assert D == pytest.approx(2.43e-5, rel=0.10)


def test_nose_hoover_mean_temperature(nose_hoover_run):
    """Mean temperature within 1 % of the target over 80 ps."""
    T = nose_hoover_run.trajectory.temperature
    print(f"Nose-Hoover: <T> = {T.mean():.2f} K (target {TEMPERATURE})")
    assert T.mean() == pytest.approx(TEMPERATURE, rel=0.01)


def test_langevin_mean_temperature(equilibrated):
    """Mean temperature within 1 % of the target over 50 ps."""
    energy_fn, system, nf, eq = equilibrated
    sim = simulate.nvt_langevin(energy_fn, system, dt=DT, kT=KT, friction=1.0)
    state = sim.init_fn(jax.random.key(3), eq.state.position, neighbor=eq.neighbor)
    res = simulate.run(
        sim, state, n_steps=25000, record_every=50, neighbor_fn=nf, neighbor=eq.neighbor
    )
    T = res.trajectory.temperature
    print(f"Langevin: <T> = {T.mean():.2f} K (target {TEMPERATURE})")
    assert T.mean() == pytest.approx(TEMPERATURE, rel=0.01)
