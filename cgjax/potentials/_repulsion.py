"""Repulsive priors: soft power-law repulsion and exponential repulsion."""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from cgjax.potentials._base import PairTerm

__all__ = [
    "ExponentialRepulsion",
    "SoftRepulsion",
    "exponential_repulsion",
    "exponential_repulsion_parameters",
    "soft_repulsion",
]


def soft_repulsion(r: jax.Array, sigma: jax.Array, exponent: float) -> jax.Array:
    """``(sigma / r)^c`` (kJ/mol) for ``r``, ``sigma`` in nm."""
    return (sigma / r) ** exponent


def exponential_repulsion(r: jax.Array, e0: jax.Array, a: jax.Array) -> jax.Array:
    """``E0 exp(-a r)`` (kJ/mol) for ``r`` in nm, ``a`` in 1/nm, ``E0`` in kJ/mol."""
    return e0 * jnp.exp(-a * r)


class SoftRepulsion(PairTerm):
    """Soft repulsion prior ``(sigma / r)^c`` per species pair.

    Parameters are ``{"sigma": [S, S]}`` (nm); the exponent ``c`` is fixed.

    Attributes:
      sigma: initial sigma (nm): scalar, ``[S]`` or ``[S, S]``.
      exponent: the power ``c`` (dimensionless).

    References:
      Paper 001 eq. 6b (CGnet/CGSchNet repulsion prior).
    """

    sigma: Any = 0.3
    exponent: float = 6.0
    cutoff: float = 1.0
    default_name: ClassVar[str] = "repulsion"
    pair_parameters: ClassVar[dict] = {"sigma": ("sigma", "arithmetic")}

    def kernel(self, r, *, sigma):
        return soft_repulsion(r, sigma, self.exponent)


class ExponentialRepulsion(PairTerm):
    """Exponential repulsion prior ``E0 exp(-a r)`` per species pair.

    Parameters are ``{"e0": [S, S]}`` (kJ/mol) and ``{"a": [S, S]}`` (1/nm).

    Attributes:
      e0: initial ``E0`` (kJ/mol).
      a: initial decay rate ``a`` (1/nm).

    References:
      Paper 003 eq. 7 (HIP-NN-TS repulsive pair potential) and its SI eq. 2
      (see :func:`exponential_repulsion_parameters`).
    """

    e0: Any = 1.0e3
    a: Any = 30.0
    cutoff: float = 1.0
    default_name: ClassVar[str] = "exp_repulsion"
    pair_parameters: ClassVar[dict] = {
        "e0": ("e0", "geometric"),
        "a": ("a", "arithmetic"),
    }

    def kernel(self, r, *, e0, a):
        return exponential_repulsion(r, e0, a)


def exponential_repulsion_parameters(
    t: float, d: float, s: float, p: float = 0.05
) -> tuple[float, float]:
    """``(E0, a)`` of the exponential repulsion from data statistics.

    The force ``a E0 exp(-a r)`` equals ``s`` at ``r = t - d`` and has fallen
    to ``p s`` at ``r = t``: ``a = ln(1/p) / d``, ``E0 = p s exp(a t) / a``.

    Args:
      t: the smallest pair distance seen in the training data (nm).
      d: the distance below ``t`` over which the repulsion rises (nm).
      s: force strength at ``t - d`` (kJ/mol/nm), e.g. the mean force magnitude.
      p: fraction of ``s`` left at ``t`` (paper 003 SI table: 0.05, with
        ``d`` = 0.15 A = 0.015 nm).

    References:
      Paper 003 SI, eqs. 1-3.
    """
    if not (t > 0 and d > 0 and s > 0 and 0 < p < 1):
        raise ValueError(f"need t, d, s > 0 and 0 < p < 1, got t={t}, d={d}, s={s}, p={p}")
    a = np.log(1.0 / p) / d
    e0 = p * s * np.exp(a * t) / a
    return float(e0), float(a)
