"""Atom-to-bead maps: closed-form centres of mass, summed forces, periodic molecules."""

import numpy as np
import pytest

from cgjax import data

M_O, M_H = 15.999, 1.008
R_OH, THETA = 0.1, np.deg2rad(109.47)  # SPC/E geometry (nm, rad)
TRICLINIC = np.array([[2.0, 0.6, 0.4], [0.0, 1.9, 0.5], [0.0, 0.0, 1.7]])


def _rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _waters(n, T, seed=0, centres=None):
    """``T`` frames of ``n`` rigid SPC/E waters (O, H, H) in random orientations."""
    rng = np.random.default_rng(seed)
    half = THETA / 2
    local = R_OH * np.array(
        [[0, 0, 0], [np.sin(half), np.cos(half), 0], [-np.sin(half), np.cos(half), 0]]
    )
    rot = np.stack([[_rotation(rng) for _ in range(n)] for _ in range(T)])  # [T, n, 3, 3]
    if centres is None:
        centres = rng.uniform(0, 2, (T, n, 3))
    R = centres[:, :, None, :] + np.einsum("tnij,aj->tnai", rot, local)
    bisector = rot[..., :, 1]  # the local y axis: O -> midpoint of the Hs
    return R.reshape(T, 3 * n, 3), bisector


def _water_frames(n=4, T=3, seed=0, **kw):
    R, _ = _waters(n, T, seed)
    rng = np.random.default_rng(seed + 1)
    return data.Frames(
        R,
        np.tile([0, 1, 1], n),
        np.tile([M_O, M_H, M_H], n),
        forces=rng.normal(size=R.shape),
        velocities=rng.normal(size=R.shape),
        dt=0.01,
        temperature=300.0,
        provenance=data.provenance("test"),
        metadata={
            "species_names": {"OW": 0, "HW": 1},
            "molecule_index": np.repeat(np.arange(n), 3),
        },
        **kw,
    )


def test_com_of_rigid_water_is_closed_form():
    n, T = 5, 4
    R, bisector = _waters(n, T, seed=3)
    cg = data.center_of_mass_map(np.repeat(np.arange(n), 3), np.tile([M_O, M_H, M_H], n))
    com = cg.map_positions(R)
    oxygen = R[:, ::3]
    # COM lies on the bisector, 2 m_H r cos(theta/2) / M from the oxygen.
    expected = oxygen + (2 * M_H * R_OH * np.cos(THETA / 2) / (M_O + 2 * M_H)) * bisector
    np.testing.assert_allclose(com, expected, atol=1e-14)
    np.testing.assert_allclose(cg.map_masses(np.tile([M_O, M_H, M_H], n)), M_O + 2 * M_H)


def test_com_forces_are_molecule_sums_and_total_is_conserved():
    rng = np.random.default_rng(0)
    T, n_atoms = 3, 11
    molecule = np.array([2, 0, 1, 0, 2, 2, 1, 0, 3, 1, 2])  # not contiguous
    masses = rng.uniform(1, 20, n_atoms)
    # Multiples of 1/64: every partial sum is exact, so any summation order agrees.
    forces = rng.integers(-6400, 6400, (T, n_atoms, 3)) / 64.0
    f = data.Frames(
        rng.uniform(0, 1, (T, n_atoms, 3)), np.zeros(n_atoms, int), masses, forces=forces
    )
    cg = data.center_of_mass_map(molecule, masses).apply(f)
    for I in range(4):
        np.testing.assert_array_equal(cg.forces[:, I], forces[:, molecule == I].sum(axis=1))
        np.testing.assert_allclose(cg.masses[I], masses[molecule == I].sum(), rtol=1e-14)
        com = (masses[molecule == I, None] * f.positions[:, molecule == I]).sum(1) / masses[
            molecule == I
        ].sum()
        np.testing.assert_allclose(cg.positions[:, I], com, atol=1e-14)
    np.testing.assert_array_equal(cg.forces.sum(axis=1), forces.sum(axis=1))


