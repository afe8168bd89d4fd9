"""Capped alanine: the generator's system, its constraint-aware force map, the shipped data.

The shipped forces are checked as CG mean forces: force matching harmonic bonds
on them recovers the bonds' length distributions, and the mean force projected
on a bond agrees with ``-dA/dr`` of the Boltzmann-inverted length distribution.
(Measured on 32k frames: a plain slicing map, which loses the hydrogens'
constraint forces, passes these bond checks too - its bias, the mean constraint
force ~kT/d_XH along X-H, is a fraction of a percent of the bond forces - so the
map's correctness is tested directly in ``test_force_map_adds_each_hydrogen...``
and in ``tests/data/test_constraints.py``.)
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest

from cgjax import datasets, observables, units

openmm = pytest.importorskip(
    "openmm", reason="OpenMM (the 'reference' extra) generates the reference data"
)
from openmm import app, unit  # noqa: E402

from cgjax.reference._alanine import (  # noqa: E402
    AlanineConfig,
    alanine_system,
    check_copies_apart,
    pdb_path,
)

BONDS = ((0, 1), (1, 2), (2, 3), (3, 4), (2, 5))
KT = units.kB * 300.0


def _forces(system, positions, groups=None):
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001),
                         openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"})  # fmt: skip
    ctx.setPositions(positions)
    kw = {} if groups is None else {"groups": groups}
    F = ctx.getState(getForces=True, **kw).getForces(asNumpy=True)
    return np.asarray(F.value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


def test_copies_feel_exactly_the_forces_of_an_isolated_molecule():
    """The multi-copy system (cutoff, restraints in their own group) equals NoCutoff per copy."""
    s = alanine_system(AlanineConfig(copies=3, production=4.0, equilibration=0.0))
    pdb = app.PDBFile(pdb_path())
    ff = app.ForceField("amber14-all.xml", "implicit/obc2.xml")
    # HBonds as in the generator: OpenMM then drops the X-H bond terms, which vanish on the
    # constraint manifold (bond length = r0) where the generator's frames lie
    one = ff.createSystem(pdb.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    rng = np.random.default_rng(0)
    R = s.positions + 0.005 * rng.normal(size=s.positions.shape)  # off the PDB geometry
    F = _forces(s.system, R, groups={0}).reshape(3, 22, 3)
    for k in range(3):
        ref = _forces(one, R[22 * k : 22 * (k + 1)])
        np.testing.assert_allclose(F[k], ref, atol=2e-3 * np.abs(ref).max())
    # the centroid restraints sit at the sites: no force inside their flat bottom
    assert np.abs(_forces(s.system, R, groups={1})).max() < 1e-6
    check_copies_apart(R, 22, 2.0)
    with pytest.raises(RuntimeError, match="came within the cutoff"):
        check_copies_apart(np.concatenate([R[:22], R[:22] + 0.5, R[44:]]), 22, 2.0)


def test_force_map_adds_each_hydrogen_to_its_heavy_atom():
    s = alanine_system(AlanineConfig(copies=1, production=4.0, equilibration=0.0))
    from cgjax.data import constrained_slice_map

    m = constrained_slice_map(s.bead_atoms, s.constraints, s.n_atoms)
    pdb = app.PDBFile(pdb_path())
    names = [f"{a.residue.name}:{a.name}" for a in pdb.topology.atoms()]
    groups = [sorted(names[j] for j in np.flatnonzero(row)) for row in m.force_matrix]
    assert groups == [
        ["ACE:C"],
        ["ALA:H", "ALA:N"],
        ["ALA:CA", "ALA:HA"],
        ["ALA:C"],
        ["NME:H", "NME:N"],
        ["ALA:CB", "ALA:HB1", "ALA:HB2", "ALA:HB3"],
    ]
    np.testing.assert_allclose(s.bead_masses, [12.011, 15.015, 13.019, 12.011, 15.015, 15.035],
                               atol=2e-3)  # fmt: skip


@pytest.fixture(scope="module")
def shipped():
    return datasets.load("alanine_dipeptide")


def test_shipped_dataset_contents(shipped):
    f = shipped
    size = os.path.getsize(str(datasets.path("alanine_dipeptide")))
    assert size <= 20e6, f"{size / 1e6:.1f} MB > 20 MB"
    assert f.positions.shape[1:] == (6, 3) and f.forces.shape == f.positions.shape
    assert f.box is None and f.dt == 1.0
    md = f.metadata
    assert md["copies"] * md["frames_per_copy"] == f.n_frames
    assert f.n_frames * f.dt >= 100_000, "at least 100 ns in total"
    p = f.provenance
    assert p["command"].startswith("python -m cgjax.reference alanine --out ")
    assert p["force_field"] == ["amber14-all.xml", "implicit/obc2.xml"]
    assert abs(md["aa_temperature_mean"] - 300.0) < 3.0
    w = observables.frame_weights(f)  # sampled under a frozen metadynamics bias on phi
    assert p["config"]["metad"] > 0 and w is not None
    assert observables.effective_sample_size(w) > 0.2 * f.n_frames
    pops = observables.basin_populations(observables.ramachandran(f.positions[::10]), w[::10])
    assert pops["beta_C7eq"] > 0.2 and pops["alpha_R"] > 0.1


def test_shipped_dataset_holds_the_alpha_L_basin(shipped):
    """Boltzmann-weighted, alpha_L holds more than 0.5 % (the metadynamics bias on phi
    carried the copies over the phi = 0 barrier, which 1.6 ns unbiased never crossed);
    sampled, it holds many frames, so force matching sees its mean forces."""
    pp = observables.ramachandran(shipped.positions)
    pops = observables.basin_populations(pp, observables.frame_weights(shipped))
    assert pops["alpha_L"] > 0.005
    assert observables.basin_populations(pp)["alpha_L"] > 0.05


def _bond_design(R, F):
    """Unit bond vectors and lengths ``[T, B]`` and the bond-projected mean force per frame."""
    i, j = np.asarray(BONDS).T
    d = R[:, j] - R[:, i]
    r = np.linalg.norm(d, axis=-1)
    u = d / r[..., None]
    f_r = 0.5 * np.sum((F[:, j] - F[:, i]) * u, axis=-1)  # conjugate to r (both ends move)
    return r, u, f_r


def _weighted_mean_std(x, w):
    m = (w @ x) / w.sum()
    return m, np.sqrt((w @ (x - m) ** 2) / w.sum())


def test_force_matched_bonds_recover_the_length_distributions(shipped):
    """Force matching needs no weights (the phi bias leaves the mean force alone); the
    length distributions are the Boltzmann-weighted ones."""
    R = shipped.positions[::4].astype(np.float64)
    F = shipped.forces[::4].astype(np.float64)
    w = observables.frame_weights(shipped)[::4]
    r, u, _ = _bond_design(R, F)
    T, B = r.shape
    i, j = np.asarray(BONDS).T
    # F_pred = sum_b (-k_b r_b + c_b) grad r_b, linear in (k_b, c_b = k_b r0_b)
    grad = np.zeros((T, B, 6, 3))
    grad[:, np.arange(B), j] = u
    grad[:, np.arange(B), i] = -u
    X = np.concatenate([-r[..., None, None] * grad, grad], axis=1).reshape(T, 2 * B, 18)
    A = np.einsum("tpk,tqk->pq", X, X)
    b = np.einsum("tpk,tk->p", X, F.reshape(T, 18))
    theta = np.linalg.solve(A, b)
    k, r0 = theta[:B], theta[B:] / theta[:B]
    mean, std = _weighted_mean_std(r, w)
    np.testing.assert_allclose(r0, mean, atol=2e-3)  # nm
    # the harmonic bond's Boltzmann width sqrt(kT / k) is the data's spread
    np.testing.assert_allclose(np.sqrt(KT / k), std, rtol=0.15)


def test_mean_bond_force_is_minus_the_gradient_of_the_bond_free_energy(shipped):
    """-<f_r>_r = dA/dr + 2 kT / r with A = -kT ln p(r) (the r^2 Jacobian of a 3-D distance).

    Regression: for a near-Gaussian bond, -f_r against r has slope kT / Var(r), so
    sqrt(kT / slope) is the bond's spread (to 5 %: 4 fs with HMR widens stiff bonds by
    1.5-3 % against a 1 fs run, which agreed to 1.5 %). Binned: the mean force follows
    dA/dr from the histogram's central differences through the well.
    """
    r, _, f_r = _bond_design(
        shipped.positions.astype(np.float64), shipped.forces.astype(np.float64)
    )
    w = observables.frame_weights(shipped)  # Boltzmann weights of the phi-biased frames
    for b in range(len(BONDS)):
        slope = np.polyfit(r[:, b], -f_r[:, b], 1, w=np.sqrt(w))[0]
        np.testing.assert_allclose(np.sqrt(KT / slope), _weighted_mean_std(r[:, b], w)[1],
                                   rtol=0.05)  # fmt: skip
        lo, hi = np.percentile(r[:, b], [10, 90])
        edges = np.linspace(lo, hi, 9)
        which = np.digitize(r[:, b], edges) - 1
        inside = (which >= 0) & (which < 8)
        counts = np.bincount(which[inside], weights=w[inside], minlength=8)
        A = -KT * np.log(counts)
        centres = 0.5 * (edges[1:] + edges[:-1])
        dA = (A[2:] - A[:-2]) / (centres[2:] - centres[:-2])  # exact for a parabola
        mean_f = np.bincount(which[inside], weights=(w * f_r[:, b])[inside], minlength=8) / counts
        x = centres[1:-1]
        predicted = -mean_f[1:-1] - 2 * KT / x
        s_data, s_force = np.polyfit(x, dA, 1)[0], np.polyfit(x, predicted, 1)[0]
        assert abs(s_force / s_data - 1) < 0.15, (BONDS[b], s_data, s_force)
        assert np.abs(predicted - dA).max() < 0.15 * np.abs(dA).max(), (BONDS[b], predicted, dA)


def test_generator_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A run stopped after its first checkpoint ends, rerun, with every frame and the kept ones."""
    import cgjax.reference._alanine as ala

    # with metadynamics on phi: the frozen bias must survive the checkpoint
    config = AlanineConfig(copies=2, equilibration=2.0, production=6.0, checkpoint_every=2.0,
                           threads=1, seed=1, metad=1.0, metad_height=1.0)  # fmt: skip
    out = tmp_path / "ala.npz"
    real, calls = ala._frame, []

    def stop_after_three(*args):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(ala, "_frame", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        ala.generate_alanine(config, out, progress=False)
    with np.load(str(out) + ".partial.npz") as z:
        kept, kept_bias = z["positions"], json.loads(str(z["bias"]))
    assert kept.shape == (2, 2, 6, 3)  # the checkpoint after 2 ps
    assert np.abs(kept_bias["cos"]).max() > 0.01  # 2 copies x 2 deposits of 1 kJ/mol
    monkeypatch.setattr(ala, "_frame", real)
    frames = ala.generate_alanine(config, out, progress=False)
    assert not os.path.exists(str(out) + ".partial.npz")
    assert frames.positions.shape == (2 * 6, 6, 3)
    np.testing.assert_array_equal(frames.positions[:2], kept[:, 0])  # copy 0, frames 0-1
    np.testing.assert_array_equal(frames.positions[6:8], kept[:, 1])  # copy 1
    assert ala._resume(str(tmp_path / "none.npz"), None, config) is None
    # resumed with the bias restored (check_bias_energy ran), stored with the frames
    assert frames.metadata["bias"] == kept_bias
    w = observables.frame_weights(frames)
    assert w.shape == (12,) and np.all(np.isfinite(w)) and w.std() > 0


def test_bias_energy_check_ties_openmm_theta_to_the_beads_phi():
    """OpenMM's bias energy equals sum V(phi) of the beads; the mirror convention fails."""
    from cgjax.reference._alanine import _set_bias, check_bias_energy

    starts = ((-70.0, 140.0), (-70.0, -40.0), (60.0, 40.0))
    config = AlanineConfig(copies=3, production=4.0, equilibration=0.0, metad=1.0,
                           start_phi_psi=starts)  # fmt: skip
    s = alanine_system(config)
    ctx = openmm.Context(s.system, openmm.VerletIntegrator(0.001),
                         openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"})  # fmt: skip
    ctx.setPositions(s.positions)
    bias = observables.TorsionBias((0, 1, 2, 3), np.array([1.0, -0.5]), np.array([2.0, 0.7]))
    _set_bias(ctx, bias)
    check_bias_energy(ctx, s, bias)
    mirror = bias._replace(sin=-bias.sin)  # phi -> -phi
    with pytest.raises(RuntimeError, match="torsion convention"):
        check_bias_energy(ctx, s, mirror)
    # the bias sits in its own force group, left out of the saved (group 0) forces
    kj_nm = unit.kilojoule_per_mole / unit.nanometer
    forces = lambda g: np.asarray(
        ctx.getState(getForces=True, groups=g).getForces(asNumpy=True).value_in_unit(kj_nm)
    )
    before = forces({0})
    ctx.setParameter("bias_sin1", 50.0)
    np.testing.assert_array_equal(forces({0}), before)
    assert np.abs(forces({2})).max() > 10.0
    with pytest.raises(ValueError, match="metad_bias_factor must be > 1"):
        AlanineConfig(metad=1.0, metad_bias_factor=1.0).check()


def test_copies_start_from_the_requested_phi_psi_and_keep_them_through_minimisation():
    """start_phi_psi: each copy's backbone is rotated to its (phi, psi), bonds and angles kept."""
    from cgjax.reference._alanine import set_phi_psi

    pdb = app.PDBFile(pdb_path())
    R0 = np.asarray(pdb.positions.value_in_unit(unit.nanometer))
    R = set_phi_psi(R0, pdb.topology, 60.0, 40.0)
    # every 1-2 and 1-3 distance is unchanged (rigid rotations about bonds)
    nbr = {a.index: set() for a in pdb.topology.atoms()}
    for a, b in pdb.topology.bonds():
        nbr[a.index].add(b.index)
        nbr[b.index].add(a.index)
    pairs = {tuple(sorted((i, j))) for i in nbr for j in nbr[i]}
    pairs |= {tuple(sorted((i, k))) for j in nbr for i in nbr[j] for k in nbr[j] if i != k}
    i, j = np.asarray(sorted(pairs)).T
    dist = lambda X: np.linalg.norm(X[i] - X[j], axis=-1)
    np.testing.assert_allclose(dist(R), dist(R0), atol=1e-12)
    starts = ((-70.0, 140.0), (-70.0, -40.0), (60.0, 40.0))
    s = alanine_system(AlanineConfig(copies=3, production=4.0, equilibration=0.0,
                                     start_phi_psi=starts))  # fmt: skip
    beads = s.positions.reshape(3, 22, 3)[:, s.bead_atoms]
    np.testing.assert_allclose(np.rad2deg(observables.ramachandran(beads)), starts, atol=1e-9)
    ctx = openmm.Context(s.system, openmm.VerletIntegrator(0.001),
                         openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"})  # fmt: skip
    ctx.setPositions(s.positions)
    openmm.LocalEnergyMinimizer.minimize(ctx, 10.0, 0)
    R = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    pp = np.rad2deg(observables.ramachandran(np.asarray(R).reshape(3, 22, 3)[:, s.bead_atoms]))
    basins = observables.basin_populations(np.deg2rad(pp))
    assert basins == pytest.approx({"beta_C7eq": 1 / 3, "alpha_R": 1 / 3, "alpha_L": 1 / 3})
    with pytest.raises(ValueError, match="start_phi_psi entries must be"):
        AlanineConfig(start_phi_psi=((200.0, 0.0),)).check()
    from cgjax.reference._cli import _phi_psi_pairs  # the generator's --start-phi-psi

    assert _phi_psi_pairs("-70,140;-70,-40;60,40") == starts
    with pytest.raises(argparse.ArgumentTypeError, match="--start-phi-psi wants"):
        _phi_psi_pairs("-70,140,3")
