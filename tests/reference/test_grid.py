"""State-point grids: TraPPE-UA methanol and benzene, the grid command, resume and bad input."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

openmm = pytest.importorskip(
    "openmm", reason="OpenMM (the 'reference' extra) generates the reference data"
)

from cgjax import reference, units  # noqa: E402
from cgjax.reference import _grid  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: a tiny methanol grid point: 64 molecules (1.64 nm box at 0.77 g/cm^3), 0.2 ps
TINY = dict(n_molecules=64, cutoff=0.6, equilibration=0.2, nh_equilibration=0.1,
            production=0.2, save_every=0.1, threads=1)  # fmt: skip


def test_trappe_parameters_as_published():
    """Chen, Potoff, Siepmann 2001 (methanol) and Wick, Martin, Siepmann 2000 (benzene)."""
    meoh = reference.SYSTEMS["methanol"].molecule
    assert meoh.charges == (0.265, -0.700, 0.435)
    np.testing.assert_allclose(np.asarray(meoh.epsilons) / units.kB, [98.0, 93.0, 0.0])
    np.testing.assert_allclose(meoh.sigmas, [0.375, 0.302, 0.0])
    x = np.asarray(meoh.geometry)
    assert np.linalg.norm(x[0] - x[1]) == pytest.approx(0.143)
    assert np.linalg.norm(x[2] - x[1]) == pytest.approx(0.0945)
    cos = (x[0] - x[1]) @ (x[2] - x[1]) / (0.143 * 0.0945)
    assert math.degrees(math.acos(cos)) == pytest.approx(108.5)
    assert meoh.angles[0][4] == pytest.approx(55400.0 * units.kB)
    assert meoh.mass == pytest.approx(15.035 + 15.9994 + 1.008)
    bnz = reference.SYSTEMS["benzene"].molecule
    assert bnz.mass == pytest.approx(6 * 13.019)
    np.testing.assert_allclose(np.asarray(bnz.epsilons) / units.kB, 50.5)
    np.testing.assert_allclose(bnz.sigmas, 0.3695)


def test_benzene_virtual_sites_make_the_ring():
    """OpenMM places the three virtual sites on the regular 1.40 A hexagon, and the
    ring's inertia tensor equals that of six 13.019 amu sites."""
    spec = reference.SYSTEMS["benzene"]
    system = reference.build_system(spec, 2, 3.0, cutoff=1.2)
    R = reference.initial_positions(spec, 2, 3.0, np.random.default_rng(1))
    R[[1, 3, 5, 7, 9, 11]] = 0.0  # forgotten: OpenMM recomputes them
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001),
                         openmm.Platform.getPlatformByName("Reference"))  # fmt: skip
    ctx.setPositions(R)
    ctx.computeVirtualSites()
    X = ctx.getState(getPositions=True).getPositions(asNumpy=True)._value.reshape(2, 6, 3)
    for ring in X:
        edges = np.linalg.norm(ring - np.roll(ring, 1, axis=0), axis=-1)
        np.testing.assert_allclose(edges, 0.140, atol=1e-9)
    mol = spec.molecule
    x = mol.centred_geometry()

    def inertia(m):
        return np.einsum("a,ab->", m, x**2) * np.eye(3) - np.einsum("a,ai,aj->ij", m, x, x)

    np.testing.assert_allclose(inertia(np.asarray(mol.masses)), inertia(np.full(6, 13.019)),
                               atol=1e-12)  # fmt: skip


def test_grid_files_and_manifest(tmp_path):
    spec = reference.GridSpec.product("methanol", [250.0, 350.0], [0.77], **TINY)
    man = reference.generate_grid(spec, tmp_path, progress=False, command="test")
    assert sorted(man["points"]) == ["methanol_T250_rho0.77", "methanol_T350_rho0.77"]
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["points"].keys() == man["points"].keys()
    grid = reference.load_grid(tmp_path)
    assert sorted(grid) == [(250.0, 0.77), (350.0, 0.77)]
    for (T, rho), frames in grid.items():
        assert frames.temperature == T and frames.positions.shape == (2, 64, 3)
        L = reference.box_length(64, reference.SYSTEMS["methanol"].molecule.mass, rho)
        np.testing.assert_allclose(np.diag(frames.box), L, rtol=1e-6)
    seeds = [e["config"]["seed"] for e in man["points"].values()]
    assert sorted(seeds) == [0, 1]


