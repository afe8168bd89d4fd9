"""Reference generators: tiny runs of every system through the CLI, and failure handling."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

openmm = pytest.importorskip(
    "openmm", reason="OpenMM (the 'reference' extra) generates the reference data"
)

from cgjax import data, reference, units  # noqa: E402
from cgjax.reference import _generate  # noqa: E402

# Small boxes need short cutoffs (less than half the box edge).
TINY = {
    "spce": ["--molecules", "64", "--cutoff", "0.6", "--save-every", "0.1"],
    "tip3p": ["--molecules", "64", "--cutoff", "0.6", "--save-every", "0.1"],
    "argon": ["--molecules", "108", "--cutoff", "0.85", "--save-every", "0.2"],
    "methane": ["--molecules", "64", "--cutoff", "0.75", "--save-every", "0.1"],
    "methanol": ["--molecules", "64", "--cutoff", "0.8", "--save-every", "0.1"],
    "benzene": ["--molecules", "64", "--cutoff", "1.0", "--save-every", "0.1"],
}


def _massive(name):
    """Indices of a molecule's massive atoms (the AA frames leave virtual sites out)."""
    return [i for i, m in enumerate(reference.SYSTEMS[name].molecule.masses) if m > 0]


COMMON = ["--equilibration", "0.4", "--nh-equilibration", "0.2", "--production", "0.4",
          "--no-progress", "--dtype", "float64"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``{system: (cg Frames, aa Frames)}`` from one tiny run each, through ``main``."""
    out = {}
    for name, extra in TINY.items():
        d = tmp_path_factory.mktemp(name)
        argv = [name, "--out", str(d / "cg.npz"), "--aa-out", str(d / "aa.npz"), "--seed", "3"]
        assert reference.main(argv + extra + COMMON) == 0
        out[name] = (data.Frames.load(d / "cg.npz"), data.Frames.load(d / "aa.npz"))
    return out


@pytest.mark.parametrize("name", list(TINY))
def test_files_load_with_provenance(runs, name):
    cg, aa = runs[name]
    spec = reference.SYSTEMS[name]
    n_mol = int(TINY[name][1])
    n_atoms = n_mol * len(_massive(name))
    n_frames = round(0.4 / float(TINY[name][-1]))
    assert cg.positions.shape == cg.forces.shape == cg.velocities.shape == (n_frames, n_mol, 3)
    assert aa.positions.shape == aa.forces.shape == (n_frames, n_atoms, 3)
    assert cg.dt == pytest.approx(float(TINY[name][-1]))
    assert cg.temperature == spec.temperature
    np.testing.assert_allclose(cg.masses, spec.molecule.mass)
    L = reference.box_length(n_mol, spec.molecule.mass, spec.density)
    np.testing.assert_allclose(cg.box, np.eye(3) * L)
    p = cg.provenance
    assert p["command"].startswith("python -m cgjax.reference " + name)
    assert p["config"]["seed"] == 3 and p["config"]["system"] == name
    assert p["openmm_version"] == openmm.__version__
    assert p["openmm_platform"] == "CPU"
    assert p["system"]["molecule"]["charges"] == list(spec.molecule.charges)
    assert p["kinetic_dof"] == 3 * n_atoms - aa.provenance["n_constraints"] - 3
    T = np.asarray(cg.metadata["aa_temperature"])
    assert T.shape == (n_frames,) and np.all(np.abs(T / spec.temperature - 1) < 0.5)


@pytest.mark.parametrize("name", list(TINY))
def test_cg_frames_are_the_com_map_of_aa_frames(runs, name):
    cg, aa = runs[name]
    n = len(_massive(name))
    T, N = cg.positions.shape[:2]
    m = aa.masses.reshape(N, n)
    # AA positions come out unwrapped, so molecules are whole without minimum images.
    R = aa.positions.reshape(T, N, n, 3)
    np.testing.assert_allclose(cg.positions, np.einsum("mn,tmnd->tmd", m / m.sum(1)[:, None], R))
    np.testing.assert_allclose(cg.forces, aa.forces.reshape(T, N, n, 3).sum(2), atol=1e-9)
    V = aa.velocities.reshape(T, N, n, 3)
    np.testing.assert_allclose(
        cg.velocities, np.einsum("mn,tmnd->tmd", m / m.sum(1)[:, None], V), atol=1e-12
    )


@pytest.mark.parametrize("name", list(TINY))
def test_total_cg_force_vanishes(runs, name):
    cg, _ = runs[name]
    net = np.linalg.norm(cg.forces.sum(1), axis=-1)
    typical = np.sqrt(cg.forces.shape[1]) * np.sqrt(np.mean(cg.forces**2))
    # Pair forces cancel exactly; PME's reciprocal part only to its error tolerance.
    assert np.all(net < 3e-3 * typical), (net, typical)


@pytest.mark.parametrize("name", list(TINY))
def test_trajectories_are_continuous_and_molecules_whole(runs, name):
    cg, aa = runs[name]
    L = cg.box[0, 0]
    assert np.max(np.abs(np.diff(cg.positions, axis=0))) < 0.1 * L
    spec = reference.SYSTEMS[name]
    T, N = cg.positions.shape[:2]
    where = {a: k for k, a in enumerate(_massive(name))}
    R = aa.positions.reshape(T, N, len(where), 3)
    for i, j, length in spec.molecule.constraints:
        d = np.linalg.norm(R[:, :, where[i]] - R[:, :, where[j]], axis=-1)
        np.testing.assert_allclose(d, length, rtol=1e-4)


def test_methane_is_neutral():
    mol = reference.SYSTEMS["methane"].molecule
    assert mol.charges[0] == pytest.approx(-0.24) and mol.charges[1] == pytest.approx(0.06)
    assert math.isclose(sum(mol.charges), 0.0, abs_tol=1e-12)
    system = reference.build_system(reference.SYSTEMS["methane"], 8, 2.0, cutoff=0.9)
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    q = [nb.getParticleParameters(i)[0]._value for i in range(nb.getNumParticles())]
    np.testing.assert_allclose(np.reshape(q, (8, 5)).sum(1), 0.0, atol=1e-12)
    import dataclasses

    with pytest.raises(ValueError, match="not neutral"):
        dataclasses.replace(mol, charges=(-0.24,) + (-0.06,) * 4)


def test_water_geometry_and_parameters():
    spce = reference.SYSTEMS["spce"].molecule
    x = np.asarray(spce.geometry)
    r1, r2 = x[1] - x[0], x[2] - x[0]
    assert np.linalg.norm(r1) == pytest.approx(0.1)
    cos = r1 @ r2 / (np.linalg.norm(r1) * np.linalg.norm(r2))
    assert math.degrees(math.acos(cos)) == pytest.approx(109.47)
    assert spce.charges == (-0.8476, 0.4238, 0.4238)
    assert spce.sigmas[0] == pytest.approx(0.3166) and spce.epsilons[0] == 0.650
    assert reference.SYSTEMS["argon"].molecule.epsilons[0] == pytest.approx(119.8 * units.kB)


def test_tip3p_matches_openmm_force_field_file():
    """Our hand-built TIP3P gives OpenMM's own tip3p.xml energy and forces."""
    from openmm import app

    spec, n = reference.SYSTEMS["tip3p"], 64
    L = reference.box_length(n, spec.molecule.mass, spec.density)
    R = reference.initial_positions(spec, n, L, np.random.default_rng(0))
    top = app.Topology()
    chain = top.addChain()
    O, H = app.Element.getBySymbol("O"), app.Element.getBySymbol("H")
    for _ in range(n):
        res = top.addResidue("HOH", chain)
        o = top.addAtom("O", O, res)
        for h in ("H1", "H2"):
            top.addBond(o, top.addAtom(h, H, res))
    top.setPeriodicBoxVectors(np.eye(3) * L)
    theirs = app.ForceField("tip3p.xml").createSystem(
        top,
        nonbondedMethod=app.PME,
        nonbondedCutoff=0.6,
        rigidWater=True,
        ewaldErrorTolerance=reference.EWALD_TOLERANCE,  # ours; OpenMM's default is 5e-4
    )
    ours = reference.build_system(spec, n, L, cutoff=0.6)
    for f in theirs.getForces():
        if isinstance(f, openmm.NonbondedForce):
            f.setUseDispersionCorrection(True)
    assert ours.getNumConstraints() == theirs.getNumConstraints() == 3 * n
    results = []
    for system in (ours, theirs):
        ctx = openmm.Context(
            system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
        )
        ctx.setPositions(R)
        s = ctx.getState(getEnergy=True, getForces=True)
        results.append((s.getPotentialEnergy()._value, s.getForces(asNumpy=True)._value))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-10)
    np.testing.assert_allclose(results[0][1], results[1][1], atol=1e-8)


