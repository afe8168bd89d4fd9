"""Lennard-Jones 12-6 pair potential with trainable sigma and epsilon."""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import ml_collections

from cgjax.potentials._base import PairTerm

__all__ = ["LennardJones", "lennard_jones"]


def lennard_jones(r: jax.Array, sigma: jax.Array, epsilon: jax.Array) -> jax.Array:
    """``4 eps [(sigma/r)^12 - (sigma/r)^6]`` (kJ/mol) for ``r``, ``sigma`` in nm.

    The minimum is at ``r = 2^(1/6) sigma`` with energy ``-eps``.
    """
    x6 = (sigma / r) ** 6
    return 4.0 * epsilon * (x6 * x6 - x6)


class LennardJones(PairTerm):
    """Lennard-Jones 12-6 with a trainable ``sigma`` (nm) and ``epsilon`` (kJ/mol) per species pair.

    Parameters are ``{"sigma": [S, S], "epsilon": [S, S]}`` (symmetrised on
    use). A per-species ``[S]`` initial value is combined with the
    Lorentz-Berthelot rules. The energy is switched smoothly to zero between
    ``r_onset`` and ``cutoff``, so inside ``r_onset`` it is exactly LJ.

    Attributes:
      sigma: initial sigma (nm): scalar, ``[S]`` or ``[S, S]``.
      epsilon: initial epsilon (kJ/mol): scalar, ``[S]`` or ``[S, S]``.

    References:
      Paper 004 §2.2 (LJ prior whose sigma, epsilon come from relative entropy).
    """

    sigma: Any = 0.3166
    epsilon: Any = 0.650
    cutoff: float = 1.0
    default_name: ClassVar[str] = "lj"
    pair_parameters: ClassVar[dict] = {
        "sigma": ("sigma", "arithmetic"),
        "epsilon": ("epsilon", "geometric"),
    }

    def kernel(self, r, *, sigma, epsilon):
        return lennard_jones(r, sigma, epsilon)


def default_config() -> ml_collections.ConfigDict:
    """SPC/E oxygen LJ (paper 004 §3) with a 1.0 nm cutoff, switched from 0.9 nm."""
    return ml_collections.ConfigDict(
        dict(n_species=1, sigma=0.3166, epsilon=0.650, cutoff=1.0, r_onset=0.9)
    )
