"""Free-energy surfaces, paper 001's metrics and the noise baseline."""

import numpy as np
import pytest

from cgjax import observables, potentials, units

# paper 001's beads of the shipped ACE-ALA-NME structure (nm)
ALA = 0.1 * np.array(
    [
        [3.427, 2.641, 0.000],
        [3.555, 3.970, 0.000],
        [4.853, 4.614, 0.000],
        [4.713, 6.129, 0.000],
        [5.846, 6.835, 0.000],
        [5.661, 4.221, -1.232],
    ]
)


def test_ramachandran_of_the_planar_start_structure():
    # all backbone beads of the PDB lie in z = 0: phi and psi are 0 or 180 deg
    phi, psi = np.rad2deg(observables.ramachandran(ALA[None])[0])
    assert min(abs(phi), 180 - abs(phi)) < 1e-6 and min(abs(psi), 180 - abs(psi)) < 1e-6


def test_collinear_beads_raise_a_named_error():
    R = ALA[None].copy()
    R[0, 3] = R[0, 2] + (R[0, 2] - R[0, 1])  # N, CA, C collinear
    with pytest.raises(potentials.CollinearTorsionError):
        observables.ramachandran(R)


def test_free_energy_of_a_known_histogram():
    # 3 : 1 populations in two bins: F differs by kT ln 3
    a = np.concatenate([np.full(300, -2.0), np.full(100, 1.0)])
    f = observables.free_energy_surface(a, 300.0, n_bins=4)
    kT = units.kB * 300.0
    assert f.counts.tolist() == [300, 0, 100, 0]
    np.testing.assert_allclose(f.free_energy[[0, 2]], [0.0, kT * np.log(3)], rtol=1e-12)
    assert np.isinf(f.free_energy[1])
    np.testing.assert_allclose(f.free_energy_kcal[2], kT * np.log(3) / 4.184, rtol=1e-12)


def test_metrics_and_equivalent_sigma():
    p = np.array([[4.0, 2.0], [1.0, 1.0]])
    m = observables.fes_metrics(p, p, 2.5)
    assert m["kl"] == 0.0 and m["mse_kJ2_per_mol2"] == 0.0
    q = np.array([[2.0, 2.0], [2.0, 2.0]])
    kl = np.sum(p / 8 * np.log((p / 8) / 0.25))
    np.testing.assert_allclose(observables.fes_metrics(p, q, 2.5)["kl"], kl, rtol=1e-6)
    s = [0.0, 0.1, 0.2]
    assert observables.equivalent_sigma(s, [0.0, 1.0, 3.0], 2.0) == pytest.approx(0.15)
    assert observables.equivalent_sigma(s, [0.5, 1.0, 3.0], 0.1) == 0.0
    assert observables.equivalent_sigma(s, [0.0, 1.0, 3.0], 5.0) == np.inf


def test_noise_baseline_grows_with_sigma():
    rng = np.random.default_rng(0)
    # frames around the start structure with 0.1 A jitter: a compact (phi, psi) cloud
    R = ALA[None] + 0.01 * rng.normal(size=(4000, 6, 3))
    nb = observables.noise_baseline(R, 300.0, n_samples=2000, sigmas_A=(0.0, 0.1, 0.3),
                                    n_seeds=2, n_bins=30)  # fmt: skip
    assert nb.kl.shape == nb.mse.shape == (2, 3) and nb.n_samples == 2000
    mean = nb.kl.mean(0)
    assert mean[0] < mean[1] < mean[2]
    assert mean[0] < 0.1  # the sample-size floor of 2000 of 4000 frames
    with pytest.raises(ValueError, match="n_samples"):
        observables.noise_baseline(R, 300.0, n_samples=5000)


def test_basin_populations():
    deg = np.deg2rad(np.array([[-80.0, 150.0], [-70.0, -40.0], [60.0, 40.0], [-150.0, -170.0]]))
    b = observables.basin_populations(deg)
    assert b == {"beta_C7eq": 0.5, "alpha_R": 0.25, "alpha_L": 0.25}