def test_unknown_system_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        reference.main(["krypton", "--out", str(tmp_path / "x.npz")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "krypton" in err and all(k in err for k in ("spce", "tip3p", "argon", "methane"))
    with pytest.raises(ValueError, match="unknown reference system 'krypton'; known: argon"):
        reference.GenerationConfig("krypton").resolved()


def _leftovers(directory):
    return sorted(os.listdir(directory))


def test_explosion_leaves_no_file(tmp_path):
    out, aa_out = tmp_path / "cg.npz", tmp_path / "aa.npz"
    argv = ["spce", "--out", str(out), "--aa-out", str(aa_out), "--molecules", "64"]
    argv += ["--cutoff", "0.6", "--equilibration", "0", "--nh-equilibration", "0"]
    argv += ["--production", "2", "--no-progress"]
    # 20 fs steps blow rigid water apart within a few saves.
    with pytest.raises(Exception, match="(?i)nan|temperature|non-finite"):
        reference.main(argv + ["--dt", "20", "--save-every", "0.2"])
    assert _leftovers(tmp_path) == []


def test_exception_mid_run_leaves_no_file(tmp_path, monkeypatch):
    real, calls = _generate._snapshot, []

    def failing(context, *, forces):
        calls.append(forces)
        if sum(calls) == 2:  # the second production frame
            raise KeyboardInterrupt
        return real(context, forces=forces)

    monkeypatch.setattr(_generate, "_snapshot", failing)
    out = tmp_path / "cg.npz"
    argv = ["argon", "--out", str(out), "--aa-out", str(tmp_path / "aa.npz")]
    argv += ["--molecules", "108", "--cutoff", "0.85", "--equilibration", "0.2"]
    argv += ["--nh-equilibration", "0"]
    with pytest.raises(KeyboardInterrupt):
        reference.main(argv + ["--production", "1", "--no-progress"])
    assert sum(calls) == 2
    assert _leftovers(tmp_path) == []


def test_failed_cg_save_removes_aa_file(tmp_path, monkeypatch):
    real = data.Frames.save

    def save(self, path):
        if os.fspath(path).endswith("cg.npz"):
            raise OSError("disk full")
        return real(self, path)

    monkeypatch.setattr(data.Frames, "save", save)
    argv = ["argon", "--out", str(tmp_path / "cg.npz"), "--aa-out", str(tmp_path / "aa.npz")]
    argv += ["--molecules", "108", "--cutoff", "0.85", "--equilibration", "0"]
    argv += ["--nh-equilibration", "0"]
    with pytest.raises(OSError, match="disk full"):
        reference.main(argv + ["--production", "0.2", "--no-progress"])
    assert _leftovers(tmp_path) == []


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="less than half the box"):
        reference.build_system(reference.SYSTEMS["spce"], 64, 1.24, cutoff=1.0)
    with pytest.raises(ValueError, match="whole number"):
        reference.GenerationConfig("spce", save_every=0.003).resolved()
    for production in (0.0, 0.1, 1.1):
        with pytest.raises(ValueError, match="whole number of save_every"):
            reference.GenerationConfig("spce", production=production).resolved()


def test_help_runs_as_a_module():
    r = subprocess.run(
        [sys.executable, "-m", "cgjax.reference", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    for name in ("spce", "tip3p", "argon", "methane", "observables"):
        assert name in r.stdout


def test_converged_protocol_is_the_default():
    """Issue 23: Nose-Hoover equilibration before production and PME tolerance 1e-4 by default.

    The CLI, the config, the grid and ``build_system`` agree; OpenMM's own
    default (5e-4) is not what a system gets; a tiny run records both settings
    and spends its Nose-Hoover equilibration before the first saved frame.
    """
    c = reference.GenerationConfig("spce")
    assert c.nh_equilibration == 20.0 and c.ewald_tolerance == 1e-4 == reference.EWALD_TOLERANCE
    g = reference.GridSpec("methanol", ((300.0, 0.77),))
    assert g.nh_equilibration == c.nh_equilibration
    assert g.configs()[0][1].ewald_tolerance == c.ewald_tolerance
    from cgjax.reference._cli import _parser

    args = _parser().parse_args(["spce", "--out", "x.npz"])
    assert args.nh_equilibration == c.nh_equilibration
    assert args.ewald_tolerance == c.ewald_tolerance
    grid_args = _parser().parse_args(["grid", "--out", "d"])
    assert grid_args.nh_equilibration == c.nh_equilibration
    assert openmm.NonbondedForce().getEwaldErrorTolerance() == pytest.approx(5e-4)
    system = reference.build_system(reference.SYSTEMS["spce"], 64, 1.24, cutoff=0.6)
    (nb,) = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)]
    assert nb.getEwaldErrorTolerance() == pytest.approx(1e-4)
    assert nb.getNonbondedMethod() == openmm.NonbondedForce.PME
    with pytest.raises(ValueError, match="ewald_tolerance"):
        reference.GenerationConfig("spce", ewald_tolerance=0.0).resolved()
    with pytest.raises(ValueError, match="nh_equilibration"):
        reference.GenerationConfig("spce", nh_equilibration=-1.0).resolved()


def test_tiny_run_records_the_protocol(runs):
    cg, _ = runs["spce"]
    p = cg.provenance
    assert p["config"]["nh_equilibration"] == 0.2 and p["ewald_tolerance"] == 1e-4
    assert p["integrators"]["nh_equilibration"].startswith("0.2 ps of the production")
    assert p["timings"]["nh_equilibration_s"] > 0
    argon, _ = runs["argon"]  # no PME: no tolerance recorded
    assert argon.provenance["ewald_tolerance"] is None
