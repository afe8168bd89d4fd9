import numpy as np
import pytest

from cgjax import observables, units

LN2 = np.log(2.0)


def test_kl_of_identical_histograms_is_zero():
    p = np.array([0.0, 3.0, 5.0, 0.0, 2.0])
    assert float(observables.kl_divergence(p, p)) == 0.0
    assert float(observables.kl_divergence(p, 7 * p)) == pytest.approx(0.0, abs=1e-15)


def test_kl_closed_forms():
    # p = (1/2, 1/2), q = (1/4, 3/4): KL = ln 2 / 2 + ln(2/3) / 2 = ln(4/3) / 2
    np.testing.assert_allclose(observables.kl_divergence([1, 1], [1, 3]), 0.5 * np.log(4 / 3))
    # reference-empty bins cost nothing; trial-empty bins cost p ln(p / eps)
    np.testing.assert_allclose(observables.kl_divergence([0, 1], [1, 1]), np.log(2.0))
    np.testing.assert_allclose(
        observables.kl_divergence([1, 1], [1, 0], eps=1e-6),
        0.5 * np.log(0.5) + 0.5 * np.log(0.5 / 1e-6),
        rtol=1e-12,
    )


def test_kl_of_two_gaussians():
    # KL(N(0, 1) || N(0.5, 1.5^2)) = ln(1.5) + (1 + 0.25) / (2 * 2.25) - 1/2
    x = np.linspace(-12, 12, 4801)
    p = np.exp(-0.5 * x**2)
    q = np.exp(-0.5 * ((x - 0.5) / 1.5) ** 2)
    expected = np.log(1.5) + 1.25 / 4.5 - 0.5
    np.testing.assert_allclose(observables.kl_divergence(p, q), expected, rtol=1e-9)


def test_js_symmetric_bounded_and_closed_form():
    rng = np.random.default_rng(0)
    p, q = rng.uniform(size=(2, 30, 30))  # a 2-D histogram, like a Ramachandran grid
    js = float(observables.js_divergence(p, q))
    np.testing.assert_allclose(observables.js_divergence(q, p), js, rtol=1e-12)
    assert 0.0 < js <= LN2
    np.testing.assert_allclose(observables.js_divergence([1, 0], [0, 1]), LN2, rtol=1e-12)
    # p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4): JS = 3/4 ln(4/3)
    np.testing.assert_allclose(observables.js_divergence([1, 0], [1, 1]), 0.75 * np.log(4 / 3))


def test_tae_equals_the_analytic_area():
    n = 200
    r = (np.arange(n) + 0.5) / n  # bin centres on [0, 1] nm
    # |(1 - r) - r| integrates to 1/2; the midpoint sum is exact (kink at a bin edge)
    tae = observables.total_absolute_error(r, r, 1 - r)
    np.testing.assert_allclose(tae, 0.5, rtol=1e-12)
    np.testing.assert_allclose(tae / units.angstrom, 5.0, rtol=1e-12)  # in Å
    # a Gaussian bump of height 0.4 and width 0.05 nm: area 0.4 * 0.05 * sqrt(2 pi)
    g1 = np.ones(n)
    g2 = g1 + 0.4 * np.exp(-0.5 * ((r - 0.5) / 0.05) ** 2)
    np.testing.assert_allclose(
        observables.total_absolute_error(r, g1, g2), 0.4 * 0.05 * np.sqrt(2 * np.pi), rtol=1e-9
    )


def test_mse_and_free_energy_mse():
    np.testing.assert_allclose(observables.mse([1.0, 2.0, 3.0], [1.0, 0.0, 4.0]), 5 / 3)
    p = np.array([1.0, 2.0, 0.0, 5.0])
    q = np.array([2.0, 2.0, 1.0, 0.0])
    # only bins 0 and 1 are non-empty in both; p = (1, 2, 0, 5) / 8, q = (2, 2, 1, 0) / 5
    kT = units.kT(300.0)
    d0 = kT * np.log((1 / 8) / (2 / 5))
    d1 = kT * np.log((2 / 8) / (2 / 5))
    np.testing.assert_allclose(
        observables.free_energy_mse(p, q, kT=kT), (d0**2 + d1**2) / 2, rtol=1e-12
    )


def test_force_errors_closed_form():
    rng = np.random.default_rng(0)
    ref = rng.normal(0.0, 100.0, size=(4, 10, 3))  # kJ/mol/nm
    c = np.array([3.0, -3.0, 3.0])
    stats = observables.force_errors(ref + c, ref)
    np.testing.assert_allclose(stats["rmse"], 3.0, rtol=1e-12)
    np.testing.assert_allclose(stats["mae"], 3.0, rtol=1e-12)
    np.testing.assert_allclose(stats["r2"], 1.0 - 9.0 / np.var(ref), rtol=1e-12)
    perfect = observables.force_errors(ref, ref)
    assert float(perfect["rmse"]) == 0.0 and float(perfect["r2"]) == 1.0
    with pytest.raises(ValueError, match="shape"):
        observables.force_errors(ref[:2], ref)
