"""Pair tables: closed forms (LJ), units and signs of the GROMACS and LAMMPS files, read-back."""

import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import export, potentials, units

SIGMA, EPS = 0.3405, 0.996  # nm, kJ/mol (Rahman argon)
CUT, ONSET = 3.3 * SIGMA, 3.0 * SIGMA


def lj_closed(r, sigma=SIGMA, eps=EPS):
    """(U kJ/mol, F = -dU/dr kJ/mol/nm) of LJ 12-6, unswitched."""
    x6 = (sigma / r) ** 6
    return 4 * eps * (x6 * x6 - x6), 24 * eps * (2 * x6 * x6 - x6) / r


@pytest.fixture(scope="module")
def lj():
    term = potentials.LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=CUT, r_onset=ONSET)
    params = {"sigma": jnp.full((1, 1), SIGMA), "epsilon": jnp.full((1, 1), EPS)}
    return term, params


@pytest.fixture(scope="module")
def table(lj):
    return export.pair_table(*lj, r_min=0.25, dr=0.0005)


def test_lj_table_is_the_closed_form_below_the_switch(table):
    r = table.r
    assert r[0] == pytest.approx(0.25) and r[-1] >= CUT and np.allclose(np.diff(r), 0.0005)
    inside = r < ONSET
    u, f = lj_closed(r[inside])
    np.testing.assert_allclose(table.energy[0, inside], u, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(table.force[0, inside], f, rtol=1e-10, atol=1e-10)
    # switched to zero, with zero force, at and beyond the cutoff
    assert np.all(table.energy[0, r >= CUT] == 0) and np.all(table.force[0, r >= CUT] == 0)
    # F = -dU/dr (sign convention), switch included: fourth-order central
    # differences of the tabulated energies (truncation ~ (dr / r)^4, < 1e-7 here),
    # away from the onset and the cutoff, where the third derivative jumps (C2 switch)
    e = table.energy[0]
    fd = -(e[:-4] - 8 * e[1:-3] + 8 * e[3:-1] - e[4:]) / (12 * table.dr)
    mid = r[2:-2]
    smooth = (np.abs(mid - ONSET) > 2.5 * table.dr) & (np.abs(mid - CUT) > 2.5 * table.dr)
    np.testing.assert_allclose(table.force[0, 2:-2][smooth], fd[smooth], rtol=1e-6, atol=1e-7)


def test_interpolation_and_range_error(table):
    r = np.linspace(0.26, 1.1, 101)
    u, f = table(r)
    u0, f0 = lj_closed(r)
    inside = r < ONSET
    np.testing.assert_allclose(u[inside], u0[inside], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(f[inside], f0[inside], rtol=1e-6, atol=1e-6)
    for bad in (0.2, [0.3, 1.2]):
        with pytest.raises(export.TableRangeError, match=r"outside the exported range \[0.25"):
            table(bad)


def test_gromacs_table_units_signs_and_read_back(table, tmp_path):
    path = tmp_path / "table.xvg"
    (written,) = export.write_gromacs_table(table, path, precision="double", table_extension=1.0)
    assert written == str(path)
    header = [ln for ln in path.read_text().splitlines() if ln.startswith("#")]
    assert any("cutoff 1.12365 nm" in ln for ln in header)
    assert any("r_min 0.25 nm" in ln for ln in header)
    data = np.loadtxt(path)  # an independent parse: 7 columns r f -f' g -g' h -h'
    assert data.shape[1] == 7 and data[0, 0] == 0.0
    np.testing.assert_allclose(np.diff(data[:, 0]), 0.0005, atol=1e-12)
    assert data[-1, 0] >= CUT + 1.0
    assert np.all(data[:, 1:5] == 0)  # no Coulomb, no dispersion column: C6 = 0, C12 = 1
    r = data[:, 0]
    inside = (r >= 0.25) & (r < ONSET)
    u, f = lj_closed(r[inside])
    np.testing.assert_allclose(data[inside, 5], u, rtol=1e-9)  # h = U (kJ/mol)
    np.testing.assert_allclose(data[inside, 6], f, rtol=1e-9)  # -h' = -dU/dr > 0 at short r
    assert data[inside, 6][0] > 0
    below = r < 0.25  # linear continuation with the force at r_min
    u_min, f_min = lj_closed(0.25)
    np.testing.assert_allclose(data[below, 5], u_min + f_min * (0.25 - r[below]), rtol=1e-9)
    back = export.read_gromacs_table(path)
    assert back.r_min == pytest.approx(0.25) and back.cutoff == pytest.approx(CUT)
    n = len(table.r)
    np.testing.assert_allclose(back.energy[0, :n], table.energy[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(back.force[0, :n], table.force[0], rtol=1e-9, atol=1e-12)
    with pytest.raises(export.TableRangeError):
        back(0.2)


def test_gromacs_spacing_and_file_errors(table, tmp_path):
    with pytest.raises(ValueError, match="expects a table spacing of 0.002 nm"):
        export.write_gromacs_table(table, tmp_path / "t.xvg", precision="single")
    with pytest.raises(ValueError, match="precision must be one of"):
        export.write_gromacs_table(table, tmp_path / "t.xvg", precision="half")
    bad = tmp_path / "other.xvg"
    bad.write_text("0.1 1 2\n0.2 3 4\n")
    with pytest.raises(ValueError, match="other.xvg: not a cgjax GROMACS table"):
        export.read_gromacs_table(bad)


@pytest.mark.parametrize("style, length, energy", [("real", 0.1, 4.184), ("metal", 0.1, units.eV)])
def test_lammps_table_units_signs_and_read_back(table, tmp_path, style, length, energy):
    path = tmp_path / "cg.table"
    export.write_lammps_table(table, path, units_style=style)
    text = path.read_text()
    assert f"# units {style}" in text and "# pair_style table linear 1749" in text
    assert "# pair_coeff 1 1 cg.table CG_0_0 11.2365" in text
    lines = text.splitlines()
    at = lines.index("CG_0_0")
    assert lines[at + 1] == "N 1749 R 2.5 11.24"
    data = np.loadtxt(lines[at + 3 : at + 3 + 1749])  # index, r (A), E, F
    assert np.array_equal(data[:, 0], np.arange(1, 1750))
    r_A = data[:, 1]
    inside = r_A < ONSET / 0.1
    # LJ in the engine's units: sigma in A, epsilon in kcal/mol (real) or eV (metal)
    u, f = lj_closed(r_A[inside], SIGMA / 0.1, EPS / energy)
    np.testing.assert_allclose(data[inside, 2], u, rtol=1e-9, atol=1e-12)  # U(sigma) = 0
    np.testing.assert_allclose(data[inside, 3], f, rtol=1e-9, atol=1e-12)
    assert data[0, 3] > 0  # LAMMPS's f is -dE/dr: repulsive is positive
    np.testing.assert_allclose(r_A, table.r / length, rtol=1e-10)
    back = export.read_lammps_table(path)
    np.testing.assert_allclose(back.r, table.r, rtol=1e-10)
    np.testing.assert_allclose(back.energy, table.energy, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(back.force, table.force, rtol=1e-9, atol=1e-12)
    assert back.cutoff == pytest.approx(CUT)
    with pytest.raises(export.TableRangeError, match="outside the exported range"):
        back([0.3, 1.2])


def test_lammps_errors(table, tmp_path):
    with pytest.raises(ValueError, match="LAMMPS units must be one of"):
        export.write_lammps_table(table, tmp_path / "t", units_style="lj")
    path = export.write_lammps_table(table, tmp_path / "t")
    with pytest.raises(ValueError, match="section 'CG_0_1'"):
        export.read_lammps_table(path, keyword="CG_0_1")


def test_two_species_sum_of_pair_terms(tmp_path):
    """LJ (Lorentz-Berthelot) + soft repulsion, two species: every pair's closed form."""
    sig, eps = np.array([0.30, 0.36]), np.array([0.8, 1.2])
    lj = potentials.LennardJones(n_species=2, sigma=tuple(sig), epsilon=tuple(eps), cutoff=1.0,
                                 r_onset=0.9)  # fmt: skip
    rep = potentials.SoftRepulsion(n_species=2, sigma=0.25, exponent=8.0, cutoff=1.0, r_onset=0.9)
    pot = potentials.sum_of(lj, rep)
    s_mix = 0.5 * (sig[:, None] + sig[None])
    e_mix = np.sqrt(eps[:, None] * eps[None])
    params = {"lj": {"sigma": jnp.asarray(s_mix), "epsilon": jnp.asarray(e_mix)},
              "repulsion": {"sigma": jnp.full((2, 2), 0.25)}}  # fmt: skip
    table = export.pair_table(pot, params, r_min=0.2, dr=0.002)
    assert table.pairs == ((0, 0), (0, 1), (1, 1))
    r = table.r
    inside = r < 0.9
    for k, (i, j) in enumerate(table.pairs):
        u, f = lj_closed(r[inside], s_mix[i, j], e_mix[i, j])
        u, f = u + (0.25 / r[inside]) ** 8, f + 8 * (0.25 / r[inside]) ** 8 / r[inside]
        np.testing.assert_allclose(table.energy[k, inside], u, rtol=1e-10)
        np.testing.assert_allclose(table.force[k, inside], f, rtol=1e-10)
    files = export.write_gromacs_table(table, tmp_path / "table.xvg")
    assert [p.rsplit("/", 1)[1] for p in files] == [
        "table.xvg", "table_S0_S0.xvg", "table_S0_S1.xvg", "table_S1_S1.xvg"]  # fmt: skip
    assert np.all(np.loadtxt(files[0])[:, 1:] == 0)
    back = export.read_gromacs_table(files[2], pair=(1, 0))
    np.testing.assert_allclose(back(0.5, (0, 1))[0], table(0.5, (1, 0))[0], rtol=1e-9)
    export.write_lammps_table(table, tmp_path / "cg.table")
    back = export.read_lammps_table(tmp_path / "cg.table", keyword="CG_0_1")
    np.testing.assert_allclose(back.energy[0], table.energy[1], rtol=1e-9, atol=1e-12)
    with pytest.raises(KeyError, match=r"species pair \(0, 2\) is not in the table"):
        table(0.5, (0, 2))


def test_only_pair_terms_have_tables():
    gnn = potentials.GNN(n_species=1, embed_dim=4, message_dim=4, n_rbf=4, cutoff=0.6)
    lj = potentials.LennardJones(cutoff=0.6)
    with pytest.raises(export.NotAPairTermError, match="GNN is not a species-pair term"):
        export.pair_table(potentials.sum_of(lj, gnn=gnn), {"lj": {}, "gnn": {}}, r_min=0.2)
    with pytest.raises(ValueError, match="needs 0 < r_min < r_max"):
        export.pair_table(lj, {}, r_min=0.0)
