"""Per-species-pair parameter tables.

A pair parameter is stored as a full ``[S, S]`` (or ``[S, S, K]``) table and
symmetrised where it is read, so ``p(a, b) == p(b, a)`` always holds and the
gradient a trainer sees is symmetric too.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["lookup_pair", "pair_table"]


def pair_table(value: Any, n_species: int, *, name: str, mixing: str = "arithmetic") -> np.ndarray:
    """Expands a parameter to a symmetric ``[S, S]`` table.

    Args:
      value: a scalar (all pairs), a ``[S]`` per-species vector combined by
        ``mixing``, or a symmetric ``[S, S]`` table.
      n_species: ``S``.
      name: the parameter's name, for error messages.
      mixing: ``"arithmetic"`` ((a + b) / 2, Lorentz for sigma) or
        ``"geometric"`` (sqrt(a b), Berthelot for epsilon).
    """
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        return np.full((n_species, n_species), float(v))
    if v.shape == (n_species,):
        if mixing == "arithmetic":
            return 0.5 * (v[:, None] + v[None, :])
        if mixing == "geometric":
            return np.sqrt(v[:, None] * v[None, :])
        raise ValueError(f"{name}: mixing must be 'arithmetic' or 'geometric', got {mixing!r}")
    if v.shape == (n_species, n_species):
        if not np.allclose(v, v.T):
            raise ValueError(f"{name}: a [S, S] pair table must be symmetric, got {v.tolist()}")
        return v
    raise ValueError(
        f"{name} must be a scalar, [{n_species}] per species or [{n_species}, {n_species}] "
        f"per pair, got shape {v.shape}"
    )


def lookup_pair(table: jax.Array, si: jax.Array, sj: jax.Array) -> jax.Array:
    """Symmetrised ``(table[si, sj] + table[sj, si]) / 2`` for edge species ``[E]``.

    A one-species table is its one entry (exactly: ``(a + a) / 2 == a``), with
    no per-edge gather.
    """
    if table.shape[:2] == (1, 1):
        return table[0, 0]
    return 0.5 * (table[si, sj] + table[sj, si])
