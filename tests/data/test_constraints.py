"""Slicing maps under constraints, and the named errors of molecule frames."""

import numpy as np
import pytest

from cgjax import data


def test_constrained_slice_map_adds_the_constrained_partners_forces():
    # atoms: 0 heavy (kept) - 1 H, 2 heavy (kept) - 3 H - (none), 4 heavy (dropped) - 5 H
    m = data.constrained_slice_map([2, 0], [(0, 1), (2, 3), (4, 5)], 6)
    np.testing.assert_array_equal(m.matrix, [[0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(m.force_matrix, [[0, 0, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]])
    np.testing.assert_allclose(m.force_matrix @ m.matrix.T, np.eye(2))
    # a constraint force along 0-1 (equal and opposite) cancels in the mapped force
    rng = np.random.default_rng(0)
    f = rng.normal(size=(3, 6, 3))
    lam = rng.normal(size=(3, 1))
    u = np.array([0.3, -0.2, 0.9])
    f_c = f.copy()
    f_c[:, 0] += lam * u
    f_c[:, 1] -= lam * u
    np.testing.assert_allclose(m.map_forces(f_c), m.map_forces(f), atol=1e-12)
    # and the plain slicing map does not cancel it
    plain = data.slice_map([2, 0], 6)
    assert np.abs(plain.map_forces(f_c) - plain.map_forces(f)).max() > 1e-3


def test_mapping_errors_are_named():
    with pytest.raises(data.MappingError, match="mapping index 7 is out of range for 6 atoms"):
        data.constrained_slice_map([0, 7], [], 6)
    with pytest.raises(data.MappingError, match="tied by constraints"):
        data.constrained_slice_map([0, 2], [(0, 1), (1, 2)], 6)
    with pytest.raises(data.MappingError, match="constraint index"):
        data.constrained_slice_map([0, 2], [(0, 9)], 6)


def test_broken_molecule_is_a_named_error():
    R = np.zeros((3, 3, 3))
    R[:, 1, 0], R[:, 2, 0] = 0.15, 0.30
    data.check_molecule(R, [(0, 1), (1, 2)])
    R[2, 2, 0] = 2.5  # bead 2 jumped across a box in frame 2
    with pytest.raises(data.BrokenMoleculeError, match=r"frame 2 has bond \(1, 2\)"):
        data.check_molecule(R, [(0, 1), (1, 2)])
