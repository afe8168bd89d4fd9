"""Readers: files written with MDAnalysis (GROMACS) or by hand (LAMMPS), read in cgjax units."""

import sys

import numpy as np
import pytest

from cgjax import data, units

mda = pytest.importorskip(
    "MDAnalysis", reason="the readers need the io extra: pip install 'cgjax[io]' (MDAnalysis)"
)
from MDAnalysis.coordinates.memory import MemoryReader  # noqa: E402
from MDAnalysis.lib.formats.libmdaxdr import TRRFile  # noqa: E402

N_MOL, T = 3, 4
NAMES = ["OW", "HW1", "HW2"]


def _universe(dimensions, seed=0):
    """Three waters in MDAnalysis units: Å, Å/ps, kJ/mol/Å, frames 0.5 ps apart."""
    rng = np.random.default_rng(seed)
    n = 3 * N_MOL
    u = mda.Universe.empty(
        n,
        n_residues=N_MOL,
        atom_resindex=np.repeat(np.arange(N_MOL), 3),
        trajectory=True,
        velocities=True,
        forces=True,
    )
    u.add_TopologyAttr("names", NAMES * N_MOL)
    u.add_TopologyAttr("types", ["O", "H", "H"] * N_MOL)
    u.add_TopologyAttr("resnames", ["SOL"] * N_MOL)
    u.add_TopologyAttr("resids", np.arange(1, N_MOL + 1))
    u.add_TopologyAttr("masses", [15.999, 1.008, 1.008] * N_MOL)
    arrays = {
        "positions": rng.uniform(0, 15, (T, n, 3)).astype(np.float32),
        "velocities": rng.normal(size=(T, n, 3)).astype(np.float32),
        "forces": rng.normal(scale=50, size=(T, n, 3)).astype(np.float32),
    }
    u.load_new(
        arrays["positions"],
        format=MemoryReader,
        velocities=arrays["velocities"],
        forces=arrays["forces"],
        dimensions=np.tile(dimensions, (T, 1)).astype(np.float32),
        dt=0.5,
    )
    return u, arrays


def _write(u, path):
    with mda.Writer(str(path), u.atoms.n_atoms) as w:
        for _ in u.trajectory:
            w.write(u.atoms)


