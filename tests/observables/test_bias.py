"""Reweighting biased frames: the Fourier bias, frame weights, weighted surfaces and basins."""

import numpy as np
import pytest

from cgjax import data, observables, units


def test_deposited_gaussians_equal_the_wrapped_gaussian_sum_less_its_mean():
    """add_gaussians: the Fourier series of periodic Gaussians (closed form), constant dropped."""
    width, centres, heights = 0.35, np.array([-2.0, 0.3, 3.0]), np.array([0.5, 1.0, 0.25])
    bias = observables.TorsionBias.zero((0, 1, 2, 3), 30).add_gaussians(centres, heights, width)
    phi = np.linspace(-np.pi, np.pi, 721)
    images = 2 * np.pi * np.arange(-3, 4)
    direct = sum(h * np.exp(-0.5 * ((phi[:, None] - c + images) / width) ** 2).sum(1)
                 for c, h in zip(centres, heights, strict=True))  # fmt: skip
    mean = heights.sum() * width * np.sqrt(2 * np.pi) / (2 * np.pi)
    np.testing.assert_allclose(bias.energy(phi), direct - mean, atol=1e-12)
    again = observables.TorsionBias.from_json(bias.to_json())
    np.testing.assert_array_equal(again.energy(phi), bias.energy(phi))
    assert again.openmm_parameters()["bias_cos2"] == pytest.approx(bias.cos[1])
    assert bias.openmm_expression().startswith("bias_cos1*cos(1*theta)+bias_sin1*sin(1*theta)+")


def _frames_with_phi(phi, bias=None, temperature=300.0):
    """4-bead chains with dihedral ``phi`` (rad): C0 on x, C1 at 0, C2 on z, C3 rotated by phi."""
    R = np.zeros((len(phi), 4, 3))
    R[:, 0] = [0.1, 0.0, 0.0]
    R[:, 2] = [0.0, 0.0, 0.15]
    R[:, 3] = np.stack([0.1 * np.cos(phi), 0.1 * np.sin(phi), np.full(len(phi), 0.15)], 1)
    meta = None if bias is None else {"bias": bias.to_json()}
    return data.Frames(R, np.zeros(4, np.int32), np.ones(4), temperature=temperature, metadata=meta)


def test_frame_weights_reweight_a_biased_sample_to_the_unbiased_distribution():
    """phi from exp(-(U + V) / kT), weights exp(V / kT): the weighted 1-D free energy is U's."""
    kT = units.kB * 300.0
    grid = np.linspace(-np.pi, np.pi, 100_001)
    U = 4.0 * np.cos(grid) + 2.0 * np.sin(2 * grid)
    bias = observables.TorsionBias((0, 1, 2, 3), np.array([-3.5, 0.0]), np.array([0.0, -1.5]))
    cdf = np.cumsum(np.exp(-(U + bias.energy(grid)) / kT))
    phi = np.interp(np.random.default_rng(0).uniform(size=200_000) * cdf[-1], cdf, grid)
    frames = _frames_with_phi(phi, bias)
    w = observables.frame_weights(frames)
    assert w.shape == (200_000,) and w.mean() == pytest.approx(1.0)
    assert 0.5 * len(w) < observables.effective_sample_size(w) < len(w)
    angle = observables.torsions_of(frames.positions, [(0, 1, 2, 3)])[:, 0]
    fes = observables.free_energy_surface(angle, 300.0, n_bins=36, weights=w)
    centres = 0.5 * (fes.edges[1:] + fes.edges[:-1])
    # bin averages of exp(-U/kT), as the histogram measures them
    Ub = -kT * np.log(np.interp(centres, grid, np.exp(-U / kT)))
    want = Ub - Ub.min()
    np.testing.assert_allclose(fes.free_energy, want, atol=0.15)  # ~noise of ~5k samples per bin
    biased = observables.free_energy_surface(angle, 300.0, n_bins=36)
    assert np.abs(biased.free_energy - want).max() > 2.0  # without weights: U + V's
    assert observables.frame_weights(_frames_with_phi(phi[:10])) is None  # no bias: None


def test_weighted_surface_basins_and_ess_equal_repeated_samples():
    rng = np.random.default_rng(1)
    pp = rng.uniform(-np.pi, np.pi, size=(500, 2))
    counts = rng.integers(0, 4, size=500)
    rep = np.repeat(pp, counts, axis=0)
    w = counts.astype(float)
    a = observables.free_energy_surface(pp, 300.0, n_bins=12, weights=w)
    b = observables.free_energy_surface(rep, 300.0, n_bins=12)
    np.testing.assert_allclose(a.counts, b.counts)
    np.testing.assert_array_equal(a.free_energy, b.free_energy)
    assert observables.basin_populations(pp, w) == pytest.approx(observables.basin_populations(rep))
    assert observables.effective_sample_size(np.ones(7)) == pytest.approx(7.0)
    assert observables.effective_sample_size([0.0, 0.0, 3.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weights must be"):
        observables.free_energy_surface(pp, 300.0, weights=w[:-1])


def test_bad_bias_metadata_is_a_named_error():
    frames = _frames_with_phi(np.zeros(3), None)
    bad = frames.replace(metadata={"bias": {"torsion": [0, 1, 2], "cos": [1.0], "sin": [0.0]}})
    with pytest.raises(ValueError, match="torsion must be 4 bead indices"):
        observables.frame_weights(bad)
    with pytest.raises(ValueError, match="needs 'torsion'"):
        observables.frame_weights(frames.replace(metadata={"bias": {"cos": [1.0]}}))
    no_t = _frames_with_phi(np.zeros(3), observables.TorsionBias.zero((0, 1, 2, 3), 2), None)
    with pytest.raises(ValueError, match="need a temperature"):
        observables.frame_weights(no_t)


def test_a_bin_of_tiny_weights_keeps_its_weight():
    """Regression: np.histogram with explicit edges differences a cumulative sum of the
    weights, which rounded a bin holding only tiny weights (phi barrier frames of the biased
    alanine set) to exactly 0, and the torsion prior's fit then failed."""
    x = np.concatenate([np.full(1000, -1.0), [2.0]])
    w = np.concatenate([np.full(1000, 1e4), [1e-9]])
    fes = observables.free_energy_surface(x, 300.0, n_bins=60, weights=w)
    assert fes.counts[np.searchsorted(fes.edges, 2.0) - 1] == pytest.approx(1e-9, rel=1e-12)
    from cgjax import potentials

    phi = np.concatenate([np.random.default_rng(0).normal(-1.0, 0.3, 4000), [2.5]])
    frames = _frames_with_phi(phi)
    ww = np.concatenate([np.ones(4000), [1e-9]])
    fit = potentials.fit_fourier_dihedrals(frames.positions, ((0, 1, 2, 3),), 300.0, order=1,
                                           weights=ww)  # fmt: skip
    assert np.all(np.isfinite(fit["a"])) and np.all(np.isfinite(fit["b"]))
