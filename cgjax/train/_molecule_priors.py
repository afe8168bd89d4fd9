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

import jax
import jax.numpy as jnp
import numpy as np

from cgjax.data import check_molecule
from cgjax.potentials import (
    FourierDihedrals,
    HarmonicAngles,
    HarmonicBonds,
    PairRepulsion,
    Sum,
    energy_model,
    fit_fourier_dihedrals,
    fit_harmonic_angles,
    fit_harmonic_bonds,
    fit_pair_repulsion,
    nonbonded_pairs,
    sum_of,
)
from cgjax.potentials._harmonic import _bond_angles, _bond_lengths

__all__ = ["MoleculeTopology", "PRIOR_TERMS", "fit_molecule_priors", "force_matched_harmonics"]

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
    weights: Any = None,
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
      weights: ``[T]`` frame weights for the bond, angle and torsion statistics
        (frames sampled under a bias: :func:`cgjax.observables.frame_weights`);
        the repulsion uses the closest approach, whatever the weights.

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
        fitted["bonds"] = fit_harmonic_bonds(R, topology.bonds, temperature_K, weights=weights)
        terms["bonds"] = HarmonicBonds(
            bonds=_tuples(topology.bonds), **_tuple_values(fitted["bonds"])
        )
    if topology.angles:
        fitted["angles"] = fit_harmonic_angles(R, topology.angles, temperature_K, weights=weights)
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
            weights=weights,
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


def _free_displacement(a: jax.Array, b: jax.Array) -> jax.Array:
    return a - b


def force_matched_harmonics(
    prior: Sum, positions: Any, forces: Any, *, chunk: int = 4096
) -> tuple[Sum, dict[str, dict[str, np.ndarray]]]:
    """``prior`` with its ``bonds`` and ``angles`` refitted to forces by linear least squares.

    Boltzmann inversion (``k = kB T / Var``) fits each bond's and angle's
    marginal distribution, which includes its coupling to the other internal
    coordinates (the three angles at a tetrahedral centre constrain each
    other) and any sampling error of stiff modes. Fitting the same harmonic
    forms to the forces instead, ``-grad sum_q k_q / 2 (q - q0_q)^2`` against
    ``F`` minus the other terms' forces over all Cartesian components (linear
    in ``k`` and ``k q0``), gives the direct stiffness, so the residual a
    network must learn holds less systematic stiff force. Free space only.

    Args:
      prior: a :class:`~cgjax.potentials.Sum` from :func:`fit_molecule_priors`
        with terms ``bonds`` and ``angles`` (its other terms are kept and their
        forces subtracted).
      positions: ``[T, N, 3]`` CG frames (nm).
      forces: ``[T, N, 3]`` mapped forces (kJ/mol/nm).
      chunk: frames per evaluation.

    Returns:
      ``(prior', fitted)``: the refitted prior (same term names and order) and
      ``{"bonds": {"k" kJ/mol/nm^2, "r0" nm}, "angles": {"k" kJ/mol/rad^2,
      "theta0" rad}}``.

    Raises:
      ValueError: ``prior`` lacks ``bonds`` or ``angles``, shapes differ, or
        the fit gives a non-positive force constant (naming the bond or angle).
    """
    terms = dict(prior.terms)
    if "bonds" not in terms or "angles" not in terms:
        raise ValueError(
            f"force_matched_harmonics: prior needs terms 'bonds' and 'angles', got {list(terms)}"
        )
    R = np.asarray(positions)
    F = np.asarray(forces, np.float64)
    if R.ndim != 3 or R.shape != F.shape:
        raise ValueError(
            f"force_matched_harmonics: positions and forces must both be [T, N, 3], "
            f"got {R.shape} and {F.shape}"
        )
    bonds, angles = np.asarray(terms["bonds"].bonds), np.asarray(terms["angles"].angles)

    def internal(x):
        return jnp.concatenate(
            [
                _bond_lengths(x, bonds, _free_displacement),
                _bond_angles(x, angles, _free_displacement),
            ]
        )

    rest = Sum(terms=tuple((n, t) for n, t in prior.terms if n not in ("bonds", "angles")))
    n = R.shape[1]
    jac, q_of = jax.jit(jax.vmap(jax.jacfwd(internal))), jax.jit(jax.vmap(internal))
    f_rest = None
    if rest.terms:
        m = energy_model(rest, species=np.zeros(n, np.int32), box=None)
        p = m.init_fn(jax.random.key(0), jnp.asarray(R[0]))
        f_rest = jax.jit(jax.vmap(jax.grad(lambda x: -m.energy_fn(p)(x))))
    P = len(bonds) + len(angles)
    A, b = np.zeros((2 * P, 2 * P)), np.zeros(2 * P)
    for i in range(0, len(R), chunk):
        x = jnp.asarray(R[i : i + chunk])
        J = np.asarray(jac(x), np.float64).reshape(len(x), P, 3 * n)
        q = np.asarray(q_of(x), np.float64)
        y = F[i : i + chunk].reshape(len(x), 3 * n)
        if f_rest is not None:
            y = y - np.asarray(f_rest(x), np.float64).reshape(len(x), 3 * n)
        X = np.concatenate([-q[..., None] * J, J], axis=1)  # F = sum_q (-k q + k q0) grad q
        A += np.einsum("tpk,tqk->pq", X, X)
        b += np.einsum("tpk,tk->p", X, y)
    sol = np.linalg.solve(A, b)
    k, q0 = sol[:P], sol[P:] / sol[:P]
    names = [f"bond {tuple(int(v) for v in r)}" for r in bonds]
    names += [f"angle {tuple(int(v) for v in r)}" for r in angles]
    bad = [f"{nm}: k = {kk:.4g}" for nm, kk in zip(names, k, strict=True) if not kk > 0]
    if bad:
        raise ValueError(f"force_matched_harmonics: non-positive force constants {bad}")
    nb = len(bonds)
    fitted = {"bonds": {"k": k[:nb], "r0": q0[:nb]}, "angles": {"k": k[nb:], "theta0": q0[nb:]}}
    terms["bonds"] = HarmonicBonds(bonds=_tuples(bonds), **_tuple_values(fitted["bonds"]))
    terms["angles"] = HarmonicAngles(angles=_tuples(angles), **_tuple_values(fitted["angles"]))
    return Sum(terms=tuple((name, terms[name]) for name, _ in prior.terms)), fitted
