"""Dihedral and pair-repulsion priors and CGnet: the contract, closed forms, fits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials, testing, units
from cgjax._space import make_space

L = 2.0  # nm, cubic box of the contract checks
# paper 001's beads of the shipped ACE-ALA-NME structure: C(ACE), N, CA, C, N(NME), CB (nm)
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
BONDS = ((0, 1), (1, 2), (2, 3), (3, 4), (2, 5))
ANGLES = ((0, 1, 2), (1, 2, 3), (2, 3, 4), (1, 2, 5), (3, 2, 5))
TORSIONS = ((0, 1, 2, 3), (1, 2, 3, 4), (1, 3, 2, 5))


def two_molecules(seed=0):
    """Two jittered, rotated copies 1 nm apart in the 2 nm box: ``(R [12, 3], species [12])``."""
    rng = np.random.default_rng(seed)
    mols = []
    for c in ([0.5, 0.5, 0.5], [1.5, 1.5, 1.5]):
        x = ALA - ALA.mean(0) + 0.01 * rng.normal(size=ALA.shape)
        mols.append(np.asarray(c) + x @ testing.random_rotation(rng).T)
    return np.concatenate(mols), np.tile([0, 1, 0, 0, 1, 0], 2).astype(np.int32)


def terms():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    pairs = potentials.nonbonded_pairs(6, BONDS, ANGLES)
    return {
        "dihedrals": potentials.FourierDihedrals(torsions=TORSIONS, a=a, b=b),
        "repulsion": potentials.PairRepulsion(pairs=pairs, sigma=0.3, exponent=6.0),
        "cgnet": potentials.CGnet(
            pairs=tuple((i, j) for i in range(6) for j in range(i + 1, 6)),
            angles=ANGLES,
            torsions=TORSIONS,
            hidden=(4,),
        ),
    }


def test_contract():
    """The three terms as one sum (one compilation of the contract, ~3x cheaper than three);
    a term that broke a check would break the sum's."""
    R, species = two_molecules()
    term = potentials.sum_of(**terms()).replicated(2, 6)
    report = testing.check_potential(term, positions=R, species=species, box=np.full(3, L))
    assert report["forces_fd"] < 1e-6


def test_nonbonded_pairs_of_alanine():
    assert potentials.nonbonded_pairs(6, BONDS, ANGLES) == ((0, 3), (0, 4), (0, 5), (1, 4), (4, 5))


def test_dihedral_angle_closed_form():
    # particles 0 and 3 at azimuths alpha and beta about the 1 -> 2 axis: phi = beta - alpha
    disp = jax.vmap(make_space(None)[0])
    idx = jnp.array([[0, 1, 2, 3]])
    rng = np.random.default_rng(0)
    for alpha, beta in rng.uniform(-np.pi, np.pi, size=(12, 2)):
        R = jnp.array(
            [
                [0.1 * np.cos(alpha), 0.1 * np.sin(alpha), -0.02],
                [0.0, 0.0, 0.0],
                [0.0, 0.0, 0.15],
                [0.12 * np.cos(beta), 0.12 * np.sin(beta), 0.2],
            ]
        )
        phi = float(potentials.dihedral_angles(R, idx, disp)[0])
        np.testing.assert_allclose(np.angle(np.exp(1j * (phi - beta + alpha))), 0.0, atol=1e-6)


def test_collinear_torsion_is_a_named_error():
    R = np.repeat(ALA[None], 3, axis=0).copy()
    R[1, 2] = R[1, 1] + 2.0 * (R[1, 1] - R[1, 0])  # beads 0, 1, 2 collinear in frame 1
    with pytest.raises(potentials.CollinearTorsionError, match="frame 1"):
        potentials.torsion_angles(R, TORSIONS)


def sample_fourier(a, b, kT, n, rng):
    """``n`` angles drawn from ``exp(-U / kT)`` of a known Fourier series (inverse CDF)."""
    grid = np.linspace(-np.pi, np.pi, 200_001)
    m = np.arange(1, len(a) + 1)
    U = (a * np.cos(grid[:, None] * m) + b * np.sin(grid[:, None] * m)).sum(1)
    cdf = np.cumsum(np.exp(-(U - U.min()) / kT))
    return np.interp(rng.uniform(size=n) * cdf[-1], cdf, grid)


def chain_with_torsion(phi):
    """Frames ``[T, 4, 3]`` (nm) of a 4-particle chain with dihedral ``phi`` (rad)."""
    R = np.zeros((len(phi), 4, 3))
    R[:, 0] = [0.1, 0.0, 0.0]
    R[:, 2] = [0.0, 0.0, 0.15]
    R[:, 3] = np.stack([0.1 * np.cos(phi), 0.1 * np.sin(phi), np.full(len(phi), 0.15)], 1)
    return R