def test_pairwise_forces_cancel_inside_beads():
    """Momentum-conserving toy: harmonic springs between all atoms of 3 diatomics.

    Total force is zero, and a bead's force is the sum of the inter-molecular
    spring forces only (intra-molecular ones cancel)."""
    rng = np.random.default_rng(2)
    T, n_mol = 4, 3
    R = rng.uniform(0, 1, (T, 2 * n_mol, 3))
    molecule = np.repeat(np.arange(n_mol), 2)
    k = rng.uniform(1, 5, (2 * n_mol, 2 * n_mol))
    k = np.triu(k, 1) + np.triu(k, 1).T  # k_ij = k_ji, zero diagonal
    dR = R[:, :, None, :] - R[:, None, :, :]  # r_i - r_j
    pair = -k[None, :, :, None] * dR  # force on i from j
    forces = pair.sum(axis=2)
    f = data.Frames(R, np.zeros(2 * n_mol, int), np.full(2 * n_mol, 12.0), forces=forces)
    cg = data.center_of_mass_map(molecule, f.masses).apply(f)
    np.testing.assert_allclose(forces.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(cg.forces.sum(axis=1), 0.0, atol=1e-12)
    inter = molecule[:, None] != molecule[None, :]
    inter_force = (pair * inter[None, :, :, None]).sum(axis=2)
    for I in range(n_mol):
        np.testing.assert_allclose(
            cg.forces[:, I], inter_force[:, molecule == I].sum(axis=1), atol=1e-12
        )


def test_com_velocity_conserves_momentum():
    f = _water_frames()
    cg_map = data.center_of_mass_map(f.metadata["molecule_index"], f.masses)
    cg = cg_map.apply(f)
    p_atoms = (f.masses[None, :, None] * f.velocities).reshape(f.n_frames, -1, 3, 3).sum(axis=2)
    np.testing.assert_allclose(cg.masses[None, :, None] * cg.velocities, p_atoms, atol=1e-12)


def test_slice_map_of_atom_beads_is_identity():
    f = _water_frames(box=np.diag([2.0, 2.1, 2.2]))
    cg = data.slice_map(np.arange(f.n_particles)).apply(f)
    for name in ("positions", "forces", "velocities", "masses", "species", "box"):
        np.testing.assert_array_equal(getattr(cg, name), getattr(f, name), err_msg=name)
    assert cg.metadata["species_names"] == {"OW": 0, "HW": 1}
    assert "molecule_index" not in cg.metadata  # per-atom entries do not describe beads


def test_slice_map_keeps_selected_atoms_unchanged():
    f = _water_frames(n=4)
    keep = np.array([9, 0, 3])  # oxygens, in a chosen order
    cg = data.slice_map(keep, n_atoms=f.n_particles).apply(f)
    np.testing.assert_array_equal(cg.positions, f.positions[:, keep])
    np.testing.assert_array_equal(cg.forces, f.forces[:, keep])
    np.testing.assert_array_equal(cg.masses, f.masses[keep])
    mask = np.zeros(f.n_particles, bool)
    mask[keep] = True
    np.testing.assert_array_equal(
        data.slice_map(mask).apply(f).positions, f.positions[:, np.sort(keep)]
    )
    with pytest.raises(ValueError, match="repeated"):
        data.slice_map([1, 1])
    with pytest.raises(ValueError, match="frames has 12 atoms but the map needs 20"):
        data.slice_map([0], n_atoms=20).apply(f)


@pytest.mark.parametrize("box", [np.diag([2.0, 1.9, 1.7]), TRICLINIC])
def test_molecule_split_across_box_maps_to_the_right_place(box):
    n, T = 8, 3
    rng = np.random.default_rng(5)
    # Whole molecules with centres near cell corners, so wrapping cuts most of them.
    centres = rng.uniform(-0.01, 0.01, (T, n, 3)) @ box.T + rng.integers(0, 2, (T, n, 3)) @ box.T
    R, _ = _waters(n, T, seed=5, centres=centres)
    masses = np.tile([M_O, M_H, M_H], n)
    cg_map = data.center_of_mass_map(np.repeat(np.arange(n), 3), masses)
    whole = cg_map.map_positions(R)
    wrapped = data.wrap(R, box)
    moved = np.abs(wrapped - R).max(axis=-1) > 0.5
    split = moved.reshape(T, n, 3).any(-1) & ~moved.reshape(T, n, 3).all(-1)
    assert split.sum() >= n  # many molecules are cut by the box
    f = data.Frames(wrapped, np.tile([0, 1, 1], n), masses, box=box)
    cg = cg_map.apply(f)
    # Right place: the whole molecule's COM, up to a lattice vector.
    lattice = (cg.positions - whole) @ np.linalg.inv(box).T
    np.testing.assert_allclose(lattice, np.round(lattice), atol=1e-10)
    # ... namely the image of the molecule's oxygen (its first atom).
    oxygen_shift = wrapped[:, ::3] - R[:, ::3]
    np.testing.assert_allclose(cg.positions, whole + oxygen_shift, atol=1e-12)
    # Without the box the split molecules land in the wrong place.
    naive = cg_map.map_positions(wrapped)
    assert np.abs(naive - cg.positions).max() > 0.1  # a hydrogen one box away: 2 m_H L / M
    # make_whole gives the same molecules.
    np.testing.assert_allclose(
        data.make_whole(wrapped, np.repeat(np.arange(n), 3), box),
        R + np.repeat(oxygen_shift, 3, axis=1),
        atol=1e-12,
    )


def test_split_molecules_with_per_frame_box():
    n, T = 4, 3
    boxes = TRICLINIC[None] * np.array([1.0, 1.05, 0.97])[:, None, None]
    rng = np.random.default_rng(9)
    centres = np.einsum("tij,tnj->tni", boxes, rng.uniform(-0.03, 0.03, (T, n, 3)))
    R, _ = _waters(n, T, seed=9, centres=centres)
    masses = np.tile([M_O, M_H, M_H], n)
    cg_map = data.center_of_mass_map(np.repeat(np.arange(n), 3), masses)
    wrapped = data.wrap(R, boxes)
    cg = cg_map.apply(data.Frames(wrapped, np.tile([0, 1, 1], n), masses, box=boxes))
    np.testing.assert_allclose(
        cg.positions, cg_map.map_positions(R) + wrapped[:, ::3] - R[:, ::3], atol=1e-12
    )


def test_dense_linear_map_matches_constructors():
    f = _water_frames(n=3)
    molecule = np.repeat(np.arange(3), 3)
    com = data.center_of_mass_map(molecule, f.masses)
    dense = data.LinearMap(com.matrix)
    assert dense.force_kind == "membership"
    np.testing.assert_array_equal(dense.force_matrix, (com.matrix > 0).astype(float))
    a, b = com.apply(f), dense.apply(f)
    for name in ("positions", "forces", "velocities", "masses", "species"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-14, err_msg=name)
    cog = data.center_of_geometry_map(molecule).apply(f)
    np.testing.assert_allclose(
        cog.positions, f.positions.reshape(f.n_frames, 3, 3, 3).mean(axis=2), atol=1e-14
    )
    np.testing.assert_array_equal(cog.forces, a.forces)


def test_overlapping_map_uses_consistent_projection():
    Xi = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.5, 0.5]])
    m = data.LinearMap(Xi)
    np.testing.assert_allclose(m.force_matrix, np.linalg.solve(Xi @ Xi.T, Xi), atol=1e-14)
    np.testing.assert_allclose(m.force_matrix @ Xi.T, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match=r"B @ matrix.T = I"):
        data.LinearMap(Xi, force_matrix=(Xi > 0).astype(float))
    with pytest.raises(ValueError, match="bead 1 sums to 2"):
        data.LinearMap(np.array([[1.0, 0.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"bead\(s\) \[1\] have none"):
        data.LinearMap(np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_species_by_composition_and_provenance():
    # Two waters and one "methane-like" C + 4 H, as three beads.
    species = np.array([0, 1, 1, 2, 1, 1, 1, 1, 0, 1, 1])
    molecule = np.array([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2])
    masses = np.array([16.0, 1, 1, 12, 1, 1, 1, 1, 16, 1, 1])
    f = data.Frames(
        np.zeros((1, 11, 3)),
        species,
        masses,
        box=3.0,
        provenance=data.provenance("aa"),
        metadata={"species_names": {"O": 0, "H": 1, "C": 2}, "system": "toy"},
    )
    cg = data.center_of_mass_map(molecule, masses).apply(f)
    np.testing.assert_array_equal(cg.species, [1, 0, 1])
    assert cg.metadata["species_names"] == {"Hx4+Cx1": 0, "Ox1+Hx2": 1}
    assert cg.metadata["atomistic_species_names"] == {"O": 0, "H": 1, "C": 2}
    assert cg.metadata["system"] == "toy"
    assert cg.provenance["generator"] == "aa"
    (record,) = cg.provenance["mappings"]
    assert record["kind"] == "center_of_mass" and record["n_beads"] == 3 and record["n_atoms"] == 11
    np.testing.assert_array_equal(cg.box, f.box)
    custom = data.center_of_mass_map(molecule, masses).apply(f, species=[0, 1, 2])
    np.testing.assert_array_equal(custom.species, [0, 1, 2])
    with pytest.raises(ValueError, match="frames.masses differ"):
        data.center_of_mass_map(molecule, masses * 2).apply(f)


def test_mapping_is_chunked_consistently(monkeypatch):
    from cgjax.data import _mapping

    f = _water_frames(n=5, T=7, box=np.diag([2.0, 2.0, 2.0]))
    cg_map = data.center_of_mass_map(np.repeat(np.arange(5), 3), f.masses)
    whole = cg_map.apply(f)
    monkeypatch.setattr(_mapping, "_CHUNK_ENTRIES", 20)  # one frame per chunk
    chunked = cg_map.apply(f)
    np.testing.assert_array_equal(whole.positions, chunked.positions)
    np.testing.assert_array_equal(whole.forces, chunked.forces)
