import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import observables

L_GAS, N_GAS, T_GAS = 2.0, 64, 200  # nm, particles, frames
A_FCC = 0.5  # nm, FCC lattice constant: shells at a / sqrt 2 (12), a (6)
R_MAX_FCC, BINS_FCC = 0.525, 100  # no shell on a bin edge; below half the sheared width


def fcc(reps, a):
    """FCC positions [4 reps^3, 3] (nm) and box [3] (nm); corner sites first in each cell."""
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    cells = np.stack(np.meshgrid(*[np.arange(reps)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    return ((cells + basis) * a).reshape(-1, 3), np.full(3, reps * a)


@pytest.fixture(scope="module")
def gas():
    rng = np.random.default_rng(0)
    R = rng.uniform(0.0, L_GAS, size=(T_GAS, N_GAS, 3))
    return R, observables.rdf(R, L_GAS, r_max=1.0, n_bins=20)


@pytest.fixture(scope="module")
def lattice():
    return fcc(3, A_FCC)


def test_ideal_gas_is_one_within_counting_noise(gas):
    _, res = gas
    edges = np.linspace(0.0, 1.0, 21)
    shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    expected = T_GAS * N_GAS * (N_GAS - 1) / 2 * shell / L_GAS**3  # pair counts per bin
    # Counts are (at most) Poisson, so g has relative noise 1 / sqrt(expected):
    # 20% in the first bin, 0.6% in the last. Allow 4 sigma per bin.
    sigma = 1.0 / np.sqrt(expected)
    assert np.all(np.abs(np.asarray(res.g) - 1.0) < 4 * sigma)
    np.testing.assert_allclose(res.r, 0.5 * (edges[1:] + edges[:-1]), rtol=1e-12)
    np.testing.assert_allclose(res.density, (N_GAS - 1) / L_GAS**3, rtol=1e-12)
    # the whole curve: chi^2 per bin near 1
    assert np.mean(((np.asarray(res.g) - 1.0) / sigma) ** 2) < 2.0


def test_float32_in_float32_out(gas):
    R, res = gas
    res32 = observables.rdf(R.astype(np.float32), L_GAS, r_max=1.0, n_bins=20)
    assert res32.g.dtype == jnp.float32 and res32.r.dtype == jnp.float32
    np.testing.assert_allclose(res32.g, res.g, rtol=1e-5)


def test_fcc_first_shell_has_12_neighbours(lattice):
    R, box = lattice
    res = observables.rdf(R, box, r_max=R_MAX_FCC, n_bins=BINS_FCC)
    peak = float(res.r[np.argmax(res.g)])
    assert abs(peak - A_FCC / np.sqrt(2)) < 0.5 * R_MAX_FCC / BINS_FCC
    n = lambda r: float(observables.coordination_number(res.r, res.g, res.density, r))
    assert n(0.3) == 0.0
    np.testing.assert_allclose(n(0.43), 12.0, rtol=1e-12)
    np.testing.assert_allclose(n(R_MAX_FCC), 18.0, rtol=1e-12)


def test_triclinic_cell_of_the_same_lattice_gives_the_same_rdf(lattice):
    # Columns a, a + b, c generate the same periodic lattice as a, b, c.
    R, box = lattice
    L = box[0]
    sheared = np.array([[L, L, 0.0], [0.0, L, 0.0], [0.0, 0.0, L]])
    ortho = observables.rdf(R, box, r_max=R_MAX_FCC, n_bins=BINS_FCC)
    tri = observables.rdf(R, sheared, r_max=R_MAX_FCC, n_bins=BINS_FCC)
    np.testing.assert_allclose(tri.g, ortho.g, atol=1e-12)


@pytest.mark.parametrize(
    "pair,r_cut,expected",
    # Cu3Au (L1_2): Au (0) on cube corners, Cu (1) on face centres.
    [((0, 1), 0.43, 12), ((1, 0), 0.43, 4), ((1, 1), 0.43, 8), ((0, 0), R_MAX_FCC, 6)],
)
def test_species_pairs_count_both_orders(lattice, pair, r_cut, expected):
    R, box = lattice
    species = np.tile([0, 1, 1, 1], len(R) // 4)
    res = observables.rdf(R, box, r_max=R_MAX_FCC, n_bins=BINS_FCC, species=species, pair=pair)
    n = observables.coordination_number(res.r, res.g, res.density, r_cut)
    np.testing.assert_allclose(n, expected, rtol=1e-12)


def test_smooth_rdf_tends_to_histogram(gas):
    R, res = gas
    sm = observables.rdf_smooth(R, L_GAS, r_max=1.0, n_bins=20, sigma=1e-7)
    # only pairs within ~1e-7 nm of a bin edge may land in the neighbouring bin
    np.testing.assert_allclose(sm.g, res.g, atol=1e-3)


@pytest.fixture(scope="module")
def small():
    R = np.random.default_rng(1).uniform(0.0, 1.0, size=(12, 3))
    weights = np.random.default_rng(2).normal(size=10)
    loss = lambda R: jnp.sum(
        observables.rdf_smooth(R, 1.0, r_max=0.5, n_bins=10, sigma=0.04).g * weights
    )
    return R, loss


def test_smooth_rdf_gradient_matches_finite_differences(small):
    R, loss = small
    grad = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(R)))
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    f = jax.jit(loss)
    h = 1e-5
    for i, d in [(0, 0), (3, 1), (7, 2), (11, 0)]:
        e = np.zeros_like(R)
        e[i, d] = h
        fd = (float(f(R + e)) - float(f(R - e))) / (2 * h)
        np.testing.assert_allclose(grad[i, d], fd, rtol=1e-6, atol=1e-8)


def test_bad_inputs_name_the_argument(lattice):
    R, box = lattice
    bad = R.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="positions"):
        observables.rdf(bad, box, r_max=0.5, n_bins=10)
    with pytest.raises(ValueError, match="r_max"):
        observables.rdf(R, box, r_max=0.8, n_bins=10)  # half the box is 0.75 nm
    with pytest.raises(ValueError, match="species"):
        observables.rdf(R, box, r_max=0.5, n_bins=10, pair=(0, 1))
    with pytest.raises(ValueError, match="n_bins"):
        observables.rdf(R, box, r_max=0.5, n_bins=0)
    with pytest.raises(ValueError, match="box"):
        observables.rdf(R, None, r_max=0.5, n_bins=10)


def test_rebinned_histogram_is_the_histogram_on_wide_bins(gas):
    """Merging bins by shell volume is exact: it equals the RDF computed on the wide bins."""
    R, fine = gas  # 20 bins on [0, 1) nm
    wide = observables.rdf(R, L_GAS, r_max=1.0, n_bins=5)
    r, g = observables.rebin_rdf(fine.r, fine.g, 4)
    np.testing.assert_allclose(r, np.asarray(wide.r), rtol=1e-6)
    np.testing.assert_allclose(g, np.asarray(wide.g), rtol=1e-5)
    r3, g3 = observables.rebin_rdf(fine.r, fine.g, 3)  # 20 // 3 = 6 wide bins, 2 left over
    assert r3.shape == g3.shape == (6,) and r3[-1] == pytest.approx(0.9 - 0.075, rel=1e-6)
    with pytest.raises(ValueError, match=r"factor must be in \[1, 20\] bins, got 0"):
        observables.rebin_rdf(fine.r, fine.g, 0)
    with pytest.raises(ValueError, match="uniform bins starting at 0"):
        observables.rebin_rdf(np.asarray(fine.r) + 0.01, fine.g, 2)