def test_fit_recovers_known_fourier_coefficients():
    kT = units.kB * 300.0
    a, b = np.array([3.0, -2.0, 1.0]), np.array([1.5, 0.5, -1.0])  # kJ/mol
    phi = sample_fourier(a, b, kT, 400_000, np.random.default_rng(0))
    R = chain_with_torsion(phi)
    measured = potentials.torsion_angles(R[:1000], ((0, 1, 2, 3),))[:, 0]
    np.testing.assert_allclose(np.angle(np.exp(1j * (measured - phi[:1000]))), 0, atol=1e-5)
    fit = potentials.fit_fourier_dihedrals(R, ((0, 1, 2, 3),), 300.0, order=3, n_bins=72)
    # binning bias ~ (2 pi / 72)^2 n^2 / 24 relative and sampling noise ~ 0.02 kJ/mol
    np.testing.assert_allclose(fit["a"][0], a, atol=0.08)
    np.testing.assert_allclose(fit["b"][0], b, atol=0.08)


def test_pair_repulsion_closed_form_and_fit():
    R = np.repeat(ALA[None], 4, axis=0) * np.array([1.0, 1.05, 1.1, 0.95])[:, None, None]
    pairs = ((0, 3), (1, 4))
    fit = potentials.fit_pair_repulsion(R, pairs, energy_at_min=2.0, exponent=6.0)
    r = np.linalg.norm(ALA[[3, 4]] - ALA[[0, 1]], axis=1)
    np.testing.assert_allclose(fit["sigma"], 0.95 * r * 2.0 ** (1 / 6), rtol=1e-6)
    term = potentials.PairRepulsion(pairs=pairs, sigma=fit["sigma"], exponent=6.0)
    model = potentials.energy_model(term, species=np.zeros(6, np.int32), box=None)
    params = testing.to_float64(model.init_fn(jax.random.key(0), jnp.asarray(ALA)))
    e = float(model.energy_fn(params)(jnp.asarray(0.95 * ALA)))
    np.testing.assert_allclose(e, 4.0, rtol=1e-6)  # 2 kJ/mol per pair at the closest approach


def test_weighted_fit_recovers_the_unbiased_coefficients_from_biased_samples():
    """Samples of U + V (V a bias on the torsion, as the metadynamics reference has),
    reweighted by exp(V / kT) (observables.frame_weights), give U's coefficients; unweighted,
    the fit returns U + V's."""
    from cgjax import data, observables

    kT = units.kB * 300.0
    a, b = np.array([3.0, -2.0, 1.0]), np.array([1.5, 0.5, -1.0])  # U, kJ/mol
    bias = observables.TorsionBias((0, 1, 2, 3), np.array([-2.0, 1.0, 0.0]),
                                   np.array([-1.0, 0.0, 0.5]))  # fmt: skip
    phi = sample_fourier(a + bias.cos, b + bias.sin, kT, 400_000, np.random.default_rng(1))
    frames = data.Frames(chain_with_torsion(phi), np.zeros(4, np.int32), np.ones(4),
                         temperature=300.0, metadata={"bias": bias.to_json()})  # fmt: skip
    w = observables.frame_weights(frames)
    np.testing.assert_allclose(w, np.exp(bias.energy(phi) / kT) / np.exp(bias.energy(phi) / kT)
                               .mean(), rtol=1e-6)  # fmt: skip
    fit = potentials.fit_fourier_dihedrals(frames.positions, ((0, 1, 2, 3),), 300.0, order=3,
                                           weights=w)  # fmt: skip
    np.testing.assert_allclose(fit["a"][0], a, atol=0.1)
    np.testing.assert_allclose(fit["b"][0], b, atol=0.1)
    plain = potentials.fit_fourier_dihedrals(frames.positions, ((0, 1, 2, 3),), 300.0, order=3)
    np.testing.assert_allclose(plain["a"][0], a + bias.cos, atol=0.1)
    assert np.abs(plain["a"][0] - a).max() > 1.5
    with pytest.raises(ValueError, match=r"weights must be \[T\]"):
        potentials.fit_fourier_dihedrals(frames.positions, ((0, 1, 2, 3),), 300.0, weights=w[1:])


def test_weighted_harmonic_fit_equals_the_fit_of_repeated_frames():
    rng = np.random.default_rng(3)
    R = ALA[None] + 0.005 * rng.normal(size=(40, 6, 3))
    counts = rng.integers(0, 4, size=40)
    counts[0] = 1
    for fit in (potentials.fit_harmonic_bonds, potentials.fit_harmonic_angles):
        top = BONDS if fit is potentials.fit_harmonic_bonds else ANGLES
        weighted = fit(R, top, 300.0, weights=counts.astype(float))
        repeated = fit(np.repeat(R, counts, axis=0), top, 300.0)
        for key in weighted:
            np.testing.assert_allclose(weighted[key], repeated[key], rtol=1e-9)
