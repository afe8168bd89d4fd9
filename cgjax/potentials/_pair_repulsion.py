"""CGnet's repulsion prior on a fixed list of (non-bonded) particle pairs.

``U = sum_p (sigma_p / r_p)^c`` (kJ/mol) over listed pairs ``p = (i, j)`` (no
cutoff: the pairs are few and intramolecular), paper 001 eq. 6b. In a molecule
the listed pairs are those not joined by a bond or an angle, whose short range
the harmonic priors already hold; this term keeps the network's extrapolations
from collapsing them.

References:
  paper 001: B. E. Husic et al., J. Chem. Phys. 153, 194101 (2020), eq. 6b.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from cgjax.potentials._harmonic import (
    _bond_lengths,
    _features,
    _HarmonicTerm,
)
from cgjax.potentials._repulsion import soft_repulsion

__all__ = ["PairRepulsion", "fit_pair_repulsion", "nonbonded_pairs"]


class PairRepulsion(_HarmonicTerm):
    """Repulsion ``sum_p (sigma_p / |r_ij|)^c`` on listed pairs (kJ/mol), minimum image.

    Parameters are ``{"sigma": [P]}`` (nm) for the ``P`` pairs of one copy; the
    exponent ``c`` is fixed.

    Attributes:
      pairs: ``((i, j), ...)`` particle indices.
      sigma: initial sigma (nm): scalar or ``[P]``.
      exponent: the power ``c``.
      n_copies: copies of the first ``P`` pairs (see ``replicated``).

    References:
      Paper 001 eq. 6b; fit with :func:`fit_pair_repulsion`.
    """

    pairs: tuple[tuple[int, int], ...] = ()
    sigma: Any = None
    exponent: float = 6.0
    default_name: ClassVar[str] = "repulsion"
    _topology: ClassVar[str] = "pairs"
    _what: ClassVar[str] = "pair"
    _fit_helper: ClassVar[str] = "fit_pair_repulsion"

    @nn.compact
    def __call__(self, graph, **kwargs) -> jax.Array:
        idx = self._indices(graph.n_nodes)
        sigma = jnp.tile(self._init("sigma", len(idx) // self.n_copies), self.n_copies)
        r = _bond_lengths(graph.positions, jnp.asarray(idx), graph.displacement)
        return jnp.sum(soft_repulsion(r, sigma, self.exponent))


def nonbonded_pairs(n_particles: int, bonds: Any, angles: Any = ()) -> tuple[tuple[int, int], ...]:
    """Pairs ``(i, j)``, ``i < j``, that are neither bonded nor the ends of an angle."""
    excluded = {tuple(sorted((int(i), int(j)))) for i, j in bonds}
    excluded |= {tuple(sorted((int(a[0]), int(a[2])))) for a in angles}
    return tuple(
        (i, j)
        for i in range(n_particles)
        for j in range(i + 1, n_particles)
        if (i, j) not in excluded
    )


def fit_pair_repulsion(
    positions: Float[Array, "T N 3"],
    pairs: Any,
    *,
    energy_at_min: float = 1.0,
    exponent: float = 6.0,
    box: Any = None,
) -> dict[str, np.ndarray]:
    """``sigma_p`` such that each pair's repulsion is ``energy_at_min`` at its closest approach.

    ``sigma = r_min energy_at_min^(1/c)`` with ``r_min`` the pair's smallest
    distance in the data: the prior is soft where the data go and steep below.

    Args:
      positions: ``[T, N, 3]`` frames (nm).
      pairs: ``((i, j), ...)`` particle indices.
      energy_at_min: repulsion at the closest approach in the data (kJ/mol).
      exponent: the power ``c``.
      box: periodic box (nm) or None.

    Returns:
      ``{"sigma": [P]}`` (nm, float64).
    """
    f, _ = _features(positions, pairs, 2, "pair", box, _bond_lengths)
    return {"sigma": f.min(axis=0) * energy_at_min ** (1.0 / exponent)}
