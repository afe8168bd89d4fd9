"""The physics priors of one molecule, fitted from CG data (papers 001's CGnet/CGSchNet).

Harmonic bonds and angles (``k = kB T / Var``, mean as rest value), a Fourier
series per torsion (the Boltzmann inversion of its histogram) and the
``(sigma / r)^c`` repulsion on pairs neither bonded nor closing an angle. The
network of a CGnet or CGSchNet learns a correction on top of them.

References:
  paper 001: B. E. Husic et al., J. Chem. Phys. 153, 194101 (2020), eqs. 6a-6b, Sec. III A.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from cgjax.data import check_molecule
from cgjax.potentials import (
    FourierDihedrals,
    HarmonicAngles,
    HarmonicBonds,
    PairRepulsion,
    Sum,
    fit_fourier_dihedrals,
    fit_harmonic_angles,
    fit_harmonic_bonds,
    fit_pair_repulsion,
    nonbonded_pairs,
    sum_of,
)

__all__ = ["MoleculeTopology", "PRIOR_TERMS", "fit_molecule_priors"]

#: The names of the prior terms in the parameter tree (freeze them when training).
PRIOR_TERMS = ("bonds", "angles", "dihedrals", "repulsion")


class MoleculeTopology(NamedTuple):
    """Which beads the priors act on (0-based bead indices of one molecule).

    Attributes:
      n_beads: beads in the molecule.
      bonds: ``((i, j), ...)``.
      angles: ``((i, j, k), ...)``, ``j`` the vertex.
      torsions: ``((i, j, k, l), ...)``.
    """

    n_beads: int
    bonds: tuple
    angles: tuple
    torsions: tuple

    @property
    def nonbonded(self) -> tuple[tuple[int, int], ...]:
        """Pairs neither bonded nor the ends of an angle."""
        return nonbonded_pairs(self.n_beads, self.bonds, self.angles)


def _tuples(x) -> tuple:
    return tuple(tuple(int(i) for i in row) for row in x)


def fit_molecule_priors(
    positions: Any,
    topology: MoleculeTopology,
    temperature_K: float,
    *,
    dihedral_order: int | Any = 3,
    dihedral_bins: int = 72,
    repulsion_energy: float = 1.0,
    repulsion_exponent: float = 6.0,
    max_bond: float = 0.3,
) -> tuple[Sum, dict[str, dict[str, np.ndarray]]]:
    """The prior terms of ``topology`` fitted to frames ``[T, n_beads, 3]`` (nm, free space).

    Args:
      positions: CG frames (nm).
      topology: the :class:`MoleculeTopology`.
      temperature_K: the data's temperature (K).
      dihedral_order: Fourier harmonics, one for all torsions or one per torsion.
      dihedral_bins: torsion histogram bins.
      repulsion_energy: repulsion at each pair's closest approach in the data (kJ/mol).
      repulsion_exponent: the power ``c`` of ``(sigma / r)^c``.
      max_bond: a longer bond in any frame means a broken molecule (nm).

    Returns:
      ``(prior, fitted)``: a :class:`~cgjax.potentials.Sum` with terms named
      :data:`PRIOR_TERMS` (those with an empty topology left out) and the fitted
      values per term (``k``/``r0``, ``k``/``theta0``, ``a``/``b``, ``sigma``).

    Raises:
      BrokenMoleculeError: a bond longer than ``max_bond`` in some frame.
      CollinearTorsionError: a torsion is undefined in some frame.
      ValueError: an index out of range, a rigid bond or angle.
    """
    R = np.asarray(positions)
    if R.ndim != 3 or R.shape[1] != topology.n_beads:
        raise ValueError(f"positions must be [T, {topology.n_beads}, 3] (nm), got {R.shape}")
    check_molecule(R, topology.bonds, max_bond=max_bond)
    terms, fitted = {}, {}
    if topology.bonds:
        fitted["bonds"] = fit_harmonic_bonds(R, topology.bonds, temperature_K)
        terms["bonds"] = HarmonicBonds(
            bonds=_tuples(topology.bonds), **_tuple_values(fitted["bonds"])
        )
    if topology.angles:
        fitted["angles"] = fit_harmonic_angles(R, topology.angles, temperature_K)
        terms["angles"] = HarmonicAngles(
            angles=_tuples(topology.angles), **_tuple_values(fitted["angles"])
        )
    if topology.torsions:
        fitted["dihedrals"] = fit_fourier_dihedrals(
            R,
            topology.torsions,
            temperature_K,
            order=np.asarray(dihedral_order),
            n_bins=dihedral_bins,
        )
        terms["dihedrals"] = FourierDihedrals(
            torsions=_tuples(topology.torsions), **_tuple_values(fitted["dihedrals"])
        )
    pairs = topology.nonbonded
    if pairs:
        fitted["repulsion"] = fit_pair_repulsion(
            R, pairs, energy_at_min=repulsion_energy, exponent=repulsion_exponent
        )
        terms["repulsion"] = PairRepulsion(
            pairs=pairs, exponent=repulsion_exponent, **_tuple_values(fitted["repulsion"])
        )
    return sum_of(**terms), fitted


def _tuple_values(d: dict) -> dict:
    """Arrays as nested tuples of floats: hashable module fields."""
    return {k: np.asarray(v, np.float64).tolist() if np.ndim(v) else float(v) for k, v in d.items()}