def test_killed_grid_resumes_without_redoing_points(tmp_path, monkeypatch):
    """SIGKILL the grid command once its first point is in the manifest; the same grid
    then runs only the points not done, leaving the finished file untouched."""
    out = tmp_path / "g"
    cmd = [sys.executable, "-m", "cgjax.reference", "grid", "--system", "methanol",
           "--temperatures", "250", "300", "350", "--densities", "0.77", "--molecules", "64",
           "--cutoff", "0.6", "--equilibration", "0.2", "--nh-equilibration", "0.1",
           "--production", "2",
           "--save-every", "0.1", "--threads", "1", "--no-progress", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    manifest = out / "manifest.json"
    t0 = time.time()
    while proc.poll() is None and time.time() - t0 < 300:
        if manifest.exists() and json.loads(manifest.read_text())["points"]:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(manifest.read_text())["points"]
    assert list(done) == ["methanol_T250_rho0.77"], "killed after the first point"
    first = (out / "methanol_T250_rho0.77.npz").read_bytes()

    made = []
    from cgjax.reference import _generate  # generate_grid imports it when called

    original = _generate.generate_to_file

    def counting(config, path, **kw):
        made.append(os.path.basename(path))
        return original(config, path, **kw)

    monkeypatch.setattr(_generate, "generate_to_file", counting)
    assert reference.main(cmd[3:]) == 0
    assert "methanol_T250_rho0.77.npz" not in made
    assert made[-1] == "methanol_T350_rho0.77.npz"
    assert (out / "methanol_T250_rho0.77.npz").read_bytes() == first
    assert len(json.loads(manifest.read_text())["points"]) == 3
    made.clear()
    assert reference.main(cmd[3:]) == 0  # all done: nothing runs
    assert made == []


def test_bad_grids_give_named_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"system": "krypton", "temperatures": [300], "densities": [1.0]}))
    with pytest.raises(reference.UnknownMoleculeError, match="krypton"):
        reference.GridSpec.from_file(bad)
    with pytest.raises(reference.UnknownMoleculeError):
        reference.main(["grid", "--grid", str(bad), "--out", str(tmp_path / "o")])
    # 64 methanols at 0.77 g/cm^3: a 1.64 nm box, less than twice a 1.0 nm cutoff
    with pytest.raises(reference.BoxTooSmallError, match="methanol_T300_rho0.77"):
        reference.GridSpec.product("methanol", [300], [0.77], n_molecules=64).checked()
    with pytest.raises(reference.PackingError, match="cannot be packed"):
        reference.GridSpec.product("benzene", [700], [0.8, 3.0], n_molecules=512).checked()
    assert not (tmp_path / "o").exists()  # nothing was started
    # the paper's densest state points pack
    for system, rho in (("methanol", 1.27), ("benzene", 1.06), ("methane", 0.30)):
        assert reference.packing_fraction(system, rho) < _grid.MAX_PACKING_FRACTION


#: (system, experimental density at 298.15 K and 1 atm (g/cm^3), cutoff (nm)): the
#: densities TraPPE-UA was fitted to reproduce.
DENSITY_CHECKS = [("methanol", 0.7866, 1.0), ("benzene", 0.8765, 1.2)]


@pytest.mark.slow
@pytest.mark.parametrize("system, rho_exp, cutoff", DENSITY_CHECKS)
def test_liquid_density_at_298K_1atm(system, rho_exp, cutoff):
    """TraPPE-UA at 298 K and 1 atm (NPT, 256 molecules) is within 3 % of experiment,
    which TraPPE-UA was fitted to (methanol: Chen, Potoff, Siepmann, J. Phys. Chem. B
    105, 3093 (2001); benzene: Wick, Martin, Siepmann, J. Phys. Chem. B 104, 8008
    (2000); both report liquid densities within ~1-2 % of experiment). The 3 % allows
    for that, for our cutoffs (with PME for methanol and the dispersion correction;
    TraPPE: 1.4 nm, Ewald, tail correction) and the noise of the average.

    The average runs over 40 ps: over 10 ps it scattered by ~1 % (the box volume of 256
    molecules fluctuates by ~1.7 % and stays correlated for ps). One suite run averaged
    0.7475 g/cm^3 for methanol over 10 ps (-5 %), and reruns gave 0.7655-0.7837, so the
    3 % line failed by chance (2026-12-06). The barostat is seeded too (OpenMM otherwise
    draws its seed per Context); the CPU platform's sums still vary from run to run."""
    spec, n = reference.SYSTEMS[system], 256
    L = reference.box_length(n, spec.molecule.mass, rho_exp)
    system_ = reference.build_system(spec, n, L, cutoff=cutoff)
    barostat = openmm.MonteCarloBarostat(1.01325, 298.0, 25)
    barostat.setRandomNumberSeed(7)
    system_.addForce(barostat)
    integrator = openmm.LangevinMiddleIntegrator(298.0, 5.0, 0.002)
    integrator.setRandomNumberSeed(7)
    ctx = openmm.Context(system_, integrator, openmm.Platform.getPlatformByName("CPU"),
                         {"Threads": "1"})  # fmt: skip
    ctx.setPositions(reference.initial_positions(spec, n, L, np.random.default_rng(7)))
    openmm.LocalEnergyMinimizer.minimize(ctx, 10.0, 0)
    ctx.setVelocitiesToTemperature(298.0, 7)
    integrator.step(5000)  # 10 ps
    rho = []
    for _ in range(400):  # 40 ps more, every 0.1 ps
        integrator.step(50)
        V = ctx.getState().getPeriodicBoxVolume()._value  # nm^3
        rho.append(n * spec.molecule.mass / (V * units.g_per_cm3))
    print(f"TraPPE-UA {system}, 298 K, 1 atm: {np.mean(rho):.4f} g/cm^3")
    assert np.mean(rho) == pytest.approx(rho_exp, rel=0.03), np.mean(rho)
