"""OpenMM running exported tables gives cgjax's forces (argon_864, LJ and a PMF-shaped spline)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import datasets, export, potentials, units

openmm = pytest.importorskip("openmm")

SIGMA, EPS = 0.3405, 0.996  # nm, kJ/mol: the shipped argon's own LJ
CUT, ONSET = 3.3 * SIGMA, 3.0 * SIGMA
RTOL = 1e-4  # the acceptance line


@pytest.fixture(scope="module")
def argon():
    frames = datasets.load("argon_864", wrapped=True)
    return np.asarray(frames.positions[-1], np.float64), np.asarray(frames.box, np.float64)


def pmf_spline(temperature=94.4):
    """A SplinePair least-squares fitted to argon's PMF -kT ln g(r) (IBI's starting point)."""
    rdf = datasets.load_observables("argon_864")["rdf"]
    r, g = np.asarray(rdf["r_nm"]), np.asarray(rdf["g"])
    keep = (g > 0.02) & (r < CUT)
    # r_min 0.3162 nm (g > 0.02 from there), off the 0.0005 nm grid of 0.25 + k dr
    term = potentials.SplinePair(n_basis=32, r_min=float(r[keep][0]) - 0.0013, cutoff=CUT)
    basis = np.asarray(term.basis(jnp.asarray(r[keep])))
    w = -units.kT(temperature) * np.log(g[keep])
    coef, *_ = np.linalg.lstsq(basis, w, rcond=None)
    return term, {"coefficients": jnp.asarray(coef.reshape(1, 1, -1))}


def cgjax_forces(term, params, R, box, species):
    model = potentials.energy_model(term, species=species, box=box)
    nbrs = model.neighbor_fn(skin=0.0).allocate(R)
    e, g = jax.jit(jax.value_and_grad(lambda x: model.energy_fn(params)(x, neighbor=nbrs)))(
        jnp.asarray(R)
    )
    return float(e), -np.asarray(g)


def openmm_forces(force, R, box):
    system = openmm.System()
    for _ in range(len(R)):
        system.addParticle(39.948)
    system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*box[:, k]) for k in range(3)])
    system.addForce(force)
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001),
                         openmm.Platform.getPlatformByName("Reference"))  # fmt: skip
    ctx.setPositions(R)
    state = ctx.getState(getForces=True, getEnergy=True)
    kj = openmm.unit.kilojoule_per_mole
    f = state.getForces(asNumpy=True).value_in_unit(kj / openmm.unit.nanometer)
    return state.getPotentialEnergy().value_in_unit(kj), np.asarray(f)


def assert_same_forces(e_omm, f_omm, e_ref, f_ref):
    assert e_omm == pytest.approx(e_ref, rel=RTOL)
    err = np.linalg.norm(f_omm - f_ref) / np.linalg.norm(f_ref)
    worst = np.max(np.abs(f_omm - f_ref)) / np.max(np.abs(f_ref))
    assert err < RTOL and worst < RTOL, (err, worst)


@pytest.mark.parametrize("which", ["lj", "pmf_spline"])
def test_openmm_table_forces_equal_cgjax(argon, which):
    R, box = argon
    if which == "lj":
        term = potentials.LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=CUT, r_onset=ONSET)
        params = {"sigma": jnp.full((1, 1), SIGMA), "epsilon": jnp.full((1, 1), EPS)}
    else:
        term, params = pmf_spline()
    species = np.zeros(len(R), np.int32)
    e_ref, f_ref = cgjax_forces(term, params, R, box, species)
    # the spline from its own r_min (its default), where its linear continuation starts
    table = export.pair_table(term, params, r_min=0.25 if which == "lj" else None, dr=0.0005)
    e_omm, f_omm = openmm_forces(export.openmm_force(table, species), R, box)
    assert_same_forces(e_omm, f_omm, e_ref, f_ref)
    # the XML form loads back into the same force
    xml = openmm.XmlSerializer.serialize(export.openmm_force(table, species))
    e_xml, f_xml = openmm_forces(openmm.XmlSerializer.deserialize(xml), R, box)
    np.testing.assert_array_equal(f_xml, f_omm)


def test_openmm_two_species_table(argon):
    """Two species (LJ, Lorentz-Berthelot): the Continuous2DFunction path."""
    R, box = argon
    species = (np.arange(len(R)) % 3 == 0).astype(np.int32)
    sig, eps = (SIGMA, 0.37), (EPS, 0.8)
    term = potentials.LennardJones(n_species=2, sigma=sig, epsilon=eps, cutoff=CUT,
                                   r_onset=ONSET)  # fmt: skip
    params = {"sigma": jnp.asarray(0.5 * (np.add.outer(sig, sig))),
              "epsilon": jnp.asarray(np.sqrt(np.multiply.outer(eps, eps)))}  # fmt: skip
    e_ref, f_ref = cgjax_forces(term, params, R, box, species)
    table = export.pair_table(term, params, r_min=0.25, dr=0.0005)
    e_omm, f_omm = openmm_forces(export.openmm_force(table, species), R, box)
    assert_same_forces(e_omm, f_omm, e_ref, f_ref)
    with pytest.raises(ValueError, match=r"species must lie in \[0, 2\)"):
        export.openmm_force(table, species + 1)