@pytest.mark.parametrize(
    "dimensions", [[20.0, 21.0, 22.0, 90, 90, 90], [20.0, 21.0, 22.0, 80.0, 75.0, 100.0]]
)
def test_gromacs_trr_in_cgjax_units(tmp_path, dimensions):
    u, a = _universe(dimensions)
    u.atoms.write(str(tmp_path / "conf.gro"))
    _write(u, tmp_path / "traj.trr")
    f = data.read_gromacs(tmp_path / "traj.trr", tmp_path / "conf.gro")
    # MDAnalysis units -> cgjax: Å -> nm, kJ/mol/Å -> kJ/mol/nm (x10), Å/ps -> nm/ps.
    np.testing.assert_allclose(f.positions, a["positions"] * 0.1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(f.forces, a["forces"] * 10.0, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(f.velocities, a["velocities"] * 0.1, rtol=1e-6, atol=1e-7)
    # The .trr holds GROMACS units, which are cgjax units: the arrays equal the file's.
    with TRRFile(str(tmp_path / "traj.trr")) as trr:
        raw = [trr.read() for _ in range(T)]
    np.testing.assert_allclose(f.positions, [r.x for r in raw], rtol=2e-7)
    np.testing.assert_allclose(f.forces, [r.f for r in raw], rtol=2e-7)
    np.testing.assert_allclose(f.velocities, [r.v for r in raw], rtol=2e-7)
    np.testing.assert_allclose(f.box, raw[0].box.T, rtol=1e-6, atol=1e-7)  # rows -> columns
    assert f.box.shape == (3, 3) and np.allclose(np.tril(f.box, -1), 0)
    np.testing.assert_allclose(
        np.linalg.norm(f.box, axis=0), np.array(dimensions[:3]) / 10, rtol=1e-6
    )
    assert f.dt == pytest.approx(0.5) and np.allclose(f.time, 0.5 * np.arange(T))
    assert f.metadata["species_names"] == {"H": 0, "O": 1}
    np.testing.assert_array_equal(f.species, [1, 0, 0] * N_MOL)
    np.testing.assert_allclose(f.masses, [15.999, 1.008, 1.008] * N_MOL)
    assert f.metadata["molecule_index"] == np.repeat(np.arange(N_MOL), 3).tolist()
    assert f.metadata["atom_names"] == NAMES * N_MOL
    assert f.provenance["generator"] == "cgjax.data.read_gromacs"
    assert f.provenance["trajectory"]["path"].endswith("traj.trr")
    # And into beads: the COM map over the reader's molecules.
    cg = data.center_of_mass_map(f.metadata["molecule_index"], f.masses).apply(f)
    np.testing.assert_allclose(cg.forces, f.forces.reshape(T, N_MOL, 3, 3).sum(axis=2), rtol=1e-6)


def test_gromacs_xtc_positions_only_and_names_as_species(tmp_path):
    u, a = _universe([20.0, 21.0, 22.0, 90, 90, 90])
    u.atoms.write(str(tmp_path / "conf.gro"))
    _write(u, tmp_path / "traj.xtc")
    f = data.read_gromacs(
        tmp_path / "traj.xtc",
        tmp_path / "conf.gro",
        species_from="name",
        masses={"OW": 16.0, "HW1": 1.0, "HW2": 1.0},
    )
    assert f.forces is None and f.velocities is None
    np.testing.assert_allclose(f.positions, a["positions"] * 0.1, atol=1e-3)  # xtc precision
    assert f.metadata["species_names"] == {"HW1": 0, "HW2": 1, "OW": 2}
    np.testing.assert_array_equal(f.masses, [16.0, 1.0, 1.0] * N_MOL)
    with pytest.raises(ValueError, match=r"masses has no entry for species \['HW2'\]"):
        data.read_gromacs(
            tmp_path / "traj.xtc",
            tmp_path / "conf.gro",
            species_from="name",
            masses={"OW": 16.0, "HW1": 1.0},
        )


def test_gromacs_forces_in_some_frames_only(tmp_path):
    u, a = _universe([20.0, 21.0, 22.0, 90, 90, 90])
    u.atoms.write(str(tmp_path / "conf.gro"))
    with TRRFile(str(tmp_path / "sparse.trr"), "w") as trr:
        for t in range(T):
            forces = a["forces"][t] / 10 if t % 2 == 0 else None
            trr.write(
                a["positions"][t] / 10, None, forces, np.eye(3) * 2, t, 0.5 * t, 0.0, 3 * N_MOL
            )
    with pytest.raises(
        ValueError, match=r"forces are saved in some frames but not in frames \[1, 3\]"
    ):
        data.read_gromacs(tmp_path / "sparse.trr", tmp_path / "conf.gro")


DUMP = """ITEM: TIMESTEP
{step}
ITEM: NUMBER OF ATOMS
3
ITEM: BOX BOUNDS {bounds_header}
{bounds}
ITEM: ATOMS {columns}
{atoms}
"""


def _dump(path, frames, columns, bounds="0.0 10.0\n0.0 11.0\n0.0 12.0", bounds_header="pp pp pp"):
    with open(path, "w") as fh:
        for step, rows in frames:
            atoms = "\n".join(" ".join(str(v) for v in row) for row in rows)
            fh.write(
                DUMP.format(
                    step=step,
                    bounds=bounds,
                    bounds_header=bounds_header,
                    columns=columns,
                    atoms=atoms,
                )
            )


def test_lammps_real_units(tmp_path):
    path = tmp_path / "real.dump"
    frames = [
        # id type x y z vx vy vz fx fy fz, ids out of order on purpose
        (
            100,
            [
                (2, 2, 1.5, 2.5, 3.5, 0.0, 0.01, 0, 0.0, 1.0, 0.0),
                (1, 1, 1.0, 2.0, 3.0, 0.02, 0, 0, 1.0, 0.0, 0.0),
                (3, 10, 9.5, 0.5, 11.5, 0, 0, -0.03, 0.0, 0.0, -2.0),
            ],
        ),
        (
            200,
            [
                (1, 1, 1.1, 2.0, 3.0, 0.02, 0, 0, 1.0, 0.0, 0.0),
                (2, 2, 1.5, 2.6, 3.5, 0.0, 0.01, 0, 0.0, 1.0, 0.0),
                (3, 10, 9.5, 0.5, 11.4, 0, 0, -0.03, 0.0, 0.0, -2.0),
            ],
        ),
    ]
    _dump(path, frames, "id type x y z vx vy vz fx fy fz")
    f = data.read_lammps_dump(
        path, units="real", masses={1: 12.011, 2: 1.008, 10: 15.999}, timestep=2.0
    )
    # 1 kcal/mol/Å = 41.84 kJ/mol/nm; 1 Å/fs = 100 nm/ps; 1 Å = 0.1 nm.
    np.testing.assert_allclose(
        f.forces[0], [[41.84, 0, 0], [0, 41.84, 0], [0, 0, -83.68]], rtol=1e-6
    )
    np.testing.assert_allclose(f.velocities[0], [[2.0, 0, 0], [0, 1.0, 0], [0, 0, -3.0]], rtol=1e-6)
    np.testing.assert_allclose(
        f.positions[1], [[0.11, 0.2, 0.3], [0.15, 0.26, 0.35], [0.95, 0.05, 1.14]], rtol=1e-6
    )
    np.testing.assert_allclose(f.box, np.diag([1.0, 1.1, 1.2]), rtol=1e-6)
    assert f.metadata["species_names"] == {"1": 0, "2": 1, "10": 2}  # numeric type order
    np.testing.assert_array_equal(f.species, [0, 1, 2])
    np.testing.assert_array_equal(f.masses, [12.011, 1.008, 15.999])
    # 100 steps of 2 fs between frames.
    assert f.dt == pytest.approx(0.2) and np.allclose(f.time, [0.2, 0.4])
    assert f.metadata["steps"] == [100, 200] and f.metadata["lammps_units"] == "real"
    assert np.isclose(units.kcal_per_mol_per_angstrom, 41.84)


def test_lammps_metal_units_mass_column_unwrapped_triclinic(tmp_path):
    path = tmp_path / "metal.dump"
    rows = [
        (1, 1, 14.0, 0.5, 0.5, 63.546, 1.0, 0.0, 0.0),
        (2, 1, -3.0, 1.0, 2.0, 63.546, 0.0, -0.5, 0.0),
        (3, 2, 1.0, 1.0, 1.0, 26.98, 0.0, 0.0, 0.25),
    ]
    # LAMMPS triclinic bounds: xlo_bound xhi_bound xy / ylo_bound yhi_bound xz / zlo zhi yz
    bounds = "0.0 12.0 2.0\n0.0 9.0 0.0\n0.0 8.0 0.0"
    _dump(
        path,
        [(0, rows)],
        "id type xu yu zu mass fx fy fz",
        bounds=bounds,
        bounds_header="xy xz yz pp pp pp",
    )
    f = data.read_lammps_dump(path, units="metal")
    np.testing.assert_allclose(
        f.forces[0, 0, 0], units.eV / units.angstrom, rtol=1e-6
    )  # 964.85 kJ/mol/nm
    np.testing.assert_allclose(
        f.forces[0, :, :],
        np.array([[1, 0, 0], [0, -0.5, 0], [0, 0, 0.25]]) * 964.8533212,
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        f.positions[0, :2], [[1.4, 0.05, 0.05], [-0.3, 0.1, 0.2]], rtol=1e-6
    )  # unwrapped kept
    np.testing.assert_allclose(f.masses, [63.546, 63.546, 26.98])
    # a = (lx, 0, 0), b = (xy, ly, 0), c = (xz, yz, lz) as columns; lx = 12 - 2 = 10 Å.
    np.testing.assert_allclose(
        f.box, [[1.0, 0.2, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 0.8]], atol=1e-6
    )
    assert f.times is None and f.dt is None


def test_lammps_errors(tmp_path):
    path = tmp_path / "plain.dump"
    _dump(
        path,
        [
            (
                0,
                [
                    (1, 1, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0),
                    (2, 1, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0),
                    (3, 1, 3.0, 3.0, 3.0, 0.0, 0.0, 0.0),
                ],
            )
        ],
        "id type x y z fx fy fz",
    )
    with pytest.raises(ValueError, match="masses: .*plain.dump has no mass or element column"):
        data.read_lammps_dump(path)
    with pytest.raises(ValueError, match="units must be one of"):
        data.read_lammps_dump(path, units="lj", masses={1: 1.0})
    f = data.read_lammps_dump(path, units="si", masses=np.full(3, 4.0))
    np.testing.assert_allclose(f.positions[0, 0], [1e9, 1e9, 1e9], rtol=1e-6)  # metres -> nm
    # 1 N per particle = N_A * 1e-3 kJ/mol per 1e9 nm.
    np.testing.assert_allclose(f.forces[0, 0, 0], 6.02214076e23 * 1e-3 / 1e9, rtol=1e-6)


def test_missing_mdanalysis_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "MDAnalysis", None)
    with pytest.raises(ImportError, match=r"pip install 'cgjax\[io\]'"):
        data.read_gromacs(tmp_path / "x.trr", tmp_path / "x.gro")
    with pytest.raises(ImportError, match=r"pip install 'cgjax\[io\]'"):
        data.read_lammps_dump(tmp_path / "x.dump")
