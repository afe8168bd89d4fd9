import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.interpolate import BSpline

from cgjax import potentials
from cgjax.data import Frames
from cgjax.train._mscg import fit_spline_pair

K, R_MIN, CUTOFF, BOX, N = 12, 0.2, 0.6, 1.4, 40
H = (CUTOFF - R_MIN) / K


def configurations(n_frames, seed, d_min=0.22, n=N, box=BOX):
    """Random periodic configurations with no pair closer than ``d_min`` (nm)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_frames):
        R = np.zeros((0, 3))
        while len(R) < n:
            x = rng.uniform(0.0, box, 3)
            d = R - x
            d -= box * np.round(d / box)
            if len(R) == 0 or np.min(np.linalg.norm(d, axis=1)) > d_min:
                R = np.vstack([R, x])
        out.append(R)
    return np.stack(out)


def make_frames(term, params, R, species):
    model = potentials.energy_model(term, species=species, box=BOX)
    force = jax.jit(jax.vmap(model.force_fn(params)))
    F = np.asarray(force(jnp.asarray(R)))
    return Frames(R, species, np.ones(R.shape[1]), forces=F, box=BOX)


def smooth_repulsive_coefficients():
    r = R_MIN + (np.arange(K) - 1) * H  # centre of each B_k's support
    return 20.0 * np.exp(-(r - R_MIN) / 0.05) - 2.0 * np.exp(-(((r - 0.35) / 0.06) ** 2))


def numpy_design(R, n_basis=K):
    """``G [T*N*3, K]`` built independently: scipy B-spline derivatives, minimum image."""
    knots = R_MIN + (np.arange(n_basis + 4) - 3) * H
    dbasis = [
        BSpline.basis_element(knots[k : k + 5], extrapolate=False).derivative()
        for k in range(n_basis)
    ]
    T, n = R.shape[:2]
    G = np.zeros((T, n, 3, n_basis))
    i, j = np.triu_indices(n, 1)
    for t in range(T):
        d = R[t, j] - R[t, i]
        d -= BOX * np.round(d / BOX)
        r = np.linalg.norm(d, axis=1)
        assert r.min() >= R_MIN  # no linear continuation below r_min in this test
        db = np.nan_to_num(np.stack([f(r) for f in dbasis], axis=1))
        db[r >= CUTOFF] = 0.0
        contrib = (d / r[:, None])[:, :, None] * db[:, None, :]
        np.add.at(G[t], i, contrib)
        np.add.at(G[t], j, -contrib)
    return G.reshape(-1, n_basis)


@pytest.fixture(scope="module")
def spline_data():
    term = potentials.SplinePair(n_basis=K, r_min=R_MIN, cutoff=CUTOFF, param_dtype=jnp.float64)
    c_star = smooth_repulsive_coefficients()
    R = configurations(10, seed=1)
    frames = make_frames(
        term, {"coefficients": jnp.asarray(c_star)[None, None]}, R, np.zeros(N, int)
    )
    return term, c_star, frames


def test_fit_equals_numpy_normal_equations_and_recovers_spline(spline_data):
    term, c_star, frames = spline_data
    fit = fit_spline_pair(term, frames, all_pairs=True, batch_size=3)
    c = np.asarray(fit.params["coefficients"])
    assert c.shape == (1, 1, K)
    c = c[0, 0]
    G = numpy_design(frames.positions)
    has_data = np.any(G != 0.0, axis=0)
    np.testing.assert_array_equal(~has_data, fit.empty[0, 0])
    ref = np.zeros(K)
    ref[has_data] = np.linalg.lstsq(G[:, has_data], frames.forces.reshape(-1), rcond=None)[0]
    np.testing.assert_allclose(c, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    # exact data: the generating coefficients come back
    np.testing.assert_allclose(
        c[has_data], c_star[has_data], rtol=0, atol=1e-6 * np.abs(c_star).max()
    )
    assert fit.rmse < 1e-5 * fit.reference_rms
    assert 1.0 < fit.condition_number < 1e8
    assert fit.counts[0, 0].sum() > 0 and fit.n_frames == 10


def test_neighbor_list_equals_all_pairs(spline_data):
    term, _, frames = spline_data
    a = fit_spline_pair(term, frames, all_pairs=True, batch_size=4)
    b = fit_spline_pair(term, frames, capacity_multiplier=0.5)  # forces an overflow + rerun
    np.testing.assert_allclose(b.params["coefficients"], a.params["coefficients"], rtol=1e-9)
    np.testing.assert_array_equal(a.counts, b.counts)


def test_two_species_recovery():
    term = potentials.SplinePair(
        n_species=2, n_basis=K, r_min=R_MIN, cutoff=CUTOFF, param_dtype=jnp.float64
    )
    base = smooth_repulsive_coefficients()
    c_star = np.stack([[base, 0.5 * base], [0.5 * base, 2.0 * base]])
    species = np.arange(N) % 2
    frames = make_frames(term, {"coefficients": jnp.asarray(c_star)}, configurations(8, 2), species)
    fit = fit_spline_pair(term, frames, all_pairs=True)
    c = np.asarray(fit.params["coefficients"])
    np.testing.assert_array_equal(c, c.transpose(1, 0, 2))
    ok = ~fit.empty
    np.testing.assert_allclose(c[ok], c_star[ok], rtol=0, atol=1e-6 * np.abs(c_star).max())


def test_lennard_jones_held_out():
    lj = potentials.LennardJones(sigma=0.3, epsilon=1.0, cutoff=CUTOFF, param_dtype=jnp.float64)
    lj_params = {"sigma": jnp.full((1, 1), 0.3), "epsilon": jnp.full((1, 1), 1.0)}
    species = np.zeros(N, int)
    train = make_frames(lj, lj_params, configurations(10, 3, d_min=0.26), species)
    test = make_frames(lj, lj_params, configurations(5, 4, d_min=0.26), species)
    term = potentials.SplinePair(n_basis=32, r_min=0.25, cutoff=CUTOFF, param_dtype=jnp.float64)
    fit = fit_spline_pair(term, train, all_pairs=True)
    model = potentials.energy_model(term, species=species, box=BOX)
    F = jax.vmap(model.force_fn(fit.params))(jnp.asarray(test.positions))
    rmse = float(np.sqrt(np.mean((np.asarray(F) - test.forces) ** 2)))
    rms = float(np.sqrt(np.mean(test.forces**2)))
    print(f"LJ held-out force RMSE {rmse:.3g} kJ/mol/nm of RMS {rms:.3g} ({rmse / rms:.2e})")
    assert rmse < 1e-2 * rms
    assert fit.rmse < 1e-2 * fit.reference_rms


def test_ridge_shrinks_and_errors(spline_data):
    term, _, frames = spline_data
    plain = fit_spline_pair(term, frames, all_pairs=True)
    ridged = fit_spline_pair(term, frames, all_pairs=True, ridge=1e3)
    assert np.linalg.norm(ridged.params["coefficients"]) < np.linalg.norm(
        plain.params["coefficients"]
    )
    assert ridged.rmse > plain.rmse
    with pytest.raises(ValueError, match="ridge"):
        fit_spline_pair(term, frames, ridge=-1.0)
    with pytest.raises(ValueError, match="no forces"):
        fit_spline_pair(term, Frames(frames.positions, frames.species, frames.masses, box=BOX))
    with pytest.raises(ValueError, match="SplinePair"):
        fit_spline_pair(potentials.LennardJones(cutoff=CUTOFF), frames)
