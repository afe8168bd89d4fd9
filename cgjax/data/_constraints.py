"""Slicing maps that stay consistent when the all-atom run used constraints.

MD codes write forces without constraint forces. A slicing map whose kept atom
is constrained to a dropped atom (a heavy atom and its hydrogens under
``HBonds``) therefore loses the constraint force, and its mean force is biased.
Adding the dropped partners' forces to the kept atom's force cancels the
constraint force exactly (it is internal to the group) and is still a valid
force map: translating the rigid group moves the bead and keeps the constraints,
so ``B Xi^T = I`` and the mean of ``F`` is the gradient of the PMF.

References:
  G. Ciccotti, R. Kapral, E. Vanden-Eijnden, ChemPhysChem 6, 1809 (2005).
  paper 001: B. E. Husic et al., J. Chem. Phys. 153, 194101 (2020), Sec. II.A.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cgjax.data._mapping import LinearMap

__all__ = ["BrokenMoleculeError", "MappingError", "check_molecule", "constrained_slice_map"]


class MappingError(ValueError):
    """An atom-to-bead map that does not fit the system (index out of range, bad groups)."""


def _groups(constraints: np.ndarray, n_atoms: int) -> np.ndarray:
    """Union-find roots ``[n_atoms]`` of the atoms tied together by constraints."""
    parent = np.arange(n_atoms)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in constraints:
        ri, rj = root(int(i)), root(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return np.asarray([root(i) for i in range(n_atoms)])


def constrained_slice_map(
    keep: Any,
    constraints: Any,
    n_atoms: int,
    *,
    bead_masses: Any = None,
) -> LinearMap:
    """Keeps atoms ``keep`` as beads; each bead's force adds its constrained partners'.

    Positions: bead ``I`` is atom ``keep[I]``. Forces: bead ``I`` gets the sum
    of the forces on every atom connected to ``keep[I]`` by a chain of
    constraints, so the (unreported) constraint forces cancel.

    Args:
      keep: ``[n_beads]`` atom indices (unique, in ``[0, n_atoms)``).
      constraints: ``[n_constraints, 2]`` atom index pairs (may be empty).
      n_atoms: atoms in the system.
      bead_masses: ``[n_beads]`` (amu); default: the kept atom's mass.

    Returns:
      a :class:`LinearMap` with ``kind == "slice"`` and ``force_kind ==
      "constraint groups"``.

    Raises:
      MappingError: an index out of range or repeated, or two kept atoms in one
        constraint group (a constraint between beads: no slicing force map is
        consistent then).
    """
    keep = np.asarray(keep)
    if keep.ndim != 1 or keep.size == 0 or not np.issubdtype(keep.dtype, np.integer):
        raise MappingError(f"keep must be a non-empty 1-D array of atom indices, got {keep!r}")
    n_atoms = int(n_atoms)
    bad = keep[(keep < 0) | (keep >= n_atoms)]
    if bad.size:
        raise MappingError(f"mapping index {int(bad[0])} is out of range for {n_atoms} atoms")
    if len(np.unique(keep)) != keep.size:
        raise MappingError("keep has repeated atom indices; each bead must be a different atom")
    pairs = np.asarray(constraints, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n_atoms):
        raise MappingError(f"a constraint index is out of range for {n_atoms} atoms")
    root = _groups(pairs, n_atoms)
    kept_roots = root[keep]
    if len(np.unique(kept_roots)) != keep.size:
        raise MappingError("two kept atoms are tied by constraints; no slicing force map fits")
    beads = np.arange(keep.size)
    fbead, fatom = [], []
    for b, r in zip(beads, kept_roots, strict=True):
        members = np.flatnonzero(root == r)
        fbead.append(np.full(members.size, b))
        fatom.append(members)
    fbead, fatom = np.concatenate(fbead), np.concatenate(fatom)
    return LinearMap._from_entries(
        (beads, keep, np.ones(keep.size)),
        (fbead, fatom, np.ones(fatom.size)),
        n_beads=keep.size,
        n_atoms=n_atoms,
        kind="slice",
        force_kind="constraint groups",
        bead_masses=None if bead_masses is None else np.asarray(bead_masses, np.float64),
    )


class BrokenMoleculeError(ValueError):
    """A frame in which a molecule is not whole: a bond far longer than a bond can be."""


def check_molecule(positions: Any, bonds: Any, *, max_bond: float = 0.3) -> None:
    """Raises :class:`BrokenMoleculeError` if a bond exceeds ``max_bond`` in any frame.

    Catches molecules split across a periodic boundary, corrupted frames and
    wrong bead orders before they reach a fit or a simulation.

    Args:
      positions: ``[T, N, 3]`` free-space frames (nm).
      bonds: ``((i, j), ...)`` bead indices.
      max_bond: the longest acceptable bond (nm).
    """
    R = np.asarray(positions, np.float64)
    idx = np.asarray(bonds, np.int64).reshape(-1, 2)
    if R.ndim != 3 or R.shape[-1] != 3:
        raise ValueError(f"positions must be [T, N, 3] (nm), got shape {R.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= R.shape[1]):
        raise MappingError(f"a bond index is out of range for {R.shape[1]} beads")
    r = np.linalg.norm(R[:, idx[:, 1]] - R[:, idx[:, 0]], axis=-1)
    bad = ~(r <= max_bond)
    if bad.any():
        t, b = (int(v) for v in np.argwhere(bad)[0])
        raise BrokenMoleculeError(
            f"frame {t} has bond {tuple(int(i) for i in idx[b])} of length {r[t, b]:.3f} nm "
            f"> {max_bond} nm: the molecule is broken ({int(bad.any(axis=1).sum())} such frames)"
        )
