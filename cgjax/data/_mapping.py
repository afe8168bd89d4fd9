"""Linear maps from atoms to coarse-grained beads, for positions and forces.

A map ``Xi`` (``[n_beads, n_atoms]``) sends atom positions ``r`` to bead
positions ``R = Xi r`` (per frame, per Cartesian component); atomistic forces
``f`` go to bead forces ``F = B f`` with a force map ``B`` that satisfies the
consistency condition ``B Xi^T = I`` (Ciccotti, Kapral and Vanden-Eijnden),
so that ``F`` is an unbiased estimate of the CG mean force. For a map in which
each atom belongs to at most one bead and each bead's weights sum to 1 (centre
of mass, centre of geometry, slicing), ``B`` is the 0/1 membership matrix: a
bead's force is the sum of its atoms' forces (paper 003, eqs. 3-6). For
overlapping maps the default is paper 001's general projection
``B = (Xi Xi^T)^-1 Xi``.

Forces written by MD codes exclude constraint forces (SHAKE, SETTLE, OpenMM
constraints). Constraints inside one bead cancel in the sum; a constraint
between atoms of different beads (or between a kept and a dropped atom of a
slicing map) leaves its force out of ``F`` and biases the mean force.

Maps are stored as sparse (bead, atom, weight) entries sorted by bead, and
applied with segment sums over all frames at once.

References:
  paper 003: E. Shinkle et al., Thermodynamic transferability in coarse-grained
  force fields using graph neural networks, eqs. 3-6: ``M_I = sum_i m_i``,
  ``R_I = sum_i m_i r_i / M_I``, ``F_I = sum_i f_i``.
  paper 001: B. E. Husic et al., J. Chem. Phys. 153, 194101 (2020), eqs. 2-3:
  ``x = Xi r``, ``Xi_F = (Xi Xi^T)^-1 Xi``.
  W. G. Noid et al., J. Chem. Phys. 128, 244114 (2008): bead masses
  ``M_I = (sum_i c_Ii^2 / m_i)^-1`` for momentum consistency.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from jaxtyping import Float, Int

from cgjax._validation import check_finite
from cgjax.data._frames import Frames, minimum_image

__all__ = [
    "LinearMap",
    "center_of_geometry_map",
    "center_of_mass_map",
    "make_whole",
    "slice_map",
]

# Entries (frames x sparse entries x 3) handled per chunk; bounds memory to ~100 MB.
_CHUNK_ENTRIES = 1 << 22
# Per-atom metadata keys that do not describe beads; dropped by ``apply``.
_PER_ATOM_KEYS = ("molecule_index", "atom_names", "atom_types", "residue_names")


def make_whole(
    positions: Float[np.ndarray, "... N 3"],
    molecule_index: Int[np.ndarray, " N"],
    box: Any,
) -> np.ndarray:
    """Each molecule moved to one periodic image: its atoms at the minimum image
    of the molecule's first atom (the lowest-index atom with that label).

    Works for triclinic boxes (images found in fractional coordinates); needs
    every molecule to be shorter than half the smallest box width.

    Args:
      positions: ``[N, 3]`` or ``[T, N, 3]`` (nm).
      molecule_index: ``[N]`` labels; atoms with equal labels form a molecule.
      box: ``None`` (returned unchanged), ``[3, 3]``-like, or ``[T, 3, 3]`` (nm).

    Returns:
      positions like the input; first atoms do not move.
    """
    R = np.asarray(positions)
    mol = np.asarray(molecule_index)
    if mol.shape != R.shape[-2:-1]:
        raise ValueError(
            f"molecule_index must have shape [N] = [{R.shape[-2]}] (one per atom), got {mol.shape}"
        )
    _, first, inverse = np.unique(mol, return_index=True, return_inverse=True)
    ref = R[..., first[inverse], :]
    return ref + minimum_image(R - ref, box)


def _check_rows(bead: np.ndarray, weight: np.ndarray, n_beads: int) -> np.ndarray:
    """Every bead has atoms and weights summing to 1; returns atoms per bead."""
    counts = np.bincount(bead, minlength=n_beads)
    if n_beads == 0 or np.any(counts == 0):
        empty = np.flatnonzero(counts == 0)
        raise ValueError(
            f"every bead needs at least one atom; bead(s) {empty[:5].tolist()} have none"
        )
    sums = np.bincount(bead, weights=weight, minlength=n_beads)
    if not np.allclose(sums, 1.0, rtol=0, atol=1e-8):
        b = int(np.argmax(np.abs(sums - 1.0)))
        raise ValueError(
            "each bead's weights must sum to 1 so that beads move with their atoms; "
            f"bead {b} sums to {sums[b]:.6g}"
        )
    return counts


def _segment_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts, axis=1)


class LinearMap:
    """A linear map from ``n_atoms`` atoms to ``n_beads`` beads.

    Args:
      matrix: ``Xi``, ``[n_beads, n_atoms]``; every bead needs at least one atom
        and weights summing to 1 (so beads move with their atoms).
      force_matrix: ``B``, ``[n_beads, n_atoms]``, with ``B Xi^T = I``. Default:
        the 0/1 membership matrix when each atom is in at most one bead,
        otherwise ``(Xi Xi^T)^-1 Xi``.
      bead_masses: ``[n_beads]`` (amu). Default: ``(sum_i Xi_Ii^2 / m_i)^-1``
        from the atom masses of the frames, which is the bead mass for
        centre-of-mass maps and the atom's mass for slicing maps (exact for
        maps where each atom is in at most one bead; otherwise pass masses).

    Raises:
      ValueError: if a bead has no atoms, a bead's weights do not sum to 1,
        or ``force_matrix`` violates ``B Xi^T = I``.
    """

    def __init__(
        self,
        matrix: Float[np.ndarray, "n_beads n_atoms"],
        force_matrix: Float[np.ndarray, "n_beads n_atoms"] | None = None,
        *,
        bead_masses: Float[np.ndarray, " n_beads"] | None = None,
    ):
        Xi = np.asarray(matrix, dtype=np.float64)
        if Xi.ndim != 2:
            raise ValueError(f"matrix must be [n_beads, n_atoms], got shape {Xi.shape}")
        check_finite(Xi, "matrix")
        bead, atom = np.nonzero(Xi)
        _check_rows(bead, Xi[bead, atom], Xi.shape[0])
        if force_matrix is None:
            if np.all(np.count_nonzero(Xi, axis=0) <= 1):
                kind = "membership"
                B = (Xi != 0).astype(np.float64)
            else:
                kind = "pseudo-inverse (Xi Xi^T)^-1 Xi"
                B = np.linalg.solve(Xi @ Xi.T, Xi)
        else:
            kind = "given"
            B = np.asarray(force_matrix, dtype=np.float64)
            if B.shape != Xi.shape:
                raise ValueError(
                    f"force_matrix must have the shape of matrix {Xi.shape}, got {B.shape}"
                )
            check_finite(B, "force_matrix")
        product = B @ Xi.T
        if product.size and not np.allclose(product, np.eye(len(Xi)), atol=1e-8):
            bad = np.argwhere(~np.isclose(product, np.eye(len(Xi)), atol=1e-8))[0]
            raise ValueError(
                "force_matrix must satisfy B @ matrix.T = I for consistent CG forces; "
                f"entry {tuple(int(i) for i in bad)} is {product[tuple(bad)]:.6g}"
            )
        fbead, fatom = np.nonzero(B)
        self._setup(
            (bead, atom, Xi[bead, atom]),
            (fbead, fatom, B[fbead, fatom]),
            n_beads=Xi.shape[0],
            n_atoms=Xi.shape[1],
            kind="linear",
            force_kind=kind,
            bead_masses=bead_masses,
        )

    @classmethod
    def _from_entries(cls, entries, force_entries, **kwargs) -> LinearMap:
        self = cls.__new__(cls)
        self._setup(entries, force_entries, **kwargs)
        return self

    def _setup(
        self,
        entries,
        force_entries,
        *,
        n_beads,
        n_atoms,
        kind,
        force_kind,
        bead_masses=None,
        atom_masses=None,
    ):
        bead, atom, weight = (np.asarray(a) for a in entries)
        order = np.lexsort((atom, bead))
        bead, atom, weight = bead[order], atom[order], weight[order].astype(np.float64)
        counts = _check_rows(bead, weight, n_beads)
        fbead, fatom, fweight = (np.asarray(a) for a in force_entries)
        forder = np.lexsort((fatom, fbead))
        fbead, fatom = fbead[forder], fatom[forder]
        self.n_beads, self.n_atoms = int(n_beads), None if n_atoms is None else int(n_atoms)
        self.kind, self.force_kind = kind, force_kind
        self._bead, self._atom, self._weight = bead, atom, weight
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._ref_atom = atom[self._starts]
        self._fatom, self._fweight = fatom, fweight[forder].astype(np.float64)
        self._fstarts = np.searchsorted(fbead, np.arange(n_beads))
        self._bead_masses = None if bead_masses is None else np.asarray(bead_masses, np.float64)
        if self._bead_masses is not None and self._bead_masses.shape != (self.n_beads,):
            raise ValueError(
                f"bead_masses must have shape [n_beads] = [{self.n_beads}], "
                f"got {self._bead_masses.shape}"
            )
        self._atom_masses = atom_masses
        self._n_atoms_needed = int(atom.max()) + 1

    # --- dense views ------------------------------------------------------------------

    def _dense(self, bead, atom, weight) -> np.ndarray:
        if self.n_atoms is None:
            raise ValueError("this map does not know n_atoms; build it with n_atoms=...")
        out = np.zeros((self.n_beads, self.n_atoms))
        out[bead, atom] = weight
        return out

    @property
    def matrix(self) -> Float[np.ndarray, "n_beads n_atoms"]:
        """``Xi`` as a dense array."""
        return self._dense(self._bead, self._atom, self._weight)

    @property
    def force_matrix(self) -> Float[np.ndarray, "n_beads n_atoms"]:
        """``B`` as a dense array."""
        fbead = np.repeat(
            np.arange(self.n_beads), np.diff(np.append(self._fstarts, len(self._fatom)))
        )
        return self._dense(fbead, self._fatom, self._fweight)

    def describe(self) -> dict:
        """A JSON record of the map (kind, sizes, a hash of its entries)."""
        h = hashlib.sha256()
        for a in (self._bead, self._atom, self._weight, self._fatom, self._fweight):
            h.update(np.ascontiguousarray(a).tobytes())
        return {
            "kind": self.kind,
            "force_map": self.force_kind,
            "n_beads": self.n_beads,
            "n_atoms": self.n_atoms,
            "entries_sha256": h.hexdigest(),
        }

    # --- array maps --------------------------------------------------------------------

    def _check_atoms(self, n: int, name: str) -> None:
        if (self.n_atoms is not None and n != self.n_atoms) or n < self._n_atoms_needed:
            want = self.n_atoms if self.n_atoms is not None else f">= {self._n_atoms_needed}"
            raise ValueError(f"{name} has {n} atoms but the map needs {want}")

    def _chunks(self, n_frames: int, n_entries: int):
        step = max(1, _CHUNK_ENTRIES // max(n_entries, 1))
        return [slice(i, min(i + step, n_frames)) for i in range(0, n_frames, step)] or [
            slice(0, 0)
        ]

    def map_positions(
        self, positions: Float[np.ndarray, "T n_atoms 3"], box: Any = None
    ) -> Float[np.ndarray, "T n_beads 3"]:
        """Bead positions ``R_I = sum_i Xi_Ii r_i`` (nm), molecules made whole first.

        Each bead is computed from its atoms' minimum images relative to the
        bead's first atom, so a bead split across the box maps to the right
        place (triclinic boxes too). Beads are not wrapped back into the cell.

        Args:
          positions: ``[T, n_atoms, 3]`` (nm).
          box: ``None``, ``[3, 3]``-like or ``[T, 3, 3]`` (nm).
        """
        R = np.asarray(positions)
        self._check_atoms(R.shape[1], "positions")
        box = None if box is None else np.asarray(box, np.float64)
        per_frame = box is not None and box.ndim == 3
        out = np.empty((R.shape[0], self.n_beads, 3), dtype=np.float64)
        for s in self._chunks(R.shape[0], len(self._atom)):
            r = R[s].astype(np.float64)
            ref = r[:, self._ref_atom]
            d = r[:, self._atom] - ref[:, self._bead]
            if box is not None:
                d = minimum_image(d, box[s] if per_frame else box)
            out[s] = ref + _segment_sum(self._weight[None, :, None] * d, self._starts)
        return out.astype(R.dtype, copy=False)

    def map_forces(
        self, forces: Float[np.ndarray, "T n_atoms 3"]
    ) -> Float[np.ndarray, "T n_beads 3"]:
        """Bead forces ``F_I = sum_i B_Ii f_i`` (kJ/mol/nm)."""
        F = np.asarray(forces)
        self._check_atoms(F.shape[1], "forces")
        out = np.empty((F.shape[0], self.n_beads, 3), dtype=np.float64)
        for s in self._chunks(F.shape[0], len(self._fatom)):
            f = F[s, self._fatom].astype(np.float64)
            out[s] = _segment_sum(self._fweight[None, :, None] * f, self._fstarts)
        return out.astype(F.dtype, copy=False)

    def map_velocities(
        self, velocities: Float[np.ndarray, "T n_atoms 3"]
    ) -> Float[np.ndarray, "T n_beads 3"]:
        """Bead velocities ``V_I = sum_i Xi_Ii v_i`` (nm/ps): the centre-of-mass
        velocity for centre-of-mass maps, so bead momenta are molecule momenta."""
        V = np.asarray(velocities)
        self._check_atoms(V.shape[1], "velocities")
        out = np.empty((V.shape[0], self.n_beads, 3), dtype=np.float64)
        for s in self._chunks(V.shape[0], len(self._atom)):
            v = V[s, self._atom].astype(np.float64)
            out[s] = _segment_sum(self._weight[None, :, None] * v, self._starts)
        return out.astype(V.dtype, copy=False)

    def map_masses(self, masses: Float[np.ndarray, " n_atoms"]) -> Float[np.ndarray, " n_beads"]:
        """Bead masses (amu): ``bead_masses`` if given, else ``(sum_i Xi_Ii^2 / m_i)^-1``."""
        if self._bead_masses is not None:
            return self._bead_masses
        m = np.asarray(masses, np.float64)
        return 1.0 / np.add.reduceat(self._weight**2 / m[self._atom], self._starts)

    def map_species(
        self, species: Int[np.ndarray, " n_atoms"], names: dict | None = None
    ) -> tuple[np.ndarray, dict]:
        """Bead species and their names.

        When every bead is one atom, beads keep their atom's species and names.
        Otherwise beads with the same atom-species composition share a species,
        numbered in lexicographic order of the composition, and named like
        ``"OWx1+HWx2"`` from the atom species names (``{name: int}``).

        Returns:
          ``(species [n_beads] int32, {name: int})``.
        """
        species = np.asarray(species)
        names = names or {}
        atom_names = {int(v): str(k) for k, v in names.items()}
        if len(self._atom) == self.n_beads:
            cg = species[self._atom].astype(np.int32)
            used = np.unique(cg)
            return cg, {atom_names.get(int(s), str(int(s))): int(s) for s in used}
        n_species = int(species.max()) + 1 if species.size else 0
        counts = np.zeros((self.n_beads, n_species), dtype=np.int64)
        np.add.at(counts, (self._bead, species[self._atom]), 1)
        compositions, cg = np.unique(counts, axis=0, return_inverse=True)
        cg_names = {}
        for k, row in enumerate(compositions):
            parts = [f"{atom_names.get(s, str(s))}x{int(row[s])}" for s in np.flatnonzero(row)]
            cg_names["+".join(parts)] = k
        return cg.reshape(-1).astype(np.int32), cg_names

    # --- frames -------------------------------------------------------------------------

    def apply(
        self, frames: Frames, *, species: Int[np.ndarray, " n_beads"] | None = None
    ) -> Frames:
        """CG frames: mapped positions, forces, velocities, masses and species.

        Box, temperature, dt and times are unchanged. Provenance gains the map
        under ``"mappings"``; metadata keeps its entries except per-atom ones
        (``molecule_index``, ``atom_names``, ``atom_types``, ``residue_names``),
        with ``species_names`` for the beads and ``atomistic_species_names``.

        Args:
          frames: atomistic frames with ``n_atoms`` particles.
          species: ``[n_beads]`` bead species; default :meth:`map_species`.
        """
        self._check_atoms(frames.n_particles, "frames")
        if self._atom_masses is not None and not np.allclose(
            frames.masses, self._atom_masses, rtol=1e-6, atol=0
        ):
            i = int(np.argmax(~np.isclose(frames.masses, self._atom_masses, rtol=1e-6, atol=0)))
            raise ValueError(
                f"frames.masses differ from the masses the map was built with "
                f"(atom {i}: {frames.masses[i]} vs {self._atom_masses[i]} amu)"
            )
        old_names = frames.metadata.get("species_names")
        cg_species, cg_names = self.map_species(frames.species, old_names)
        if species is not None:
            cg_species, cg_names = species, None
        metadata = {
            k: v
            for k, v in frames.metadata.items()
            if k not in _PER_ATOM_KEYS and k != "species_names"
        }
        if cg_names is not None:
            metadata["species_names"] = cg_names
        if old_names is not None:
            metadata["atomistic_species_names"] = old_names
        prov = dict(frames.provenance)
        prov["mappings"] = [*prov.get("mappings", []), self.describe()]
        return Frames(
            self.map_positions(frames.positions, frames.box),
            cg_species,
            self.map_masses(frames.masses),
            forces=None if frames.forces is None else self.map_forces(frames.forces),
            velocities=None
            if frames.velocities is None
            else self.map_velocities(frames.velocities),
            box=frames.box,
            temperature=frames.temperature,
            dt=frames.dt,
            times=frames.times,
            provenance=prov,
            metadata=metadata,
        )

    def __repr__(self) -> str:
        return (
            f"LinearMap(kind={self.kind!r}, n_beads={self.n_beads}, n_atoms={self.n_atoms}, "
            f"force_map={self.force_kind!r})"
        )


def _membership(label: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    label = np.asarray(label)
    if label.ndim != 1 or (label.size and not np.issubdtype(label.dtype, np.integer)):
        raise ValueError(
            f"{name} must be a 1-D integer array [n_atoms], got {label.dtype} {label.shape}"
        )
    _, bead = np.unique(label, return_inverse=True)
    return bead.reshape(-1), np.arange(len(label))


def center_of_mass_map(
    molecule_index: Int[np.ndarray, " n_atoms"], masses: Float[np.ndarray, " n_atoms"]
) -> LinearMap:
    """One bead per molecule at its centre of mass; bead force = sum of atom forces.

    Bead ``I`` is the ``I``-th distinct label in sorted order; a molecule's
    atoms need not be contiguous. Bead masses are the molecule masses.

    Args:
      molecule_index: ``[n_atoms]`` integer labels.
      masses: ``[n_atoms]`` (amu), positive. ``apply`` checks the frames have these masses.

    References:
      paper 003, eqs. 3-6.
    """
    bead, atom = _membership(molecule_index, "molecule_index")
    m = np.asarray(masses, np.float64)
    if m.shape != atom.shape:
        raise ValueError(f"masses must have shape [n_atoms] = [{len(atom)}], got {m.shape}")
    check_finite(m, "masses")
    if m.size and m.min() <= 0:
        raise ValueError(f"masses must be positive (amu), got min {m.min()}")
    M = np.bincount(bead, weights=m)
    return LinearMap._from_entries(
        (bead, atom, m / M[bead]),
        (bead, atom, np.ones(len(atom))),
        n_beads=len(M),
        n_atoms=len(atom),
        kind="center_of_mass",
        force_kind="membership",
        atom_masses=m,
    )


def center_of_geometry_map(molecule_index: Int[np.ndarray, " n_atoms"]) -> LinearMap:
    """One bead per molecule at the mean of its atom positions; force = sum of atom forces.

    Bead masses follow the momentum-consistent ``(sum_i 1 / (n^2 m_i))^-1``,
    which is the molecule mass only when its atoms have equal masses.
    """
    bead, atom = _membership(molecule_index, "molecule_index")
    n = np.bincount(bead)
    return LinearMap._from_entries(
        (bead, atom, 1.0 / n[bead]),
        (bead, atom, np.ones(len(atom))),
        n_beads=len(n),
        n_atoms=len(atom),
        kind="center_of_geometry",
        force_kind="membership",
    )


def slice_map(keep: Any, n_atoms: int | None = None) -> LinearMap:
    """Keeps the atoms ``keep`` (in that order) as beads, with their own forces.

    The kept atom's force is a consistent CG force (``B = Xi`` satisfies
    ``B Xi^T = I``) whether or not dropped atoms are bonded to it: bonded
    dropped atoms make the estimate noisier, not biased. It is biased when a
    *constraint* ties a kept atom to a dropped one, because MD codes leave
    constraint forces out of the forces they write.

    Args:
      keep: atom indices ``[n_beads]`` (unique), or a boolean mask ``[n_atoms]``.
      n_atoms: the atom count (taken from a mask); ``None`` accepts any frames
        with enough atoms.
    """
    keep = np.asarray(keep)
    if keep.dtype == bool:
        if n_atoms is not None and n_atoms != keep.size:
            raise ValueError(f"keep mask has {keep.size} entries but n_atoms = {n_atoms}")
        n_atoms, keep = keep.size, np.flatnonzero(keep)
    if keep.ndim != 1 or (keep.size and not np.issubdtype(keep.dtype, np.integer)):
        raise ValueError(f"keep must be 1-D integer indices or a boolean mask, got {keep.dtype}")
    if keep.size and keep.min() < 0:
        raise ValueError(f"keep has negative indices (min {keep.min()})")
    if len(np.unique(keep)) != keep.size:
        raise ValueError("keep has repeated atom indices; each bead must be a different atom")
    if n_atoms is not None and keep.size and keep.max() >= n_atoms:
        raise ValueError(f"keep has index {keep.max()} but n_atoms = {n_atoms}")
    beads = np.arange(keep.size)
    ones = np.ones(keep.size)
    return LinearMap._from_entries(
        (beads, keep, ones),
        (beads, keep, ones),
        n_beads=keep.size,
        n_atoms=n_atoms,
        kind="slice",
        force_kind="membership",
    )
