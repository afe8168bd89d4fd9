import numpy as np
import pytest

from cgjax import observables

TETRAHEDRAL = np.degrees(np.arccos(-1.0 / 3.0))  # 109.4712...


@pytest.fixture(scope="module")
def diamond():
    """Diamond cubic, a = 0.5 nm, 2x2x2 cells (64 sites): 4 neighbours at a sqrt(3) / 4."""
    a = 0.5
    fcc = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    basis = np.concatenate([fcc, fcc + 0.25])
    cells = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    return ((cells + basis) * a).reshape(-1, 3), np.full(3, 2 * a)


def test_tetrahedral_lattice_peaks_at_109_47_degrees(diamond):
    R, box = diamond
    res = observables.adf(R, box, cutoff=0.3, n_bins=180, max_neighbors=8)
    assert res.theta[np.argmax(res.p)] == 109.5  # the bin [109, 110) degrees
    np.testing.assert_allclose(res.p.max(), 1.0, rtol=1e-12)  # all mass in it (1/degree)
    np.testing.assert_allclose(np.sum(res.p) * 1.0, 1.0, rtol=1e-12)
    assert int(res.n_neighbors_max) == 4
    peak = observables.adf(R[None], box, cutoff=0.3, max_neighbors=8, normalize="peak")
    np.testing.assert_allclose(peak.p, res.p, rtol=1e-12)


def test_free_tetrahedron():
    u = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    R = np.concatenate([np.zeros((1, 3)), 0.1 * u])  # edges 0.163 nm: outside the cutoff
    res = observables.adf(R, None, cutoff=0.12, n_bins=1800)
    i = int(np.argmax(res.p))
    assert res.theta[i] - 0.05 <= TETRAHEDRAL < res.theta[i] + 0.05


def brute_force_angles(R, L, cutoff):
    """All angles theta_jik (degrees) with j < k inside the cutoff of i, by loops."""
    angles = []
    for i in range(len(R)):
        d = R - R[i]
        d -= L * np.round(d / L)
        r = np.linalg.norm(d, axis=1)
        nb = [j for j in range(len(R)) if j != i and r[j] < cutoff]
        for a in range(len(nb)):
            for b in range(a + 1, len(nb)):
                u, v = d[nb[a]], d[nb[b]]
                cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
                angles.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return np.array(angles)


@pytest.fixture(scope="module")
def gas():
    """40 frames of 30 uniform particles in a 1.5 nm box: ADF and brute-force angles."""
    L, cutoff = 1.5, 0.6
    R = np.random.default_rng(0).uniform(0.0, L, size=(40, 30, 3))
    res = observables.adf(R, L, cutoff=cutoff, n_bins=36, max_neighbors=24)
    angles = np.concatenate([brute_force_angles(f, L, cutoff) for f in R])
    return res, angles


def test_matches_brute_force(gas):
    res, angles = gas
    counts, _ = np.histogram(angles, bins=36, range=(0, 180))
    np.testing.assert_allclose(res.p * 5.0 * len(angles), counts, atol=1e-8)


def test_ideal_gas_follows_sin_theta(gas):
    # Independent uniform directions: P(theta) d theta = sin(theta) / 2 d theta.
    res, angles = gas
    edges = np.radians(np.arange(0, 181, 5))
    expected = 0.5 * (np.cos(edges[:-1]) - np.cos(edges[1:]))  # probability per 5-degree bin
    # Poisson noise of the bin counts (~35k angles: 2.5% at the peak), doubled
    # in variance because angles share centres and bonds (chi^2 per bin came
    # out 1.4-2.5 over seeds 0-2); allow 5 of those sigmas.
    sigma = np.sqrt(2.0 * expected / len(angles))
    assert np.all(np.abs(np.asarray(res.p) * 5.0 - expected) < 5 * sigma)


def test_overflow_raises_instead_of_dropping(diamond):
    R, box = diamond
    with pytest.raises(ValueError, match="max_neighbors"):
        observables.adf(R, box, cutoff=0.3, max_neighbors=3)


def test_bad_inputs_name_the_argument(diamond):
    R, box = diamond
    bad = R.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="positions"):
        observables.adf(bad, box, cutoff=0.3)
    with pytest.raises(ValueError, match="cutoff"):
        observables.adf(R, box, cutoff=0.6)
    with pytest.raises(ValueError, match="normalize"):
        observables.adf(R, box, cutoff=0.3, normalize="max")
