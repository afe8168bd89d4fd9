import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials
from cgjax.data import Frames
from cgjax.potentials import exponential_repulsion_parameters
from cgjax.train._priors import exponential_repulsion_from_data

A_LAT, M = 0.305, 4  # simple cubic lattice spacing (nm), cells per side
BOX = A_LAT * M
R_MAX, N_BINS = 0.6, 60  # 0.01 nm bins
DR = R_MAX / N_BINS


def lattice():
    g = np.arange(M) * A_LAT + 0.1
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)


def frames_of(R, species, seed=0):
    F = np.random.default_rng(seed).normal(scale=300.0, size=R.shape)  # kJ/mol/nm
    return Frames(R, species, np.ones(R.shape[1]), forces=F, box=BOX)


def test_onset_is_first_bin_above_threshold_and_parameters_closed_form():
    T = 30
    R = np.repeat(lattice()[None], T, axis=0)
    # particle 16 = (1, 0, 0) moved towards particle 0: the closest pair, in every frame
    close = 0.262
    R[:, 16, 0] = R[:, 0, 0] + close
    # an outlier in one frame only: its bin's g stays below 0.01
    outlier = 0.2
    R[0, 21, 0] = R[0, 5, 0] + outlier  # (1, 1, 1) towards (0, 1, 1)
    n = R.shape[1]
    shell = 4.0 / 3.0 * np.pi * ((20 * DR + DR) ** 3 - (20 * DR) ** 3)
    g_outlier = 1.0 / (T * n * (n - 1) / 2 * shell / BOX**3)
    assert g_outlier < 0.01  # the construction is as intended
    frames = frames_of(R, np.zeros(n, int))
    for p, d in [(0.05, 0.015), (0.01, 0.02)]:
        prior = exponential_repulsion_from_data(frames, r_max=R_MAX, n_bins=N_BINS, p=p, d=d)
        t = np.floor(close / DR) * DR
        np.testing.assert_allclose(prior.onset, [[t]], rtol=1e-12)
        s = np.mean(np.linalg.norm(frames.forces, axis=-1))
        np.testing.assert_allclose(prior.strength, s, rtol=1e-12)
        e0, a = exponential_repulsion_parameters(t, d, s, p)
        np.testing.assert_allclose(prior.e0, [[e0]], rtol=1e-12)
        np.testing.assert_allclose(prior.a, [[np.log(1 / p) / d]], rtol=1e-12)
        # the term's own pair force: s at t - d, p s at t
        term = prior.term.clone(param_dtype=jnp.float64)
        params = {"e0": jnp.asarray([[e0]]), "a": jnp.asarray([[a]])}
        force = jax.grad(lambda r, term=term, params=params: -term.pair_energy(params, r))
        np.testing.assert_allclose(force(t - d), s, rtol=1e-10)
        np.testing.assert_allclose(force(t), p * s, rtol=1e-10)
    # lowering the threshold below the outlier's g moves the onset to it
    low = exponential_repulsion_from_data(
        frames, r_max=R_MAX, n_bins=N_BINS, threshold=0.5 * g_outlier
    )
    np.testing.assert_allclose(low.onset, [[np.floor(outlier / DR) * DR]], rtol=1e-12)


def test_per_species_pair_onsets():
    R = lattice()[None]
    idx = np.round((R[0] - 0.1) / A_LAT).astype(int)
    species = idx.sum(-1) % 2  # checkerboard: unlike neighbours at a, like ones at a sqrt 2
    prior = exponential_repulsion_from_data(frames_of(R, species), r_max=R_MAX, n_bins=N_BINS)
    like = np.floor(A_LAT * np.sqrt(2) / DR) * DR
    unlike = np.floor(A_LAT / DR) * DR
    np.testing.assert_allclose(prior.onset, [[like, unlike], [unlike, like]], rtol=1e-12)
    assert prior.term.n_species == 2
    np.testing.assert_allclose(prior.e0, prior.e0.T)
    assert prior.e0[0, 0] > prior.e0[0, 1]  # later onset, larger E0 at the same a
    # the term initialises with these tables and gives a finite energy
    model = potentials.energy_model(prior.term, species=species, box=BOX)
    params = model.init_fn(jax.random.key(0), jnp.asarray(R[0], jnp.float32))
    np.testing.assert_allclose(params["e0"], prior.e0, rtol=1e-6)
    np.testing.assert_allclose(params["a"], prior.a, rtol=1e-6)
    assert np.isfinite(model.energy_fn(params)(jnp.asarray(R[0], jnp.float32)))


def test_errors():
    R = lattice()[None]
    with pytest.raises(ValueError, match="no forces"):
        exponential_repulsion_from_data(
            Frames(R, np.zeros(R.shape[1], int), np.ones(R.shape[1]), box=BOX),
            r_max=R_MAX,
            n_bins=N_BINS,
        )
    with pytest.raises(ValueError, match="never exceeds"):
        exponential_repulsion_from_data(
            frames_of(R, np.zeros(R.shape[1], int)), r_max=0.25, n_bins=25
        )
