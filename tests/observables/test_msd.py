import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import observables, units

T, N, D, DT = 400, 100, 0.05, 1.0  # frames, particles, nm^2/ps, ps per frame
MAX_LAG = 50


@pytest.fixture(scope="module")
def walk():
    """Brownian random walks: steps N(0, 2 D dt) per coordinate, so MSD = 6 D t."""
    steps = np.random.default_rng(0).normal(0.0, np.sqrt(2 * D * DT), size=(T, N, 3))
    return np.cumsum(steps, axis=0)


@pytest.fixture(scope="module")
def result(walk):
    return observables.msd(walk, max_lag=MAX_LAG)


def direct_msd(x, max_lag, remove_com=True):
    """All-origins MSD by explicit differences (numpy)."""
    if remove_com:
        x = x - x.mean(axis=1, keepdims=True)
    return np.array(
        [np.mean(np.sum((x[m:] - x[: len(x) - m]) ** 2, axis=-1)) for m in range(max_lag + 1)]
    )


def test_fft_equals_direct_sum_over_origins(walk, result):
    np.testing.assert_array_equal(result.lags, np.arange(MAX_LAG + 1))
    np.testing.assert_allclose(result.msd, direct_msd(walk, MAX_LAG), rtol=1e-10, atol=1e-12)


def test_brownian_msd_is_6_D_t(result):
    m = np.arange(1, MAX_LAG + 1)
    # Removing the centre of mass of N equal walkers leaves (1 - 1/N) of the MSD.
    expected = 6 * D * m * DT * (1 - 1 / N)
    # One displacement |dr|^2 / 6 D t is chi^2_3 / 3 (relative sd sqrt(2/3));
    # N particles times (T - m) / m non-overlapping origins are independent.
    rel_sd = np.sqrt(2 / 3) / np.sqrt(N * (T - m) / m)
    assert np.all(np.abs(np.asarray(result.msd[1:]) / expected - 1) < 4 * rel_sd)
    assert result.msd[0] == 0.0


def test_uniform_drift_is_removed(walk, result):
    v = np.array([0.3, -0.1, 0.2])  # nm/ps
    drifted = walk + v * DT * np.arange(T)[:, None, None]
    np.testing.assert_allclose(
        observables.msd(drifted, max_lag=MAX_LAG).msd, result.msd, rtol=1e-10, atol=1e-12
    )
    # with unequal masses the (mass-weighted) COM still moves with v
    masses = np.random.default_rng(1).uniform(1.0, 20.0, size=N)
    a = observables.msd(drifted, max_lag=MAX_LAG, masses=masses).msd
    b = observables.msd(walk, max_lag=MAX_LAG, masses=masses).msd
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # without removal: |v t|^2 + 2 v . <dr(t)> on top of the raw MSD
    raw = observables.msd(walk, max_lag=MAX_LAG, remove_com=False).msd
    with_drift = observables.msd(drifted, max_lag=MAX_LAG, remove_com=False).msd
    m = np.arange(MAX_LAG + 1)
    mean_dr = np.array([np.mean(walk[k:] - walk[: T - k], axis=(0, 1)) for k in m])
    expected = raw + (v @ v) * (m * DT) ** 2 + 2 * mean_dr @ v * m * DT
    np.testing.assert_allclose(with_drift, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        raw, direct_msd(walk, MAX_LAG, remove_com=False), rtol=1e-10, atol=1e-12
    )


def test_float32_far_from_origin(walk):
    # 50 nm offsets: centring keeps float32 FFT accurate at the shortest lags.
    res = observables.msd((walk + 50.0).astype(np.float32), max_lag=MAX_LAG)
    assert res.msd.dtype == jnp.float32
    np.testing.assert_allclose(res.msd[1:], direct_msd(walk, MAX_LAG)[1:], rtol=1e-4)


def test_einstein_fit_of_exact_lines():
    t = np.arange(101) * 0.5  # ps
    line = 6 * 0.02 * t + 0.3  # nm^2; D = 0.02 nm^2/ps plus an offset
    curve = np.where(t < 2.0, 0.1 * t**2, line)  # a ballistic start outside the window
    fit = observables.diffusion_coefficient(t, curve, fit_window=(5.0, 40.0))
    np.testing.assert_allclose(fit.D, 0.02, rtol=1e-12)
    assert np.isnan(fit.D_err) and fit.fit_window == (5.0, 40.0)
    # block curves: mean and standard error of the block slopes
    Ds = np.array([0.01, 0.02, 0.04])
    blocks = observables.diffusion_coefficient(t, 6 * Ds[:, None] * t, fit_window=(5.0, 40.0))
    np.testing.assert_allclose(blocks.D_blocks, Ds, rtol=1e-12)
    np.testing.assert_allclose(blocks.D, Ds.mean(), rtol=1e-12)
    np.testing.assert_allclose(blocks.D_err, Ds.std(ddof=1) / np.sqrt(3), rtol=1e-12)
    # 2-D diffusion: MSD = 4 D t
    fit2 = observables.diffusion_coefficient(t, 4 * 0.02 * t, fit_window=(5.0, 40.0), dim=2)
    np.testing.assert_allclose(fit2.D, 0.02, rtol=1e-12)


def test_diffusion_from_trajectory_with_block_error(walk):
    res = observables.diffusion_from_trajectory(walk, DT, fit_window=(2.0, 20.0), n_blocks=5)
    true = D * (1 - 1 / N)
    assert res.D_blocks.shape == (5,)
    assert 0 < res.D_err < 0.1 * true
    assert abs(res.D - true) < 4 * res.D_err
    # 0.05 nm^2/ps is 5e-4 cm^2/s
    np.testing.assert_allclose(res.D / units.cm2_per_s, res.D * 1e-2, rtol=1e-12)


def test_bad_inputs_name_the_argument(walk):
    bad = walk.copy()
    bad[5, 2, 0] = np.nan
    with pytest.raises(ValueError, match="unwrapped"):
        observables.msd(bad)
    with pytest.raises(ValueError, match="unwrapped"):
        observables.msd(walk[0])
    with pytest.raises(ValueError, match="max_lag"):
        observables.msd(walk, max_lag=T)
    with pytest.raises(ValueError, match="fit_window"):
        observables.diffusion_from_trajectory(walk, DT, fit_window=(2.0, 100.0), n_blocks=5)
    with pytest.raises(ValueError, match="fit_window"):
        observables.diffusion_coefficient(np.arange(10.0), np.arange(10.0), fit_window=(3.2, 3.8))
