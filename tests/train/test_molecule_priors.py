"""force_matched_harmonics: the bond and angle priors refitted to forces (closed-form check)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import datasets, potentials, train

TOPOLOGY = train.MoleculeTopology(
    6,
    ((0, 1), (1, 2), (2, 3), (3, 4), (2, 5)),
    ((0, 1, 2), (1, 2, 3), (2, 3, 4), (1, 2, 5), (3, 2, 5)),
    ((0, 1, 2, 3), (1, 2, 3, 4), (1, 3, 2, 5)),
)


@pytest.fixture(scope="module")
def frames():
    """400 frames of the shipped alanine set (nm), spread over its copies."""
    return np.asarray(datasets.load("alanine_dipeptide").positions[::256], np.float64)


def _forces(prior, R):
    m = potentials.energy_model(prior, species=np.zeros(6, np.int32), box=None)
    p = m.init_fn(jax.random.key(0), jnp.asarray(R[0]))
    return np.asarray(jax.vmap(jax.grad(lambda x: -m.energy_fn(p)(x)))(jnp.asarray(R)))


def test_recovers_the_force_constants_and_rest_values_of_the_forces(frames):
    prior, fitted = train.fit_molecule_priors(frames, TOPOLOGY, 300.0, dihedral_order=(3, 3, 1))
    b, a = fitted["bonds"], fitted["angles"]
    rng = np.random.default_rng(0)
    truth = {  # a different harmonic set; the other terms are kept
        "bonds": {"k": b["k"] * rng.uniform(0.6, 1.4, 5), "r0": b["r0"] + 0.002},
        "angles": {"k": a["k"] * rng.uniform(0.4, 1.2, 5), "theta0": a["theta0"] - 0.02},
    }
    terms = dict(prior.terms)
    terms["bonds"] = potentials.HarmonicBonds(bonds=TOPOLOGY.bonds, **truth["bonds"])
    terms["angles"] = potentials.HarmonicAngles(angles=TOPOLOGY.angles, **truth["angles"])
    true_prior = potentials.Sum(terms=tuple((n, terms[n]) for n, _ in prior.terms))
    F = _forces(true_prior, frames)

    refit, got = train.force_matched_harmonics(prior, frames, F)
    for term, values in truth.items():
        for key, want in values.items():
            np.testing.assert_allclose(got[term][key], want, rtol=1e-7, err_msg=f"{term}.{key}")
    assert [n for n, _ in refit.terms] == [n for n, _ in prior.terms]
    np.testing.assert_allclose(_forces(refit, frames), F, atol=1e-6 * np.abs(F).max())


def test_named_errors(frames):
    prior, _ = train.fit_molecule_priors(frames, TOPOLOGY, 300.0, dihedral_order=(3, 3, 1))
    with pytest.raises(ValueError, match="positions and forces must both be"):
        train.force_matched_harmonics(prior, frames, frames[:, :5])
    no_angles = potentials.Sum(terms=tuple((n, t) for n, t in prior.terms if n != "angles"))
    with pytest.raises(ValueError, match="needs terms 'bonds' and 'angles'"):
        train.force_matched_harmonics(no_angles, frames, frames)
    # forces pushing every bond outwards in proportion to its stretch: negative k
    with pytest.raises(ValueError, match="non-positive force constants"):
        train.force_matched_harmonics(prior, frames, -_forces(prior, frames))
