"""Validation by simulation on the shipped OpenMM argon: the true LJ reproduces the
reference structure, a wrong sigma is caught, and an exploding start is reported."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import datasets, potentials, simulate

pytestmark = pytest.mark.slow

EPSILON = 0.9960726216547582  # kJ/mol, 119.8 K (the generator's argon)
SETTINGS = dict(rdf_r_max=1.0, adf_cutoff=0.5, q_cutoff=0.5, q_switch=0.45)


@pytest.fixture(scope="module")
def argon():
    frames = datasets.load("argon_864", wrapped=True)
    ref = simulate.structure(frames.positions, frames.box, max_frames=100, **SETTINGS)
    species = np.zeros(frames.n_particles, np.int32)
    system = simulate.System.create(box=frames.box, species=species, masses=frames.masses)
    return frames, ref, species, system


def validate(argon, sigma, *, nve_steps=1000, R0=None):
    frames, ref, species, system = argon
    # The generator's NonbondedForce: cutoff 3.3 sigma, switched from 3.0 sigma.
    pot = potentials.LennardJones(sigma=sigma, epsilon=EPSILON, cutoff=1.12365, r_onset=1.0215)
    model = potentials.energy_model(pot, system=system)
    R0 = jnp.asarray(frames.positions[-1] if R0 is None else R0)
    params = model.init_fn(jax.random.key(0), R0)
    protocol = simulate.Protocol(temperature=94.4, dt=0.004, equilibration_steps=500,
                                 production_steps=2500, record_every=25)  # fmt: skip
    return simulate.validate_by_simulation(model, params, ref, R0, protocol,
                                           nve_steps=nve_steps, progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def matched(argon):
    return validate(argon, 0.3405)


def test_true_potential_reproduces_reference(matched, tmp_path):
    s = matched.summary()
    print({k: v for k, v in s.items() if not isinstance(v, dict)})
    assert matched.stable and s["error"] is None
    # Sampling noise of 10 ps vs 100 ps of 864 atoms: measured 0.059 A, 0.006.
    assert s["rdf_tae_A"] < 0.15
    assert s["adf_tae"] < 0.02
    assert s["q4_mean_cg"] == pytest.approx(s["q4_mean_ref"], rel=0.03)
    assert s["q6_mean_cg"] == pytest.approx(s["q6_mean_ref"], rel=0.03)
    assert s["temperature_mean_K"] == pytest.approx(94.4, rel=0.03)
    # sigma = 0.34 nm: nothing closer than ~0.85 sigma at 94 K.
    assert 0.27 < s["min_pair_distance_nm"] < 0.34
    assert s["nve_drift_kT_per_bead_per_ns"] < 0.01  # 4 fs step, float32
    assert s["simulated_ps"] == {"equilibration": 2.0, "production": 10.0, "nve": 4.0}
    png = matched.plot(str(tmp_path / "structure.png"))
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_wrong_sigma_is_caught(argon, matched):
    wrong = validate(argon, 0.36, nve_steps=0)
    print(f"RDF TAE {wrong.rdf_tae_A:.3f} A vs {matched.rdf_tae_A:.3f} A")
    assert wrong.stable  # stable but wrong: structure tells
    assert wrong.rdf_tae_A > 8 * matched.rdf_tae_A
    assert wrong.adf_tae > 5 * matched.adf_tae
    assert np.isnan(wrong.nve_drift)


def test_exploding_start_is_reported_not_raised(argon):
    frames = argon[0]
    R = np.array(frames.positions[-1])
    R[1] = R[0] + np.array([0.03, 0.0, 0.0], R.dtype)  # r = 0.09 sigma: E ~ 1e12 kJ/mol
    report = validate(argon, 0.3405, R0=R)
    assert not report.stable
    assert report.error.startswith("equilibration:")
    assert "step" in report.error
    assert report.structure is None and np.isnan(report.rdf_tae_nm)


def test_min_pair_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    box = np.array([1.0, 1.3, 1.7])
    R = rng.uniform(0, 1, (3, 20, 3)) * box
    d = R[:, :, None] - R[:, None]
    d -= box * np.round(d / box)
    r = np.linalg.norm(d, axis=-1) + np.where(np.eye(20, dtype=bool), np.inf, 0.0)
    assert simulate.min_pair_distance(R, box) == pytest.approx(r.min(), rel=1e-6)
